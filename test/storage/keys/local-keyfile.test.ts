// The local key file provider on real files: creation and permissions, fail-closed start, AES-256-GCM wraps
// bound to their context, tamper detection, and re-reading the file after a rotation by another process.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { KeyFileError } from '../../../src/storage/keys/kek-file.js';
import { KeyIntegrityError, KeyUnavailableError } from '../../../src/storage/keys/key-provider.js';
import { LocalKeyfileProvider } from '../../../src/storage/keys/local-keyfile.js';
import { dataDirHasData, openKeyProvider } from '../../../src/storage/keys/open-key-provider.js';
import { tempDir } from '../../helpers/temp-dir.js';

const key32 = () => Buffer.alloc(32, 0xab);

function setup(t: Test) {
  const dir = tempDir(t);
  const keyFile = path.join(dir, 'keys/kek.json');
  const dataDir = path.join(dir, 'data');
  const config = { keys: { file: keyFile }, storage: { dataDir } };
  return { dir, keyFile, dataDir, config };
}

t.test('a new data folder gets a key file: 0600 in a 0700 folder, one active version', async (t) => {
  const { keyFile, dataDir, config } = setup(t);
  t.equal(dataDirHasData(dataDir), false, 'no data folder yet');
  const provider = openKeyProvider(config, { dataDirHasData: false });
  t.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  t.equal(fs.statSync(path.dirname(keyFile)).mode & 0o777, 0o700);
  const doc = JSON.parse(fs.readFileSync(keyFile, 'utf8'));
  t.match(doc, { format: 'dicomvault-kek', formatVersion: 1, current: /^v1-[0-9a-f]{8}$/ });
  t.equal(doc.versions.length, 1);
  t.match(doc.versions[0], { id: doc.current, state: 'active', createdAt: String, key: String, probe: String });
  t.equal(Buffer.from(doc.versions[0].key, 'base64').length, 32);
  t.equal(provider.currentVersion(), doc.current);
  t.same(provider.versions(), [{ id: doc.current, state: 'active', createdAt: doc.versions[0].createdAt }], 'versions() has no key material');
  // A second start opens the same file.
  const again = openKeyProvider(config, { dataDirHasData: true });
  t.equal(again.currentVersion(), doc.current);
  t.equal(fs.readFileSync(keyFile, 'utf8'), JSON.stringify(doc, null, 2) + '\n', 'opening does not rewrite the file');
});

t.test('fail closed: a data folder with data and no key file does not start', async (t) => {
  const { keyFile, dataDir, config } = setup(t);
  fs.mkdirSync(dataDir);
  fs.writeFileSync(path.join(dataDir, 'index.sqlite'), '');
  t.equal(dataDirHasData(dataDir), true);
  t.throws(() => openKeyProvider(config, { dataDirHasData: true }), {
    name: 'KeyFileError',
    message: /key file .*kek\.json does not exist but the data folder .*data holds data: restore the key file/,
  });
  t.notOk(fs.existsSync(keyFile), 'no new key file was made');
});

t.test('refuses a key file others can read, a malformed file, an altered key', async (t) => {
  const { keyFile, config } = setup(t);
  openKeyProvider(config, { dataDirHasData: false }).close();
  const good = fs.readFileSync(keyFile, 'utf8');

  fs.chmodSync(keyFile, 0o644);
  t.throws(() => LocalKeyfileProvider.open(keyFile), { name: 'KeyFileError', message: /accessible by group or others \(mode 0644\).*chmod 600/ });
  t.throws(() => openKeyProvider(config, { dataDirHasData: true }), KeyFileError, 'the start refuses it too');
  fs.chmodSync(keyFile, 0o600);

  const doc = JSON.parse(good);
  const variants: [string, string, RegExp][] = [
    ['not JSON', '{"format": ', /is not JSON/],
    ['another format', JSON.stringify({ ...doc, format: 'x' }), /is not a dicomvault-kek file/],
    ['a future format', JSON.stringify({ ...doc, formatVersion: 2 }), /format version 2 is not supported/],
    ['no versions', JSON.stringify({ ...doc, versions: [] }), /has no key versions/],
    ['a short key', JSON.stringify({ ...doc, versions: [{ ...doc.versions[0], key: Buffer.alloc(16).toString('base64') }] }), /key must be 32 bytes/],
    ['current names nothing', JSON.stringify({ ...doc, current: 'v9-00000000' }), /"current" must name the active version/],
    ['a retired version with a key', JSON.stringify({ ...doc, versions: [{ ...doc.versions[0], state: 'retired' }] }), /retired but still holds key material/],
  ];
  // One base64 character of the key changed: still 32 bytes, but the probe no longer unwraps.
  const k: string = doc.versions[0].key;
  const altered = (k[0] === 'A' ? 'B' : 'A') + k.slice(1);
  variants.push(['an altered key', JSON.stringify({ ...doc, versions: [{ ...doc.versions[0], key: altered }] }), /does not unwrap its probe/]);
  for (const [name, text, message] of variants) {
    fs.writeFileSync(keyFile, text, { mode: 0o600 });
    const err = t.throws(() => LocalKeyfileProvider.open(keyFile), { name: 'KeyFileError', message }, name) as Error;
    t.notOk(err.message.includes(k.slice(0, 12)) || err.message.includes(altered.slice(0, 12)), `${name}: no key material in the message`);
  }
  fs.rmSync(keyFile);
  t.throws(() => LocalKeyfileProvider.open(keyFile), { name: 'KeyFileError', message: /does not exist/ });
});

