// A small archive in the DICOM JSON model for the IndexStore contract (no DICOM files needed).
//
//   patient PAT-JP  Yamada^Tarou=山田^太郎=やまだ^たろう
//     study ST1 20200115 101500 ACC-001  series SE11 CT #1 (3 CT images, 2 request items), SE12 PT #2 (1 PET)
//   patient PAT-DE  Müller^Jürgen
//     study ST2 20210620 083000 ACC-002  series SE21 MR #1 (2 MR images, 1 request item)
//     study ST4 19991231 120000 ACC-004  series SE41 MR #1 (1 MR image), description full of SQL/GLOB/LIKE characters
//   patient PAT-ES  García^María^^Dra
//     study ST3 20211231 235959.5 acc-003  series SE31 CT #"03" (1 CT image)
//
// Committed in two batches (BATCH_1: SE11 + SE21, BATCH_2: SE12 + SE31 + SE41), so insertion order is
// studies ST1 ST2 ST3 ST4; series SE11 SE21 SE12 SE31 SE41; instances I111 I112 I113 I211 I212 I121 I311 I411.

import type { DicomJsonAttribute, DicomJsonDataset, PersonName } from '../../src/dicom/json-model.js';
import type { InstanceRecord } from '../../src/index/index-store.js';

export const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
export const MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4';
export const PET_IMAGE = '1.2.840.10008.5.1.4.1.1.128';
export const ENHANCED_PET_IMAGE = '1.2.840.10008.5.1.4.1.1.130';
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';

export const ST1 = '2.25.1001';
export const ST2 = '2.25.1002';
export const ST3 = '2.25.1003';
export const ST4 = '2.25.1004';
export const SE11 = `${ST1}.1`;
export const SE12 = `${ST1}.2`;
export const SE21 = `${ST2}.1`;
export const SE31 = `${ST3}.1`;
export const SE41 = `${ST4}.1`;
export const I111 = `${SE11}.1`;
export const I112 = `${SE11}.2`;
export const I113 = `${SE11}.3`;
export const I121 = `${SE12}.1`;
export const I211 = `${SE21}.1`;
export const I212 = `${SE21}.2`;
export const I311 = `${SE31}.1`;
export const I411 = `${SE41}.1`;

export const ALL_STUDIES = [ST1, ST2, ST3, ST4];
export const ALL_SERIES = [SE11, SE21, SE12, SE31, SE41];
export const ALL_INSTANCES = [I111, I112, I113, I211, I212, I121, I311, I411];

export const STUDY4_DESCRIPTION = "50%_off [x] \\ 'OR 1=1--";

const v = (vr: string, ...values: (string | number)[]): DicomJsonAttribute => ({ vr, Value: values });
export const ui = (uid: string) => v('UI', uid);
const pn = (name: PersonName): DicomJsonAttribute => ({ vr: 'PN', Value: [name] });

export const PATIENT_JP: DicomJsonDataset = {
  '00100010': pn({ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }),
  '00100020': v('LO', 'PAT-JP'),
  '00100030': v('DA', '19700102'),
  '00100040': v('CS', 'M'),
};
export const PATIENT_DE: DicomJsonDataset = {
  '00100010': pn({ Alphabetic: 'Müller^Jürgen' }),
  '00100020': v('LO', 'PAT-DE'),
  '00100030': v('DA', '19650430'),
  '00100040': v('CS', 'M'),
};
export const PATIENT_ES: DicomJsonDataset = {
  '00100010': pn({ Alphabetic: 'García^María^^Dra' }),
  '00100020': v('LO', 'PAT-ES'),
  '00100040': v('CS', 'F'),
};

export const STUDY_1: DicomJsonDataset = {
  '00080020': v('DA', '20200115'),
  '00080030': v('TM', '101500'),
  '00080050': v('SH', 'ACC-001'),
  '00080090': pn({ Alphabetic: 'Smith^Anne' }),
  '00080201': v('SH', '+0100'),
  '00081030': v('LO', 'CT Chest'),
  '00101010': v('AS', '050Y'),
  '0020000D': ui(ST1),
  '00200010': v('SH', 'S1'),
};
export const STUDY_2: DicomJsonDataset = {
  '00080020': v('DA', '20210620'),
  '00080030': v('TM', '083000'),
  '00080050': v('SH', 'ACC-002'),
  '00080090': pn({ Alphabetic: 'Doe^John' }),
  '00081030': v('LO', 'MR Brain'),
  '0020000D': ui(ST2),
  '00200010': v('SH', 'S2'),
};
export const STUDY_3: DicomJsonDataset = {
  '00080020': v('DA', '20211231'),
  '00080030': v('TM', '235959.5'),
  '00080050': v('SH', 'acc-003'),
  '00081030': v('LO', 'Head, neck'),
  '0020000D': ui(ST3),
  '00200010': v('SH', 'S3'),
};
export const STUDY_4: DicomJsonDataset = {
  '00080020': v('DA', '19991231'),
  '00080030': v('TM', '120000'),
  '00080050': v('SH', 'ACC-004'),
  '00080090': pn({ Alphabetic: 'Doe^Jane' }),
  '00081030': v('LO', STUDY4_DESCRIPTION),
  '0020000D': ui(ST4),
};

