// The Renderer on real files of ../shared/testdata with real worker pools: media types, the window and viewport
// parameters, frames of multi-frame objects and the animated GIF, thumbnails, Encapsulated PDF, and the limits
// that refuse a render before any pixel is read.

import sharp from 'sharp';
import t from 'tap';
import { CodecPool } from '../../src/transcode/codec-pool.js';
import { Transcoder } from '../../src/transcode/transcoder.js';
import { RenderPool } from '../../src/render/render-pool.js';
import type { ImageAttributes } from '../../src/render/image-attributes.js';
import { Renderer } from '../../src/render/renderer.js';
import { TEST_LIMITS } from '../dicom/synthetic.js';
import { testFile } from '../helpers/testdata.js';

const CT = 'pydicom/test_files/CT_small.dcm'; // 128 x 128, signed 16-bit, window in the dataset
const MULTIFRAME = 'generated/ct-multiframe/study001/series01/multiframe.dcm'; // 30 frames of 128 x 128
const PALETTE = 'dicomweb-client/US-PAL-8-10x-echo.dcm'; // 600 x 430, 10 frames, PALETTE COLOR, RLE
const PDF = 'derived/encapsulated_pdf.dcm';

const codecs = new CodecPool({ workers: 2, timeoutMs: 30_000, memoryMb: 256 });
const pool = new RenderPool({ workers: 2, timeoutMs: 30_000, memoryMb: 256 });
const transcoder = new Transcoder({ pool: codecs, scanLimits: TEST_LIMITS });
const renderer = new Renderer({ transcoder, pool, scanLimits: TEST_LIMITS });
t.teardown(async () => {
  await codecs.close();
  await pool.close();
});

// Decoded as one grey channel (the images compared this way are all grey).
const raw = async (image: Buffer) => sharp(image).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });

t.test('media types: JPEG by default, PNG and GIF on request, nothing else', async (t) => {
  const stored = testFile(CT);
  const jpeg = await renderer.renderFrame(stored, 1);
  t.equal(jpeg.mediaType, 'image/jpeg');
  t.match(await sharp(jpeg.bytes).metadata(), { format: 'jpeg', width: 128, height: 128, channels: 1, isProgressive: false }, 'baseline 8-bit grey JPEG');
  t.match(await sharp((await renderer.renderFrame(stored, 1, { mediaType: 'image/png' })).bytes).metadata(), { format: 'png', width: 128, height: 128 });
  t.match(await sharp((await renderer.renderFrame(stored, 1, { mediaType: 'image/gif' })).bytes).metadata(), { format: 'gif', width: 128, height: 128 });
  await t.rejects(renderer.renderFrame(stored, 1, { mediaType: 'image/webp' }), { name: 'RenderError', failure: 'unsupported-media-type' });
  await t.rejects(renderer.renderInstance(stored, { mediaType: 'application/pdf' }), { name: 'RenderError', failure: 'unsupported-media-type' });
  const small = await renderer.renderFrame(stored, 1, { quality: 10 });
  const large = await renderer.renderFrame(stored, 1, { quality: 100 });
  t.ok(small.bytes.length < large.bytes.length, `quality changes the JPEG (${small.bytes.length} < ${large.bytes.length} bytes)`);
});

t.test('the window parameter replaces the dataset window', async (t) => {
  const stored = testFile(CT);
  const dflt = await raw((await renderer.renderFrame(stored, 1, { mediaType: 'image/png' })).bytes);
  const wide = await raw((await renderer.renderFrame(stored, 1, { mediaType: 'image/png', window: { center: 0, width: 100_000, fn: 'LINEAR' } })).bytes);
  const mean = (b: Buffer) => b.reduce((s, v) => s + v, 0) / b.length;
  t.ok(Math.abs(mean(wide.data) - 128) < 3, `a huge window makes everything mid-grey (mean ${mean(wide.data).toFixed(1)})`);
  t.ok(Math.abs(mean(dflt.data) - mean(wide.data)) > 10, 'and differs from the dataset window');
  const sigmoid = await raw((await renderer.renderFrame(stored, 1, { mediaType: 'image/png', window: { center: 0, width: 100_000, fn: 'SIGMOID' } })).bytes);
  t.ok(Math.abs(mean(sigmoid.data) - 128) < 3, 'sigmoid too');
});

