// What the contract cannot see: the SQLite file, its pragmas and schema, migrations, atomic batches.
import path from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import t from 'tap';
import { ATTRIBUTES } from '../../src/dicom/levels.js';
import { COLUMNS, MATCHING_TAGS, columnNames, rowColumns } from '../../src/index/sqlite/columns.js';
import { MIGRATIONS } from '../../src/index/sqlite/migrations.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { StatementCache } from '../../src/index/sqlite/statement-cache.js';
import { column, search } from '../contracts/index-store.contract.js';
import { BATCH_1, BATCH_2, I111, RECORD, ST1, ST2 } from '../contracts/index-store.fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';
import { undoMigrationV4 } from '../helpers/undo-migration.js';

const open = (file: string) => {
  const store = new SqliteIndexStore(file);
  t.teardown(() => store.close());
  return store;
};

t.test('connection settings: WAL, synchronous=FULL, foreign keys, latest schema', (t) => {
  const store = open(path.join(tempDir(t), 'index.sqlite'));
  t.same(store.diagnostics(), { journalMode: 'wal', synchronous: 2, foreignKeys: true, schemaVersion: MIGRATIONS.length });
  t.end();
});

t.test('schema: a column and an index for every matching key', (t) => {
  const file = path.join(tempDir(t), 'index.sqlite');
  open(file).close();
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());

  for (const tag of MATCHING_TAGS) t.ok(COLUMNS.has(tag), `matching key ${tag} has a column spec`);
  for (const a of ATTRIBUTES.filter((x) => x.items)) {
    const spec = COLUMNS.get(a.tag);
    t.same(Object.keys(spec?.kind === 'sequence' ? spec.items : {}).sort(), a.items!.map((i) => i.tag).sort(), `${a.keyword} items`);
  }

  const indexedFirstColumns = (table: string) =>
    new Set(
      (db.pragma(`index_list(${table})`) as { name: string }[]).map(
        (ix) => (db.pragma(`index_info(${ix.name})`) as { name: string }[])[0]!.name,
      ),
    );
  const tables = { patient: 'patients', study: 'studies', series: 'series', instance: 'instances' } as const;
  for (const [level, table] of Object.entries(tables) as [keyof typeof tables, string][]) {
    const existing = new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name));
    const indexed = indexedFirstColumns(table);
    for (const spec of rowColumns(level)) {
      for (const name of columnNames(spec)) {
        t.ok(existing.has(name), `${table}.${name} exists`);
        t.ok(indexed.has(name), `${table}.${name} leads an index`);
      }
    }
  }
  for (const spec of COLUMNS.values()) {
    if (spec.kind === 'list') t.ok(indexedFirstColumns(spec.table).has(spec.column), `${spec.table}.${spec.column} leads an index`);
    if (spec.kind === 'sequence') {
      for (const name of Object.values(spec.items)) t.ok(indexedFirstColumns(spec.table).has(name), `${spec.table}.${name} leads an index`);
    }
  }
  t.end();
});

t.test('migrations run once and refuse a newer schema', (t) => {
  const file = path.join(tempDir(t), 'index.sqlite');
  const first = open(file);
  first.commit(BATCH_1, 'reject');
  first.close();
  const again = open(file);
  t.same(again.counts(), { patients: 2, studies: 2, series: 2, instances: 5 }, 'data kept across reopen');
  t.same(column(search(again, 'study', 'PatientName=muller*'), '0020000D'), [ST2]);
  again.close();

  const db = new Database(file);
  db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  db.close();
  t.throws(() => new SqliteIndexStore(file), /newer than this server supports/);
  t.end();
});

t.test('migration 2 adds instances.layout to a version 1 database; old rows have no layout', (t) => {
  const file = path.join(tempDir(t), 'index.sqlite');
  const first = open(file);
  first.commit(BATCH_1, 'reject');
  first.close();
  // Turn the file back into what version 1 left: no layout column, user_version 1.
  const db = new Database(file);
  db.exec('ALTER TABLE instances DROP COLUMN layout');
  // Later migrations' tables too (V3: study keys), so every migration after 1 runs again.
  db.exec('DROP TABLE study_keys; DROP TABLE closed_kek_versions');
  // V4: policy columns, labels, share links.
  undoMigrationV4(db);
  db.pragma('user_version = 1');
  db.close();

  const upgraded = open(file);
  t.equal(upgraded.diagnostics().schemaVersion, MIGRATIONS.length);
  t.same(upgraded.counts(), { patients: 2, studies: 2, series: 2, instances: 5 });
  const ref = upgraded.findInstance(I111)!;
  t.equal(ref.sopInstanceUID, I111);
  t.notOk('layout' in ref, 'NULL layout: the key is absent');
  t.same(upgraded.listInstances({ studyInstanceUID: ST1 }).map((r) => r.sopInstanceUID), [I111, '2.25.1001.1.2', '2.25.1001.1.3']);
  t.end();
});

