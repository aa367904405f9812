// IndexStore.retentionFacts() for the SQLite index: what policy/retention.ts needs of one stored study, read
// from the columns commit keeps (study and birth dates normalised as QIDO matches them, the policy columns,
// the derived modality and SOP class lists), so no JSON document is parsed but PatientAge's.

import type { Database, Statement } from 'better-sqlite3-multiple-ciphers';
import type { StudyRetentionFacts } from '../index-store.js';
import { normalizeText } from '../query/normalize.js';

interface FactsRow {
  pk: number;
  study_date: string | null;
  policy_patient_id: string;
  institution: string;
  modalities: string;
  sop_classes: string;
  patient_birth_date: string | null;
  received_at: number;
}

export class RetentionFactsQuery {
  private readonly facts: Statement;
  private readonly ages: Statement;

  constructor(db: Database) {
    this.facts = db.prepare(
      'SELECT s.pk, s.study_date, s.policy_patient_id, s.institution, s.modalities, s.sop_classes, p.patient_birth_date, ' +
        '(SELECT MIN(received_at) FROM instances WHERE study_pk = s.pk) AS received_at ' +
        'FROM studies s JOIN patients p ON p.pk = s.patient_pk WHERE s.study_uid = ?',
    );
    // PatientAge is a study attribute, but each instance may carry its own (the age at that acquisition): the first
    // received instance's that has one. In the order of instances_study_received (migrations.ts V6), so that no
    // sort reads every instance first and the scan stops at the first age.
    this.ages = db
      .prepare(`SELECT json_extract(dataset, '$."00101010".Value[0]') FROM instances WHERE study_pk = ? ORDER BY received_at, pk`)
      .pluck();
  }

  get(studyInstanceUID: string): StudyRetentionFacts | undefined {
    const row = this.facts.get(studyInstanceUID) as FactsRow | undefined;
    if (row === undefined) return undefined;
    let patientAge: string | undefined;
    for (const value of this.ages.iterate(row.pk)) {
      patientAge = normalizeText(value);
      if (patientAge !== undefined) break;
    }
    return {
      ...(row.study_date === null ? {} : { studyDate: row.study_date }),
      receivedAt: new Date(row.received_at),
      ...(row.patient_birth_date === null ? {} : { patientBirthDate: row.patient_birth_date }),
      ...(patientAge === undefined ? {} : { patientAge }),
      patientId: row.policy_patient_id,
      modalities: JSON.parse(row.modalities) as string[],
      institution: row.institution,
      sopClasses: JSON.parse(row.sop_classes) as string[],
    };
  }
}
