// The default LifecycleStore (index/lifecycle-store.ts): retention, legal holds, the bin, kept settings of removed
// studies and tombstones in the index file (migration V5), on the SqliteIndexStore's connection (its `database`),
// as the share store does (sqlite-share-store.ts). Being the same connection is the point: transaction() wraps
// IndexStore.removeInstances() and addToBin() in one SQLite transaction, so an instance is never in neither place
// nor in both. Times are ms since the epoch; a binned InstanceRecord is JSON with receivedAt in ms.

import type { Database, Statement } from 'better-sqlite3-multiple-ciphers';
import type { InstanceRecord, RetrieveScope } from '../index-store.js';
import type {
  BinnedInstance,
  HoldScope,
  LegalHold,
  LifecycleStore,
  RemovalCode,
  RemovalInfo,
  StudyRetention,
  Tombstone,
} from '../lifecycle-store.js';

interface HoldRow {
  id: string;
  name: string;
  scope: string;
  target: string;
  reason: string;
  placed_by: string;
  placed_at: number;
  lifted_by: string | null;
  lifted_at: number | null;
  lift_reason: string | null;
}

interface RemovalColumns {
  removal_code: string;
  removed_by: string;
  reason: string | null;
  removed_at: number;
  purge_after: number;
}

interface BinRow extends RemovalColumns {
  record: string;
  patient_id: string;
}

interface TombstoneRow extends RemovalColumns {
  sop_uid: string;
  study_uid: string;
  series_uid: string;
  sop_class_uid: string;
  sha256: string;
  size: number;
  purged_at: number;
  purged_by: string;
}

const HOLD_COLUMNS = 'id, name, scope, target, reason, placed_by, placed_at, lifted_by, lifted_at, lift_reason';
const REMOVAL_COLUMNS = 'removal_code, removed_by, reason, removed_at, purge_after';
const BIN_COLUMNS = `sop_uid, study_uid, series_uid, patient_id, record, ${REMOVAL_COLUMNS}`;
const TOMBSTONE_COLUMNS = `sop_uid, study_uid, series_uid, sop_class_uid, sha256, size, ${REMOVAL_COLUMNS}, purged_at, purged_by`;
const placeholders = (columns: string) => columns.split(', ').map(() => '?').join(', ');
/** Newest first; rowid breaks ties of one millisecond in insertion order. */
const NEWEST_FIRST = 'ORDER BY placed_at DESC, rowid DESC';
/** Removal order: the time, then insertion (rowid) within one removal. */
const REMOVAL_ORDER = 'ORDER BY removed_at, rowid';

/**
 * The WHERE of a retrieve scope over a table with study_uid, series_uid and sop_uid columns (bin, tombstones):
 * one statement per depth, each starting from an index (sop_uid, or (study_uid, series_uid)).
 */
const SCOPE_WHERE = {
  study: 'study_uid = ?',
  series: 'study_uid = ? AND series_uid = ?',
  instance: 'sop_uid = ? AND study_uid = ? AND (? IS NULL OR series_uid = ?)',
};
type ScopeDepth = keyof typeof SCOPE_WHERE;

function scopeParams(scope: RetrieveScope): { depth: ScopeDepth; params: (string | null)[] } {
  const { studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop } = scope;
  if (sop !== undefined) return { depth: 'instance', params: [sop, study, series ?? null, series ?? null] };
  return series === undefined ? { depth: 'study', params: [study] } : { depth: 'series', params: [study, series] };
}

function scopeStatements(db: Database, sql: (where: string) => string): Record<ScopeDepth, Statement> {
  return {
    study: db.prepare(sql(SCOPE_WHERE.study)),
    series: db.prepare(sql(SCOPE_WHERE.series)),
    instance: db.prepare(sql(SCOPE_WHERE.instance)),
  };
}

function toHold(row: HoldRow): LegalHold {
  return {
    id: row.id,
    name: row.name,
    scope: row.scope as HoldScope,
    target: row.target,
    reason: row.reason,
    placedBy: row.placed_by,
    placedAt: new Date(row.placed_at),
    ...(row.lifted_by === null ? {} : { liftedBy: row.lifted_by }),
    ...(row.lifted_at === null ? {} : { liftedAt: new Date(row.lifted_at) }),
    ...(row.lift_reason === null ? {} : { liftReason: row.lift_reason }),
  };
}

const removalValues = (r: RemovalInfo) => [r.code, r.by, r.reason ?? null, r.at.getTime(), r.purgeAfter.getTime()];

function toRemoval(row: RemovalColumns): RemovalInfo {
  return {
    code: row.removal_code as RemovalCode,
    by: row.removed_by,
    ...(row.reason === null ? {} : { reason: row.reason }),
    at: new Date(row.removed_at),
    purgeAfter: new Date(row.purge_after),
  };
}

/** The record as JSON: everything as commit() takes it, receivedAt as ms (JSON has no dates). */
const recordJson = (r: InstanceRecord): string => JSON.stringify({ ...r, receivedAt: r.receivedAt.getTime() });

