// The index key file (index-key.ts): created once for a new data directory, unwrapped by the KEK, re-wrapped
// on rotation, and a clear refusal when the key file is missing or does not unwrap.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { INDEX_DB_FILE, INDEX_KEY_FILE, loadOrCreateIndexKey, rewrapIndexKey } from '../../src/index/sqlite/index-key.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { MemoryKeyProvider } from '../helpers/memory-key-provider.js';
import { tempDir } from '../helpers/temp-dir.js';

const readKeyFile = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, INDEX_KEY_FILE), 'utf8')) as Record<string, string>;

t.test('create, load, rewrap: the same key throughout, wrapped under the current KEK version', async (t) => {
  const dir = tempDir(t);
  const provider = new MemoryKeyProvider();
  const key = await loadOrCreateIndexKey(dir, provider);
  t.equal(key.length, 32);
  const stat = fs.statSync(path.join(dir, INDEX_KEY_FILE));
  t.equal(stat.mode & 0o777, 0o600);
  const file = readKeyFile(dir);
  t.same(Object.keys(file).sort(), ['kekVersion', 'wrapped']);
  t.equal(file.kekVersion, 'v1');
  t.notOk(Buffer.from(file.wrapped!, 'base64').includes(key), 'the key is not stored in clear');

  // The database is created with it, then the key is loaded again from the file.
  new SqliteIndexStore(path.join(dir, INDEX_DB_FILE), { key }).close();
  t.ok((await loadOrCreateIndexKey(dir, provider)).equals(key));

  provider.rotate();
  t.same(await rewrapIndexKey(dir, provider), { from: 'v1', to: 'v2' });
  t.equal(readKeyFile(dir).kekVersion, 'v2');
  t.notSame(readKeyFile(dir).wrapped, file.wrapped);
  provider.retire('v1');
  const after = await loadOrCreateIndexKey(dir, provider);
  t.ok(after.equals(key), 'same key after rotation: the database needs no rekey');
  const store = new SqliteIndexStore(path.join(dir, INDEX_DB_FILE), { key: after });
  t.same(store.counts().instances, 0);
  store.close();
  t.same(fs.readdirSync(dir).sort(), [INDEX_KEY_FILE, INDEX_DB_FILE], 'no temporary file left');
});

t.test('an existing database without its key file: refuse, never create a new key', async (t) => {
  const dir = tempDir(t);
  new SqliteIndexStore(path.join(dir, INDEX_DB_FILE)).close();
  await t.rejects(loadOrCreateIndexKey(dir, new MemoryKeyProvider()), { name: 'IndexKeyError', message: /index\.key\.json is missing/ });
  t.notOk(fs.existsSync(path.join(dir, INDEX_KEY_FILE)));
  await t.rejects(rewrapIndexKey(dir, new MemoryKeyProvider()), { name: 'IndexKeyError', message: /missing/ });
});

t.test('a key file that does not unwrap: another KEK, a retired version, tampering, garbage', async (t) => {
  const dir = tempDir(t);
  const provider = new MemoryKeyProvider();
  await loadOrCreateIndexKey(dir, provider);
  const good = readKeyFile(dir);

  await t.rejects(loadOrCreateIndexKey(dir, new MemoryKeyProvider()), {
    name: 'IndexKeyError',
    message: /does not unwrap with KEK version v1/,
    cause: { name: 'KeyIntegrityError' },
  });
  provider.rotate();
  provider.retire('v1');
  await t.rejects(loadOrCreateIndexKey(dir, provider), { name: 'IndexKeyError', cause: { name: 'KeyUnavailableError' } });

  const tampered = Buffer.from(good.wrapped!, 'base64');
  tampered[20]! ^= 1;
  fs.writeFileSync(path.join(dir, INDEX_KEY_FILE), JSON.stringify({ ...good, wrapped: tampered.toString('base64') }));
  await t.rejects(loadOrCreateIndexKey(dir, provider), { name: 'IndexKeyError' });

  fs.writeFileSync(path.join(dir, INDEX_KEY_FILE), '{"kekVersion": 1}');
  await t.rejects(loadOrCreateIndexKey(dir, provider), { name: 'IndexKeyError', message: /not an index key file/ });
});
