// A synthetic archive for scale tests and benchmarks: study k has 4 series of 5 CT/MR/PT instances, ten
// family names (accents included), 700 patients, dates spread over 2010-2021, PT only in every fifth study.
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import type { InstanceRecord } from '../../src/index/index-store.js';

export const SERIES_PER_STUDY = 4;
export const INSTANCES_PER_SERIES = 5;
export const FAMILIES = ['García', 'Garner', 'Smith', 'Nguyen', 'Müller', 'Kowalski', 'Rossi', 'Tanaka', 'Okafor', 'Lee'];
const MODALITIES = ['CT', 'MR', 'PT'];

export const studyUid = (k: number) => `2.25.5000.${k}`;
export const studyDate = (k: number) =>
  `${2010 + (k % 12)}${String(1 + (k % 12)).padStart(2, '0')}${String(1 + (k % 28)).padStart(2, '0')}`;

/** The 20 instance records of study k (one STOW request's worth), each dataset extended by `extra`. */
export function syntheticStudy(k: number, extra: DicomJsonDataset = {}): InstanceRecord[] {
  const batch: InstanceRecord[] = [];
  for (let s = 0; s < SERIES_PER_STUDY; s++) {
    for (let i = 0; i < INSTANCES_PER_SERIES; i++) {
      const sop = `${studyUid(k)}.${s}.${i}`;
      batch.push({
        studyInstanceUID: studyUid(k),
        seriesInstanceUID: `${studyUid(k)}.${s}`,
        sopInstanceUID: sop,
        sopClassUID: '1.2.840.10008.5.1.4.1.1.2',
        transferSyntaxUID: '1.2.840.10008.1.2.1',
        blobKey: `blob-${sop}`,
        size: 10_000,
        sha256: `sha-${sop}`,
        receivedAt: new Date(0),
        dataset: {
          '00080020': { vr: 'DA', Value: [studyDate(k)] },
          '00080050': { vr: 'SH', Value: [`ACC${k}`] },
          '00080060': { vr: 'CS', Value: [MODALITIES[(k + s) % (k % 5 === 0 ? 3 : 2)]!] },
          '00100010': { vr: 'PN', Value: [{ Alphabetic: `${FAMILIES[k % FAMILIES.length]}^Given${k}` }] },
          '00100020': { vr: 'LO', Value: [`PID${k % 700}`] },
          '00200013': { vr: 'IS', Value: [i + 1] },
          '0020000D': { vr: 'UI', Value: [studyUid(k)] },
          ...extra,
        },
      });
    }
  }
  return batch;
}
