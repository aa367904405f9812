// KEK rotation on a real key file and index: every study key re-wrapped to the same bytes, the old version
// retired and its key removed from the file; an interrupted rotation continues on the next run; a server
// with the key file open keeps working throughout.
import fs from 'node:fs';
import t from 'tap';
import { rotateKek } from '../../../src/storage/keys/kek-rotation.js';
import { keysFixture } from './keys-fixture.js';

const uids = Array.from({ length: 7 }, (_, i) => `1.2.826.0.1.3680043.8.498.${i + 1}`);

async function seed(fx: ReturnType<typeof keysFixture>) {
  const keyring = fx.keyring();
  const keys = new Map<string, { id: Buffer; bytes: Buffer }>();
  for (const uid of uids) {
    const { id, key } = await keyring.forStudy(uid);
    keys.set(uid, { id, bytes: Buffer.from(key) });
  }
  await keyring.destroy(uids[6]!); // an erased study: nothing to re-wrap, stays erased
  keys.delete(uids[6]!);
  return keys;
}

const fileVersions = (file: string) =>
  (JSON.parse(fs.readFileSync(file, 'utf8')).versions as Record<string, unknown>[]).map((v) => [v.id, v.state, 'key' in v]);

t.test('rotate: keys re-wrapped to the same bytes, old version retired and gone from the file', async (t) => {
  const fx = keysFixture(t);
  const v1 = fx.provider.currentVersion();
  const keys = await seed(fx);
  const server = fx.keyring(); // keeps running during the rotation, cache warm for one study
  await server.forStudy(uids[0]!);

  const rotator = fx.openProvider();
  const progress: [number, number][] = [];
  const others: string[] = [];
  const result = await rotateKek(rotator, fx.table(), {
    batchSize: 4,
    onProgress: ({ done, total }) => progress.push([done, total]),
    rewrapOthers: async (p) => {
      others.push(p.currentVersion());
    },
  });
  const v2 = rotator.currentVersion();
  t.match(result, { started: true, current: v2, from: [v1], rewrapped: 6, remaining: 0, complete: true });
  t.same(progress, [[0, 6], [4, 6], [6, 6]]);
  t.same(others, [v2], 'the index key hook ran with the new version');
  t.same(fx.table().countByVersion().sort((a, b) => String(a.version).localeCompare(String(b.version))), [
    { version: null, count: 1 },
    { version: v2, count: 6 },
  ]);
  t.same(fileVersions(fx.keyFile), [[v1, 'retired', false], [v2, 'active', true]]);
  t.notOk(fs.existsSync(`${fx.keyFile}.lock`), 'lock released');

  for (const [uid, { id, bytes }] of keys) {
    t.same(await fx.keyring().byId(id), bytes, `${uid}: same key after rotation (cold)`);
    t.same((await server.forStudy(uid)).key, bytes, `${uid}: the running server reads it too`);
  }
  t.equal(fx.provider.currentVersion(), v2, 'the server provider picked up the new version');
  await t.rejects(fx.provider.unwrap({ kekVersion: v1, wrapped: Buffer.alloc(60) }, 'x'), { name: 'KeyUnavailableError', message: /retired/ });
  t.equal(fx.keyring().isErased(uids[6]!), true);

  // A second rotation: v2 becomes decrypt-only and is retired in turn.
  const again = await rotateKek(fx.openProvider(), fx.table(), { batchSize: 100 });
  t.match(again, { started: true, from: [v2], rewrapped: 6, complete: true });
  t.same(fileVersions(fx.keyFile).map((v) => v[1]), ['retired', 'retired', 'active']);
  for (const { id, bytes } of keys.values()) t.same(await fx.keyring().byId(id), bytes);
});

t.test('an interrupted rotation continues on the next run; the server keeps working in between', async (t) => {
  const fx = keysFixture(t);
  const v1 = fx.provider.currentVersion();
  const keys = await seed(fx);
  const server = fx.keyring();

  const partial = await rotateKek(fx.openProvider(), fx.table(), { batchSize: 2, maxBatches: 1 });
  const v2 = partial.current;
  t.match(partial, { started: true, from: [v1], rewrapped: 2, remaining: 4, complete: false });
  t.same(fileVersions(fx.keyFile), [[v1, 'decrypt-only', true], [v2, 'active', true]], 'v1 still decrypts');
  t.same(
    fx.table().countByVersion().filter((r) => r.version !== null).sort((a, b) => a.version!.localeCompare(b.version!)),
    [{ version: v1, count: 4 }, { version: v2, count: 2 }],
  );
  for (const { id, bytes } of keys.values()) t.same(await server.byId(id), bytes, 'mixed versions all readable');
  const { id: newId } = await server.forStudy('2.25.1');
  t.equal(fx.table().byId(newId)!.kek_version, v2, 'a study created mid-rotation uses the new version');

  const rest = await rotateKek(fx.openProvider(), fx.table(), { batchSize: 3 });
  t.match(rest, { started: false, current: v2, from: [v1], rewrapped: 4, remaining: 0, complete: true }, 'continued, no third version');
  t.same(fileVersions(fx.keyFile), [[v1, 'retired', false], [v2, 'active', true]]);
  for (const { id, bytes } of keys.values()) t.same(await fx.keyring().byId(id), bytes);
});

t.test('no index yet: the new version is active and the old one retired at once', async (t) => {
  const fx = keysFixture(t);
  const v1 = fx.provider.currentVersion();
  const result = await rotateKek(fx.openProvider(), null);
  t.match(result, { started: true, from: [v1], rewrapped: 0, complete: true });
  t.same(fileVersions(fx.keyFile).map((v) => v[1]), ['retired', 'active']);
});

t.test('one rotation at a time; a lock left by a dead process is taken over', async (t) => {
  const fx = keysFixture(t);
  const lock = `${fx.keyFile}.lock`;
  fs.writeFileSync(lock, `${process.pid}\n`);
  await t.rejects(rotateKek(fx.openProvider(), fx.table()), { message: new RegExp(`another key rotation is running \\(process ${process.pid}`) });
  t.same(fileVersions(fx.keyFile).length, 1, 'nothing changed');
  fs.writeFileSync(lock, '2147483646\n'); // no such process
  t.match(await rotateKek(fx.openProvider(), fx.table()), { complete: true });
  t.notOk(fs.existsSync(lock));
});
