// The worker thread that reads CRLs for tls-reload.ts (crl-parse.ts): one request, one answer, then the thread
// ends. A CRL of tens of thousands of entries costs seconds of CPU in a pure-JavaScript ASN.1 parser; here the
// listeners keep answering meanwhile.

import { parentPort, workerData } from 'node:worker_threads';
import { type CrlParseRequest, type ParsedCrl, parseCrls } from './crl-parse.js';

export type CrlWorkerReply = { ok: true; crls: ParsedCrl[] } | { ok: false; error: string };

const port = parentPort;
if (!port) throw new Error('crl-worker.ts runs as a worker thread of tls-reload.ts');

parseCrls(workerData as CrlParseRequest).then(
  (crls) => port.postMessage({ ok: true, crls } satisfies CrlWorkerReply),
  (err: unknown) => port.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) } satisfies CrlWorkerReply),
);
