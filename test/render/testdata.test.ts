// Issue 9, "done when": for every image file of ../shared/testdata, a rendered image that looks right. Frame 1 of
// each file is rendered as PNG with the default VOI (docs/rendering.md) and compared with DCMTK's rendering of the
// same frame (test/fixtures/render/, made once by scripts/make-render-references.sh): both scaled to 64 x 64 by
// the same function (reference-image.ts), then the mean absolute difference per sample must be within the
// tolerance. A JPEG rendering of each file is checked to decode to the same size.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import t from 'tap';
import { CodecPool } from '../../src/transcode/codec-pool.js';
import { TranscodeError } from '../../src/transcode/transcode-error.js';
import { Transcoder } from '../../src/transcode/transcoder.js';
import { RenderError } from '../../src/render/render-error.js';
import { RenderPool } from '../../src/render/render-pool.js';
import { Renderer } from '../../src/render/renderer.js';
import { TEST_LIMITS } from '../dicom/synthetic.js';
import { imagePaths, testFile } from '../helpers/testdata.js';
import { meanAbsDiff, toReference, type Reference } from './reference-image.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, '../fixtures/render');
const { references } = JSON.parse(fs.readFileSync(path.join(fixtures, 'references.json'), 'utf8')) as { references: Reference[] };

/** Files DCMTK could not render, and what dicomvault does instead (each checked by hand). */
const EXCEPTIONS: Record<string, { failure: string }> = {
  // ISO 2022 character set tests: a CR header without Pixel Data.
  'pydicom/charset_files/chrJapMulti.dcm': { failure: 'unsupported-source' },
  'pydicom/charset_files/chrJapMultiExplicitIR6.dcm': { failure: 'unsupported-source' },
  'pydicom/charset_files/chrKoreanMulti.dcm': { failure: 'unsupported-source' },
  // SIZ overwritten by a sequence delimiter: 14 million tiles, refused by the transcoder's bomb guard.
  'pydicom/test_files/JPEG2000-embedded-sequence-delimiter.dcm': { failure: 'too-large' },
  // Pixel Data runs past the end of the file.
  'pydicom/test_files/MR_truncated.dcm': { failure: 'unsupported-source' },
  // The meta header names Explicit VR LE, the dataset is not.
  'pydicom/test_files/SC_rgb_jpeg.dcm': { failure: 'unsupported-source' },
};

/**
 * Mean absolute difference allowed, of 255. Both renderers apply the same PS3.3 pipeline; what remains is rounding
 * (and, for lossy sources, the decoder's IDCT / wavelet rounding).
 */
const TOLERANCE = 8;
/** Per-file larger tolerances, with the reason. */
const LOOSER: Record<string, number> = {};

const pool = new CodecPool({ workers: 2, timeoutMs: 30_000, memoryMb: 256 });
const renderPool = new RenderPool({ workers: 2, timeoutMs: 30_000, memoryMb: 512 });
const renderer = new Renderer({ transcoder: new Transcoder({ pool, scanLimits: TEST_LIMITS }), pool: renderPool, scanLimits: TEST_LIMITS });
t.teardown(async () => {
  await pool.close();
  await renderPool.close();
});

t.test('the references cover every image file of the test data', async (t) => {
  t.same(references.map((r) => r.path).sort(), imagePaths().sort(), 'rerun scripts/make-render-references.sh when the test data changes');
  t.same(
    references.filter((r) => !r.reference).map((r) => r.path).sort(),
    Object.keys(EXCEPTIONS).sort(),
    'the files without a reference are exactly the known exceptions',
  );
});

const diffs: { path: string; diff: number }[] = [];

for (const ref of references) {
  t.test(`${ref.path} renders like DCMTK (${ref.voi})`, async (t) => {
    const stored = testFile(ref.path);
    const exception = EXCEPTIONS[ref.path];
    if (exception) {
      const err = await renderer.renderFrame(stored, 1, { mediaType: 'image/png' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      t.ok(err instanceof RenderError || err instanceof TranscodeError, 'refused');
      t.equal((err as RenderError).failure, exception.failure);
      return;
    }
    const png = await renderer.renderFrame(stored, 1, { mediaType: 'image/png' });
    t.equal(png.mediaType, 'image/png');
    const meta = await sharp(png.bytes).metadata();
    t.equal(meta.format, 'png');
    const want = await toReference(fs.readFileSync(path.join(fixtures, ref.reference!)));
    const got = await toReference(png.bytes);
    const diff = meanAbsDiff(got, want);
    diffs.push({ path: ref.path, diff });
    const tol = LOOSER[ref.path] ?? TOLERANCE;
    t.ok(diff <= tol, `mean absolute difference ${diff.toFixed(2)} <= ${tol}`);
    const jpeg = await renderer.renderFrame(stored, 1, { quality: 80 });
    t.equal(jpeg.mediaType, 'image/jpeg');
    const jm = await sharp(jpeg.bytes).metadata();
    t.match(jm, { format: 'jpeg', width: png.width, height: png.height, isProgressive: false }, 'a baseline JPEG of the same size');
  });
}

t.test('summary', async (t) => {
  if (process.env.RENDER_DIFFS) fs.writeFileSync(process.env.RENDER_DIFFS, diffs.map((d) => `${d.diff.toFixed(2)}\t${d.path}`).join('\n'));
  t.ok(diffs.length > 0);
});