function toBinned(row: BinRow): BinnedInstance {
  const parsed = JSON.parse(row.record) as Omit<InstanceRecord, 'receivedAt'> & { receivedAt: number };
  return { record: { ...parsed, receivedAt: new Date(parsed.receivedAt) }, removal: toRemoval(row), patientId: row.patient_id };
}

function toTombstone(row: TombstoneRow): Tombstone {
  return {
    studyInstanceUID: row.study_uid,
    seriesInstanceUID: row.series_uid,
    sopInstanceUID: row.sop_uid,
    sopClassUID: row.sop_class_uid,
    sha256: row.sha256,
    size: row.size,
    removal: toRemoval(row),
    purgedAt: new Date(row.purged_at),
    purgedBy: row.purged_by,
  };
}

function prepare(db: Database) {
  const p = (s: string): Statement => db.prepare(s);
  return {
    getRetention: p('SELECT study_uid, keep_until, rules, computed_at FROM study_retention WHERE study_uid = ?'),
    putRetention: p(
      'INSERT INTO study_retention (study_uid, keep_until, rules, computed_at) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (study_uid) DO UPDATE SET keep_until = excluded.keep_until, rules = excluded.rules, computed_at = excluded.computed_at',
    ),
    placeHold: p(`INSERT INTO legal_holds (${HOLD_COLUMNS}) VALUES (${placeholders(HOLD_COLUMNS)})`),
    liftHold: p(
      `UPDATE legal_holds SET lifted_by = ?, lifted_at = ?, lift_reason = ? WHERE id = ? AND lifted_at IS NULL RETURNING ${HOLD_COLUMNS}`,
    ),
    getHold: p(`SELECT ${HOLD_COLUMNS} FROM legal_holds WHERE id = ?`),
    listHolds: p(
      `SELECT ${HOLD_COLUMNS} FROM legal_holds WHERE (@scope IS NULL OR scope = @scope) AND (@target IS NULL OR target = @target) ` +
        `AND (@all = 1 OR lifted_at IS NULL) ${NEWEST_FIRST}`,
    ),
    activeHoldsFor: p(
      `SELECT ${HOLD_COLUMNS} FROM legal_holds WHERE lifted_at IS NULL AND ` +
        `((scope = 'study' AND target = @study) OR (scope = 'patient' AND @patient <> '' AND target = @patient)) ${NEWEST_FIRST}`,
    ),
    addToBin: p(`INSERT INTO bin (${BIN_COLUMNS}) VALUES (${placeholders(BIN_COLUMNS)})`),
    listBin: scopeStatements(db, (where) => `SELECT ${BIN_COLUMNS} FROM bin WHERE ${where} ${REMOVAL_ORDER}`),
    listPurgeable: p(`SELECT ${BIN_COLUMNS} FROM bin WHERE purge_after <= ? ORDER BY purge_after, rowid LIMIT ?`),
    removeFromBin: p('DELETE FROM bin WHERE sop_uid = ?'),
    binnedStudies: p(
      'SELECT study_uid, COUNT(*) AS instances, MIN(removed_at) AS oldest FROM bin GROUP BY study_uid ORDER BY oldest, study_uid LIMIT ?',
    ),
    studyHasBinned: p('SELECT EXISTS (SELECT 1 FROM bin WHERE study_uid = ?)').pluck(),
    isBinned: p('SELECT EXISTS (SELECT 1 FROM bin WHERE sop_uid = ?)').pluck(),
    saveRemovedStudy: p(
      'INSERT INTO removed_studies (study_uid, labels, confidentiality) VALUES (?, ?, ?) ' +
        'ON CONFLICT (study_uid) DO UPDATE SET labels = excluded.labels, confidentiality = excluded.confidentiality',
    ),
    takeRemovedStudy: p('DELETE FROM removed_studies WHERE study_uid = ? RETURNING labels, confidentiality'),
    addTombstone: p(`INSERT INTO tombstones (${TOMBSTONE_COLUMNS}) VALUES (${placeholders(TOMBSTONE_COLUMNS)})`),
    listTombstones: scopeStatements(db, (where) => `SELECT ${TOMBSTONE_COLUMNS} FROM tombstones WHERE ${where} ORDER BY purged_at, rowid`),
    isPurged: scopeStatements(db, (where) => `SELECT EXISTS (SELECT 1 FROM tombstones WHERE ${where})`),
  };
}

export class SqliteLifecycleStore implements LifecycleStore {
  private readonly sql: ReturnType<typeof prepare>;

  constructor(private readonly db: Database) {
    this.sql = prepare(db);
  }