t.test('viewport: fits keeping the aspect ratio; the region and flips are applied', async (t) => {
  const stored = testFile(PALETTE);
  const fit = await renderer.renderFrame(stored, 1, { viewport: { vw: 300, vh: 300 } });
  t.match({ width: fit.width, height: fit.height }, { width: 300, height: 215 }, '600 x 430 fits 300 x 300 as 300 x 215');
  t.match(await sharp(fit.bytes).metadata(), { width: 300, height: 215, channels: 3 });
  const ct = testFile(CT);
  const whole = await raw((await renderer.renderFrame(ct, 1, { mediaType: 'image/png' })).bytes);
  const region = await raw((await renderer.renderFrame(ct, 1, { mediaType: 'image/png', viewport: { vw: 32, vh: 32, sx: 10, sy: 20, sw: 32, sh: 32 } })).bytes);
  t.equal(region.info.width, 32);
  t.equal(region.data[0], whole.data[20 * 128 + 10], 'the region starts at sx,sy');
  t.equal(region.data[31 * 32 + 31], whole.data[51 * 128 + 41], 'and ends at sx+sw-1, sy+sh-1');
  const flipped = await raw((await renderer.renderFrame(ct, 1, { mediaType: 'image/png', viewport: { vw: 32, vh: 32, sx: 42, sy: 20, sw: -32, sh: 32 } })).bytes);
  t.equal(flipped.data[0], whole.data[20 * 128 + 41], 'a negative sw flips horizontally');
});

t.test('multi-frame: a frame, the first frame as JPEG, every frame as an animated GIF', async (t) => {
  const stored = testFile(MULTIFRAME);
  const f1 = await raw((await renderer.renderFrame(stored, 1, { mediaType: 'image/png' })).bytes);
  const f30 = await raw((await renderer.renderFrame(stored, 30, { mediaType: 'image/png' })).bytes);
  t.notOk(f1.data.equals(f30.data), 'frame 30 is not frame 1');
  const instance = await raw((await renderer.renderInstance(stored, { mediaType: 'image/png' })).bytes);
  t.ok(instance.data.equals(f1.data), 'the instance as PNG is its first frame');
  await t.rejects(renderer.renderFrame(stored, 31), { name: 'RenderError', failure: 'no-such-frame' });
  await t.rejects(renderer.renderFrame(stored, 0), { name: 'RenderError', failure: 'no-such-frame' });
  const gif = await renderer.renderInstance(stored, { mediaType: 'image/gif', viewport: { vw: 64, vh: 64 } });
  t.equal(gif.frames, 30);
  t.match(await sharp(gif.bytes).metadata(), { format: 'gif', pages: 30, width: 64, height: 64, loop: 0 }, 'an animated GIF of 30 pages');
  const limited = new Renderer({ transcoder, pool, scanLimits: TEST_LIMITS, limits: { maxAnimationFrames: 10 } });
  t.match(await sharp((await limited.renderInstance(stored, { mediaType: 'image/gif' })).bytes).metadata(), { format: 'gif', pages: 1 }, 'over the frame limit: the first frame only');
});

t.test('thumbnails: a small JPEG fitting 128 x 128, or the given box', async (t) => {
  const thumb = await renderer.thumbnail(testFile(PALETTE));
  t.equal(thumb.mediaType, 'image/jpeg');
  t.match(await sharp(thumb.bytes).metadata(), { format: 'jpeg', width: 128, height: 92 });
  t.ok(thumb.bytes.length < 16_000, `small (${thumb.bytes.length} bytes)`);
  const frame = await renderer.thumbnail(testFile(MULTIFRAME), { frame: 15, viewport: { vw: 40, vh: 60 } });
  t.match(await sharp(frame.bytes).metadata(), { width: 40, height: 40 });
  await t.rejects(renderer.thumbnail(testFile(PDF)), { name: 'RenderError', failure: 'unsupported-media-type' });
});

