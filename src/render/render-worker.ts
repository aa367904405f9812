// The worker thread of render-pool.ts: runs the pixel pipeline (pixel-pipeline.ts) on one native frame. The LUT
// and colour loops are O(pixels) JavaScript, up to tens of milliseconds on a large frame: here they cannot hold up
// the event loop, and the pool caps their heap and time.

import { parentPort } from 'node:worker_threads';
import { renderPixels, unpackBits } from './pixel-pipeline.js';
import type { RenderReply, RenderRequest } from './render-pool.js';
import { isRenderError } from './render-error.js';

const port = parentPort;
if (!port) throw new Error('render-worker.ts runs as a worker thread of render-pool.ts');

port.on('message', (request: RenderRequest) => {
  let reply: RenderReply;
  try {
    const a = request.attributes;
    const frame = request.packedBitOffset === undefined ? new Uint8Array(request.frame) : unpackBits(new Uint8Array(request.frame), request.packedBitOffset, a.rows * a.columns);
    const px = renderPixels(frame, a, request.window ? { window: request.window } : {});
    const data = px.data.buffer.slice(px.data.byteOffset, px.data.byteOffset + px.data.byteLength) as ArrayBuffer;
    reply = { ok: true, width: px.width, height: px.height, channels: px.channels, data };
  } catch (err) {
    // Messages name attributes and sizes, never pixel values.
    reply = isRenderError(err)
      ? { ok: false, failure: err.failure, error: err.message }
      : { ok: false, failure: 'unsupported-source', error: err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 200) : 'render error' };
  }
  port.postMessage(reply, reply.ok ? [reply.data] : []);
});
port.postMessage({ ready: true } satisfies RenderReply);