  /**
   * BEGIN IMMEDIATE, as the index's own writes: a deferred transaction that reads and then writes fails with
   * SQLITE_BUSY when another connection (the CLI) wrote in between. Nested (already in a transaction on this
   * connection), better-sqlite3 runs it as a savepoint: an error rolls back this part only, unless it propagates.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  getRetention(studyInstanceUID: string): StudyRetention | undefined {
    const row = this.sql.getRetention.get(studyInstanceUID) as
      | { study_uid: string; keep_until: string; rules: string; computed_at: number }
      | undefined;
    if (row === undefined) return undefined;
    return {
      studyInstanceUID: row.study_uid,
      keepUntil: row.keep_until === 'indefinite' ? 'indefinite' : new Date(row.keep_until),
      rules: JSON.parse(row.rules) as string[],
      computedAt: new Date(row.computed_at),
    };
  }

  putRetention(r: StudyRetention): void {
    const keepUntil = r.keepUntil === 'indefinite' ? 'indefinite' : r.keepUntil.toISOString();
    this.sql.putRetention.run(r.studyInstanceUID, keepUntil, JSON.stringify(r.rules), r.computedAt.getTime());
  }

  placeHold(h: LegalHold): void {
    this.sql.placeHold.run(
      h.id,
      h.name,
      h.scope,
      h.target,
      h.reason,
      h.placedBy,
      h.placedAt.getTime(),
      h.liftedBy ?? null,
      h.liftedAt?.getTime() ?? null,
      h.liftReason ?? null,
    );
  }

  liftHold(id: string, by: string, reason: string, at: Date): LegalHold | undefined {
    const row = this.sql.liftHold.get(by, at.getTime(), reason, id) as HoldRow | undefined;
    return row && toHold(row);
  }

  getHold(id: string): LegalHold | undefined {
    const row = this.sql.getHold.get(id) as HoldRow | undefined;
    return row && toHold(row);
  }

  listHolds(filter: { scope?: HoldScope; target?: string; includeLifted?: boolean } = {}): LegalHold[] {
    const params = { scope: filter.scope ?? null, target: filter.target ?? null, all: filter.includeLifted === true ? 1 : 0 };
    return (this.sql.listHolds.all(params) as HoldRow[]).map(toHold);
  }

  activeHoldsFor(studyInstanceUID: string, patientId: string): LegalHold[] {
    return (this.sql.activeHoldsFor.all({ study: studyInstanceUID, patient: patientId }) as HoldRow[]).map(toHold);
  }

  addToBin(items: BinnedInstance[]): void {
    this.transaction(() => {
      for (const { record: r, removal, patientId } of items) {
        this.sql.addToBin.run(r.sopInstanceUID, r.studyInstanceUID, r.seriesInstanceUID, patientId, recordJson(r), ...removalValues(removal));
      }
    });
  }

  saveRemovedStudies(studies: { studyInstanceUID: string; labels: string[]; confidentiality: string }[]): void {
    this.transaction(() => {
      for (const s of studies) this.sql.saveRemovedStudy.run(s.studyInstanceUID, JSON.stringify(s.labels), s.confidentiality);
    });
  }

  takeRemovedStudy(studyInstanceUID: string): { labels: string[]; confidentiality: string } | undefined {
    const row = this.sql.takeRemovedStudy.get(studyInstanceUID) as { labels: string; confidentiality: string } | undefined;
    return row && { labels: JSON.parse(row.labels) as string[], confidentiality: row.confidentiality };
  }

  listBin(scope: RetrieveScope): BinnedInstance[] {
    const { depth, params } = scopeParams(scope);
    return (this.sql.listBin[depth].all(...params) as BinRow[]).map(toBinned);
  }

  listPurgeable(before: Date, limit: number): BinnedInstance[] {
    return (this.sql.listPurgeable.all(before.getTime(), limit) as BinRow[]).map(toBinned);
  }

  removeFromBin(sopInstanceUIDs: string[]): number {
    return this.transaction(() => sopInstanceUIDs.reduce((n, uid) => n + this.sql.removeFromBin.run(uid).changes, 0));
  }

  binnedStudies(limit: number): { studyInstanceUID: string; instances: number; oldestRemoval: Date }[] {
    const rows = this.sql.binnedStudies.all(limit) as { study_uid: string; instances: number; oldest: number }[];
    return rows.map((r) => ({ studyInstanceUID: r.study_uid, instances: r.instances, oldestRemoval: new Date(r.oldest) }));
  }

  alreadyBinned(sopInstanceUIDs: string[]): string[] {
    return sopInstanceUIDs.filter((uid) => this.sql.isBinned.get(uid) === 1);
  }

  studyHasBinned(studyInstanceUID: string): boolean {
    return this.sql.studyHasBinned.get(studyInstanceUID) === 1;
  }

  addTombstones(tombstones: Tombstone[]): void {
    this.transaction(() => {
      for (const t of tombstones) {
        this.sql.addTombstone.run(
          t.sopInstanceUID,
          t.studyInstanceUID,
          t.seriesInstanceUID,
          t.sopClassUID,
          t.sha256,
          t.size,
          ...removalValues(t.removal),
          t.purgedAt.getTime(),
          t.purgedBy,
        );
      }
    });
  }

  listTombstones(scope: RetrieveScope): Tombstone[] {
    const { depth, params } = scopeParams(scope);
    return (this.sql.listTombstones[depth].all(...params) as TombstoneRow[]).map(toTombstone);
  }

  isPurged(scope: RetrieveScope): boolean {
    const { depth, params } = scopeParams(scope);
    return this.sql.isPurged[depth].pluck().get(...params) === 1;
  }
}
