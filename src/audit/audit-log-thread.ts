// The server's audit log, written on a thread of its own (issue 6: audit writing under 5 % of QIDO throughput;
// bench/README.md "The audit trail: what it costs"). The same AuditLog (audit-log.ts: the same files, chain,
// encryption, group commit, checkpoints, inbox, torn-tail recovery) runs in audit-log-worker.ts; this side keeps
// its interface. A request pays for building its record and JSON.stringify; records are handed over a few at a time
// (one message per HANDOFF_MS), and everything else happens on the writer thread.
//
// Guarantees are those of AuditLog: append() resolves once the record is on disk (fdatasync), in order; the first
// failure stops the log and every later append rejects (the Auditor then fails closed). The writer thread dying
// is such a failure. onAppended and onCheckpoint run on this thread, in order.

import type { KeyObject } from 'node:crypto';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  type AuditEntry,
  type AuditLogOptions,
  type AuditReadFilter,
  type Checkpoint,
  type TornTail,
  AuditLogError,
  AuditLogInUseError,
  LOCK_FILE,
  readAuditLog,
} from './audit-log.js';
import type { AuditRecord } from './audit-record.js';
import { workerEntry } from '../worker-entry.js';

/** Records wait this long on this thread to go over in one message (the writer's group commit waits longer). */
const HANDOFF_MS = 2;

type ThreadOptions = Omit<AuditLogOptions, 'onCheckpoint' | 'onAppended'>;

/** workerData of audit-log-worker.ts. */
export interface ThreadInit {
  dir: string;
  key: Uint8Array;
  signingKey: KeyObject;
  options: ThreadOptions;
}

interface ErrorDescription {
  name: string;
  message: string;
  pid?: number;
}

interface Counters {
  size: number;
  writes: number;
  inboxRejected: number;
}

/** Main thread -> writer. */
export type MainMessage = { type: 'append'; texts: string[] } | { type: 'call'; id: number; op: 'checkpoint' | 'ingestInbox' | 'close' };

/** Writer -> main thread. */
export type WorkerMessage =
  | ({ type: 'opened'; recovered: TornTail[]; lastCheckpoint: Checkpoint | null } & Counters)
  | { type: 'open-failed'; error: ErrorDescription }
  | ({ type: 'appended'; results: ({ n: number; hash: string } | { error: ErrorDescription })[] } & Counters)
  | { type: 'checkpoint'; checkpoint: Checkpoint }
  | ({ type: 'result'; id: number; value?: unknown; error?: ErrorDescription } & Counters);

/** What a record handed over waits for: its result, or why it was not written. */
export type AppendSettled = (result: { n: number; hash: string } | AuditLogError) => void;

interface PendingAppend {
  record: AuditRecord;
  settled: AppendSettled;
}

function toError(dir: string, e: ErrorDescription): AuditLogError {
  if (e.name === 'AuditLogInUseError') return new AuditLogInUseError(e.pid ?? 0, path.join(dir, LOCK_FILE));
  return new AuditLogError(e.message);
}

export class AuditLogThread {
  private readonly key: Buffer;
  /** Records not yet handed over, and those handed over in order, waiting for their results. */
  private outbox: string[] = [];
  private handoff: NodeJS.Timeout | undefined;
  private readonly waiting: PendingAppend[] = [];
  /** How many of `waiting` went in each append message, oldest first. */
  private readonly messages: number[] = [];
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private nextCall = 0;
  private failed: AuditLogError | null = null;
  private closing = false;
  private closed: Promise<void> | null = null;
  private counters: Counters;
  private lastCheckpointValue: Checkpoint | null;

  private constructor(
    readonly dir: string,
    key: Buffer,
    private readonly worker: Worker,
    opened: Extract<WorkerMessage, { type: 'opened' }>,
    private readonly hooks: Pick<AuditLogOptions, 'onCheckpoint' | 'onAppended'>,
  ) {
    this.key = Buffer.from(key);
    this.recovered = opened.recovered;
    this.lastCheckpointValue = opened.lastCheckpoint;
    this.counters = { size: opened.size, writes: opened.writes, inboxRejected: opened.inboxRejected };
    // The thread keeps the process alive only while something waits for it: a tool that ends without close()
    // loses nothing it was promised, and an idle log does not hold the process open.
    worker.unref();
    worker.on('message', (m: WorkerMessage) => this.receive(m));
    worker.on('error', (e) => this.fail(`the audit writer thread failed: ${e.message}`));
    worker.on('exit', (code) => {
      if (!this.closing || this.waiting.length > 0 || this.calls.size > 0) this.fail(`the audit writer thread exited (code ${code})`);
    });
  }

  /** What open() set aside (recoverTornTail), for the caller to log and audit. */
  readonly recovered: TornTail[];

  /** AuditLog.open(), on a writer thread: the same options, the same errors (AuditLogInUseError, AuditLogError). */
  static async open(dir: string, key: Buffer, signingKey: KeyObject, options: AuditLogOptions = {}): Promise<AuditLogThread> {
    const { onCheckpoint, onAppended, ...threadOptions } = options;
    const { entry, eval: isEval } = workerEntry(import.meta.url, 'audit-log-worker');
    const init: ThreadInit = { dir, key: new Uint8Array(key), signingKey, options: threadOptions };
    const worker = new Worker(entry, { eval: isEval, workerData: init });
    let onExit: (code: number) => void = () => undefined;
    let onError: (e: Error) => void = () => undefined;
    const first = await new Promise<WorkerMessage>((resolve, reject) => {
      onError = reject;
      onExit = (code) => reject(new AuditLogError(`the audit writer thread exited at start (code ${code})`));
      worker.once('message', resolve).once('error', onError).once('exit', onExit);
    }).finally(() => {
      // Only ours: Worker keeps listeners of its own (removeAllListeners() would leave later messages undelivered).
      worker.off('error', onError).off('exit', onExit);
    });
    if (first.type !== 'opened') {
      await worker.terminate();
      throw first.type === 'open-failed' ? toError(dir, first.error) : new AuditLogError('the audit writer thread did not open the log');
    }
    return new AuditLogThread(dir, key, worker, first, { onCheckpoint, onAppended });
  }

