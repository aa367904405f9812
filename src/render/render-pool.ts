// Worker threads for the pixel pipeline (pixel-pipeline.ts), on worker-pool.ts like transcode/codec-pool.ts and
// dicom/parse-pool.ts: workers start on demand and stay, each renders one frame at a time, a frame past
// `timeoutMs` terminates its worker (the event loop never waits on it), and `resourceLimits` caps each heap
// (ERR_WORKER_OUT_OF_MEMORY fails only that task). The sizes are bounded before a frame gets here (renderer.ts).
// Decoding is not done here: the transcoder's codec pool does it. Encoding is sharp's (libvips runs on libuv's
// thread pool, not on the event loop).

import { workerEntry } from '../worker-entry.js';
import { WorkerPool, type WorkerPoolOptions, type WorkerReady } from '../worker-pool.js';
import type { ImageAttributes, WindowSpec } from './image-attributes.js';
import type { RenderedPixels } from './pixel-pipeline.js';
import { RenderError, type RenderFailure } from './render-error.js';

/** `timeoutMs` bounds one pipeline run for one frame. */
export type RenderPoolOptions = Omit<WorkerPoolOptions, 'log'>;

/** Main thread -> worker: one native frame (transferred) and how to display it. */
export interface RenderRequest {
  frame: ArrayBuffer;
  attributes: ImageAttributes;
  window?: WindowSpec;
  /** Set for a bit-packed frame: the bit where it starts in `frame`; the worker unpacks it to one byte per pixel. */
  packedBitOffset?: number;
}

/** Worker -> main thread. */
export type RenderReply =
  | WorkerReady
  | { ok: true; width: number; height: number; channels: 1 | 3; data: ArrayBuffer }
  | { ok: false; failure: RenderFailure; error: string };

/** `run(request)` runs the pipeline on one frame; rejects with a RenderError. `request.frame` is transferred. */
export class RenderPool extends WorkerPool<RenderRequest, RenderedPixels, RenderReply> {
  constructor(options: RenderPoolOptions) {
    super(options, {
      entry: workerEntry(import.meta.url, 'render-worker'),
      name: 'render worker',
      message: (request) => ({ message: request, transfer: [request.frame] }),
      outcome: (reply) =>
        reply.ok
          ? { ok: true, value: { width: reply.width, height: reply.height, channels: reply.channels, data: new Uint8Array(reply.data) } }
          : { ok: false, error: new RenderError(reply.failure, reply.error) },
      errors: {
        closed: () => new RenderError('unavailable', 'the render pool is closed'),
        timeout: (_request, ms) => new RenderError('timeout', `rendering a frame took longer than the ${ms} ms limit`),
        memory: (mb) => new RenderError('memory', `rendering needed more than the ${mb} MiB memory limit`),
        stopped: () => new RenderError('unavailable', 'the render worker stopped'),
        notStarted: (cause) => new RenderError('unavailable', 'the render worker could not start', { cause }),
        dropped: () => new RenderError('unavailable', 'dropped: its request was aborted'),
      },
    });
  }
}
