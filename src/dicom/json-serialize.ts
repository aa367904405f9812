// Writes the DICOM JSON Model with keys in ascending tag order at every nesting level (PS3.18 F.2.1).
// JSON.stringify cannot: JavaScript objects list integer-like keys ("52009229", "30040002") before all
// others, whatever order they were inserted in.

import type { DicomJsonAttribute, DicomJsonDataset } from './json-model.js';

function attribute(a: DicomJsonAttribute): string {
  let out = `{"vr":${JSON.stringify(a.vr)}`;
  if (a.Value !== undefined) {
    const values = a.vr === 'SQ' ? a.Value.map((item) => (item === null ? 'null' : dataset(item as DicomJsonDataset))) : a.Value.map((v) => JSON.stringify(v));
    out += `,"Value":[${values.join(',')}]`;
  }
  if (a.InlineBinary !== undefined) out += `,"InlineBinary":${JSON.stringify(a.InlineBinary)}`;
  if (a.BulkDataURI !== undefined) out += `,"BulkDataURI":${JSON.stringify(a.BulkDataURI)}`;
  return `${out}}`;
}

function dataset(ds: DicomJsonDataset): string {
  const keys = Object.keys(ds).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${attribute(ds[k]!)}`).join(',')}}`;
}

/** One dataset, or an array of them (QIDO results, metadata). */
export function stringifyDicomJson(value: DicomJsonDataset | DicomJsonDataset[]): string {
  return Array.isArray(value) ? `[${value.map(dataset).join(',')}]` : dataset(value);
}
