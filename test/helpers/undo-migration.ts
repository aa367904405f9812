// Takes an index file back to what an earlier migration left, so tests can run the later ones again on existing
// data. Each must follow its entry in src/index/sqlite/migrations.ts.
import type { Database } from 'better-sqlite3-multiple-ciphers';

/** Back to what migration 4 left: no lifecycle tables (V5). */
export function undoMigrationV5(db: Database): void {
  db.exec('DROP TABLE tombstones; DROP TABLE removed_studies; DROP TABLE bin; DROP TABLE legal_holds; DROP TABLE study_retention;');
}

/** Back to what migration 3 left (no V4 tables, indexes or columns, and none of the later migrations'). */
export function undoMigrationV4(db: Database): void {
  undoMigrationV5(db);
  db.exec(`
    DROP TABLE share_sessions; DROP TABLE shares; DROP TABLE study_labels;
    DROP INDEX studies_institution; DROP INDEX studies_referring_physician;
    ALTER TABLE studies DROP COLUMN institution; ALTER TABLE studies DROP COLUMN referring_physician;
    ALTER TABLE studies DROP COLUMN policy_accession_number; ALTER TABLE studies DROP COLUMN policy_patient_id;
    ALTER TABLE studies DROP COLUMN policy_study_date; ALTER TABLE studies DROP COLUMN confidentiality;
  `);
}
