// A small pool of worker threads that run the pixel codecs (DESIGN.md: decoding untrusted data runs behind a
// cheap pre-check with caps, in workers with resource limits). The pool itself is worker-pool.ts: workers start on
// demand and stay; each runs one frame at a time; a task past `timeoutMs` terminates its worker (the event loop
// never waits on a codec); a worker whose heap passes `memoryMb` dies with ERR_WORKER_OUT_OF_MEMORY and only its
// task fails. Different from parse-pool: a worker is also replaced after any codec error, because a WebAssembly
// trap can leave the module's memory in an unknown state.
//
// The WebAssembly memory of the codecs is not part of the V8 heap that resourceLimits caps: what bounds it is
// frame-guard.ts, which refuses any frame whose declared (dataset and codestream) size is over the limits before
// it reaches a worker.

import type { FrameFormat } from './frame-guard.js';
import { TranscodeError } from './transcode-error.js';
import { workerEntry } from '../worker-entry.js';
import { WorkerPool, type WorkerPoolOptions, type WorkerReady } from '../worker-pool.js';

/** Worker threads each code one frame at a time; `timeoutMs` bounds one decode or encode of one frame. */
export type CodecPoolOptions = WorkerPoolOptions;

/** Main thread -> worker: one frame. `data` is transferred (the caller gives it up). */
export type CodecRequest =
  | { op: 'decode'; transferSyntaxUID: string; format: FrameFormat; data: ArrayBuffer; expectedBytes: number }
  | { op: 'encode'; transferSyntaxUID: string; format: FrameFormat; data: ArrayBuffer };

/** Worker -> main thread. */
export type CodecReply =
  | WorkerReady
  | { ok: true; data: ArrayBuffer; photometricInterpretation: string; planarConfiguration: number }
  | { ok: false; error: string };

export interface CodecResult {
  data: Buffer;
  /** What the codec says the pixels are after its work (dcmjs-codecs keeps the input's unless it converted). */
  photometricInterpretation: string;
  /** Layout of decoded colour pixels: the RLE decoder follows the dataset's PlanarConfiguration, 1 = by plane. */
  planarConfiguration: number;
}

/**
 * `run(request, signal)` runs one codec task in a worker and rejects with a TranscodeError (timeout, memory,
 * undecodable, unavailable). A task still queued when `signal` aborts is dropped without running (the other frames
 * of an object that already failed); one already running finishes or times out.
 */
export class CodecPool extends WorkerPool<CodecRequest, CodecResult, CodecReply> {
  constructor(options: CodecPoolOptions) {
    super(options, {
      entry: workerEntry(import.meta.url, 'codec-worker'),
      name: 'codec worker',
      message: (request) => ({ message: request, transfer: [request.data] }),
      outcome: (reply) =>
        reply.ok
          ? { ok: true, value: { data: Buffer.from(reply.data), photometricInterpretation: reply.photometricInterpretation, planarConfiguration: reply.planarConfiguration } }
          : // Replaced rather than reused: see the file comment.
            { ok: false, error: new TranscodeError('undecodable', `the codec failed: ${reply.error}`), retire: true },
      errors: {
        closed: () => new TranscodeError('unavailable', 'the codec pool is closed'),
        timeout: (request, ms) => new TranscodeError('timeout', `the ${request.op} of a frame took longer than the ${ms} ms limit`),
        memory: (mb) => new TranscodeError('memory', `the codec needed more than the ${mb} MiB memory limit`),
        stopped: () => new TranscodeError('unavailable', 'the codec worker stopped'),
        notStarted: (cause) => new TranscodeError('unavailable', 'the codec worker could not start', { cause }),
        dropped: () => new TranscodeError('unavailable', 'dropped: another frame of the same object failed'),
      },
    });
  }
}
