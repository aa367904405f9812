// SqliteStudyKeyring on a real index and a real key file: one key per study even under concurrent creation
// (one process or two), cached keys zeroed on eviction, erasure final everywhere.
import t from 'tap';
import { KeyCache } from '../../../src/storage/keys/key-cache.js';
import { KeyIntegrityError } from '../../../src/storage/keys/key-provider.js';
import { StudyKeyErasedError } from '../../../src/storage/keys/study-keyring.js';
import { isClosedKekVersionError } from '../../../src/index/sqlite/study-key-table.js';
import { keysFixture } from './keys-fixture.js';

const STUDY = '1.2.826.0.1.3680043.8.498.1';
const OTHER = '1.2.826.0.1.3680043.8.498.2';
const isZero = (b: Buffer) => b.every((x) => x === 0);

t.test('forStudy creates one key per study, even when requests race', async (t) => {
  const fx = keysFixture(t);
  const a = fx.keyring();
  const b = fx.keyring(); // another connection: another process's view
  const results = await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? a : b).forStudy(STUDY)));
  const ids = new Set(results.map((r) => r.id.toString('hex')));
  const keys = new Set(results.map((r) => r.key.toString('hex')));
  t.equal(ids.size, 1, 'one id');
  t.equal(keys.size, 1, 'one key');
  t.equal(results[0]!.id.length, 16);
  t.equal(results[0]!.key.length, 32);
  t.notOk(isZero(results[0]!.key));
  t.same(fx.table().countByVersion(), [{ version: fx.provider.currentVersion(), count: 1 }], 'one row');

  const other = await a.forStudy(OTHER);
  t.not(other.id.toString('hex'), results[0]!.id.toString('hex'));
  t.not(other.key.toString('hex'), results[0]!.key.toString('hex'));

  // A cold keyring (a restart) unwraps the same bytes by id and by study.
  const cold = fx.keyring();
  t.same(await cold.byId(results[0]!.id), results[0]!.key);
  t.same((await fx.keyring().forStudy(STUDY)).key, results[0]!.key);
  t.equal(cold.isErased(STUDY), false);
});

t.test('the stored key is wrapped and bound to its row', async (t) => {
  const fx = keysFixture(t);
  const { id, key } = await fx.keyring().forStudy(STUDY);
  const row = fx.table().byId(id)!;
  t.match(row, { study_uid: STUDY, kek_version: fx.provider.currentVersion(), destroyed_at: null, created_at: /^\d{4}-\d\d-\d\dT/ });
  t.notOk(row.wrapped!.includes(key.subarray(0, 8)), 'no plaintext key in the index');
  // The wrapped bytes of one study copied onto another study's row do not unwrap there.
  const { id: otherId } = await fx.keyring().forStudy(OTHER);
  fx.database().prepare('UPDATE study_keys SET wrapped = ? WHERE id = ?').run(row.wrapped, otherId);
  await t.rejects(fx.keyring().byId(otherId), KeyIntegrityError);
});

t.test('the cache zeroes what it evicts: by size, by time, at close', async (t) => {
  let now = 0;
  const cache = new KeyCache({ maxKeys: 2, ttlMs: 1000, now: () => now });
  t.teardown(() => cache.close());
  const [a, b, c] = [Buffer.alloc(32, 1), Buffer.alloc(32, 2), Buffer.alloc(32, 3)];
  cache.set('a', a);
  cache.set('b', b);
  t.equal(cache.get('a'), a, 'the cached Buffer');
  cache.set('c', c); // b is now the least recently used
  t.ok(isZero(b), 'evicted by size: zeroed');
  t.equal(cache.get('b'), undefined);
  now += 1000;
  t.equal(cache.get('a'), undefined, 'unused for ttlMs: gone');
  t.ok(isZero(a), 'and zeroed');
  cache.close();
  t.ok(isZero(c), 'close() zeroes every key');
});

t.test('callers get copies: an eviction never zeroes a key someone is using', async (t) => {
  const fx = keysFixture(t);
  let now = Date.parse('2030-01-01T00:00:00Z');
  const keyring = fx.keyring({ cacheMaxKeys: 2, cacheTtlMs: 1000, now: () => new Date(now) });
  const first = await keyring.forStudy('1.1');
  const copy = Buffer.from(first.key);
  t.notOk(isZero(copy));
  await keyring.forStudy('1.2');
  await keyring.forStudy('1.3'); // evicts 1.1 from the cache
  t.same(first.key, copy, 'the copy handed out survives the eviction');
  const again = await keyring.byId(first.id);
  t.same(again, copy, 'unwrapped again from the index');
  t.not(again, first.key, 'a new Buffer');
  now += 1000;
  const afterExpiry = await keyring.byId(first.id); // expired: evicted and unwrapped again
  t.same(afterExpiry, copy);
  t.same(again, copy, 'the expiry did not touch the earlier copy');
  // Two reads racing an expiry (the bug this guards against: a 500 and a false security alert).
  now += 1000;
  const racing = await Promise.all([keyring.byId(first.id), keyring.byId(first.id)]);
  t.ok(racing.every((k) => k.equals(copy) && !isZero(k)));
  t.not(racing[0], racing[1], 'each caller its own copy');
  keyring.close();
  t.same(afterExpiry, copy, 'close() zeroes the cache, not the callers\' copies');
});