  /** The number of the next record (as of the last answer from the writer). */
  get size(): number {
    return this.counters.size;
  }

  get writes(): number {
    return this.counters.writes;
  }

  get inboxRejected(): number {
    return this.counters.inboxRejected;
  }

  get lastCheckpoint(): Checkpoint | null {
    return this.lastCheckpointValue;
  }

  /** Appends `record`; resolves with its number and chain hash once it is on disk (see AuditLog.append). */
  append(record: AuditRecord): Promise<{ n: number; hash: string }> {
    return new Promise((resolve, reject) => this.appendDetached(record, (r) => (r instanceof Error ? reject(r) : resolve(r))));
  }

  /**
   * append() without a promise: `settled` is called once, with the result when the record is on disk or with the
   * error. For a caller that does not wait (the Auditor, on every request): one function for all its records.
   */
  appendDetached(record: AuditRecord, settled: AppendSettled): void {
    if (this.failed) return settled(this.failed);
    if (this.closing) return settled(new AuditLogError('the audit log is closed'));
    // JSON.stringify leaves out undefined members, as the canonical form does; the writer refuses what is not I-JSON.
    let text: string;
    try {
      text = JSON.stringify(record);
    } catch (e) {
      return settled(new AuditLogError(`the record has no JSON form: ${(e as Error).message}`));
    }
    this.outbox.push(text);
    this.handoff ??= setTimeout(() => this.handOver(), HANDOFF_MS);
    if (this.waiting.length === 0 && this.calls.size === 0) this.worker.ref();
    this.waiting.push({ record, settled });
  }

  checkpoint(): Promise<Checkpoint | null> {
    return this.call('checkpoint') as Promise<Checkpoint | null>;
  }

  ingestInbox(): Promise<number> {
    return this.call('ingestInbox') as Promise<number>;
  }

  /** The decrypted records from the files (readAuditLog, on this thread). */
  read(filter: AuditReadFilter = {}): AsyncGenerator<AuditEntry> {
    return readAuditLog(this.dir, this.key, filter);
  }

  /** Hands over what waits, lets the writer close the log (its final checkpoint), ends the thread, zeroes the key. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      try {
        if (!this.failed) await this.call('close');
      } finally {
        this.closing = true;
        await this.worker.terminate();
        this.key.fill(0);
      }
    })();
    return this.closed;
  }

  private call(op: 'checkpoint' | 'ingestInbox' | 'close'): Promise<unknown> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new AuditLogError('the audit log is closed'));
    // Records appended before the call go first: the writer handles messages in order.
    this.handOver();
    const id = this.nextCall++;
    if (this.waiting.length === 0 && this.calls.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'call', id, op } satisfies MainMessage);
    });
  }

  private handOver(): void {
    clearTimeout(this.handoff);
    this.handoff = undefined;
    if (this.outbox.length === 0 || this.failed) return;
    const texts = this.outbox;
    this.outbox = [];
    this.messages.push(texts.length);
    this.worker.postMessage({ type: 'append', texts } satisfies MainMessage);
  }

  private receive(m: WorkerMessage): void {
    this.answer(m);
    if (this.waiting.length === 0 && this.calls.size === 0) this.worker.unref();
  }

  private answer(m: WorkerMessage): void {
    switch (m.type) {
      case 'appended': {
        this.counters = { size: m.size, writes: m.writes, inboxRejected: m.inboxRejected };
        const batch = this.waiting.splice(0, this.messages.shift() ?? 0);
        for (let i = 0; i < batch.length; i++) {
          const item = batch[i]!;
          const result = m.results[i]!;
          if ('error' in result) {
            // A refused record, or the log stopped (then the writer refuses every later one too, as AuditLog does).
            item.settled(toError(this.dir, result.error));
            continue;
          }
          item.settled(result);
          if (this.hooks.onAppended) this.notifyAppended(item.record, result.n);
        }
        return;
      }
      case 'result': {
        this.counters = { size: m.size, writes: m.writes, inboxRejected: m.inboxRejected };
        const call = this.calls.get(m.id);
        this.calls.delete(m.id);
        if (m.error) call?.reject(toError(this.dir, m.error));
        else call?.resolve(m.value);
        return;
      }
      case 'checkpoint':
        this.lastCheckpointValue = m.checkpoint;
        try {
          this.hooks.onCheckpoint?.(m.checkpoint);
        } catch {
          // The checkpoint is durable; shipping it off-box reports its own failures.
        }
        return;
      default:
        return;
    }
  }

  private notifyAppended(record: AuditRecord, n: number): void {
    try {
      this.hooks.onAppended?.(record, n);
    } catch {
      // The record is durable; an exporter's failure is its own to report (as in AuditLog).
    }
  }

  /** The writer is gone: every append waiting and every later one rejects. */
  private fail(reason: string): void {
    this.failed ??= new AuditLogError(reason);
    clearTimeout(this.handoff);
    this.outbox = [];
    this.messages.length = 0;
    for (const item of this.waiting.splice(0)) item.settled(this.failed);
    for (const call of this.calls.values()) call.reject(this.failed);
    this.calls.clear();
  }
}
