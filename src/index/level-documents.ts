// What one stored instance contributes to each level of the index (patient, study, series and the
// instance itself), and how patients are told apart. Shared by every IndexStore.

import type { DicomJsonDataset } from '../dicom/json-model.js';
import { splitByLevel } from '../dicom/levels.js';
import type { InstanceRecord } from './index-store.js';
import { normalizeText } from './query/normalize.js';

const uid = (value: string) => ({ vr: 'UI', Value: [value] });

/**
 * Patients are one entity per (PatientID, IssuerOfPatientID); a study without a PatientID gets a
 * patient of its own (undefined key), rather than merging every anonymous study into one patient.
 */
export function patientKey(patientDoc: DicomJsonDataset): string | undefined {
  const id = normalizeText(patientDoc['00100020']?.Value?.[0]);
  if (id === undefined) return undefined;
  return JSON.stringify([id, normalizeText(patientDoc['00100021']?.Value?.[0]) ?? '']);
}

export interface LevelDocuments {
  patient: DicomJsonDataset;
  study: DicomJsonDataset;
  series: DicomJsonDataset;
  /** The whole dataset: includefield may name any instance attribute. */
  instance: DicomJsonDataset;
}

/**
 * The documents an instance contributes to each level. The record's UIDs are authoritative: they
 * overwrite the dataset's, so a level's document always names the entity it belongs to.
 */
export function levelDocuments(r: InstanceRecord): LevelDocuments {
  const split = splitByLevel(r.dataset);
  return {
    patient: split.patient,
    study: { ...split.study, '0020000D': uid(r.studyInstanceUID) },
    series: { ...split.series, '0020000E': uid(r.seriesInstanceUID) },
    instance: {
      ...r.dataset,
      '00080016': uid(r.sopClassUID),
      '00080018': uid(r.sopInstanceUID),
      '0020000D': uid(r.studyInstanceUID),
      '0020000E': uid(r.seriesInstanceUID),
    },
  };
}
