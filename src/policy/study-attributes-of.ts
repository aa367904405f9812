// The policy attributes of a study as they are, or would be, once an instance is stored in it. One function for
// every party: STOW authorisation evaluates a policy on its result before the store, and both index stores
// (sqlite/sqlite-index-store.ts columns, memory/memory-index-store.ts) keep exactly its result at commit, so
// the decision made before a store and the rows a later QIDO filters on cannot disagree.
//
// Values are normalised as the QIDO matching columns are (index/query/normalize.ts): padding spaces trimmed,
// person names folded; absent (or empty) values are '' and 0, never undefined (SECURITY.md 6).

import type { DicomJsonDataset } from '../dicom/json-model.js';
import { normalizeText, personNameGroups, storedDate } from '../index/query/normalize.js';
import type { StudyAttributes } from './study-attributes.js';

const first = (ds: DicomJsonDataset, tag: string): unknown => ds[tag]?.Value?.[0];
const text = (ds: DicomJsonDataset, tag: string): string => normalizeText(first(ds, tag)) ?? '';

/** The Modality (0008,0060) of an instance, normalised as ModalitiesInStudy holds it; undefined when absent. */
export function modalityOf(instanceDataset: DicomJsonDataset): string | undefined {
  return normalizeText(first(instanceDataset, '00080060'));
}

/**
 * The study's attributes after storing `instanceDataset` (its UIDs as the index will record them).
 * - `existing` (the study is stored): its attributes, with this instance's Modality added to `modalities`.
 *   Institution, confidentiality and the other scalars stay those of the study's first instance.
 * - no `existing` (the instance starts the study): everything from the instance; no labels.
 */
export function studyAttributesOf(instanceDataset: DicomJsonDataset, existing: StudyAttributes | undefined): StudyAttributes {
  const modality = modalityOf(instanceDataset);
  if (existing !== undefined) {
    const modalities =
      modality === undefined || existing.modalities.includes(modality)
        ? [...existing.modalities]
        : [...existing.modalities, modality].sort();
    return { ...existing, modalities, labels: [...existing.labels] };
  }
  const date = storedDate(first(instanceDataset, '00080020'));
  return {
    studyInstanceUID: text(instanceDataset, '0020000D'),
    institution: text(instanceDataset, '00080080'),
    referringPhysician: personNameGroups(first(instanceDataset, '00080090'))[0] ?? '',
    modalities: modality === undefined ? [] : [modality],
    accessionNumber: text(instanceDataset, '00080050'),
    patientId: text(instanceDataset, '00100020'),
    studyDate: date === undefined ? 0 : Number(date),
    labels: [],
    confidentiality: text(instanceDataset, '00401008'),
  };
}
