// Every file of the shared corpus (INDEX.tsv) outside broken/ (that folder has broken.test.ts): accepted with
// the UIDs and PatientName pydicom reports, or refused for a stated reason. The decisions below are the
// reader's policy; the store service adds its own (e.g. a missing SOP Instance UID).

import t from 'tap';
import type { PersonName } from '../../src/dicom/json-model.js';
import { FailureReason } from '../../src/dicom/status-codes.js';
import { indexRows, testFile } from '../helpers/testdata.js';
import { read } from './read.js';

const C000 = FailureReason.CANNOT_UNDERSTAND;

/** Files pydicom reads but STOW must refuse: not PS3.10, truncated, or lying about their encoding. */
const REFUSED: Record<string, [number, RegExp]> = {
  // no preamble / DICM / File Meta: PS3.18 STOW takes PS3.10 files only (pydicom reads them with force)
  'pydicom/test_files/ExplVR_BigEndNoMeta.dcm': [C000, /^no DICM prefix at offset 128/],
  'pydicom/test_files/ExplVR_LitEndNoMeta.dcm': [C000, /^bare dataset without preamble/],
  'pydicom/test_files/no_meta.dcm': [C000, /^no DICM prefix at offset 128/],
  'pydicom/test_files/rtstruct.dcm': [C000, /^bare dataset without preamble/],
  // cut short: pydicom defers reading the values, we check every length against the file
  'pydicom/test_files/MR_truncated.dcm': [C000, /^value length of \(7FE0,0010\) at offset 1488 runs past the end of the file$/],
  'pydicom/test_files/rtplan_truncated.dcm': [C000, /^value length of \(300A,00B0\) at offset 1410 runs past the end of the file$/],
  // meta says JPEG Baseline (explicit VR), the dataset is implicit VR: pydicom guesses, we refuse
  'pydicom/test_files/SC_rgb_jpeg.dcm': [C000, /^dataset at offset 356 is not encoded in the explicit VR Transfer Syntax/],
  'pydicom/test_files/meta_missing_tsyntax.dcm': [C000, /^File Meta Information has no Transfer Syntax UID \(0002,0010\)$/],
  // a defined-length sequence shorter than its items
  'pydicom/test_files/dicomdirtests/DICOMDIR-nooffset': [C000, /^item at offset 10860 runs past the end of its sequence$/],
};

/** Structurally sound but not a composite instance: read, without a SOP Instance UID (store refuses them). */
const NO_SOP_INSTANCE = new Set([
  'pydicom/charset_files/chrSQEncoding.dcm',
  'pydicom/charset_files/chrSQEncoding1.dcm',
  'pydicom/test_files/UN_sequence.dcm',
  'pydicom/test_files/empty_charset_LEI.dcm',
  'pydicom/test_files/nested_priv_SQ.dcm',
  'pydicom/test_files/no_meta_group_length.dcm',
  'pydicom/test_files/priv_SQ.dcm',
  'pydicom/test_files/dicomdirtests/DICOMDIR',
  'pydicom/test_files/dicomdirtests/DICOMDIR-bigEnd',
  'pydicom/test_files/dicomdirtests/DICOMDIR-empty.dcm',
  'pydicom/test_files/dicomdirtests/DICOMDIR-implicit',
  'pydicom/test_files/dicomdirtests/DICOMDIR-nopatient',
  'pydicom/test_files/dicomdirtests/DICOMDIR-reordered',
  'pydicom/test_files/dicomdirtests/TINY_ALPHA/DICOMDIR',
]);

/** PN as pydicom prints it: the component groups joined by "=", trailing empty groups dropped. */
function pnString(pn: PersonName | undefined): string {
  if (!pn) return '';
  return [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''].join('=').replace(/=+$/, '');
}

const rows = indexRows().filter((r) => !r.path.startsWith('broken/'));

t.test('the decision lists name real corpus files', async (t) => {
  const paths = new Set(rows.map((r) => r.path));
  for (const p of [...Object.keys(REFUSED), ...NO_SOP_INSTANCE]) t.ok(paths.has(p), p);
});

for (const row of rows) {
  t.test(row.path, async (t) => {
    const result = await read(testFile(row.path));
    const refusal = REFUSED[row.path];
    if (refusal) {
      t.equal(result.ok, false, 'refused');
      if (!result.ok) {
        t.equal(result.failure.reason, refusal[0]);
        t.match(result.failure.detail, refusal[1]);
      }
      return;
    }
    if (!result.ok) {
      t.fail(`refused: ${JSON.stringify(result.failure)}`);
      return;
    }
    const i = result.instance;
    if (NO_SOP_INSTANCE.has(row.path)) {
      t.equal(i.sopInstanceUID, undefined, 'no SOP Instance UID in the dataset');
      return;
    }
    t.equal(row.parse, 'ok', 'pydicom reads it too');
    t.equal(i.sopInstanceUID, row.sopUid || undefined, 'SOP Instance UID');
    t.equal(i.studyInstanceUID, row.studyUid || undefined, 'Study Instance UID');
    t.equal(i.seriesInstanceUID, row.seriesUid || undefined, 'Series Instance UID');
    t.equal(pnString(i.dataset['00100010']?.Value?.[0] as PersonName | undefined), row.patientName.replace(/^'|'$/g, ''), 'PatientName');
    t.notOk(Object.keys(i.dataset).some((k) => k.startsWith('0002') || k.endsWith('0000')), 'no meta or group-length keys');
  });
}
