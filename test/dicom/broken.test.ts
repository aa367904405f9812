// broken/ (see broken/EXPECTED.tsv): every hostile file gets a definite answer, quickly, and a refusal names
// the PS3.4 reason and a PHI-free detail. Where EXPECTED allows either, the choice is stated per file.
// Files the reader accepts on purpose (the store service applies its rules to what it returns):
//   valid-reference, duplicate-sop-a/-b (duplicates are a storage rule), bad-group-length (tolerant: meta walked
//   element by element), meta-sop-mismatch (both UIDs reported), missing-*-uid (absence reported),
//   uid-invalid-chars / uid-too-long (values reported as found), pixel-length-mismatch and huge-dimensions
//   (structure is sound; nothing is allocated from Rows/Columns, frames are checked at retrieval).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ParsedInstance } from '../../src/dicom/part10.js';
import { FailureReason } from '../../src/dicom/status-codes.js';
import { isValidUid } from '../../src/dicom/uid.js';
import { TESTDATA, indexRows, testFile } from '../helpers/testdata.js';
import { read } from './read.js';

const C000 = FailureReason.CANNOT_UNDERSTAND;
const C122 = FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED;
const row = (file: string) => indexRows().find((r) => r.path === `broken/${file}`)!;

const REFUSED: Record<string, { reason: number; detail: string | RegExp; uids?: boolean }> = {
  'zero-length.dcm': { reason: C000, detail: 'empty object: 0 bytes' },
  'not-dicom.dcm': { reason: C000, detail: 'no DICM prefix at offset 128: not a DICOM PS3.10 file' },
  'no-dicm-magic.dcm': { reason: C000, detail: 'no DICM prefix at offset 128: not a DICOM PS3.10 file' },
  'raw-dataset-no-meta.dcm': {
    reason: C000,
    detail: 'bare dataset without preamble, DICM prefix and File Meta Information: STOW-RS requires the PS3.10 format',
  },
  'truncated-header.dcm': { reason: C000, detail: 'value length of (0002,0012) runs past the end of the file' },
  'truncated-pixeldata.dcm': {
    reason: C000,
    detail: 'value length of (7FE0,0010) at offset 794 runs past the end of the file',
    uids: true,
  },
  'value-length-overflow.dcm': {
    reason: C000,
    detail: 'value length of (0008,1030) at offset 500 runs past the end of the file',
    uids: true,
  },
  'seq-no-delimiter.dcm': { reason: C000, detail: 'undefined-length item not terminated before the end of the file', uids: true },
  'ts-mismatch.dcm': {
    reason: C000,
    detail: 'dataset at offset 342 is not encoded in the explicit VR Transfer Syntax the File Meta Information names',
    uids: true,
  },
  'unknown-vr.dcm': { reason: C000, detail: 'invalid VR in (0010,0010) at offset 540', uids: true },
  'unknown-transfer-syntax.dcm': {
    reason: C122,
    detail: 'transfer syntax 1.2.3.4.5.6.7 is not supported',
    uids: true,
  },
};