t.test('listInstances walks indexes: no table scan, no per-series filter over a whole study', (t) => {
  const store = open(path.join(tempDir(t), 'index.sqlite'));
  store.commit([...BATCH_1, ...BATCH_2], 'reject');
  const scopes = [
    { studyInstanceUID: ST1 },
    { studyInstanceUID: ST1, seriesInstanceUID: '2.25.1001.1' },
    { studyInstanceUID: ST1, seriesInstanceUID: '2.25.1001.1', sopInstanceUID: I111 },
    { studyInstanceUID: ST1, sopInstanceUID: I111 },
  ];
  for (const scope of scopes) {
    for (const withDataset of [false, true]) {
      const plan = store.explainListInstances(scope, withDataset);
      const what = `${withDataset ? 'listInstanceDatasets' : 'listInstances'} ${JSON.stringify(Object.keys(scope))}`;
      t.notOk(plan.some((d) => /^SCAN /.test(d)), `no full scan for ${what}: ${plan.join('; ')}`);
    }
  }
  for (const withDataset of [false, true]) {
    const seriesPlan = store.explainListInstances(scopes[1]!, withDataset).join('; ');
    t.match(seriesPlan, /SEARCH se USING .*INDEX sqlite_autoindex_series_1 \(study_pk=\? AND series_uid=\?\)/);
    t.match(seriesPlan, /SEARCH i USING INDEX instances_series \(series_pk=\?\)/);
  }
  t.end();
});

t.test('a batch is one transaction: a failing record rolls back the whole batch', (t) => {
  const store = open(path.join(tempDir(t), 'index.sqlite'));
  store.commit(BATCH_1, 'reject');
  store.addPending('blob-batch', new Date(0));
  const broken = { ...BATCH_2[1]!, sha256: null as unknown as string }; // NOT NULL violated
  t.throws(() => store.commit([{ ...BATCH_2[0]!, blobKey: 'blob-batch' }, broken], 'reject'));
  t.same(store.counts(), { patients: 2, studies: 2, series: 2, instances: 5 }, 'nothing of the batch stored');
  t.same(store.listPending(new Date(1)), ['blob-batch'], 'pending mark kept');
  t.same(column(search(store, 'study', `StudyInstanceUID=${ST1}`), '00201208'), [3], 'derived counts untouched');
  t.end();
});

t.test('group commit: writeUnsynced is one transaction under synchronous=NORMAL, sync() flushes the log', async (t) => {
  const file = path.join(tempDir(t), 'index.sqlite');
  const store = open(file);
  const reader = open(file);
  const outcomes = store.writeUnsynced(() => {
    store.addPending('blob-g', new Date(0));
    return store.commit([RECORD[I111]!], 'reject');
  });
  t.same(outcomes, [{ kind: 'stored' }]);
  t.equal(store.diagnostics().synchronous, 2, 'FULL again for every other writer');
  t.same(reader.counts().instances, 1, 'committed: another connection sees it');
  t.same(reader.listPending(new Date(1)), ['blob-g']);
  // The flush opens the log by its name: a wrong name or a missing log would reject here.
  await Promise.all([store.sync(), store.sync(), store.sync()]);

  t.throws(() =>
    store.writeUnsynced(() => {
      store.addPending('blob-h', new Date(0));
      throw new Error('refused halfway');
    }),
  );
  t.same(reader.listPending(new Date(1)), ['blob-g'], 'a failure rolls the whole transaction back');
  t.equal(store.diagnostics().synchronous, 2, 'FULL again after a failure too');

  // Inside a caller's transaction the writes join it (the pragma cannot change there).
  const db = store.database;
  db.transaction(() => store.writeUnsynced(() => store.addPending('blob-i', new Date(0))))();
  t.same(reader.listPending(new Date(1)), ['blob-g', 'blob-i']);
  await store.sync();
});

t.test('group commit: an in-memory database has no log to flush', async (t) => {
  const store = open(':memory:');
  store.writeUnsynced(() => store.addPending('blob-m', new Date(0)));
  await store.sync();
  t.same(store.listPending(new Date(1)), ['blob-m']);
});

t.test('a second connection sees committed data (WAL, one file)', (t) => {
  const file = path.join(tempDir(t), 'index.sqlite');
  const writer = open(file);
  const reader = open(file);
  writer.commit([RECORD[I111]!], 'reject');
  t.same(reader.findInstance(I111)?.blobKey, `blob-${I111}`);
  t.same(reader.counts().instances, 1);
  t.end();
});

t.test('the statement cache keeps the most recently used shapes', (t) => {
  const db = new Database(':memory:');
  t.teardown(() => db.close());
  const cache = new StatementCache(db, 2);
  const a = cache.get('SELECT 1');
  cache.get('SELECT 2');
  t.equal(cache.get('SELECT 1'), a, 'a hit returns the same statement');
  cache.get('SELECT 3'); // evicts SELECT 2, the least recently used
  t.equal(cache.size, 2);
  t.equal(cache.get('SELECT 1'), a, 'SELECT 1 survived');
  t.end();
});

t.test('queries of one shape share one statement', (t) => {
  const store = open(path.join(tempDir(t), 'index.sqlite'));
  store.commit([...BATCH_1, ...BATCH_2], 'reject');
  const shapes = (store as unknown as { cache: StatementCache }).cache;
  search(store, 'study', 'PatientName=GAR*&limit=1');
  const size = shapes.size;
  search(store, 'study', 'PatientName=MUL*&limit=1');
  search(store, 'study', `StudyInstanceUID=${ST2}`);
  search(store, 'study', `StudyInstanceUID=${ST1}`);
  t.equal(shapes.size, size + 1, 'values are parameters, not SQL text');
  t.end();
});
