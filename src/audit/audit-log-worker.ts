// The audit log's writer thread (audit-log-thread.ts starts it): an AuditLog (audit-log.ts) opened here, fed with
// the JSON text of records from the main thread. What a record costs beyond building it (its RFC 8785 form, the
// SHA-256 chain, AES-256-GCM, base64, the writes and fdatasyncs, checkpoints and their Ed25519 signatures) is
// paid on this thread, not on the one that serves requests (issue 6: auditing under 5 % of QIDO throughput).

import { parentPort, workerData } from 'node:worker_threads';
import { AuditLog, AuditLogInUseError } from './audit-log.js';
import type { AuditRecord } from './audit-record.js';
import type { MainMessage, ThreadInit, WorkerMessage } from './audit-log-thread.js';

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

const counters = () => ({ size: log.size, writes: log.writes, inboxRejected: log.inboxRejected });
post({ type: 'opened', recovered: log.recovered, lastCheckpoint: log.lastCheckpoint, ...counters() });

port.on('message', (message: MainMessage) => {
  if (message.type === 'append') {
    // The main thread wrote JSON.stringify(record): parsing it back gives the same members in the same order, so
    // append() finds the record in canonical form as the main thread built it, or refuses it as it would have.
    const appends = message.texts.map((text) => log.append(JSON.parse(text) as AuditRecord, text));
    void Promise.allSettled(appends).then((settled) => {
      post({
        type: 'appended',
        results: settled.map((s) => (s.status === 'fulfilled' ? s.value : { error: describe(s.reason) })),
        ...counters(),
      });
    });
    return;
  }
  const call = message.op === 'checkpoint' ? log.checkpoint() : message.op === 'ingestInbox' ? log.ingestInbox() : log.close();
  call.then(
    (value) => post({ type: 'result', id: message.id, value: value ?? null, ...counters() }),
    (e: unknown) => post({ type: 'result', id: message.id, error: describe(e), ...counters() }),
  );
});
