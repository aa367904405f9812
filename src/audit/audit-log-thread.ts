// The server's audit log, written on a thread of its own (issue 6: audit writing under 5 % of QIDO throughput;
// bench/README.md "The audit trail: what it costs"). The same AuditLog (audit-log.ts: the same files, chain,
// encryption, checkpoints, inbox, torn-tail recovery) runs in audit-log-worker.ts; this side keeps its interface.
// A request pays for its facts' JSON text (request-facts.ts), other records for their RFC 8785 text
// (canonicalJson: a check and JSON.stringify). The group commit happens here: records wait up to commitDelayMs
// (or until maxBatch) and go over as one string in one message, which the writer appends as one unit (one write,
// one fdatasync, one cipher per line: audit-log.ts). A message costs both threads tens of µs whatever it carries,
// and waking a thread that sleeps about 100 µs on this machine, so one per group commit rather than per record is
// what keeps the writing cheap (issue 6; bench/README.md "The audit trail: what it costs"). For the same reason the
// writer answers a group of request records lazily: nobody waits for those (the Auditor only counts them), so
// their results go back with the next answer somebody does wait for (append()'s promise, a call, flush()), or
// after answerDelayMs (ANSWER_DELAY_MS). A failure is answered at once: the server must stop serving (fail closed).
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
  DEFAULT_AUDIT_LOG_OPTIONS,
  LOCK_FILE,
  readAuditLog,
} from './audit-log.js';
import type { AuditRecord } from './audit-record.js';
import { canonicalJson } from './canonical-json.js';
import { workerEntry } from '../worker-entry.js';

type ThreadOptions = Omit<AuditLogOptions, 'onCheckpoint' | 'onAppended'>;

