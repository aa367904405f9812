// The default IndexStore: one SQLite file (better-sqlite3-multiple-ciphers: better-sqlite3's API over
// SQLite3 Multiple Ciphers; synchronous, one connection per process). Besides compose.ts, the only importer
// of the driver (DESIGN.md "The shape").
//
// Durability: WAL + synchronous=FULL, so a commit that returned survives a power cut (the blob it
// names is already durable: DESIGN.md two-phase writes). STOW keeps that promise another way (issue 8, group
// commit): writeUnsynced() commits its writes with synchronous=NORMAL (in the log, not flushed, no fsync on the
// event loop), and sync() flushes the log with one fdatasync shared by every request waiting (group-flush.ts);
// STOW awaits it before it relies on a mark or answers. foreign_keys=ON keeps the level tables
// consistent, which is what lets compile-query.ts drop joins it does not need. Writers take the lock
// up front (BEGIN IMMEDIATE) and wait busy_timeout for another process (the CLI) to finish.
//
// Encryption at rest (issue 4; the index holds names, IDs and dates): given a key, the whole file is
// encrypted page by page (open-cipher.ts), the WAL too; the key comes from index-key.ts (wrapped by the KEK).

import Database from 'better-sqlite3-multiple-ciphers';
import type { DicomJsonDataset } from '../../dicom/json-model.js';
import type { EntityLevel } from '../../dicom/levels.js';
import type { StudyAttributes } from '../../policy/study-attributes.js';
import { modalityOf, studyAttributesOf } from '../../policy/study-attributes-of.js';
import type { StudyCondition } from '../../policy/study-condition.js';
import type {
  CommitOutcome,
  DuplicatePolicy,
  IndexStore,
  InstanceLayout,
  InstanceRecord,
  InstanceWithDataset,
  RemovedInstances,
  RetrieveScope,
  SearchResult,
  StoredInstanceRef,
  StudyRetentionFacts,
} from '../index-store.js';
import { levelDocuments, patientKey, type LevelDocuments } from '../level-documents.js';
import type { QidoQuery } from '../query/ast.js';
import { responseDataset, withInstanceDerived, withSeriesDerived, withStudyDerived } from '../query/response-dataset.js';
import { COLUMNS, columnNames, columnValue, nameWords, rowColumns, rowValues } from './columns.js';
import { compileSearch } from './compile-query.js';
import { GroupFlush } from './group-flush.js';
import { LogFileSync } from './log-file-sync.js';
import { REF_COLUMNS, REF_FROM, SCOPE_FROM, toRef, type ExistingInstanceRow } from './instance-refs.js';
import { migrate } from './migrations.js';
import { openCipher } from './open-cipher.js';
import { InstanceRemover } from './remove-instances.js';
import { RetentionFactsQuery } from './retention-facts.js';
import { StatementCache } from './statement-cache.js';

export interface SqliteIndexOptions {
  /** How long a writer waits for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /**
   * The 32-byte index key (index-key.ts): the file is then encrypted (AEGIS-256, open-cipher.ts). Without it the
   * file is plain SQLite (tests, tools); the server always passes one.
   */
  key?: Buffer;
}

interface PageRow {
  pk: number;
  patient_doc: string;
  study_doc: string;
  modalities: string;
  sop_classes: string;
  series_count: number;
  instance_count: number;
  series_doc?: string;
  series_instance_count?: number;
  dataset?: string;
  transfer_syntax_uid?: string;
}

const levelColumns = (level: EntityLevel) => rowColumns(level).flatMap(columnNames);

function insertSql(table: string, fixed: string[], level: EntityLevel): string {
  const columns = [...fixed, ...levelColumns(level)];
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
}

function updateSql(table: string, fixed: string[], level: EntityLevel): string {
  const columns = [...fixed, ...levelColumns(level)];
  return `UPDATE ${table} SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE pk = ?`;
}

