// The encrypted index (issue 4): nothing recognisable on disk (database, WAL, shared memory), the right key
// reopens it, a wrong or missing key fails with a clear error and leaves the file intact.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { search } from '../contracts/index-store.contract.js';
import { BATCH_1, BATCH_2, ST1 } from '../contracts/index-store.fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Names, IDs, birth dates, accession numbers and UIDs of the fixture archive, in the forms the index keeps. */
const PHI = [
  'Yamada', 'Tarou', '山田', 'やまだ', 'Müller', 'Muller', 'Jürgen', 'García', 'Garcia', 'Smith^Anne',
  'PAT-JP', 'PAT-DE', 'PAT-ES', '19700102', '19650430', 'ACC-001', 'ACC-002', ST1,
];

/** The PHI strings found in the raw bytes of any file of `dir` (case-insensitive for ASCII). */
function phiOnDisk(dir: string): string[] {
  const files = fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f)).toString('latin1').toLowerCase());
  return PHI.filter((s) => {
    const needle = Buffer.from(s, 'utf8').toString('latin1').toLowerCase();
    return files.some((raw) => raw.includes(needle));
  });
}

const seed = (file: string, key?: Buffer) => {
  const store = new SqliteIndexStore(file, key ? { key } : {});
  store.commit(BATCH_1, 'reject');
  store.commit(BATCH_2, 'reject');
  return store;
};

t.test('control: without a key the same archive is readable on disk (so the next test can fail)', (t) => {
  const dir = tempDir(t);
  const store = seed(path.join(dir, 'index.sqlite'));
  t.same(phiOnDisk(dir), PHI);
  store.close();
  t.end();
});

t.test('with a key, no file of the folder holds a recognisable value: database, WAL, shm', (t) => {
  const dir = tempDir(t);
  const store = seed(path.join(dir, 'index.sqlite'), randomBytes(32));
  // Open and not checkpointed: the committed pages are in the WAL.
  t.same(fs.readdirSync(dir).sort(), ['index.sqlite', 'index.sqlite-shm', 'index.sqlite-wal']);
  t.ok(fs.statSync(path.join(dir, 'index.sqlite-wal')).size > 100_000, 'the WAL holds the commits');
  t.same(phiOnDisk(dir), []);
  const header = fs.readFileSync(path.join(dir, 'index.sqlite')).subarray(0, 16).toString('latin1');
  t.not(header, 'SQLite format 3\0', 'no plaintext SQLite header');
  t.equal(fs.readFileSync(path.join(dir, 'index.sqlite'))[20], 64, 'each page reserves 64 bytes: nonce and tag (authenticated)');
  store.close();
  t.same(fs.readdirSync(dir), ['index.sqlite'], 'checkpointed into the database on close');
  t.same(phiOnDisk(dir), []);
  t.end();
});

t.test('the right key reopens the archive; a wrong key or none is a clear error', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'index.sqlite');
  const key = randomBytes(32);
  seed(file, key).close();
  const before = fs.readFileSync(file);

  t.throws(() => new SqliteIndexStore(file, { key: randomBytes(32) }), {
    name: 'IndexKeyError',
    message: /does not open with this index key/,
  });
  t.throws(() => new SqliteIndexStore(file), { name: 'IndexKeyError', message: /is encrypted .* needs its index key/ });
  t.throws(() => new SqliteIndexStore(file, { key: key.subarray(0, 16) }), { name: 'IndexKeyError', message: /32 bytes/ });
  t.ok(fs.readFileSync(file).equals(before), 'failed opens leave the file as it was');

  const store = new SqliteIndexStore(file, { key });
  t.teardown(() => store.close());
  t.same(store.counts(), { patients: 3, studies: 4, series: 5, instances: 8 });
  t.same(store.diagnostics().journalMode, 'wal');
  t.match(search(store, 'study', 'PatientName=Yamada*').matches, [{ '0020000D': { Value: [ST1] } }]);
  t.end();
});

t.test('a crash leaves an encrypted WAL: a wrong key does not touch it, the right key recovers it', (t) => {
  const dir = tempDir(t);
  const copy = tempDir(t);
  const key = randomBytes(32);
  const store = seed(path.join(dir, 'index.sqlite'), key);
  // Copies taken while the connection is open: what a power cut leaves (commits only in the WAL).
  for (const f of ['index.sqlite', 'index.sqlite-wal']) fs.copyFileSync(path.join(dir, f), path.join(copy, f));
  store.close();
  const wal = fs.readFileSync(path.join(copy, 'index.sqlite-wal'));

  t.throws(() => new SqliteIndexStore(path.join(copy, 'index.sqlite'), { key: randomBytes(32) }), { name: 'IndexKeyError' });
  t.ok(fs.readFileSync(path.join(copy, 'index.sqlite-wal')).equals(wal), 'the WAL is left as it was');
  const recovered = new SqliteIndexStore(path.join(copy, 'index.sqlite'), { key });
  t.teardown(() => recovered.close());
  t.same(recovered.counts(), { patients: 3, studies: 4, series: 5, instances: 8 });
  t.end();
});

t.test('a key on a database created without one is refused, not silently read or rewritten', (t) => {
  const file = path.join(tempDir(t), 'index.sqlite');
  seed(file).close();
  t.throws(() => new SqliteIndexStore(file, { key: randomBytes(32) }), { name: 'IndexKeyError' });
  const plain = new SqliteIndexStore(file);
  t.teardown(() => plain.close());
  t.same(plain.counts().instances, 8, 'still opens without a key');
  t.end();
});

t.test('a changed page fails the read (authenticated encryption), never returns altered rows', (t) => {
  const file = path.join(tempDir(t), 'index.sqlite');
  const key = randomBytes(32);
  seed(file, key).close();
  const bytes = fs.readFileSync(file);
  for (let page = 1; page * 4096 < bytes.length; page++) bytes[page * 4096 + 200]! ^= 0x01; // every page but the first
  fs.writeFileSync(file, bytes);
  t.throws(() => {
    const store = new SqliteIndexStore(file, { key });
    try {
      store.counts();
      search(store, 'instance', '');
    } finally {
      store.close();
    }
  }, { code: 'SQLITE_CORRUPT' });
  t.end();
});
