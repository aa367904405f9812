// The worker thread of codec-pool.ts: decodes or encodes one frame at a time with the WebAssembly codecs of
// dcmjs-codecs (libjpeg, CharLS, OpenJPEG, OpenJPH, RLE; docs/transcoding.md). The pool caps its heap, stops it
// past the time limit, and replaces it after any codec error (a WebAssembly trap may leave the module's memory in
// an unknown state). Frames arrive already checked by frame-guard.ts; the output length is checked here again.

import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import type { CodecReply, CodecRequest } from './codec-pool.js';
import { decoderFor, encoderFor } from './codec-table.js';

type Codecs = typeof import('dcmjs-codecs');

const port = parentPort;
if (!port) throw new Error('codec-worker.ts runs as a worker thread of codec-pool.ts');

const require = createRequire(import.meta.url);
// A webpack UMD bundle: Node's ESM loader cannot see its named exports, so it is loaded as CommonJS.
const codecs = require('dcmjs-codecs') as Codecs;
codecs.log.setLevel('silent');
await codecs.NativeCodecs.initializeAsync({ webAssemblyModulePathOrUrl: require.resolve('dcmjs-codecs/build/dcmjs-native-codecs.wasm') });
const { NativeCodecs, Context } = codecs;

function context(request: CodecRequest): InstanceType<Codecs['Context']> {
  const f = request.format;
  const bytes = new Uint8Array(request.data);
  return new Context({
    width: f.columns,
    height: f.rows,
    bitsAllocated: f.bitsAllocated,
    bitsStored: f.bitsStored,
    samplesPerPixel: f.samplesPerPixel,
    pixelRepresentation: f.pixelRepresentation,
    planarConfiguration: f.planarConfiguration,
    photometricInterpretation: f.photometricInterpretation,
    ...(request.op === 'decode' ? { encodedBuffer: bytes } : { decodedBuffer: bytes }),
  });
}

type TaskReply = Exclude<CodecReply, { ready: true }>;

function run(request: CodecRequest): TaskReply {
  if (request.op === 'decode') {
    const decoder = decoderFor(request.transferSyntaxUID);
    if (!decoder) return { ok: false, error: `no decoder for ${request.transferSyntaxUID}` };
    // JPEG colour is YCbCr in the codestream; DICOM calls the decoded pixels RGB (PS3.5 8.2.1, PS3.3 C.7.6.3.1.2).
    const params = decoder.fn === 'decodeJpeg' ? { convertColorspaceToRgb: request.format.photometricInterpretation.startsWith('YBR') } : {};
    const out = NativeCodecs[decoder.fn](context(request), params);
    const decoded = out.getDecodedBuffer();
    if (!decoded || decoded.length < request.expectedBytes) {
      return { ok: false, error: `the codec produced ${decoded?.length ?? 0} bytes, ${request.expectedBytes} expected` };
    }
    const copy = decoded.slice(0, request.expectedBytes); // out of the WebAssembly heap, into a transferable buffer
    return { ok: true, data: copy.buffer, photometricInterpretation: out.getPhotometricInterpretation() ?? '', planarConfiguration: out.getPlanarConfiguration() ?? 0 };
  }
  const encoder = encoderFor(request.transferSyntaxUID);
  if (!encoder) return { ok: false, error: `no encoder for ${request.transferSyntaxUID}` };
  const out = NativeCodecs[encoder.fn](context(request), encoder.params);
  const encoded = out.getEncodedBuffer();
  if (!encoded || encoded.length === 0) return { ok: false, error: 'the codec produced no bytes' };
  return { ok: true, data: encoded.slice().buffer, photometricInterpretation: out.getPhotometricInterpretation() ?? '', planarConfiguration: 0 };
}

port.on('message', (request: CodecRequest) => {
  let reply: TaskReply;
  try {
    reply = run(request);
  } catch (err) {
    // Codec messages name the codec and the problem, never pixel values.
    reply = { ok: false, error: err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 200) : 'codec error' };
  }
  port.postMessage(reply, reply.ok ? [reply.data] : []);
});
// WebAssembly compiled and instantiated: the pool starts timing tasks from here on.
port.postMessage({ ready: true } satisfies CodecReply);
