// The study_keys table (migration V3) as statements: what SqliteStudyKeyring and the KEK rotation
// (storage/keys/kek-rotation.ts, through StudyKeyRewrapTarget) read and write. Only bound parameters.

import type { Database } from 'better-sqlite3-multiple-ciphers';
import type { KeyProvider } from '../../storage/keys/key-provider.js';
import type { WrappedKeyRows } from '../../storage/keys/kek-rotation.js';

export interface StudyKeyRow {
  id: Buffer;
  study_uid: string;
  kek_version: string | null;
  wrapped: Buffer | null;
  created_at: string;
  destroyed_at: string | null;
}

/** The wrap context of a study key: binds the wrapped bytes to the row's id. */
export const studyKeyContext = (id: Buffer): string => `dicomvault study-key|${id.toString('hex')}`;

/** The error of the V3 triggers: the key was wrapped under a version a rotation has closed. */
export const isClosedKekVersionError = (e: unknown): boolean =>
  (e as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_TRIGGER' && /KEK version closed/.test((e as Error).message);

const COLUMNS = 'id, study_uid, kek_version, wrapped, created_at, destroyed_at';

export class StudyKeyTable implements WrappedKeyRows {
  private readonly sql;

  constructor(private readonly db: Database) {
    const p = (s: string) => db.prepare(s);
    this.sql = {
      byStudy: p(`SELECT ${COLUMNS} FROM study_keys WHERE study_uid = ?`),
      byId: p(`SELECT ${COLUMNS} FROM study_keys WHERE id = ?`),
      insert: p(
        'INSERT INTO study_keys (id, study_uid, kek_version, wrapped, created_at) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT (study_uid) DO NOTHING',
      ),
      // One statement (issue 4): the wrapped key is gone and the study marked erased together. A study without
      // a key yet gets a tombstone row, so it stays erased too.
      destroy: p(
        'INSERT INTO study_keys (id, study_uid, kek_version, wrapped, created_at, destroyed_at) VALUES (?, ?, NULL, NULL, ?, ?) ' +
          'ON CONFLICT (study_uid) DO UPDATE SET kek_version = NULL, wrapped = NULL, ' +
          'destroyed_at = coalesce(study_keys.destroyed_at, excluded.destroyed_at) RETURNING id',
      ),
      anyUnder: p(`SELECT ${COLUMNS} FROM study_keys WHERE kek_version = ? LIMIT 1`),
      isErased: p('SELECT destroyed_at IS NOT NULL FROM study_keys WHERE study_uid = ?').pluck(),
      countByVersion: p('SELECT kek_version AS version, count(*) AS count FROM study_keys GROUP BY kek_version'),
      closeVersion: p('INSERT INTO closed_kek_versions (version, closed_at) VALUES (?, ?) ON CONFLICT (version) DO NOTHING'),
      // Compare-and-swap: a row destroyed or re-wrapped meanwhile is left alone.
      rewrap: p('UPDATE study_keys SET kek_version = ?, wrapped = ? WHERE id = ? AND kek_version = ? AND wrapped = ?'),
    };
  }

  byStudy(studyUid: string): StudyKeyRow | undefined {
    return this.sql.byStudy.get(studyUid) as StudyKeyRow | undefined;
  }

  byId(id: Buffer): StudyKeyRow | undefined {
    return this.sql.byId.get(id) as StudyKeyRow | undefined;
  }

  /** False when the study already has a row (another request or process was first). */
  insert(id: Buffer, studyUid: string, kekVersion: string, wrapped: Buffer, createdAt: Date): boolean {
    return this.sql.insert.run(id, studyUid, kekVersion, wrapped, createdAt.toISOString()).changes === 1;
  }

  /** Erases the study's key; returns the key id (the tombstone's, when the study had none). */
  destroy(studyUid: string, newId: Buffer, now: Date): Buffer {
    const at = now.toISOString();
    return this.sql.destroy.pluck().get(newId, studyUid, at, at) as Buffer;
  }

  /** One key wrapped under `version`, if any (the start-up probe). */
  anyUnder(version: string): StudyKeyRow | undefined {
    return this.sql.anyUnder.get(version) as StudyKeyRow | undefined;
  }

  isErased(studyUid: string): boolean {
    return this.sql.isErased.get(studyUid) === 1;
  }

  /** How many keys each KEK version wraps; `version: null` counts erased studies. */
  countByVersion(): { version: string | null; count: number }[] {
    return this.sql.countByVersion.all() as { version: string | null; count: number }[];
  }

  countUnder(versions: readonly string[]): number {
    if (versions.length === 0) return 0;
    const sql = `SELECT count(*) FROM study_keys WHERE kek_version IN (${versions.map(() => '?').join(', ')})`;
    return this.db.prepare(sql).pluck().get(...versions) as number;
  }

  closeVersions(versions: readonly string[], now = new Date()): void {
    this.db.transaction(() => {
      for (const v of versions) this.sql.closeVersion.run(v, now.toISOString());
    }).immediate();
  }

  /**
   * Re-wraps up to `limit` keys wrapped under `versions` with the provider's current version, written in one
   * transaction. Returns how many keys it read (0: none left; a row destroyed meanwhile is skipped). A key that fails to unwrap stops the rotation
   * (its error names the row): retiring the version would lose it.
   */
  async rewrapBatch(versions: readonly string[], provider: KeyProvider, limit: number): Promise<number> {
    if (versions.length === 0) return 0;
    const sql = `SELECT id, kek_version, wrapped FROM study_keys WHERE kek_version IN (${versions.map(() => '?').join(', ')}) LIMIT ?`;
    const rows = this.db.prepare(sql).all(...versions, limit) as Pick<StudyKeyRow, 'id' | 'kek_version' | 'wrapped'>[];
    const updates: { id: Buffer; from: string; old: Buffer; to: string; wrapped: Buffer }[] = [];
    for (const row of rows) {
      const context = studyKeyContext(row.id);
      let key: Buffer;
      try {
        key = await provider.unwrap({ kekVersion: row.kek_version!, wrapped: row.wrapped! }, context);
      } catch (e) {
        throw new Error(`study key ${row.id.toString('hex')} (KEK ${row.kek_version}) does not unwrap: ${(e as Error).message}`, { cause: e });
      }
      try {
        const next = await provider.wrap(key, context);
        updates.push({ id: row.id, from: row.kek_version!, old: row.wrapped!, to: next.kekVersion, wrapped: next.wrapped });
      } finally {
        key.fill(0);
      }
    }
    this.db
      .transaction(() => {
        for (const u of updates) this.sql.rewrap.run(u.to, u.wrapped, u.id, u.from, u.old);
      })
      .immediate();
    return rows.length;
  }
}
