// A manual check, not part of `npm test` (it needs DCMTK and GDCM, which scripts/make-transcode-references.sh
// installs): our encodings decoded by third-party decoders give the pixels we encoded. Lossless: bit-exact;
// lossy: the worst sample difference is printed. Run:
//   node --import tsx test/transcode/third-party-check.ts
// Exits non-zero when a lossless encoding does not decode bit-exact or a tool cannot read our output.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { EXPLICIT_VR_LITTLE_ENDIAN } from '../../src/dicom/transfer-syntax.js';
import { CodecPool } from '../../src/transcode/codec-pool.js';
import { encoderFor } from '../../src/transcode/codec-table.js';
import { TranscodeError } from '../../src/transcode/transcode-error.js';
import { Transcoder } from '../../src/transcode/transcoder.js';
import { TEST_LIMITS } from '../dicom/synthetic.js';
import { testFile } from '../helpers/testdata.js';
import { pixelDigest } from './pixel-digest.js';

const DECODER: Record<string, string[]> = {
  '1.2.840.10008.1.2.5': ['dcmdrle'],
  '1.2.840.10008.1.2.4.50': ['dcmdjpeg'],
  '1.2.840.10008.1.2.4.70': ['dcmdjpeg'],
  '1.2.840.10008.1.2.4.80': ['dcmdjpls'],
  '1.2.840.10008.1.2.4.81': ['dcmdjpls'],
  '1.2.840.10008.1.2.4.90': ['gdcmconv', '--raw'],
  '1.2.840.10008.1.2.4.91': ['gdcmconv', '--raw'],
};
const SOURCES = ['derived/ct_implicit_le.dcm', 'pydicom/test_files/SC_rgb_jpeg_dcmd.dcm', 'pydicom/test_files/SC_rgb_rle_2frame.dcm', 'derived/mr8_jpegls_near_lossless.dcm'];

const pool = new CodecPool({ workers: 2, timeoutMs: 30_000, memoryMb: 256 });
const transcoder = new Transcoder({ pool, scanLimits: TEST_LIMITS });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'transcode-check-'));
let failures = 0;
try {
  for (const rel of SOURCES) {
    const native = (await transcoder.transcodeInstance(bufferSource(testFile(rel)), EXPLICIT_VR_LITTLE_ENDIAN)).bytes;
    const want = pixelDigest(native, true);
    for (const [uid, tool] of Object.entries(DECODER)) {
      let encoded: Buffer;
      try {
        encoded = (await transcoder.transcodeInstance(bufferSource(native), uid)).bytes;
      } catch (err) {
        if (err instanceof TranscodeError && err.failure === 'unsupported-target') {
          console.log(`${rel} -> ${uid}: not encoded (${err.message})`);
          continue;
        }
        throw err;
      }
      const ours = path.join(dir, 'ours.dcm');
      const theirs = path.join(dir, 'theirs.dcm');
      fs.writeFileSync(ours, encoded);
      try {
        execFileSync(tool[0]!, [...tool.slice(1), ours, theirs], { stdio: 'pipe' });
      } catch {
        console.log(`${rel} -> ${uid}: ${tool[0]} could not decode our output`);
        failures++;
        continue;
      }
      const got = pixelDigest(fs.readFileSync(theirs), true);
      const worst = Math.max(0, ...got.samples!.map((v, i) => Math.abs(v - want.samples![i]!)));
      const lossy = encoderFor(uid)!.lossy;
      const exact = got.sha256 === want.sha256;
      if (!lossy && !exact) failures++;
      console.log(`${rel} -> ${uid} -> ${tool[0]}: ${exact ? 'bit-exact' : `worst sample difference ${worst}`}${!lossy && !exact ? '  FAIL' : ''}`);
    }
  }
} finally {
  await pool.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
if (failures > 0) process.exitCode = 1;
