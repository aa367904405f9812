// How the SQLite index reads an instance's reference (StoredInstanceRef) from its rows: the columns, the joins
// a retrieve scope walks, and the row mapping. Shared by the store's reads (sqlite-index-store.ts) and removal
// (remove-instances.ts), which must select exactly what listInstances() would.

import type { InstanceLayout, StoredInstanceRef } from '../index-store.js';

export interface ExistingInstanceRow {
  pk: number;
  series_pk: number;
  study_pk: number;
  study_uid: string;
  series_uid: string;
  sop_uid: string;
  sop_class_uid: string;
  transfer_syntax_uid: string;
  blob_key: string;
  size: number;
  sha256: string;
  layout: string | null;
}

/** The columns toRef() reads, from instances i, series se, studies s. */
export const REF_COLUMNS =
  'i.pk, i.series_pk, i.study_pk, s.study_uid, se.series_uid, i.sop_uid, i.sop_class_uid, ' +
  'i.transfer_syntax_uid, i.blob_key, i.size, i.sha256, i.layout';
export const REF_FROM = 'FROM instances i JOIN series se ON se.pk = i.series_pk JOIN studies s ON s.pk = i.study_pk';
// Retrieval of a study or series walks down from the study (CROSS JOIN fixes SQLite's join order): the unique
// study_uid, then series by (study_pk, series_uid), then instances_series; never a scan of the study's
// instances filtered by series.
export const SCOPE_FROM =
  'FROM studies s CROSS JOIN series se ON se.study_pk = s.pk CROSS JOIN instances i ON i.series_pk = se.pk';

export function toRef(row: ExistingInstanceRow): StoredInstanceRef {
  return {
    studyInstanceUID: row.study_uid,
    seriesInstanceUID: row.series_uid,
    sopInstanceUID: row.sop_uid,
    sopClassUID: row.sop_class_uid,
    transferSyntaxUID: row.transfer_syntax_uid,
    blobKey: row.blob_key,
    size: row.size,
    sha256: row.sha256,
    ...(row.layout === null ? {} : { layout: JSON.parse(row.layout) as InstanceLayout }),
  };
}