t.test('Encapsulated PDF: the document itself as application/pdf', async (t) => {
  const pdf = await renderer.renderInstance(testFile(PDF));
  t.equal(pdf.mediaType, 'application/pdf');
  t.equal(pdf.bytes.subarray(0, 5).toString('latin1'), '%PDF-');
  t.match(pdf.bytes.subarray(-8).toString('latin1'), /%%EOF\s*$/, 'ends at %%EOF: the pad byte is not part of it');
  t.equal((await renderer.renderInstance(testFile(PDF), { mediaType: 'application/pdf' })).bytes.length, pdf.bytes.length);
  await t.rejects(renderer.renderInstance(testFile(PDF), { mediaType: 'image/jpeg' }), { name: 'RenderError', failure: 'unsupported-media-type' });
  await t.rejects(renderer.renderFrame(testFile(PDF), 1), { name: 'RenderError', failure: 'unsupported-media-type' });
});

t.test('limits: refused before any pixel work', async (t) => {
  const codecs2 = new CodecPool({ workers: 1, timeoutMs: 30_000, memoryMb: 256 });
  const pool2 = new RenderPool({ workers: 1, timeoutMs: 30_000, memoryMb: 256 });
  t.teardown(async () => {
    await codecs2.close();
    await pool2.close();
  });
  const r = new Renderer({ transcoder: new Transcoder({ pool: codecs2, scanLimits: TEST_LIMITS }), pool: pool2, scanLimits: TEST_LIMITS });
  await t.rejects(r.renderFrame(testFile('broken/huge-dimensions.dcm'), 1), { name: 'RenderError', failure: 'too-large' }, 'a 65535 x 65535 frame');
  await t.rejects(r.thumbnail(testFile('broken/huge-dimensions.dcm')), { name: 'RenderError', failure: 'too-large' }, 'also for a thumbnail');
  await t.rejects(r.renderFrame(testFile(CT), 1, { viewport: { vw: 100_000, vh: 100_000 } }), { name: 'RenderError', failure: 'too-large' }, 'a huge viewport');
  await t.rejects(r.renderFrame(testFile(CT), 1, { viewport: { vw: 5000, vh: 5000 } }), { name: 'RenderError', failure: 'too-large' }, 'over 4096 x 4096 output');
  t.equal(codecs2.started, 0, 'no codec task ran');
  t.equal(pool2.size, 0, 'no render worker started');
  const tight = new Renderer({ transcoder, pool, scanLimits: TEST_LIMITS, limits: { maxSourcePixels: 100 * 100 } });
  await t.rejects(tight.renderFrame(testFile(CT), 1), { name: 'RenderError', failure: 'too-large' }, 'the source limit is configurable');
});

t.test('a render worker past its time limit is stopped, and the next render works', async (t) => {
  const slow = new RenderPool({ workers: 1, timeoutMs: 1, memoryMb: 256 });
  t.teardown(() => slow.close());
  const r = new Renderer({ transcoder, pool: slow, scanLimits: TEST_LIMITS });
  // A decoded 4096 x 4096 16-bit frame: its pipeline takes some 100 ms, far over the 1 ms limit.
  const attrs: ImageAttributes = {
    rows: 4096, columns: 4096, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, highBit: 15, pixelRepresentation: 0,
    planarConfiguration: 0, photometricInterpretation: 'MONOCHROME2', numberOfFrames: 1, rescaleSlope: 1, rescaleIntercept: 0, windows: [], voiLuts: [],
  };
  const frame = Buffer.alloc(4096 * 4096 * 2);
  for (let i = 0; i < frame.length; i += 2) frame.writeUInt16LE(i & 0xffff, i);
  const err = await r.renderDecoded(frame, attrs).then(() => undefined, (e: unknown) => e);
  t.match(err, { name: 'RenderError', failure: 'timeout' });
  t.equal(slow.size, 0, 'the worker was terminated');
  const ok = new Renderer({ transcoder, pool, scanLimits: TEST_LIMITS });
  t.ok((await ok.renderFrame(testFile(CT), 1)).bytes.length > 0);
});
