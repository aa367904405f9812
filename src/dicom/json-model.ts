// DICOM JSON Model (PS3.18 Annex F): the in-memory shape of every dataset the server builds or returns.
// Keys are 8 uppercase hex digits; each attribute has a VR and at most one of Value, InlineBinary, BulkDataURI.

export interface PersonName {
  Alphabetic?: string;
  Ideographic?: string;
  Phonetic?: string;
}

/** One value of a multi-valued attribute; null stands for an empty value inside a multi-valued one (F.2.5). */
export type DicomJsonValue = string | number | PersonName | DicomJsonDataset | null;

export interface DicomJsonAttribute {
  vr: string;
  Value?: DicomJsonValue[];
  InlineBinary?: string;
  BulkDataURI?: string;
}

export type DicomJsonDataset = Record<string, DicomJsonAttribute>;

/** The first value of an attribute as a string, or undefined when absent or empty. */
export function firstString(ds: DicomJsonDataset, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'object' && 'Alphabetic' in v) return (v as PersonName).Alphabetic;
  return undefined;
}

/** The first value of an attribute as a number, or undefined. */
export function firstNumber(ds: DicomJsonDataset, tag: string): number | undefined {
  const v = ds[tag]?.Value?.[0];
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}