const ACCEPTED: Record<string, (t: Test, i: ParsedInstance) => void> = {
  'valid-reference.dcm': (t, i) => {
    const r = row('valid-reference.dcm');
    t.equal(i.sopInstanceUID, r.sopUid);
    t.equal(i.studyInstanceUID, r.studyUid);
    t.equal(i.seriesInstanceUID, r.seriesUid);
    t.equal(i.sopClassUID, '1.2.840.10008.5.1.4.1.1.2');
    t.equal(i.transferSyntaxUID, '1.2.840.10008.1.2.1');
    t.same(i.dataset['00100010'], { vr: 'PN', Value: [{ Alphabetic: 'BROKEN^INPUT' }] });
  },
  'duplicate-sop-a.dcm': (t, i) => t.equal(i.sopInstanceUID, row('duplicate-sop-a.dcm').sopUid),
  'duplicate-sop-b-other-study.dcm': (t, i) => {
    t.equal(i.sopInstanceUID, row('duplicate-sop-a.dcm').sopUid, 'same SOP Instance UID as duplicate-sop-a');
    t.not(i.studyInstanceUID, row('duplicate-sop-a.dcm').studyUid, 'in another study');
  },
  'bad-group-length.dcm': (t, i) => {
    t.equal(i.sopInstanceUID, row('bad-group-length.dcm').sopUid, 'dataset found despite the wrong (0002,0000)');
    t.equal(i.transferSyntaxUID, '1.2.840.10008.1.2.1');
  },
  'meta-sop-mismatch.dcm': (t, i) => {
    t.ok(i.mediaStorageSOPInstanceUID, 'meta UID reported');
    t.not(i.mediaStorageSOPInstanceUID, i.sopInstanceUID, 'the mismatch is visible to the store service');
  },
  'missing-sop-instance-uid.dcm': (t, i) => t.equal(i.sopInstanceUID, undefined),
  'missing-study-uid.dcm': (t, i) => t.equal(i.studyInstanceUID, undefined),
  'missing-series-uid.dcm': (t, i) => t.equal(i.seriesInstanceUID, undefined),
  'missing-sop-class-uid.dcm': (t, i) => t.equal(i.sopClassUID, undefined),
  'uid-invalid-chars.dcm': (t, i) => {
    t.ok(i.sopInstanceUID, 'reported as found');
    t.equal(isValidUid(i.sopInstanceUID!), false, 'and the store service can see it is not a UID');
  },
  'uid-too-long.dcm': (t, i) => t.ok(i.studyInstanceUID!.length > 64),
  'pixel-length-mismatch.dcm': (t, i) => {
    t.same(i.dataset['00280010']?.Value, [64]);
    t.same(i.dataset['00280011']?.Value, [64]);
    t.match(i.pixelData, { encapsulated: false, length: 4096 }, 'half of Rows*Columns*2, located as it is');
  },
  'huge-dimensions.dcm': (t, i) => {
    t.same(i.dataset['00280010']?.Value, [65535]);
    t.match(i.pixelData, { encapsulated: false, length: 8192 });
  },
};

const files = readdirSync(join(TESTDATA, 'broken')).filter((f) => f.endsWith('.dcm'));
const expected = readFileSync(join(TESTDATA, 'broken/EXPECTED.tsv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split('\t')[0]!);

t.test('every broken/ file and every EXPECTED.tsv row has a decision here', async (t) => {
  t.same([...files].sort(), [...expected].sort(), 'EXPECTED.tsv lists the folder');
  t.same([...files].sort(), [...Object.keys(REFUSED), ...Object.keys(ACCEPTED)].sort());
});

for (const file of files) {
  t.test(file, async (t) => {
    const started = performance.now();
    const result = await read(testFile(`broken/${file}`));
    // A hang or a runaway walk, not a speed target (bench/ measures speed): far above the few ms it takes.
    const ms = performance.now() - started;
    t.ok(ms < 2000, `answers quickly (${ms.toFixed(1)} ms)`);
    const refusal = REFUSED[file];
    if (refusal) {
      if (result.ok) return void t.fail('accepted');
      t.equal(result.failure.reason, refusal.reason, 'reason');
      t.match(result.failure.detail, refusal.detail, 'detail');
      // Once the File Meta Information was read, its UIDs (or the dataset's, if reached) go to FailedSOPSequence.
      if (refusal.uids) {
        t.match(result.failure.sopInstanceUID, /^2\.25\.\d+$/, 'SOP Instance UID read before the failure is reported');
        if (row(file).sopUid) t.equal(result.failure.sopInstanceUID, row(file).sopUid);
        t.equal(result.failure.sopClassUID, '1.2.840.10008.5.1.4.1.1.2', 'SOP Class UID reported');
      } else {
        t.equal(result.failure.sopInstanceUID, undefined);
      }
      return;
    }
    if (!result.ok) return void t.fail(`refused: ${JSON.stringify(result.failure)}`);
    ACCEPTED[file]!(t, result.instance);
  });
}