t.test('wrap/unwrap: AES-256-GCM bound to the context; tampering and wrong versions fail', async (t) => {
  const { config } = setup(t);
  const provider = openKeyProvider(config, { dataDirHasData: false });
  const key = key32();
  const w = await provider.wrap(key, 'dicomvault study-key|00');
  t.equal(w.kekVersion, provider.currentVersion());
  t.equal(w.wrapped.length, 12 + 32 + 16, 'nonce ‖ ciphertext ‖ tag');
  t.notOk(w.wrapped.includes(key.subarray(0, 8)), 'the key is not in the wrapped bytes');
  const w2 = await provider.wrap(key, 'dicomvault study-key|00');
  t.not(w2.wrapped.toString('hex'), w.wrapped.toString('hex'), 'random nonce: two wraps differ');
  t.same(await provider.unwrap(w, 'dicomvault study-key|00'), key);

  await t.rejects(provider.unwrap(w, 'dicomvault study-key|01'), KeyIntegrityError, 'another context');
  for (const i of [0, 20, w.wrapped.length - 1]) {
    const tampered = Buffer.from(w.wrapped);
    tampered[i]! ^= 1;
    await t.rejects(provider.unwrap({ ...w, wrapped: tampered }, 'dicomvault study-key|00'), KeyIntegrityError, `bit ${i} flipped`);
  }
  await t.rejects(provider.unwrap({ ...w, wrapped: w.wrapped.subarray(0, 20) }, 'dicomvault study-key|00'), KeyIntegrityError, 'truncated');
  await t.rejects(provider.unwrap({ ...w, kekVersion: 'v7-deadbeef' }, 'dicomvault study-key|00'), {
    name: 'KeyUnavailableError',
    message: /v7-deadbeef is not in the key file/,
  });

  // Another archive's key file: same-looking version scheme, other keys.
  const other = setup(t);
  const foreign = openKeyProvider(other.config, { dataDirHasData: false });
  await t.rejects(foreign.unwrap(w, 'dicomvault study-key|00'), KeyUnavailableError, 'a foreign version id is unknown');

  provider.close();
  await t.rejects(provider.unwrap(w, 'dicomvault study-key|00'), KeyUnavailableError, 'closed: keys gone');
});

t.test('a rotation by another process: unwrap re-reads the file once, wrap notices the new file', async (t) => {
  const { keyFile, config } = setup(t);
  const server = openKeyProvider(config, { dataDirHasData: false });
  const v1 = server.currentVersion();
  const old = await server.wrap(key32(), 'ctx');

  const cli = LocalKeyfileProvider.open(keyFile);
  const v2 = cli.addVersion();
  t.not(v2, v1);
  t.match(v2, /^v2-[0-9a-f]{8}$/);
  t.equal(fs.statSync(keyFile).mode & 0o777, 0o600, 'the rewritten file keeps mode 0600');
  t.same(cli.versions().map((v) => [v.id, v.state]), [[v1, 'decrypt-only'], [v2, 'active']]);
  const fresh = await cli.wrap(key32(), 'ctx');
  t.equal(fresh.kekVersion, v2);

  t.same(await server.unwrap(fresh, 'ctx'), key32(), 'unknown version: the server re-read the file');
  t.equal(server.currentVersion(), v2);
  t.same(await server.unwrap(old, 'ctx'), key32(), 'decrypt-only still unwraps');

  const v3 = cli.addVersion();
  t.equal((await server.wrap(key32(), 'ctx')).kekVersion, v3, 'wrap uses the version written since');

  cli.retire([v1, v2]);
  const doc = JSON.parse(fs.readFileSync(keyFile, 'utf8'));
  t.same(
    doc.versions.map((v: Record<string, unknown>) => [v.id, v.state, 'key' in v]),
    [[v1, 'retired', false], [v2, 'retired', false], [v3, 'active', true]],
    'retired versions lose their keys',
  );
  await t.rejects(server.unwrap(old, 'ctx'), { name: 'KeyUnavailableError', message: new RegExp(`${v1} is retired`) });
  t.throws(() => cli.retire([v3]), /refusing to retire the active key version/);
  t.equal(fs.readdirSync(path.dirname(keyFile)).length, 1, 'no temp files left');
});
