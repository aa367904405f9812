// A small pool of worker threads with resource limits, for the work on untrusted data that can block the event loop
// (DESIGN.md: it runs behind a cheap pre-check with caps, in workers with resource limits). Its users are
// dicom/parse-pool.ts (decoding uploaded datasets), transcode/codec-pool.ts (the pixel codecs) and
// render/render-pool.ts (the display pipeline). What they share is here:
//   - workers start on demand (one start costs a module load) and stay; each runs one task at a time, and tasks
//     beyond that wait in a queue;
//   - a worker posts { ready: true } once its imports are done, and only then gets tasks: a task's time limit
//     counts its own work, never the worker's start;
//   - a task past `timeoutMs` terminates its worker (the event loop never waits on it), a worker whose heap passes
//     `memoryMb` dies with ERR_WORKER_OUT_OF_MEMORY: either way only its task fails, and the next task gets a new
//     worker;
//   - a worker that never got ready (a deployment problem) is logged and fails what waits, rather than respawn in a
//     loop;
//   - a task still queued when its AbortSignal aborts is dropped without running.
// What differs is each pool's WorkerTasks: the worker script, the message and what it transfers, how a reply becomes
// a result, whether a failed task retires its worker, and the domain's own errors.

import { Worker, type TransferListItem } from 'node:worker_threads';
import type { WorkerEntry } from './worker-entry.js';

export interface WorkerPoolOptions {
  /** Worker threads (each runs one task at a time); tasks beyond that wait their turn. */
  workers: number;
  /** Longest run of one task; past it the worker is terminated and replaced. */
  timeoutMs: number;
  /** Heap cap of each worker (V8 old generation), MiB. */
  memoryMb: number;
  log?: { error(obj: Record<string, unknown>, msg: string): void };
}

/** Worker -> main thread, once: the worker has loaded and takes tasks from now on. */
export interface WorkerReady {
  ready: true;
}

/** What a worker's reply means for its task. `retire`: the worker is terminated and replaced, not reused. */
export type TaskOutcome<Out> = { ok: true; value: Out } | { ok: false; error: Error; retire?: boolean };

/** What one kind of pool does its own way. `Reply` is everything its worker posts, WorkerReady included. */
export interface WorkerTasks<In, Out, Reply> {
  /** The worker script (worker-entry.ts). */
  entry: WorkerEntry;
  /** The log's name for a worker, e.g. 'codec worker'. */
  name: string;
  /** The message that hands `input` to a worker, and the buffers it transfers (given up by the sender). */
  message(input: In): { message: unknown; transfer: TransferListItem[] };
  outcome(reply: Exclude<Reply, WorkerReady>): TaskOutcome<Out>;
  errors: {
    /** Asked of a closed pool, or queued when it closed. */
    closed(): Error;
    /** Ran past `timeoutMs`. */
    timeout(input: In, timeoutMs: number): Error;
    /** Its worker passed `memoryMb`. */
    memory(memoryMb: number): Error;
    /** Its worker exited without an error of its own. */
    stopped(): Error;
    /** Queued while the worker that was to run it failed to start. */
    notStarted(cause: Error | undefined): Error;
    /** Dropped from the queue: its AbortSignal aborted. */
    dropped(): Error;
  };
}

interface Task<In, Out> {
  input: In;
  signal?: AbortSignal;
  resolve(value: Out): void;
  reject(err: Error): void;
}

interface Slot<In, Out> {
  worker: Worker;
  ready: boolean;
  task?: Task<In, Out>;
  timer?: NodeJS.Timeout;
  /** Why the worker stopped, for the task it was running. */
  failure?: Error;
  /** Terminated on purpose after a failed task (not a start failure). */
  retired?: boolean;
}