t.test('concurrent first reads share one unwrap', async (t) => {
  const fx = keysFixture(t);
  const { id, key } = await fx.keyring().forStudy(STUDY);
  const keyring = fx.keyring();
  let unwraps = 0;
  const provider = (keyring as unknown as { provider: { unwrap: (...a: unknown[]) => Promise<Buffer> } }).provider;
  const unwrap = provider.unwrap.bind(provider);
  provider.unwrap = (...a: unknown[]) => {
    unwraps++;
    return unwrap(...a);
  };
  const keys = await Promise.all(Array.from({ length: 10 }, () => keyring.byId(id)));
  t.ok(keys.every((k) => k.equals(key)), 'the same key');
  t.equal(unwraps, 1, 'one unwrap for all ten');
});

t.test('destroy erases the study for good', async (t) => {
  const fx = keysFixture(t);
  const keyring = fx.keyring();
  const other = fx.keyring(); // another process with the key cached
  const { id, key } = await keyring.forStudy(STUDY);
  await other.byId(id);
  const kept = await keyring.forStudy(OTHER);

  await keyring.destroy(STUDY);
  key.fill(0);
  const row = fx.table().byStudy(STUDY)!;
  t.match(row, { wrapped: null, kek_version: null, destroyed_at: /^\d{4}-/ }, 'wrapped key gone, erasure recorded');
  for (const [name, k] of [['this keyring', keyring], ['another connection', other], ['a fresh keyring', fx.keyring()]] as const) {
    await t.rejects(k.byId(id), StudyKeyErasedError, `${name}: byId`);
    await t.rejects(k.forStudy(STUDY), StudyKeyErasedError, `${name}: forStudy does not make a new key`);
    t.equal(k.isErased(STUDY), true, `${name}: isErased`);
  }
  t.equal(fx.table().byStudy(STUDY)!.id.toString('hex'), id.toString('hex'), 'no second row');
  await keyring.destroy(STUDY);
  t.equal(fx.table().byStudy(STUDY)!.destroyed_at, row.destroyed_at, 'idempotent: the first erasure time stays');
  t.notOk(isZero(kept.key), 'other studies untouched');
  t.equal(keyring.isErased(OTHER), false);

  // A study erased before it had a key stays erased too.
  await keyring.destroy('9.9.9');
  t.equal(keyring.isErased('9.9.9'), true);
  await t.rejects(keyring.forStudy('9.9.9'), StudyKeyErasedError);
  t.equal(keyring.isErased('never.seen'), false);
  await t.rejects(keyring.byId(Buffer.alloc(16, 7)), StudyKeyErasedError, 'an id never issued');
  await t.rejects(keyring.byId(Buffer.alloc(3)), StudyKeyErasedError, 'not even an id');
});

t.test('start-up check: the key file must unwrap the index keys', async (t) => {
  const fx = keysFixture(t);
  await fx.keyring().forStudy(STUDY);
  t.equal(await fx.keyring().verifyUnwrap(), 1);
  const foreign = keysFixture(t).provider;
  await t.rejects(fx.keyring({}, foreign).verifyUnwrap(), { name: 'KeyUnavailableError' }, 'another archive key file');
});

t.test('keys under a version a rotation closed are refused by the index', async (t) => {
  const fx = keysFixture(t);
  const table = fx.table();
  const v1 = fx.provider.currentVersion();
  table.closeVersions([v1]);
  try {
    table.insert(Buffer.alloc(16, 1), '5.5', v1, Buffer.alloc(60), new Date());
    t.fail('inserted');
  } catch (e) {
    t.ok(isClosedKekVersionError(e), (e as Error).message);
  }
  // The keyring (its provider not yet told) re-reads the key file and wraps under the new version.
  const keyring = fx.keyring();
  fx.openProvider().addVersion();
  const { id } = await keyring.forStudy('5.5');
  t.not(fx.table().byId(id)!.kek_version, v1);
});