/** The policy columns of a study (migration V4), written once from its first instance (study-attributes-of.ts). */
const STUDY_POLICY_COLUMNS = [
  'institution',
  'referring_physician',
  'policy_accession_number',
  'policy_patient_id',
  'policy_study_date',
  'confidentiality',
];
const policyValues = (a: StudyAttributes): (string | number)[] => [
  a.institution,
  a.referringPhysician,
  a.accessionNumber,
  a.patientId,
  a.studyDate,
  a.confidentiality,
];

interface StudyAttributesRow {
  study_uid: string;
  institution: string;
  referring_physician: string;
  modalities: string;
  policy_accession_number: string;
  policy_patient_id: string;
  policy_study_date: number;
  labels: string;
  confidentiality: string;
}

const INSTANCE_FIXED = ['series_pk', 'study_pk', 'transfer_syntax_uid', 'blob_key', 'size', 'sha256', 'received_at', 'dataset', 'layout'];
const INSTANCE_UPDATED = ['transfer_syntax_uid', 'blob_key', 'size', 'sha256', 'received_at', 'dataset', 'layout'];

/** Retrieve order (IndexStore.listInstances): SeriesNumber, series insertion, InstanceNumber, insertion. */
const RETRIEVE_ORDER =
  'ORDER BY se.series_number IS NULL, se.series_number, se.pk, i.instance_number IS NULL, i.instance_number, i.pk';

const layoutJson = (layout: InstanceLayout | undefined): string | null => (layout === undefined ? null : JSON.stringify(layout));

/** The instance row's values after its keys, in the order INSERT and UPDATE both list them. */
function instanceColumns(r: InstanceRecord, docs: LevelDocuments): unknown[] {
  return [
    r.transferSyntaxUID,
    r.blobKey,
    r.size,
    r.sha256,
    r.receivedAt.getTime(),
    JSON.stringify(docs.instance),
    layoutJson(r.layout),
    ...rowValues('instance', docs.instance),
  ];
}

export class SqliteIndexStore implements IndexStore {
  private readonly db: Database.Database;
  private readonly cache: StatementCache;
  private readonly sql;
  private readonly commitTransaction: (records: InstanceRecord[], policy: DuplicatePolicy) => CommitOutcome[];
  private readonly setLabelsTransaction: (uid: string, labels: string[]) => boolean;
  private readonly removeTransaction: (scope: RetrieveScope) => RemovedInstances;
  private readonly retention: RetentionFactsQuery;
  private readonly unsyncedTransaction: (writes: () => unknown) => unknown;
  /** The write-ahead log's flush, shared by concurrent callers of sync(); none for an in-memory database. */
  private readonly logFlush: GroupFlush | undefined;
  private readonly logFile: LogFileSync | undefined;

