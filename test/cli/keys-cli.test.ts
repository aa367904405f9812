// `dicomvault keys status` and `dicomvault keys rotate` as processes, on a data folder the way the server
// leaves it: an encrypted index whose key the KEK wraps, study keys in it.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { INDEX_DB_FILE, INDEX_KEY_FILE, loadOrCreateIndexKey } from '../../src/index/sqlite/index-key.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { SqliteStudyKeyring } from '../../src/index/sqlite/sqlite-study-keyring.js';
import { LocalKeyfileProvider } from '../../src/storage/keys/local-keyfile.js';
import { openKeyProvider } from '../../src/storage/keys/open-key-provider.js';
import { runCli } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = (cwd: string, args: string[]) => runCli(cwd, args);

async function openIndex(cwd: string, provider: LocalKeyfileProvider) {
  const dataDir = path.join(cwd, 'data');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = await loadOrCreateIndexKey(dataDir, provider);
  const index = new SqliteIndexStore(path.join(dataDir, INDEX_DB_FILE), { key });
  key.fill(0);
  return index;
}

t.test('keys status, an interrupted rotate, its continuation', async (t) => {
  const cwd = tempDir(t);
  const provider = openKeyProvider({ keys: { file: path.join(cwd, 'keys/kek.json') }, storage: { dataDir: path.join(cwd, 'data') } }, { dataDirHasData: false });
  const v1 = provider.currentVersion();
  const index = await openIndex(cwd, provider);
  const keyring = new SqliteStudyKeyring(index.database, provider, { cacheTtlMs: 60_000, cacheMaxKeys: 10 });
  const keys: { id: Buffer; bytes: Buffer }[] = [];
  for (let i = 1; i <= 5; i++) {
    const { id, key } = await keyring.forStudy(`2.25.${i}`);
    keys.push({ id, bytes: Buffer.from(key) });
  }
  await keyring.destroy('2.25.5');
  keys.pop();
  keyring.close();
  index.close(); // the server may keep running; closed here so the test ends cleanly

  const status = await run(cwd, ['keys', 'status']);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, new RegExp(`^key file ${cwd}/keys/kek\\.json\\n`));
  t.match(status.stdout, /version +state +created +study keys\n/);
  t.match(status.stdout, new RegExp(`${v1} +active +\\S+ +4  current\\n`));
  t.match(status.stdout, /erased studies: 1\n/);
  const keyFileText = fs.readFileSync(path.join(cwd, 'keys/kek.json'), 'utf8');
  const v1Key = JSON.parse(keyFileText).versions[0].key as string;
  t.notOk(status.stdout.includes(v1Key) || status.stderr.includes(v1Key), 'no key material printed');

  const partial = await run(cwd, ['keys', 'rotate', '--batch-size', '3', '--max-batches', '1']);
  t.equal(partial.code, 3, `stopped early: ${partial.stderr}`);
  t.match(partial.stdout, /^new key version v2-[0-9a-f]{8} is active\n/);
  t.match(partial.stdout, new RegExp(`index key re-wrapped from ${v1} to v2-`));
  t.match(partial.stdout, /3 study keys re-wrapped\nstopped early: 1 study keys still under v1-[0-9a-f]{8}; run dicomvault keys rotate again to continue\n/);
  t.match(partial.stderr, /^study keys re-wrapped: 0\/4 \(0%\)\n/, 'plain progress lines when stderr is not a terminal');
  const v2 = /new key version (\S+)/.exec(partial.stdout)![1]!;
  t.equal(JSON.parse(fs.readFileSync(path.join(cwd, 'data', INDEX_KEY_FILE), 'utf8')).kekVersion, v2);

  const rest = await run(cwd, ['keys', 'rotate']);
  t.equal(rest.code, 0, rest.stderr);
  t.match(rest.stdout, new RegExp(`^continuing the rotation to ${v2}\\n`));
  t.match(rest.stdout, new RegExp(`1 study keys re-wrapped\\nretired ${v1} \\(removed from .*kek\\.json\\)\\nback up the key file now`));
  t.match(rest.stderr, /study keys re-wrapped: 1\/1 \(100%\)\n$/);

  const after = await run(cwd, ['keys', 'status']);
  t.match(after.stdout, new RegExp(`${v1} +retired +\\S+ +0\\n`));
  t.match(after.stdout, new RegExp(`${v2} +active +\\S+ +4  current\\n`));
  t.notOk(fs.readFileSync(path.join(cwd, 'keys/kek.json'), 'utf8').includes(v1Key), 'the retired key left the file');

  // The server starts again on the rotated key file: index key and study keys unwrap to the same bytes.
  const restarted = LocalKeyfileProvider.open(path.join(cwd, 'keys/kek.json'));
  const reopened = await openIndex(cwd, restarted);
  t.teardown(() => reopened.close());
  const fresh = new SqliteStudyKeyring(reopened.database, restarted, { cacheTtlMs: 60_000, cacheMaxKeys: 10 });
  t.teardown(() => fresh.close());
  for (const { id, bytes } of keys) t.same(await fresh.byId(id), bytes);
  t.equal(fresh.isErased('2.25.5'), true);
});

t.test('fails closed with one line: unsafe key file, bad options', async (t) => {
  const cwd = tempDir(t);
  openKeyProvider({ keys: { file: path.join(cwd, 'keys/kek.json') }, storage: { dataDir: path.join(cwd, 'data') } }, { dataDirHasData: false }).close();
  fs.chmodSync(path.join(cwd, 'keys/kek.json'), 0o640);
  const unsafe = await run(cwd, ['keys', 'rotate']);
  t.equal(unsafe.code, 1);
  t.match(unsafe.stderr, /^dicomvault keys: key file .*kek\.json: is accessible by group or others \(mode 0640\).*chmod 600/);
  t.equal(unsafe.stderr.trim().split('\n').length, 1);
  const usage = await run(cwd, ['keys', 'rotate', '--batch-size', '0']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /--batch-size must be a positive whole number/);
  const missing = await run(tempDir(t), ['keys', 'status']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /key file .*keys\/kek\.json: does not exist/);
});