const requestItem = (sps: string, rp: string): DicomJsonDataset => ({ '00400009': v('SH', sps), '00401001': v('SH', rp) });

export const SERIES_11: DicomJsonDataset = {
  '00080021': v('DA', '20200115'),
  '00080060': v('CS', 'CT'),
  '0008103E': v('LO', 'Axial'),
  '00180015': v('CS', 'CHEST'),
  '0020000E': ui(SE11),
  '00200011': v('IS', 1),
  '00400244': v('DA', '20200115'),
  '00400245': v('TM', '101000'),
  '00400275': { vr: 'SQ', Value: [requestItem('SPS-1', 'RP-1'), requestItem('SPS-2', 'RP-2')] },
};
export const SERIES_12: DicomJsonDataset = {
  '00080060': v('CS', 'PT'),
  '0008103E': v('LO', 'PET WB'),
  '0020000E': ui(SE12),
  '00200011': v('IS', 2),
};
export const SERIES_21: DicomJsonDataset = {
  '00080060': v('CS', 'MR'),
  '0008103E': v('LO', 'T1 sag'),
  '0020000E': ui(SE21),
  '00200011': v('IS', 1),
  '00400244': v('DA', '20210620'),
  '00400245': v('TM', '083500'),
  '00400275': { vr: 'SQ', Value: [requestItem('SPS-3', 'RP-3')] },
};
export const SERIES_31: DicomJsonDataset = {
  '00080060': v('CS', 'CT'),
  '0020000E': ui(SE31),
  '00200011': v('IS', '03'),
};
export const SERIES_41: DicomJsonDataset = {
  '00080060': v('CS', 'MR'),
  '00181000': v('LO', 'SN-41'), // DeviceSerialNumber: series level, not in the index's own table
  '0020000E': ui(SE41),
  '00200011': v('IS', 1),
};

const image = (n: number | string | undefined): DicomJsonDataset => ({
  ...(n === undefined ? {} : { '00200013': v('IS', n) }),
  '00280010': v('US', 512),
  '00280011': v('US', 512),
  '00280100': v('US', 16),
});

export interface RecordOptions {
  blobKey?: string;
  sha256?: string;
  sopClassUID?: string;
}

/** An InstanceRecord whose dataset is the union of its levels' attributes. */
export function instanceRecord(
  levels: DicomJsonDataset[],
  sopInstanceUID: string,
  sopClassUID: string,
  own: DicomJsonDataset = {},
  options: RecordOptions = {},
): InstanceRecord {
  const dataset: DicomJsonDataset = Object.assign({}, ...levels, {
    '00080016': ui(options.sopClassUID ?? sopClassUID),
    '00080018': ui(sopInstanceUID),
    ...own,
  });
  const first = (tag: string) => String(dataset[tag]!.Value![0]);
  return {
    studyInstanceUID: first('0020000D'),
    seriesInstanceUID: first('0020000E'),
    sopInstanceUID,
    sopClassUID: options.sopClassUID ?? sopClassUID,
    transferSyntaxUID: EXPLICIT_LE,
    dataset,
    blobKey: options.blobKey ?? `blob-${sopInstanceUID}`,
    size: 1000,
    sha256: options.sha256 ?? `sha-${sopInstanceUID}`,
    receivedAt: new Date('2024-01-02T03:04:05Z'),
  };
}

const L11 = [PATIENT_JP, STUDY_1, SERIES_11];
const L12 = [PATIENT_JP, STUDY_1, SERIES_12];
const L21 = [PATIENT_DE, STUDY_2, SERIES_21];
const L31 = [PATIENT_ES, STUDY_3, SERIES_31];
const L41 = [PATIENT_DE, STUDY_4, SERIES_41];

export const RECORD: Record<string, InstanceRecord> = {
  [I111]: instanceRecord(L11, I111, CT_IMAGE, { ...image(1), '0008002A': v('DT', '20200115101512.123') }),
  [I112]: instanceRecord(L11, I112, CT_IMAGE, { ...image(2), '0008002A': v('DT', '20200115111500+0100') }),
  [I113]: instanceRecord(L11, I113, CT_IMAGE, { ...image(3), '00091001': v('LO', 'private value') }),
  [I211]: instanceRecord(L21, I211, MR_IMAGE, image('1')),
  [I212]: instanceRecord(L21, I212, MR_IMAGE, image('2')),
  [I121]: instanceRecord(L12, I121, PET_IMAGE, { ...image(1), '00280008': v('IS', 1) }),
  [I311]: instanceRecord(L31, I311, CT_IMAGE, image(undefined)),
  [I411]: instanceRecord(L41, I411, MR_IMAGE, image(1)),
};

export const BATCH_1 = [I111, I112, I113, I211, I212].map((uid) => RECORD[uid]!);
export const BATCH_2 = [I121, I311, I411].map((uid) => RECORD[uid]!);

/** The levels of each fixture instance, to build variants (replacements, conflicts). */
export const LEVELS_OF = { SE11: L11, SE12: L12, SE21: L21, SE31: L31, SE41: L41 };