  constructor(path: string, options: SqliteIndexOptions = {}) {
    this.db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
    try {
      openCipher(this.db, path, options.key);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      migrate(this.db);
      // Recommended at open for long-lived connections: refreshes planner statistics where stale.
      this.db.pragma('optimize = 0x10002');
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.cache = new StatementCache(this.db);
    const p = (s: string) => this.db.prepare(s);
    this.sql = {
      instanceBySop: p(`SELECT ${REF_COLUMNS} ${REF_FROM} WHERE i.sop_uid = ?`),
      // One statement per scope depth, each starting from a unique index: studies.study_uid (then series and
      // instances_series, see SCOPE_FROM) or instances.sop_uid. Only columns are read, never a JSON document.
      listStudy: p(`SELECT ${REF_COLUMNS} ${SCOPE_FROM} WHERE s.study_uid = ? ${RETRIEVE_ORDER}`),
      listSeries: p(`SELECT ${REF_COLUMNS} ${SCOPE_FROM} WHERE s.study_uid = ? AND se.series_uid = ? ${RETRIEVE_ORDER}`),
      listInstance: p(`SELECT ${REF_COLUMNS} ${REF_FROM} WHERE s.study_uid = ? AND se.series_uid = ? AND i.sop_uid = ?`),
      listStudyInstance: p(`SELECT ${REF_COLUMNS} ${REF_FROM} WHERE s.study_uid = ? AND i.sop_uid = ?`),
      // The same four with the instance's dataset JSON (Retrieve Metadata): still selected by indexed columns only.
      listStudyDatasets: p(`SELECT ${REF_COLUMNS}, i.dataset ${SCOPE_FROM} WHERE s.study_uid = ? ${RETRIEVE_ORDER}`),
      listSeriesDatasets: p(`SELECT ${REF_COLUMNS}, i.dataset ${SCOPE_FROM} WHERE s.study_uid = ? AND se.series_uid = ? ${RETRIEVE_ORDER}`),
      listInstanceDatasets: p(`SELECT ${REF_COLUMNS}, i.dataset ${REF_FROM} WHERE s.study_uid = ? AND se.series_uid = ? AND i.sop_uid = ?`),
      listStudyInstanceDatasets: p(`SELECT ${REF_COLUMNS}, i.dataset ${REF_FROM} WHERE s.study_uid = ? AND i.sop_uid = ?`),
      // Keyset paging on the unique sop_uid index (IndexStore.listAllInstances): each page starts where the last ended.
      listAllInstances: p(`SELECT ${REF_COLUMNS} ${REF_FROM} WHERE i.sop_uid > ? ORDER BY i.sop_uid LIMIT ?`),
      studyByUid: p('SELECT pk FROM studies WHERE study_uid = ?').pluck(),
      patientByKey: p('SELECT pk FROM patients WHERE patient_key = ?').pluck(),
      patientOfStudy: p('SELECT p.pk, p.patient_key FROM patients p JOIN studies s ON s.patient_pk = p.pk WHERE s.pk = ?'),
      seriesByUid: p('SELECT pk FROM series WHERE study_pk = ? AND series_uid = ?').pluck(),
      insertPatient: p(insertSql('patients', ['patient_key', 'doc'], 'patient')),
      updatePatient: p(updateSql('patients', ['doc'], 'patient')),
      insertStudy: p(insertSql('studies', ['patient_pk', 'doc', ...STUDY_POLICY_COLUMNS], 'study')),
      updateStudy: p(updateSql('studies', ['doc'], 'study')),
      insertSeries: p(insertSql('series', ['study_pk', 'doc'], 'series')),
      updateSeries: p(updateSql('series', ['doc'], 'series')),
      insertInstance: p(insertSql('instances', INSTANCE_FIXED, 'instance')),
      updateInstance: p(updateSql('instances', INSTANCE_UPDATED, 'instance')),
      deleteWords: p('DELETE FROM person_name_words WHERE level = ? AND owner_pk = ?'),
      insertWord: p('INSERT OR IGNORE INTO person_name_words (level, owner_pk, tag, word) VALUES (?, ?, ?, ?)'),
      deleteRequestAttributes: p('DELETE FROM series_request_attributes WHERE series_pk = ?'),
      insertRequestAttributes: p(
        'INSERT INTO series_request_attributes (series_pk, item, scheduled_procedure_step_id, requested_procedure_id) VALUES (?, ?, ?, ?)',
      ),
      seriesInstanceCount: p('UPDATE series SET instance_count = (SELECT COUNT(*) FROM instances WHERE series_pk = @pk) WHERE pk = @pk'),
      studyModalities: p('SELECT DISTINCT modality FROM series WHERE study_pk = ? AND modality IS NOT NULL').pluck(),
      studySopClasses: p('SELECT DISTINCT sop_class_uid FROM instances WHERE study_pk = ?').pluck(),
      studySeriesCount: p('SELECT COUNT(*) FROM series WHERE study_pk = ?').pluck(),
      studyInstanceCount: p('SELECT COUNT(*) FROM instances WHERE study_pk = ?').pluck(),
      studyDerivedNow: p('SELECT modalities, sop_classes FROM studies WHERE pk = ?'),
      updateStudyDerived: p('UPDATE studies SET modalities = ?, sop_classes = ?, series_count = ?, instance_count = ? WHERE pk = ?'),
      // Incremental updates for a new instance: O(1) in the study's size, unlike the full recount.
      countNewInstance: p('UPDATE series SET instance_count = instance_count + 1 WHERE pk = ?'),
      countNewInStudy: p('UPDATE studies SET instance_count = instance_count + 1, series_count = series_count + ? WHERE pk = ?'),
      addModality: p('INSERT OR IGNORE INTO study_modalities (study_pk, modality) VALUES (?, ?)'),
      addSopClass: p('INSERT OR IGNORE INTO study_sop_classes (study_pk, sop_class_uid) VALUES (?, ?)'),
      listModalities: p('SELECT modality FROM study_modalities WHERE study_pk = ? ORDER BY modality').pluck(),
      listSopClasses: p('SELECT sop_class_uid FROM study_sop_classes WHERE study_pk = ? ORDER BY sop_class_uid').pluck(),
      setModalities: p('UPDATE studies SET modalities = ? WHERE pk = ?'),
      setSopClasses: p('UPDATE studies SET sop_classes = ? WHERE pk = ?'),
      deleteModalities: p('DELETE FROM study_modalities WHERE study_pk = ?'),
      insertModality: p('INSERT INTO study_modalities (study_pk, modality) VALUES (?, ?)'),
      deleteSopClasses: p('DELETE FROM study_sop_classes WHERE study_pk = ?'),
      insertSopClass: p('INSERT INTO study_sop_classes (study_pk, sop_class_uid) VALUES (?, ?)'),
      addPending: p(
        'INSERT INTO pending_blobs (blob_key, created_at) VALUES (?, ?) ' +
          'ON CONFLICT (blob_key) DO UPDATE SET created_at = excluded.created_at',
      ),
      removePending: p('DELETE FROM pending_blobs WHERE blob_key = ?'),
      listPending: p('SELECT blob_key FROM pending_blobs WHERE created_at < ? ORDER BY created_at, blob_key').pluck(),
      // One lookup on the unique study_uid (IndexStore.studyAttributes: every WADO request asks it first).
      studyAttributes: p(
        'SELECT s.study_uid, s.institution, s.referring_physician, s.modalities, s.policy_accession_number, ' +
          's.policy_patient_id, s.policy_study_date, s.confidentiality, ' +
          "(SELECT json_group_array(label) FROM study_labels WHERE study_pk = s.pk) AS labels FROM studies s WHERE s.study_uid = ?",
      ),
      deleteLabels: p('DELETE FROM study_labels WHERE study_pk = ?'),
      insertLabel: p('INSERT INTO study_labels (study_pk, label) VALUES (?, ?)'),
      setConfidentiality: p('UPDATE studies SET confidentiality = ? WHERE study_uid = ?'),
      counts: p(
        'SELECT (SELECT COUNT(*) FROM patients) AS patients, (SELECT COUNT(*) FROM studies) AS studies, ' +
          '(SELECT COUNT(*) FROM series) AS series, (SELECT COUNT(*) FROM instances) AS instances',
      ),
    };
    const commit = this.db.transaction((records: InstanceRecord[], policy: DuplicatePolicy) => this.commitAll(records, policy));
    this.commitTransaction = (records, policy) => commit.immediate(records, policy);
    const setLabels = this.db.transaction((uid: string, labels: string[]) => {
      const pk = this.sql.studyByUid.get(uid) as number | undefined;
      if (pk === undefined) return false;
      this.sql.deleteLabels.run(pk);
      for (const label of labels) this.sql.insertLabel.run(pk, label);
      return true;
    });
    this.setLabelsTransaction = (uid, labels) => setLabels.immediate(uid, labels);
    // The commit's recounts, so a series or study that keeps instances is left as a commit would leave it.
    const remover = new InstanceRemover(this.db, {
      recountSeries: (pk) => this.sql.seriesInstanceCount.run({ pk }),
      recountStudy: (pk) => this.updateStudyDerived(pk),
    });
    // .immediate() takes the write lock up front, like commit; inside a caller's transaction (the lifecycle
    // store's, same connection) better-sqlite3 runs it as a savepoint instead.
    const remove = this.db.transaction((scope: RetrieveScope) => remover.remove(scope));
    this.removeTransaction = (scope) => remove.immediate(scope);
    this.retention = new RetentionFactsQuery(this.db);
    const unsynced = this.db.transaction((writes: () => unknown) => writes());
    this.unsyncedTransaction = (writes) => unsynced.immediate(writes);
    if (!this.db.memory && this.db.pragma('journal_mode', { simple: true }) === 'wal') {
      this.logFile = new LogFileSync(`${this.db.name}-wal`);
      const logFile = this.logFile;
      this.logFlush = new GroupFlush(() => logFile.sync());
    }
  }

  /**
   * IndexStore.writeUnsynced: one transaction, committed to the log with synchronous=NORMAL (no fdatasync; SQLite
   * still syncs the log header and at checkpoints, so the file stays consistent). The pragma cannot change inside a
   * transaction: within a caller's, the writes simply join it and that transaction's commit decides.
   */
  writeUnsynced<T>(writes: () => T): T {
    if (this.db.inTransaction) return writes();
    this.db.pragma('synchronous = NORMAL');
    try {
      return this.unsyncedTransaction(writes) as T;
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /** IndexStore.sync: an fdatasync of the log, grouped; the log holds every commit (a checkpoint syncs what it copies). */
  sync(): Promise<void> {
    return this.logFlush?.flush() ?? Promise.resolve();
  }

  addPending(blobKey: string, at: Date): void {
    this.sql.addPending.run(blobKey, at.getTime());
  }

  removePending(blobKey: string): void {
    this.sql.removePending.run(blobKey);
  }

  listPending(before: Date): string[] {
    return this.sql.listPending.all(before.getTime()) as string[];
  }

  commit(records: InstanceRecord[], policy: DuplicatePolicy): CommitOutcome[] {
    return this.commitTransaction(records, policy);
  }

  findInstance(sopInstanceUID: string): StoredInstanceRef | undefined {
    const row = this.sql.instanceBySop.get(sopInstanceUID) as ExistingInstanceRow | undefined;
    return row ? toRef(row) : undefined;
  }

  listInstances(scope: RetrieveScope): StoredInstanceRef[] {
    const { statement, params } = this.listStatement(scope);
    return (statement.all(...params) as ExistingInstanceRow[]).map(toRef);
  }

  listInstanceDatasets(scope: RetrieveScope): InstanceWithDataset[] {
    const { statement, params } = this.listStatement(scope, true);
    return (statement.all(...params) as (ExistingInstanceRow & { dataset: string })[]).map((row) => ({
      ref: toRef(row),
      dataset: JSON.parse(row.dataset) as DicomJsonDataset,
    }));
  }

  listAllInstances(page: { after?: string; limit: number }): StoredInstanceRef[] {
    return (this.sql.listAllInstances.all(page.after ?? '', page.limit) as ExistingInstanceRow[]).map(toRef);
  }

  private listStatement(scope: RetrieveScope, withDataset = false): { statement: Database.Statement; params: string[] } {
    const { studyInstanceUID: study, seriesInstanceUID: series, sopInstanceUID: sop } = scope;
    const sql = this.sql;
    if (sop !== undefined) {
      return series === undefined
        ? { statement: withDataset ? sql.listStudyInstanceDatasets : sql.listStudyInstance, params: [study, sop] }
        : { statement: withDataset ? sql.listInstanceDatasets : sql.listInstance, params: [study, series, sop] };
    }
    return series === undefined
      ? { statement: withDataset ? sql.listStudyDatasets : sql.listStudy, params: [study] }
      : { statement: withDataset ? sql.listSeriesDatasets : sql.listSeries, params: [study, series] };
  }

  search(query: QidoQuery, access?: StudyCondition): SearchResult {
    const compiled = compileSearch(query, access);
    const rows = this.cache.get(compiled.pageSql).all(...compiled.params, query.limit, query.offset) as PageRow[];
    // A short page tells the total without counting (the common exact-match case: one study).
    const total =
      rows.length < query.limit && (rows.length > 0 || query.offset === 0)
        ? query.offset + rows.length
        : (this.cache.get(compiled.countSql).pluck(true).get(...compiled.params) as number);
    return { matches: rows.map((row) => responseDataset(query, (level) => rowDataset(row, level))), total };
  }

  studyAttributes(studyInstanceUID: string): StudyAttributes | undefined {
    const row = this.sql.studyAttributes.get(studyInstanceUID) as StudyAttributesRow | undefined;
    if (row === undefined) return undefined;
    return {
      studyInstanceUID: row.study_uid,
      institution: row.institution,
      referringPhysician: row.referring_physician,
      modalities: JSON.parse(row.modalities) as string[],
      accessionNumber: row.policy_accession_number,
      patientId: row.policy_patient_id,
      studyDate: row.policy_study_date,
      // Sorted here, not by SQL: JS order (UTF-16) is what the memory store and the callers use.
      labels: (JSON.parse(row.labels) as string[]).sort(),
      confidentiality: row.confidentiality,
    };
  }

  setStudyLabels(studyInstanceUID: string, labels: string[]): boolean {
    return this.setLabelsTransaction(studyInstanceUID, [...new Set(labels)].sort());
  }

  setStudyConfidentiality(studyInstanceUID: string, confidentiality: string): boolean {
    return this.sql.setConfidentiality.run(confidentiality, studyInstanceUID).changes > 0;
  }

  removeInstances(scope: RetrieveScope): RemovedInstances {
    return this.removeTransaction(scope);
  }

  retentionFacts(studyInstanceUID: string): StudyRetentionFacts | undefined {
    return this.retention.get(studyInstanceUID);
  }

  counts() {
    return this.sql.counts.get() as { patients: number; studies: number; series: number; instances: number };
  }

  /** The connection, for what shares the index file (the study keyring, sqlite-study-keyring.ts). */
  get database(): Database.Database {
    return this.db;
  }

  close(): void {
    if (!this.db.open) return;
    this.db.pragma('optimize');
    this.db.close();
    this.logFile?.close();
  }

  /** The connection's settings, for health checks and tests. */
  diagnostics(): { journalMode: string; synchronous: number; foreignKeys: boolean; schemaVersion: number } {
    return {
      journalMode: this.db.pragma('journal_mode', { simple: true }) as string,
      synchronous: this.db.pragma('synchronous', { simple: true }) as number,
      foreignKeys: this.db.pragma('foreign_keys', { simple: true }) === 1,
      schemaVersion: this.db.pragma('user_version', { simple: true }) as number,
    };
  }

  /** For tests and diagnostics: the plan SQLite chooses for a query's page (`count`: for its COUNT). */
  explain(query: QidoQuery, access?: StudyCondition, count = false): string[] {
    const compiled = compileSearch(query, access);
    const rows = count
      ? this.db.prepare(`EXPLAIN QUERY PLAN ${compiled.countSql}`).all(...compiled.params)
      : this.db.prepare(`EXPLAIN QUERY PLAN ${compiled.pageSql}`).all(...compiled.params, query.limit, query.offset);
    return (rows as { detail: string }[]).map((r) => r.detail);
  }

  /** For tests: the plan of listInstances() (or, withDataset, listInstanceDatasets()) for a scope. */
  explainListInstances(scope: RetrieveScope, withDataset = false): string[] {
    const { statement, params } = this.listStatement(scope, withDataset);
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN ${statement.source}`).all(...params);
    return (rows as { detail: string }[]).map((r) => r.detail);
  }

  // --- writes (inside the commit transaction) ---------------------------------------------------

  private commitAll(records: InstanceRecord[], policy: DuplicatePolicy): CommitOutcome[] {
    const touchedStudies = new Set<number>();
    const touchedSeries = new Set<number>();
    const outcomes = records.map((r) => {
      const outcome = this.commitOne(r, policy, touchedStudies, touchedSeries);
      // IndexStore.commit: the blob left unreferenced stays (or becomes) pending until the caller deleted it.
      if (outcome.kind === 'stored' || outcome.kind === 'replaced') this.sql.removePending.run(r.blobKey);
      if (outcome.kind === 'replaced') this.sql.addPending.run(outcome.previousBlobKey, r.receivedAt.getTime());
      return outcome;
    });
    for (const pk of touchedSeries) this.sql.seriesInstanceCount.run({ pk });
    for (const pk of touchedStudies) this.updateStudyDerived(pk);
    return outcomes;
  }

  private commitOne(r: InstanceRecord, policy: DuplicatePolicy, studies: Set<number>, series: Set<number>): CommitOutcome {
    const docs = levelDocuments(r);
    const existing = this.sql.instanceBySop.get(r.sopInstanceUID) as ExistingInstanceRow | undefined;
    if (existing) {
      if (existing.study_uid !== r.studyInstanceUID || existing.series_uid !== r.seriesInstanceUID) {
        return { kind: 'duplicate', existing: toRef(existing) };
      }
      if (existing.sha256 === r.sha256) return { kind: 'identical' };
      if (policy === 'reject') return { kind: 'duplicate', existing: toRef(existing) };
      this.replace(existing, r, docs);
      studies.add(existing.study_pk);
      series.add(existing.series_pk);
      return { kind: 'replaced', previousBlobKey: existing.blob_key };
    }

    let studyPk = this.sql.studyByUid.get(r.studyInstanceUID) as number | undefined;
    if (studyPk === undefined) {
      const patientPk = this.findOrInsertPatient(docs.patient);
      // The policy columns: what STOW authorisation evaluated for a new study (study-attributes-of.ts).
      const policy = policyValues(studyAttributesOf(docs.instance, undefined));
      const inserted = this.sql.insertStudy.run(patientPk, JSON.stringify(docs.study), ...policy, ...rowValues('study', docs.study));
      studyPk = Number(inserted.lastInsertRowid);
      this.writeWords('study', studyPk, docs.study);
    }
    let seriesPk = this.sql.seriesByUid.get(studyPk, r.seriesInstanceUID) as number | undefined;
    const newSeries = seriesPk === undefined;
    if (seriesPk === undefined) {
      const inserted = this.sql.insertSeries.run(studyPk, JSON.stringify(docs.series), ...rowValues('series', docs.series));
      seriesPk = Number(inserted.lastInsertRowid);
      this.writeSeriesChildren(seriesPk, docs.series);
    }
    this.sql.insertInstance.run(seriesPk, studyPk, ...instanceColumns(r, docs));
    this.countNewInstance(studyPk, seriesPk, newSeries, docs.series, r.sopClassUID);
    return { kind: 'stored' };
  }

  private findOrInsertPatient(doc: DicomJsonDataset): number {
    const key = patientKey(doc);
    const found = key === undefined ? undefined : (this.sql.patientByKey.get(key) as number | undefined);
    if (found !== undefined) return found;
    const pk = Number(this.sql.insertPatient.run(key ?? null, JSON.stringify(doc), ...rowValues('patient', doc)).lastInsertRowid);
    this.writeWords('patient', pk, doc);
    return pk;
  }

  /** Policy 'replace': the instance takes the new bytes, and its levels the new attributes (a correction). */
  private replace(existing: ExistingInstanceRow, r: InstanceRecord, docs: LevelDocuments): void {
    this.sql.updateInstance.run(...instanceColumns(r, docs), existing.pk);
    this.sql.updateStudy.run(JSON.stringify(docs.study), ...rowValues('study', docs.study), existing.study_pk);
    this.writeWords('study', existing.study_pk, docs.study);
    this.sql.updateSeries.run(JSON.stringify(docs.series), ...rowValues('series', docs.series), existing.series_pk);
    this.writeSeriesChildren(existing.series_pk, docs.series);
    // The patient is refreshed only when the new instance names the same patient.
    const patient = this.sql.patientOfStudy.get(existing.study_pk) as { pk: number; patient_key: string | null };
    if (patient.patient_key !== null && patient.patient_key === patientKey(docs.patient)) {
      this.sql.updatePatient.run(JSON.stringify(docs.patient), ...rowValues('patient', docs.patient), patient.pk);
      this.writeWords('patient', patient.pk, docs.patient);
    }
  }

  private writeWords(level: EntityLevel, pk: number, doc: DicomJsonDataset): void {
    this.sql.deleteWords.run(level, pk);
    for (const [tag, word] of nameWords(level, doc)) this.sql.insertWord.run(level, pk, tag, word);
  }

  private writeSeriesChildren(seriesPk: number, doc: DicomJsonDataset): void {
    this.writeWords('series', seriesPk, doc);
    const spec = COLUMNS.get('00400275');
    if (spec?.kind !== 'sequence') return;
    this.sql.deleteRequestAttributes.run(seriesPk);
    const items = doc['00400275']?.Value ?? [];
    items.forEach((item, index) => {
      if (item === null || typeof item !== 'object' || 'Alphabetic' in item) return;
      const ds = item as DicomJsonDataset;
      const value = (tag: string) => columnValue('SH', 'text', ds[tag]?.Value?.[0]);
      this.sql.insertRequestAttributes.run(seriesPk, index, value('00400009'), value('00401001'));
    });
  }

  /**
   * Derived attributes after a new instance, without recounting the study: a commit into a study of
   * 100,000 instances costs what a commit into an empty one does. (Replacements recount: rare, and they
   * may change a series' Modality or an instance's SOP Class.)
   */
  private countNewInstance(studyPk: number, seriesPk: number, newSeries: boolean, seriesDoc: DicomJsonDataset, sopClassUID: string): void {
    this.sql.countNewInstance.run(seriesPk);
    this.sql.countNewInStudy.run(newSeries ? 1 : 0, studyPk);
    // Normalised as the series.modality column and study-attributes-of.ts have it (padding trimmed).
    const modality = modalityOf(seriesDoc);
    if (newSeries && modality !== undefined && this.sql.addModality.run(studyPk, modality).changes > 0) {
      this.sql.setModalities.run(JSON.stringify(this.sql.listModalities.all(studyPk)), studyPk);
    }
    if (this.sql.addSopClass.run(studyPk, sopClassUID).changes > 0) {
      this.sql.setSopClasses.run(JSON.stringify(this.sql.listSopClasses.all(studyPk)), studyPk);
    }
  }

  /** ModalitiesInStudy, SOPClassesInStudy and the counts, recomputed from the rows (PS3.4 C.3.4). */
  private updateStudyDerived(pk: number): void {
    const modalities = (this.sql.studyModalities.all(pk) as string[]).sort();
    const sopClasses = (this.sql.studySopClasses.all(pk) as string[]).sort();
    const now = this.sql.studyDerivedNow.get(pk) as { modalities: string; sop_classes: string };
    const modalitiesJson = JSON.stringify(modalities);
    const sopClassesJson = JSON.stringify(sopClasses);
    this.sql.updateStudyDerived.run(
      modalitiesJson,
      sopClassesJson,
      this.sql.studySeriesCount.get(pk),
      this.sql.studyInstanceCount.get(pk),
      pk,
    );
    if (now.modalities !== modalitiesJson) {
      this.sql.deleteModalities.run(pk);
      for (const m of modalities) this.sql.insertModality.run(pk, m);
    }
    if (now.sop_classes !== sopClassesJson) {
      this.sql.deleteSopClasses.run(pk);
      for (const c of sopClasses) this.sql.insertSopClass.run(pk, c);
    }
  }
}

/** The dataset of one level of a page row, derived attributes included (parsed only when asked for). */
function rowDataset(row: PageRow, level: EntityLevel): DicomJsonDataset {
  switch (level) {
    case 'patient':
      return JSON.parse(row.patient_doc) as DicomJsonDataset;
    case 'study':
      return withStudyDerived(JSON.parse(row.study_doc) as DicomJsonDataset, {
        modalities: JSON.parse(row.modalities) as string[],
        sopClasses: JSON.parse(row.sop_classes) as string[],
        numberOfSeries: row.series_count,
        numberOfInstances: row.instance_count,
      });
    case 'series':
      if (row.series_doc === undefined) return {};
      return withSeriesDerived(JSON.parse(row.series_doc) as DicomJsonDataset, row.series_instance_count ?? 0);
    case 'instance':
      if (row.dataset === undefined) return {};
      return withInstanceDerived(JSON.parse(row.dataset) as DicomJsonDataset, row.transfer_syntax_uid ?? '');
  }
}
