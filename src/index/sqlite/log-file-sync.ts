// fdatasync of SQLite's write-ahead log through a descriptor kept open between flushes (issue 8: STOW). Opening
// and closing the file for every flush cost two more thread-pool round trips per group commit, and each round
// trip wakes two threads (about 100 µs of CPU a wake-up on the benchmark machine: bench/README.md). A descriptor
// of a log file SQLite has since deleted would flush nothing (SQLite deletes the log when the last connection
// closes; the next one creates a new file), so each flush first checks, with one stat on the calling thread,
// that the path still names the file held, and reopens it when not.

import fs from 'node:fs';

export class LogFileSync {
  private held: { fd: number; ino: number; dev: number } | undefined;

  constructor(private readonly file: string) {}

  /** Resolves once the log file's data is on disk. */
  sync(): Promise<void> {
    let fd: number;
    try {
      fd = this.descriptor();
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
  }

  /** Closes the descriptor held (the store's close()). */
  close(): void {
    if (this.held) fs.closeSync(this.held.fd);
    this.held = undefined;
  }

  private descriptor(): number {
    const now = fs.statSync(this.file, { throwIfNoEntry: false });
    if (this.held && (!now || this.held.ino !== now.ino || this.held.dev !== now.dev)) this.close();
    if (!this.held) {
      const fd = fs.openSync(this.file, 'r');
      const opened = fs.fstatSync(fd);
      this.held = { fd, ino: opened.ino, dev: opened.dev };
    }
    return this.held.fd;
  }
}
