// A small pool of worker threads that decode untrusted DICOM (DESIGN.md: work that can block the event loop runs
// behind the pre-scan, in workers with resource limits). The pre-scan (part10-scan.ts) stays on the main thread:
// it is cheap and bounded by the caps. What it cannot bound well is the decoding of what it let through: a
// 14 MB object of 240,000 small sequence items is within every cap and costs seconds of CPU and hundreds of MB
// to turn into DICOM JSON. Here that costs one worker, which is terminated and replaced when it runs past
// `stow.parseTimeoutMs` or its heap passes `stow.parseMemoryMb`; the object fails with C000 (PS3.4 "cannot
// understand") and the reason, and every other request goes on.
//
// What crosses: the token columns (typed arrays) and one contiguous copy of the header bytes are transferred
// (no copy); the worker sends back only the dataset and the bulk-value locations (structured clone), which is
// what the store path keeps. Pixel data never leaves the staged file.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createInstanceReader, DecodeLimitError, DecodeUnavailableError, type DecodedDataset, type DecodeInput, type TokenColumns } from './dataset-reader.js';
import type { HeaderRange } from './dataset-walk.js';
import type { InstanceReader } from './part10.js';

export interface ParsePoolOptions {
  /** Worker threads (each decodes one object at a time); objects beyond that wait their turn. */
  workers: number;
  /** Longest decode of one object; past it the worker is terminated and replaced. */
  timeoutMs: number;
  /** Heap cap of each worker (V8 old generation), MiB. */
  memoryMb: number;
  log?: { error(obj: Record<string, unknown>, msg: string): void };
}

/** Main thread -> worker: one object to decode. */
export interface DecodeRequest {
  tokens: TokenColumns;
  ranges: HeaderRange[];
  header: ArrayBuffer;
}

/** Worker -> main thread. */
export type WorkerReply = { ready: true } | ({ ok: true } & DecodedDataset) | { ok: false; error: string };

interface Task {
  input: DecodeInput;
  resolve(decoded: DecodedDataset): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task?: Task;
  timer?: NodeJS.Timeout;
  /** Why the worker stopped, for the task it was running. */
  failure?: Error;
}

/**
 * The worker's entry: the compiled parse-worker.js next to this file (dist/). Running from the sources under tsx
 * (tests, `npm run dicomvault`), the worker would inherit `--import tsx` but Node 20 loads a worker's entry before
 * that hook is in place (ERR_UNKNOWN_FILE_EXTENSION), so a one-line bootstrap registers tsx in the worker first.
 */
function workerEntry(): { entry: string | URL; eval: boolean } {
  const js = new URL('./parse-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { entry: js, eval: false };
  const ts = new URL('./parse-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return { entry: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(ts)}); });`, eval: true };
}

/** The typed arrays of the token columns, trimmed to their length (a copy only when a column has spare room). */
function transferableTokens(tokens: TokenColumns): { tokens: TokenColumns; buffers: ArrayBuffer[] } {
  const n = tokens.length;
  const trim = <A extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(a: A): A => (a.length === n ? a : (a.slice(0, n) as A));
  const out: TokenColumns = {
    length: n,
    kind: trim(tokens.kind),
    flags: trim(tokens.flags),
    vr: trim(tokens.vr),
    tag: trim(tokens.tag),
    offset: trim(tokens.offset),
    valueLength: trim(tokens.valueLength),
  };
  const buffers = [out.kind, out.flags, out.vr, out.tag, out.offset, out.valueLength].map((a) => a.buffer as ArrayBuffer);
  return { tokens: out, buffers };
}

export class ParsePool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Task[] = [];
  private readonly entry = workerEntry();
  private closed = false;

  constructor(private readonly options: ParsePoolOptions) {}

  /** The STOW reader: pre-scan here, decode in a worker. */
  reader(): InstanceReader {
    return createInstanceReader((input) => this.decode(input));
  }

  decode(input: DecodeInput): Promise<DecodedDataset> {
    if (this.closed) return Promise.reject(new DecodeUnavailableError('the parse pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.pump();
    });
  }

  /** Ends every worker; queued objects fail. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.queue.splice(0)) task.reject(new DecodeUnavailableError('the parse pool is closed'));
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const idle = [...this.slots].find((s) => s.ready && !s.task);
      if (idle) {
        this.run(idle, this.queue.shift()!);
        continue;
      }
      // Workers start on demand (one start costs a module load) and stay.
      if (this.slots.size < this.options.workers) this.spawn();
      return;
    }
  }

  private run(slot: Slot, task: Task): void {
    slot.task = task;
    const { tokens, buffers } = transferableTokens(task.input.tokens);
    const header = task.input.header;
    // The header copy is owned (dataset-reader.ts readHeader) unless it is a view into a larger buffer.
    const own = header.byteOffset === 0 && header.byteLength === header.buffer.byteLength;
    const bytes = (own ? header.buffer : header.buffer.slice(header.byteOffset, header.byteOffset + header.byteLength)) as ArrayBuffer;
    const request: DecodeRequest = { tokens, ranges: task.input.ranges, header: bytes };
    slot.timer = setTimeout(() => {
      slot.failure = new DecodeLimitError(`decoding the dataset took longer than the ${this.options.timeoutMs} ms limit`);
      void slot.worker.terminate();
    }, this.options.timeoutMs);
    slot.worker.postMessage(request, [...new Set([...buffers, bytes])]);
  }

  private spawn(): void {
    const { memoryMb } = this.options;
    const worker = new Worker(this.entry.entry, {
      eval: this.entry.eval,
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(8, memoryMb / 8)), stackSizeMb: 4 },
    });
    worker.unref();
    const slot: Slot = { worker, ready: false };
    this.slots.add(slot);
    worker.on('message', (reply: WorkerReply) => {
      if ('ready' in reply) {
        slot.ready = true;
        this.pump();
        return;
      }
      const task = this.finish(slot);
      if (!task) return;
      if (reply.ok) task.resolve({ dataset: reply.dataset, bulk: reply.bulk });
      else task.reject(new Error(`decoding failed in the worker (${reply.error})`));
      this.pump();
    });
    worker.on('error', (err: NodeJS.ErrnoException) => {
      slot.failure ??=
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new DecodeLimitError(`decoding the dataset needed more than the ${memoryMb} MiB memory limit`)
          : err;
    });
    worker.on('exit', () => {
      this.slots.delete(slot);
      const task = this.finish(slot);
      if (task) task.reject(slot.failure ?? new Error('the parse worker stopped'));
      else if (!slot.ready && !this.closed) {
        // It never started (a deployment problem): say so and fail what waits, rather than respawn in a loop.
        this.options.log?.error({ err: slot.failure }, 'DICOM parse worker could not start');
        for (const t of this.queue.splice(0)) t.reject(new DecodeUnavailableError('the parse worker could not start', { cause: slot.failure }));
      }
      if (!this.closed) this.pump();
    });
  }

  private finish(slot: Slot): Task | undefined {
    const task = slot.task;
    clearTimeout(slot.timer);
    delete slot.task;
    delete slot.timer;
    return task;
  }
}
