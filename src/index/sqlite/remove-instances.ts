// IndexStore.removeInstances() for the SQLite index (issue 6: DELETE and IOCM rejection). Kept out of
// sqlite-index-store.ts so the store stays about reads and commit; the store runs remove() inside its own
// transaction and lends it the commit's recount statements, so a series or study that keeps instances gets
// its derived attributes exactly as a commit would have left them.
//
// Records come back in insertion (pk) order, not retrieve order: a restore (commit of the records) then
// rebuilds each new patient, study and series row from the same first instance as the original, so the
// level documents and the study's policy columns come back as they were.

import type { Database, Statement } from 'better-sqlite3-multiple-ciphers';
import type { DicomJsonDataset } from '../../dicom/json-model.js';
import type { InstanceRecord, RemovedInstances, RetrieveScope } from '../index-store.js';
import { REF_COLUMNS, REF_FROM, SCOPE_FROM, toRef, type ExistingInstanceRow } from './instance-refs.js';

export interface RecountHooks {
  /** NumberOfSeriesRelatedInstances of a series that keeps instances. */
  recountSeries(seriesPk: number): void;
  /** ModalitiesInStudy, SOPClassesInStudy and the counts of a study that keeps instances. */
  recountStudy(studyPk: number): void;
}

interface RemovedRow extends ExistingInstanceRow {
  patient_pk: number;
  received_at: number;
  dataset: string;
}

// As listInstances() selects a scope (instance-refs.ts), in insertion order.
const COLUMNS = `${REF_COLUMNS}, s.patient_pk, i.received_at, i.dataset`;

function toRecord(row: RemovedRow): InstanceRecord {
  return { ...toRef(row), dataset: JSON.parse(row.dataset) as DicomJsonDataset, receivedAt: new Date(row.received_at) };
}

function prepare(db: Database) {
  const p = (s: string): Statement => db.prepare(s);
  return {
    study: p(`SELECT ${COLUMNS} ${SCOPE_FROM} WHERE s.study_uid = ? ORDER BY i.pk`),
    series: p(`SELECT ${COLUMNS} ${SCOPE_FROM} WHERE s.study_uid = ? AND se.series_uid = ? ORDER BY i.pk`),
    instance: p(`SELECT ${COLUMNS} ${REF_FROM} WHERE s.study_uid = ? AND se.series_uid = ? AND i.sop_uid = ?`),
    studyInstance: p(`SELECT ${COLUMNS} ${REF_FROM} WHERE s.study_uid = ? AND i.sop_uid = ?`),
    deleteInstance: p('DELETE FROM instances WHERE pk = ?'),
    deleteWords: p('DELETE FROM person_name_words WHERE level = ? AND owner_pk = ?'),
    seriesHasInstances: p('SELECT EXISTS (SELECT 1 FROM instances WHERE series_pk = ?)').pluck(),
    deleteRequestAttributes: p('DELETE FROM series_request_attributes WHERE series_pk = ?'),
    deleteSeries: p('DELETE FROM series WHERE pk = ?'),
    studyHasSeries: p('SELECT EXISTS (SELECT 1 FROM series WHERE study_pk = ?)').pluck(),
    studySettings: p(
      'SELECT s.study_uid, s.confidentiality, (SELECT json_group_array(label) FROM study_labels WHERE study_pk = s.pk) AS labels ' +
        'FROM studies s WHERE s.pk = ?',
    ),
    deleteModalities: p('DELETE FROM study_modalities WHERE study_pk = ?'),
    deleteSopClasses: p('DELETE FROM study_sop_classes WHERE study_pk = ?'),
    deleteLabels: p('DELETE FROM study_labels WHERE study_pk = ?'),
    deleteStudy: p('DELETE FROM studies WHERE pk = ?'),
    patientHasStudies: p('SELECT EXISTS (SELECT 1 FROM studies WHERE patient_pk = ?)').pluck(),
    deletePatient: p('DELETE FROM patients WHERE pk = ?'),
  };
}

export class InstanceRemover {
  private readonly sql: ReturnType<typeof prepare>;

  constructor(
    db: Database,
    private readonly hooks: RecountHooks,
  ) {
    this.sql = prepare(db);
  }

  /** Must run inside a transaction (the store's): half a removal would leave counts that lie. */
  remove(scope: RetrieveScope): RemovedInstances {
    const rows = this.rowsOf(scope);
    const series = new Set<number>();
    const studies = new Map<number, number>(); // study pk -> patient pk
    for (const row of rows) {
      this.sql.deleteInstance.run(row.pk);
      this.sql.deleteWords.run('instance', row.pk);
      series.add(row.series_pk);
      studies.set(row.study_pk, row.patient_pk);
    }
    for (const pk of series) {
      if (this.sql.seriesHasInstances.get(pk) === 1) {
        this.hooks.recountSeries(pk);
        continue;
      }
      this.sql.deleteWords.run('series', pk);
      this.sql.deleteRequestAttributes.run(pk);
      this.sql.deleteSeries.run(pk);
    }
    const removedStudies: RemovedInstances['removedStudies'] = [];
    const patients = new Set<number>();
    for (const [pk, patientPk] of studies) {
      if (this.sql.studyHasSeries.get(pk) === 1) {
        this.hooks.recountStudy(pk);
        continue;
      }
      removedStudies.push(this.deleteStudy(pk));
      patients.add(patientPk);
    }
    for (const pk of patients) {
      if (this.sql.patientHasStudies.get(pk) === 1) continue;
      this.sql.deleteWords.run('patient', pk);
      this.sql.deletePatient.run(pk);
    }
    return { records: rows.map(toRecord), removedStudies };
  }

  private rowsOf(scope: RetrieveScope): RemovedRow[] {
    const { studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop } = scope;
    const rows =
      sop !== undefined
        ? series === undefined
          ? this.sql.studyInstance.all(study, sop)
          : this.sql.instance.all(study, series, sop)
        : series === undefined
          ? this.sql.study.all(study)
          : this.sql.series.all(study, series);
    return rows as RemovedRow[];
  }

  /** Deletes an emptied study and its child rows; returns what an administrator had set on it. */
  private deleteStudy(pk: number): RemovedInstances['removedStudies'][number] {
    const row = this.sql.studySettings.get(pk) as { study_uid: string; confidentiality: string; labels: string };
    for (const statement of [this.sql.deleteModalities, this.sql.deleteSopClasses, this.sql.deleteLabels]) statement.run(pk);
    this.sql.deleteWords.run('study', pk);
    this.sql.deleteStudy.run(pk);
    // Sorted here, not by SQL: JS order (UTF-16), as studyAttributes() and the memory store have labels.
    return { studyInstanceUID: row.study_uid, labels: (JSON.parse(row.labels) as string[]).sort(), confidentiality: row.confidentiality };
  }
}
