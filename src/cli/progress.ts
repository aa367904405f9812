// Progress of a long CLI operation on stderr: a bar redrawn in place on a terminal, plain lines (at most one
// a second, and the last) when stderr is a file or a pipe, so logs stay readable.

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Progress {
  update(done: number, total: number): void;
  end(): void;
}

const BAR_WIDTH = 30;

export function progressOn(stream: ProgressStream, label: string, now: () => number = Date.now): Progress {
  const tty = stream.isTTY === true;
  let last = -Infinity;
  let drawn = false;
  let pending: [number, number] | undefined;
  let ended = false;
  const render = ([done, total]: [number, number]) => {
    const fraction = total === 0 ? 1 : Math.min(1, done / total);
    const counts = `${done}/${total}`;
    if (tty) {
      const filled = Math.round(fraction * BAR_WIDTH);
      stream.write(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100)}% ${counts}`);
      drawn = true;
    } else {
      stream.write(`${label}: ${counts} (${Math.floor(fraction * 100)}%)\n`);
    }
    pending = undefined;
  };
  return {
    update(done, total) {
      pending = [done, total];
      const t = now();
      if (done >= total || t - last >= (tty ? 100 : 1000)) {
        last = t;
        render(pending);
      }
    },
    end() {
      if (ended) return;
      ended = true;
      if (pending) render(pending);
      if (tty && drawn) stream.write('\n');
    },
  };
}
