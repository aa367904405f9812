// The worker thread of parse-pool.ts: decodes one scanned object at a time into the DICOM JSON Model
// (dataset-reader.ts decodeDataset). Its heap is capped by the pool's resourceLimits and the pool terminates it
// when a decode runs past the time limit, so a hostile object costs this thread, never the event loop.

import { parentPort } from 'node:worker_threads';
import { decodeDataset } from './dataset-reader.js';
import type { DecodeRequest, WorkerReply } from './parse-pool.js';

const port = parentPort;
if (!port) throw new Error('parse-worker.ts runs as a worker thread of parse-pool.ts');

port.on('message', (request: DecodeRequest) => {
  let reply: WorkerReply;
  try {
    const { dataset, bulk } = decodeDataset({
      tokens: request.tokens,
      ranges: request.ranges,
      header: Buffer.from(request.header),
    });
    reply = { ok: true, dataset, bulk };
  } catch (err) {
    // A decoding bug, not a limit: the pool fails the object with Cxxx; no values in the message.
    reply = { ok: false, error: err instanceof Error ? err.name : 'Error' };
  }
  port.postMessage(reply);
});
// Imports done: the pool starts timing decodes from here on.
port.postMessage({ ready: true } satisfies WorkerReply);
