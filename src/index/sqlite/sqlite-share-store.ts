// The default ShareStore (index/share-store.ts): share links and their browser sessions in the index file
// (migration V4: tables shares, share_sessions), on the SqliteIndexStore's connection (its `database`), as the
// study keyring does (sqlite-study-keyring.ts). Only token hashes are stored; times are ms since the epoch.
//
// - redeem() is one UPDATE ... WHERE <usable> RETURNING: two requests (in this process or another) racing for
//   the last use of a link cannot both get it, and an expired or revoked link is never counted.
// - revoke() marks the link and deletes its sessions in one transaction; findSession() also ignores a session
//   whose link is revoked, so a session cannot outlive its link even for a moment.

import type { Database, Statement } from 'better-sqlite3-multiple-ciphers';
import type { ShareRecord, ShareScope, ShareSessionRecord, ShareStore } from '../share-store.js';

interface ShareRow {
  id: string;
  token_hash: string;
  study_uid: string;
  scope: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  max_uses: number | null;
  uses: number;
  second_factor_hash: string | null;
  failed_attempts: number;
  revoked_at: number | null;
  revoked_by: string | null;
  note: string | null;
}

interface SessionRow {
  token_hash: string;
  share_id: string;
  created_at: number;
  expires_at: number;
}

const SHARE_COLUMNS =
  'id, token_hash, study_uid, scope, created_by, created_at, expires_at, max_uses, uses, second_factor_hash, ' +
  'failed_attempts, revoked_at, revoked_by, note';

function toRecord(row: ShareRow): ShareRecord {
  return {
    id: row.id,
    tokenHash: row.token_hash,
    studyInstanceUID: row.study_uid,
    scope: row.scope as ShareScope,
    createdBy: row.created_by,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    maxUses: row.max_uses,
    uses: row.uses,
    ...(row.second_factor_hash === null ? {} : { secondFactorHash: row.second_factor_hash }),
    failedAttempts: row.failed_attempts,
    ...(row.revoked_at === null ? {} : { revokedAt: new Date(row.revoked_at) }),
    ...(row.revoked_by === null ? {} : { revokedBy: row.revoked_by }),
    ...(row.note === null ? {} : { note: row.note }),
  };
}

function toSession(row: SessionRow): ShareSessionRecord {
  return {
    tokenHash: row.token_hash,
    shareId: row.share_id,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
  };
}

export class SqliteShareStore implements ShareStore {
  private readonly sql: Record<
    | 'insert'
    | 'byId'
    | 'byTokenHash'
    | 'redeem'
    | 'failedAttempt'
    | 'listAll'
    | 'listBy'
    | 'revoke'
    | 'deleteSessionsOf'
    | 'addSession'
    | 'findSession'
    | 'deleteExpired',
    Statement
  >;
  private readonly revokeTransaction: (id: string, by: string, at: number) => boolean;

  constructor(db: Database) {
    const p = (s: string) => db.prepare(s);
    this.sql = {
      insert: p(`INSERT INTO shares (${SHARE_COLUMNS}) VALUES (${SHARE_COLUMNS.split(', ').map(() => '?').join(', ')})`),
      byId: p(`SELECT ${SHARE_COLUMNS} FROM shares WHERE id = ?`),
      byTokenHash: p(`SELECT ${SHARE_COLUMNS} FROM shares WHERE token_hash = ?`),
      redeem: p(
        `UPDATE shares SET uses = uses + 1 WHERE id = ? AND revoked_at IS NULL AND expires_at > ? ` +
          `AND (max_uses IS NULL OR uses < max_uses) RETURNING ${SHARE_COLUMNS}`,
      ),
      failedAttempt: p('UPDATE shares SET failed_attempts = failed_attempts + 1 WHERE id = ? RETURNING failed_attempts').pluck(),
      // Newest first; rowid breaks ties of one millisecond in creation order.
      listAll: p(`SELECT ${SHARE_COLUMNS} FROM shares ORDER BY created_at DESC, rowid DESC`),
      listBy: p(`SELECT ${SHARE_COLUMNS} FROM shares WHERE created_by = ? ORDER BY created_at DESC, rowid DESC`),
      revoke: p('UPDATE shares SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL'),
      deleteSessionsOf: p('DELETE FROM share_sessions WHERE share_id = ?'),
      addSession: p('INSERT INTO share_sessions (token_hash, share_id, created_at, expires_at) VALUES (?, ?, ?, ?)'),
      findSession: p(
        'SELECT ss.token_hash, ss.share_id, ss.created_at, ss.expires_at FROM share_sessions ss ' +
          'JOIN shares sh ON sh.id = ss.share_id WHERE ss.token_hash = ? AND sh.revoked_at IS NULL',
      ),
      deleteExpired: p('DELETE FROM share_sessions WHERE expires_at < ?'),
    };
    const revoke = db.transaction((id: string, by: string, at: number) => {
      if (this.sql.revoke.run(at, by, id).changes === 0) return false;
      this.sql.deleteSessionsOf.run(id);
      return true;
    });
    this.revokeTransaction = (id, by, at) => revoke.immediate(id, by, at);
  }

  create(r: ShareRecord): void {
    this.sql.insert.run(
      r.id,
      r.tokenHash,
      r.studyInstanceUID,
      r.scope,
      r.createdBy,
      r.createdAt.getTime(),
      r.expiresAt.getTime(),
      r.maxUses,
      r.uses,
      r.secondFactorHash ?? null,
      r.failedAttempts,
      r.revokedAt?.getTime() ?? null,
      r.revokedBy ?? null,
      r.note ?? null,
    );
  }

  get(id: string): ShareRecord | undefined {
    const row = this.sql.byId.get(id) as ShareRow | undefined;
    return row && toRecord(row);
  }

  findByTokenHash(tokenHash: string): ShareRecord | undefined {
    const row = this.sql.byTokenHash.get(tokenHash) as ShareRow | undefined;
    return row && toRecord(row);
  }

  redeem(id: string, now: Date): ShareRecord | undefined {
    const row = this.sql.redeem.get(id, now.getTime()) as ShareRow | undefined;
    return row && toRecord(row);
  }

  recordFailedAttempt(id: string): number {
    return (this.sql.failedAttempt.get(id) as number | undefined) ?? 0;
  }

  list(filter: { createdBy?: string } = {}): ShareRecord[] {
    const rows = (filter.createdBy === undefined ? this.sql.listAll.all() : this.sql.listBy.all(filter.createdBy)) as ShareRow[];
    return rows.map(toRecord);
  }

  revoke(id: string, by: string, at: Date): boolean {
    return this.revokeTransaction(id, by, at.getTime());
  }

  addSession(s: ShareSessionRecord): void {
    this.sql.addSession.run(s.tokenHash, s.shareId, s.createdAt.getTime(), s.expiresAt.getTime());
  }

  findSession(tokenHash: string): ShareSessionRecord | undefined {
    const row = this.sql.findSession.get(tokenHash) as SessionRow | undefined;
    return row && toSession(row);
  }

  deleteExpiredSessions(before: Date): number {
    return this.sql.deleteExpired.run(before.getTime()).changes;
  }
}