/** workerData of audit-log-worker.ts. */
export interface ThreadInit {
  dir: string;
  key: Uint8Array;
  signingKey: KeyObject;
  options: ThreadOptions;
  answerDelayMs: number;
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

/**
 * Main thread -> writer. `texts`: `count` entries joined by "\n" (JSON text never holds a raw line feed), each "R" and
 * a record's JCS text, "S" and a request's facts that are stored as its one record (request-facts.ts), or "F" and
 * a request's facts for the writer to build its records of. `answer`: somebody waits for these, answer at once
 * (with every result not answered yet); otherwise within answerDelayMs. 'answer' asks for those results now.
 */
export type MainMessage =
  | { type: 'append'; texts: string; count: number; answer: boolean }
  | { type: 'answer' }
  | { type: 'call'; id: number; op: 'checkpoint' | 'ingestInbox' | 'close' };

/** The results of one append message: its `count` entries' records are numbered from `first`; 64 hex digits each. */
export interface AppendedBatch {
  first: number;
  hashes: string;
  /** Records per entry, when not one each. */
  sizes?: number[];
  count: number;
}

/** Writer -> main thread. */
export type WorkerMessage =
  | ({ type: 'opened'; recovered: TornTail[]; lastCheckpoint: Checkpoint | null } & Counters)
  | { type: 'open-failed'; error: ErrorDescription }
  | ({ type: 'appended'; batches: AppendedBatch[]; error?: undefined } & Counters)
  | ({ type: 'appended'; error: ErrorDescription; count: number } & Counters)
  | { type: 'checkpoint'; checkpoint: Checkpoint }
  | ({ type: 'result'; id: number; value?: unknown; error?: ErrorDescription } & Counters);

/**
 * How long the writer may keep the results of records nobody waits for before it answers (it answers sooner when
 * somebody does), by default. Bounds what the main thread holds for them, and how late flush() would learn
 * without asking.
 */
export const ANSWER_DELAY_MS = 1000;

/** What a record handed over waits for: its result, or why it was not written. */
export type AppendSettled = (result: { n: number; hash: string } | AuditLogError) => void;

interface PendingAppend {
  /** Undefined for a request's facts: its records are built on the writer. */
  record: AuditRecord | undefined;
  settled: AppendSettled;
}

function toError(dir: string, e: ErrorDescription): AuditLogError {
  if (e.name === 'AuditLogInUseError') return new AuditLogInUseError(e.pid ?? 0, path.join(dir, LOCK_FILE));
  return new AuditLogError(e.message);
}

export class AuditLogThread {
  private readonly key: Buffer;
  /** Records not yet handed over (JCS texts joined by "\n"), and those handed over in order, waiting for their results. */
  private outbox = '';
  private outboxCount = 0;
  /** Somebody waits for a record in the outbox: the writer answers its message at once. */
  private outboxAnswer = false;
  private handoff: NodeJS.Timeout | undefined;
  /** Handed over or in the outbox, oldest first; the writer's answers settle them in that order. */
  private readonly waiting: PendingAppend[] = [];
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
    /** The group commit: how long a record waits for others, and how many go together at most. */
    private readonly commitDelayMs: number,
    private readonly maxBatch: number,
  ) {
    this.key = Buffer.from(key);
    this.recovered = opened.recovered;
    this.appendRequestDetached = hooks.onAppended ? undefined : (factsText, settled, oneRecord) => this.appendRequest(factsText, settled, oneRecord);
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
  static async open(dir: string, key: Buffer, signingKey: KeyObject, options: AuditLogOptions & { answerDelayMs?: number } = {}): Promise<AuditLogThread> {
    const { onCheckpoint, onAppended, commitDelayMs, maxBatch, answerDelayMs = ANSWER_DELAY_MS, ...threadOptions } = options;
    const { entry, eval: isEval } = workerEntry(import.meta.url, 'audit-log-worker');
    // The writer commits what each message brings at once: the waiting for company happens on this side.
    const init: ThreadInit = { dir, key: new Uint8Array(key), signingKey, options: { ...threadOptions, commitDelayMs: 0, maxBatch: Number.MAX_SAFE_INTEGER, blockingWrites: true }, answerDelayMs };
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
    return new AuditLogThread(
      dir,
      key,
      worker,
      first,
      { onCheckpoint, onAppended },
      commitDelayMs ?? DEFAULT_AUDIT_LOG_OPTIONS.commitDelayMs,
      maxBatch ?? DEFAULT_AUDIT_LOG_OPTIONS.maxBatch,
    );
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
    return new Promise((resolve, reject) => this.appendRecord(record, (r) => (r instanceof Error ? reject(r) : resolve(r)), true));
  }

  /**
   * append() without a promise: `settled` is called once, with the result when the record is on disk or with the
   * error. For a caller that does not wait (the Auditor, on every request): one function for all its records.
   */
  appendDetached(record: AuditRecord, settled: AppendSettled): void {
    this.appendRecord(record, settled, false);
  }

  /** `answer`: somebody waits for the result (otherwise it comes within answerDelayMs). */
  private appendRecord(record: AuditRecord, settled: AppendSettled, answer: boolean): void {
    if (this.failed) return settled(this.failed);
    if (this.closing) return settled(new AuditLogError('the audit log is closed'));
    // Refused here as AuditLog.append() refuses it: what is not I-JSON has no canonical form.
    let text: string;
    try {
      text = canonicalJson(record);
    } catch (e) {
      return settled(new AuditLogError(`the record has no canonical JSON form: ${(e as Error).message}`));
    }
    this.enqueue(`R${text}`, record, settled, answer);
  }

  /**
   * A request's records from `factsText` (request-facts.ts): stored as they are when they make `oneRecord`, built on
   * the writer thread otherwise. `settled` once, when they are all on disk (with the first one's number and the last
   * one's hash) or with the error. Absent when an onAppended hook needs the records on this thread.
   */
  readonly appendRequestDetached: ((factsText: string, settled: AppendSettled, oneRecord: boolean) => void) | undefined;

  private appendRequest(factsText: string, settled: AppendSettled, oneRecord: boolean): void {
    if (this.failed) return settled(this.failed);
    if (this.closing) return settled(new AuditLogError('the audit log is closed'));
    this.enqueue(`${oneRecord ? 'S' : 'F'}${factsText}`, undefined, settled, false);
  }

  private enqueue(entry: string, record: AuditRecord | undefined, settled: AppendSettled, answer: boolean): void {
    this.outbox = this.outboxCount === 0 ? entry : `${this.outbox}\n${entry}`;
    this.outboxCount++;
    // An onAppended hook (the syslog export) runs when the answer comes: no delay for it.
    if (answer || (record && this.hooks.onAppended)) this.outboxAnswer = true;
    if (this.waiting.length === 0 && this.calls.size === 0) this.worker.ref();
    this.waiting.push({ record, settled });
    if (this.outboxCount >= this.maxBatch) this.handOver();
    else this.handoff ??= setTimeout(() => this.handOver(), this.commitDelayMs);
  }

  checkpoint(): Promise<Checkpoint | null> {
    return this.call('checkpoint') as Promise<Checkpoint | null>;
  }

  ingestInbox(): Promise<number> {
    return this.call('ingestInbox') as Promise<number>;
  }

  /**
   * Asks for the results of everything handed over so far now rather than within answerDelayMs (Auditor.flush()):
   * hands over the outbox as a group somebody waits for.
   */
  answerNow(): void {
    if (this.failed || this.closing || this.waiting.length === 0) return;
    if (this.outboxCount > 0) {
      this.outboxAnswer = true;
      this.handOver();
    } else {
      this.worker.postMessage({ type: 'answer' } satisfies MainMessage);
    }
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
    if (this.outboxCount === 0 || this.failed) return;
    const message = { type: 'append', texts: this.outbox, count: this.outboxCount, answer: this.outboxAnswer } satisfies MainMessage;
    this.outbox = '';
    this.outboxCount = 0;
    this.outboxAnswer = false;
    this.worker.postMessage(message);
  }

  private receive(m: WorkerMessage): void {
    this.answer(m);
    if (this.waiting.length === 0 && this.calls.size === 0) this.worker.unref();
  }

  private answer(m: WorkerMessage): void {
    switch (m.type) {
      case 'appended': {
        this.counters = { size: m.size, writes: m.writes, inboxRejected: m.inboxRejected };
        if (m.error) {
          // The log stopped (then the writer refuses every later message too, as AuditLog does).
          const error = toError(this.dir, m.error);
          for (const item of this.waiting.splice(0, m.count)) item.settled(error);
          return;
        }
        for (const batch of m.batches) this.settle(this.waiting.splice(0, batch.count), batch);
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

  /** The results of one append message, to the records it carried, in order. */
  private settle(items: PendingAppend[], { first, hashes, sizes }: AppendedBatch): void {
    let at = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const size = sizes ? sizes[i]! : 1;
      const last = at + size - 1;
      item.settled({ n: first + at, hash: size === 0 ? '' : hashes.slice(64 * last, 64 * last + 64) });
      if (item.record && this.hooks.onAppended) this.notifyAppended(item.record, first + at);
      at += size;
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
    this.outbox = '';
    this.outboxCount = 0;
    for (const item of this.waiting.splice(0)) item.settled(this.failed);
    for (const call of this.calls.values()) call.reject(this.failed);
    this.calls.clear();
  }
}
