// Takes an index file back to what migration 3 left (no V4 tables, indexes or columns), so tests can run V4 again
// on existing data. Must follow src/index/sqlite/migrations.ts V4.
import type { Database } from 'better-sqlite3-multiple-ciphers';

export function undoMigrationV4(db: Database): void {
  db.exec(`
    DROP TABLE share_sessions; DROP TABLE shares; DROP TABLE study_labels;
    DROP INDEX studies_institution; DROP INDEX studies_referring_physician;
    ALTER TABLE studies DROP COLUMN institution; ALTER TABLE studies DROP COLUMN referring_physician;
    ALTER TABLE studies DROP COLUMN policy_accession_number; ALTER TABLE studies DROP COLUMN policy_patient_id;
    ALTER TABLE studies DROP COLUMN policy_study_date; ALTER TABLE studies DROP COLUMN confidentiality;
  `);
}
