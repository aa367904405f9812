// The audit log's writer thread (audit-log-thread.ts starts it): an AuditLog (audit-log.ts) opened here, fed by
// the main thread with records' RFC 8785 texts and with requests' facts (request-facts.ts): stored as they are when
// they make one record, built into records here when they make several. What a record costs beyond the facts
// (building it when needed, the SHA-256 chain, AES-256-GCM, base64, the writes and fdatasyncs, checkpoints and
// their Ed25519 signatures) is paid on this thread, not on the one that serves requests (issue 6: auditing under
// 5 % of QIDO throughput).

import { parentPort, workerData } from 'node:worker_threads';
import { AuditLog, AuditLogError, AuditLogInUseError } from './audit-log.js';
import { recordBuilder } from './auditor.js';
import { canonicalJson } from './canonical-json.js';
import { requestRecords } from './request-facts.js';
import type { AppendedBatch, MainMessage, ThreadInit, WorkerMessage } from './audit-log-thread.js';

const port = parentPort!;
const init = workerData as ThreadInit;
const post = (message: WorkerMessage): void => port.postMessage(message);

function describe(e: unknown): { name: string; message: string; pid?: number } {
  const error = e instanceof Error ? e : new Error(String(e));
  return { name: error.name, message: error.message, ...(error instanceof AuditLogInUseError ? { pid: error.pid } : {}) };
}

let log: AuditLog;
try {
  log = await AuditLog.open(init.dir, Buffer.from(init.key.buffer, init.key.byteOffset, init.key.byteLength), init.signingKey, {
    ...init.options,
    onCheckpoint: (checkpoint) => post({ type: 'checkpoint', checkpoint }),
  });
} catch (e) {
  post({ type: 'open-failed', error: describe(e) });
  process.exit(0);
} finally {
  // AuditLog keeps its own copy (zeroed by its close()).
  init.key.fill(0);
}

/**
 * The JCS texts of a message's entries: a record's as the main thread wrote it (canonicalJson: checked there, not
 * parsed again here), a request's facts that are its one record as they are (written in order there), the records
 * of other facts built here. `sizes`: records per entry, when not one each.
 */
function recordTexts(message: Extract<MainMessage, { type: 'append' }>): { texts: string[]; sizes: number[] | undefined } {
  const entries = message.texts.split('\n');
  if (entries.length !== message.count) throw new AuditLogError(`${entries.length} entries arrived for ${message.count}`);
  const texts: string[] = [];
  const sizes: number[] = [];
  let ones = true;
  for (const entry of entries) {
    if (entry.startsWith('R') || entry.startsWith('S')) {
      texts.push(entry.slice(1));
      sizes.push(1);
      continue;
    }
    if (!entry.startsWith('F')) throw new AuditLogError('an entry of unknown kind arrived');
    const records = requestRecords(entry.slice(1), recordBuilder());
    for (const record of records) texts.push(canonicalJson(record));
    sizes.push(records.length);
    if (records.length !== 1) ones = false;
  }
  return { texts, sizes: ones ? undefined : sizes };
}

const counters = () => ({ size: log.size, writes: log.writes, inboxRejected: log.inboxRejected });
post({ type: 'opened', recovered: log.recovered, lastCheckpoint: log.lastCheckpoint, ...counters() });

/**
 * Results written but not answered yet: nobody waited for them (audit-log-thread.ts). They go with the next answer
 * that must go now, or after answerDelayMs: one message, one wake-up of the main thread, for many group commits.
 */
let unanswered: AppendedBatch[] = [];
let answerTimer: NodeJS.Timeout | undefined;
/**
 * Settles after the last append handed to the log has been answered or kept (the log writes in order, so after
 * every earlier one too): what must be said after those waits for it.
 */
let tail: Promise<void> = Promise.resolve();

function answer(): void {
  clearTimeout(answerTimer);
  answerTimer = undefined;
  if (unanswered.length === 0) return;
  post({ type: 'appended', batches: unanswered, ...counters() });
  unanswered = [];
}

/** A failure goes at once, after the results before it (the main thread settles them in order). */
function answerFailure(e: unknown, count: number): void {
  answer();
  post({ type: 'appended', error: describe(e), count, ...counters() });
}

port.on('message', (message: MainMessage) => {
  if (message.type === 'append') {
    let texts: string[];
    let sizes: number[] | undefined;
    try {
      ({ texts, sizes } = recordTexts(message));
    } catch (e) {
      // After the results of the appends still being written: the main thread settles them in order.
      tail = tail.then(() => answerFailure(e, message.count));
      return;
    }
    tail = log.appendCanonical(texts).then(
      ({ first, hashes }) => {
        unanswered.push({ first, hashes: hashes.join(''), ...(sizes ? { sizes } : {}), count: message.count });
        if (message.answer) answer();
        else answerTimer ??= setTimeout(answer, init.answerDelayMs);
      },
      (e: unknown) => answerFailure(e, message.count),
    );
    return;
  }
  // Whoever asks or calls gets every result handed over before, once written (before a call's own result, which
  // the log gives after the appends queued before it).
  tail = tail.then(answer);
  if (message.type === 'answer') return;
  const call = message.op === 'checkpoint' ? log.checkpoint() : message.op === 'ingestInbox' ? log.ingestInbox() : log.close();
  call.then(
    (value) => post({ type: 'result', id: message.id, value: value ?? null, ...counters() }),
    (e: unknown) => post({ type: 'result', id: message.id, error: describe(e), ...counters() }),
  );
});