export class WorkerPool<In, Out, Reply> {
  private readonly slots = new Set<Slot<In, Out>>();
  private readonly queue: Task<In, Out>[] = [];
  private closed = false;
  private startedCount = 0;
  private readonly watched = new WeakSet<AbortSignal>();

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly tasks: WorkerTasks<In, Out, Reply>,
  ) {}

  /**
   * Runs one task in a worker; rejects with one of the pool's errors. A task still queued when `signal` aborts is
   * dropped without running (e.g. the other frames of an object that already failed); one already running
   * finishes or times out.
   */
  run(input: In, signal?: AbortSignal): Promise<Out> {
    if (this.closed) return Promise.reject(this.tasks.errors.closed());
    return new Promise((resolve, reject) => {
      const task: Task<In, Out> = { input, resolve, reject };
      if (signal) {
        task.signal = signal;
        // One listener per signal, however many tasks share it.
        if (!this.watched.has(signal)) {
          this.watched.add(signal);
          signal.addEventListener('abort', () => this.pump(), { once: true });
        }
      }
      this.queue.push(task);
      this.pump();
    });
  }

  /** Ends every worker; queued tasks fail. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.queue.splice(0)) task.reject(this.tasks.errors.closed());
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
  }

  /** Workers alive now (for tests and metrics). */
  get size(): number {
    return this.slots.size;
  }

  /** Tasks handed to a worker since the pool was made (for tests and metrics). */
  get started(): number {
    return this.startedCount;
  }

  private pump(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const task = this.queue[i]!;
      if (task.signal?.aborted) {
        this.queue.splice(i, 1);
        task.reject(this.tasks.errors.dropped());
      }
    }
    while (this.queue.length > 0 && !this.closed) {
      const idle = [...this.slots].find((s) => s.ready && !s.task);
      if (idle) {
        this.start(idle, this.queue.shift()!);
        continue;
      }
      if (this.slots.size < this.options.workers) this.spawn();
      return;
    }
  }

  private start(slot: Slot<In, Out>, task: Task<In, Out>): void {
    slot.task = task;
    this.startedCount++;
    const { message, transfer } = this.tasks.message(task.input);
    const { timeoutMs } = this.options;
    slot.timer = setTimeout(() => {
      slot.failure = this.tasks.errors.timeout(task.input, timeoutMs);
      void slot.worker.terminate();
    }, timeoutMs);
    slot.worker.postMessage(message, transfer);
  }

  private spawn(): void {
    const { memoryMb } = this.options;
    const { entry, errors } = this.tasks;
    const worker = new Worker(entry.entry, {
      eval: entry.eval,
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(8, memoryMb / 8)), stackSizeMb: 4 },
    });
    worker.unref();
    const slot: Slot<In, Out> = { worker, ready: false };
    this.slots.add(slot);
    worker.on('message', (reply: Reply) => {
      if (typeof reply === 'object' && reply !== null && 'ready' in reply) {
        slot.ready = true;
        this.pump();
        return;
      }
      const task = this.finish(slot);
      if (!task) return;
      const outcome = this.tasks.outcome(reply as Exclude<Reply, WorkerReady>);
      if (outcome.ok) task.resolve(outcome.value);
      else task.reject(outcome.error);
      if (outcome.ok || !outcome.retire) {
        this.pump();
        return;
      }
      // Replaced rather than reused; the exit handler pumps the queue.
      slot.ready = false;
      slot.retired = true;
      void worker.terminate();
    });
    worker.on('error', (err: NodeJS.ErrnoException) => {
      slot.failure ??= err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? errors.memory(memoryMb) : err;
    });
    worker.on('exit', () => {
      this.slots.delete(slot);
      const task = this.finish(slot);
      if (task) task.reject(slot.failure ?? errors.stopped());
      else if (!slot.ready && !slot.retired && !this.closed) {
        // It never started (a deployment problem): say so and fail what waits, rather than respawn in a loop.
        this.options.log?.error({ err: slot.failure }, `${this.tasks.name} could not start`);
        for (const t of this.queue.splice(0)) t.reject(errors.notStarted(slot.failure));
      }
      if (!this.closed) this.pump();
    });
  }

  private finish(slot: Slot<In, Out>): Task<In, Out> | undefined {
    const task = slot.task;
    clearTimeout(slot.timer);
    delete slot.task;
    delete slot.timer;
    return task;
  }
}
