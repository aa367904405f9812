// Issue 9, "done when": for every image file of ../shared/testdata, transcoding to Explicit VR Little Endian
// yields pixel data equal to a reference decode. The references (test/fixtures/transcode/references.json) were
// made once by DCMTK and GDCM (scripts/make-transcode-references.sh) and are digests of their decoded pixels;
// both sides are read with dcmjs (test/transcode/pixel-digest.ts), never with the code under test. Lossy sources
// may differ by decoder rounding and are then compared with a tolerance; today they match exactly.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { EXPLICIT_VR_LITTLE_ENDIAN } from '../../src/dicom/transfer-syntax.js';
import { CodecPool } from '../../src/transcode/codec-pool.js';
import { TranscodeError } from '../../src/transcode/transcode-error.js';
import { Transcoder } from '../../src/transcode/transcoder.js';
import { TEST_LIMITS } from '../dicom/synthetic.js';
import { imagePaths, testFile } from '../helpers/testdata.js';
import { pixelDigest, readWithDcmjs, type PixelDigest, type Reference } from './pixel-digest.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { references } = JSON.parse(fs.readFileSync(path.join(here, '../fixtures/transcode/references.json'), 'utf8')) as { references: Reference[] };

/**
 * Files without a usable reference, and what the transcoder must do with them instead. Each reason was checked by
 * hand; a file that starts or stops being here fails the test.
 */
const EXCEPTIONS: Record<string, { expect: 'identical' } | { expect: 'refused'; failure: TranscodeError['failure'] }> = {
  // ISO 2022 multi-charset files: dcmjs (the digest reader) refuses them. They are Explicit VR LE already, so the
  // transcoder must return them unchanged.
  'pydicom/charset_files/chrJapMulti.dcm': { expect: 'identical' },
  'pydicom/charset_files/chrJapMultiExplicitIR6.dcm': { expect: 'identical' },
  'pydicom/charset_files/chrKoreanMulti.dcm': { expect: 'identical' },
  // Its JPEG 2000 header is overwritten by a sequence delimiter (a parser test of pydicom): SIZ declares a
  // 3,722,445,056-pixel-wide image in 14 million tiles. GDCM fails on it; we refuse it before decoding.
  'pydicom/test_files/JPEG2000-embedded-sequence-delimiter.dcm': { expect: 'refused', failure: 'too-large' },
  // Pixel Data runs past the end of the file (DCMTK pads it; we do not invent pixels).
  'pydicom/test_files/MR_truncated.dcm': { expect: 'refused', failure: 'unsupported-source' },
  // File Meta says Explicit VR LE, the dataset is not: DCMTK cannot read it either.
  'pydicom/test_files/SC_rgb_jpeg.dcm': { expect: 'refused', failure: 'unsupported-source' },
};

const pool = new CodecPool({ workers: 2, timeoutMs: 30_000, memoryMb: 256 });
const transcoder = new Transcoder({ pool, scanLimits: TEST_LIMITS });
t.teardown(() => pool.close());

t.test('the references cover every image file of the test data', async (t) => {
  t.same(references.map((r) => r.path).sort(), imagePaths().sort(), 'rerun scripts/make-transcode-references.sh when the test data changes');
  const compressed = new Set(references.map((r) => r.sourceTransferSyntax));
  // The syntaxes the issue names: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE, deflate, big endian.
  for (const uid of ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.80',
    '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.5', '1.2.840.10008.1.2.1.99',
    '1.2.840.10008.1.2.2']) {
    t.ok(compressed.has(uid), `test data has ${uid}`);
  }
});

/** Largest allowed difference of a lossy sample: decoders may round differently (IDCT, wavelet). */
const tolerance = (d: PixelDigest) => (d.bitsAllocated === 8 ? 2 : 8);

for (const ref of references) {
  t.test(`${ref.path} (${ref.sourceTransferSyntax || 'unreadable'}) -> Explicit VR LE`, async (t) => {
    const stored = testFile(ref.path);
    const exception = EXCEPTIONS[ref.path];
    if (exception?.expect === 'refused') {
      const err = await transcoder.transcodeInstance(bufferSource(stored), EXPLICIT_VR_LITTLE_ENDIAN).then(
        () => undefined,
        (e: unknown) => e,
      );
      t.ok(err instanceof TranscodeError, 'refused with a TranscodeError');
      t.equal((err as TranscodeError).failure, exception.failure);
      return;
    }
    const out = await transcoder.transcodeInstance(bufferSource(stored), EXPLICIT_VR_LITTLE_ENDIAN);
    t.equal(out.transferSyntaxUID, EXPLICIT_VR_LITTLE_ENDIAN);
    if (exception?.expect === 'identical') {
      t.notOk(ref.digest, 'still without a reference digest');
      t.ok(out.bytes.equals(stored), 'returned unchanged');
      return;
    }
    if (!ref.digest) throw new Error(`no reference for ${ref.path} (${ref.tool}: ${ref.error ?? ''})`);
    const { dict, transferSyntaxUID } = readWithDcmjs(out.bytes);
    t.equal(transferSyntaxUID, EXPLICIT_VR_LITTLE_ENDIAN, 'File Meta names Explicit VR LE');
    const got = pixelDigest(out.bytes, ref.lossy);
    const want = ref.digest;
    t.match(got, { rows: want.rows, columns: want.columns, samplesPerPixel: want.samplesPerPixel, bitsAllocated: want.bitsAllocated, frames: want.frames });
    t.equal(got.photometric, want.photometric, 'PhotometricInterpretation as the reference decoder sets it');
    if (got.sha256 !== want.sha256) {
      t.ok(ref.lossy, 'only a lossy source may differ from the reference');
      const tol = tolerance(want);
      const worst = Math.max(...got.samples!.map((v, i) => Math.abs(v - want.samples![i]!)));
      t.ok(worst <= tol, `sample values within ${tol} of the reference (worst ${worst})`);
      const worstMean = Math.max(...got.frameMeans!.map((v, i) => Math.abs(v - want.frameMeans![i]!)));
      t.ok(worstMean <= 1, `frame means within 1 of the reference (worst ${worstMean})`);
    } else t.pass('pixel data equal to the reference decode');
    if (ref.lossy) {
      t.equal(out.lossy, true, 'reported lossy');
      t.equal(dict['00282110']?.Value?.[0], '01', 'Lossy Image Compression 01');
    }
  });
}
