// SqliteShareStore (index/share-store.ts) on the index file: atomic redeem, expiry, revocation, sessions, listing.
import path from 'node:path';
import t, { type Test } from 'tap';
import type { ShareRecord } from '../../src/index/share-store.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { SqliteShareStore } from '../../src/index/sqlite/sqlite-share-store.js';
import { tempDir } from '../helpers/temp-dir.js';

const T0 = Date.UTC(2025, 0, 1, 12);
const at = (ms: number) => new Date(T0 + ms);

function open(t: Test) {
  const file = path.join(tempDir(t), 'index.sqlite');
  const index = new SqliteIndexStore(file);
  t.teardown(() => index.close());
  return { index, shares: new SqliteShareStore(index.database), file };
}

const share = (over: Partial<ShareRecord> = {}): ShareRecord => ({
  id: 'share-1',
  tokenHash: 'a'.repeat(64),
  studyInstanceUID: '1.2.3',
  scope: 'view',
  createdBy: 'alice',
  createdAt: at(0),
  expiresAt: at(60_000),
  maxUses: 2,
  uses: 0,
  failedAttempts: 0,
  ...over,
});

t.test('create, get and findByTokenHash round-trip every field; absent optionals stay absent', (t) => {
  const { shares } = open(t);
  const full = share({ secondFactorHash: 'scrypt$00$11', note: 'for Dr Who', maxUses: null });
  shares.create(full);
  t.same(shares.get('share-1'), full);
  t.same(shares.findByTokenHash('a'.repeat(64)), full);
  shares.create(share({ id: 'share-2', tokenHash: 'b'.repeat(64) }));
  const plain = shares.get('share-2')!;
  t.notOk('secondFactorHash' in plain);
  t.notOk('note' in plain);
  t.notOk('revokedAt' in plain);
  t.equal(shares.get('nope'), undefined);
  t.equal(shares.findByTokenHash('c'.repeat(64)), undefined);
  t.throws(() => shares.create(share({ id: 'share-3' })), /UNIQUE/, 'token hashes are unique');
  t.end();
});

t.test('redeem counts uses up to maxUses, then refuses without changing anything', (t) => {
  const { shares } = open(t);
  shares.create(share());
  t.equal(shares.redeem('share-1', at(1))?.uses, 1);
  t.equal(shares.redeem('share-1', at(2))?.uses, 2);
  t.equal(shares.redeem('share-1', at(3)), undefined, 'no uses left');
  t.equal(shares.get('share-1')!.uses, 2);
  t.equal(shares.redeem('missing', at(1)), undefined);
  t.end();
});

t.test('redeem is atomic across connections: the last use goes to exactly one', (t) => {
  const { shares, file } = open(t);
  shares.create(share({ maxUses: 1 }));
  const other = new SqliteIndexStore(file);
  t.teardown(() => other.close());
  const second = new SqliteShareStore(other.database);
  const results = [shares.redeem('share-1', at(1)), second.redeem('share-1', at(1))];
  t.equal(results.filter((r) => r !== undefined).length, 1);
  t.equal(second.get('share-1')!.uses, 1);
  t.end();
});

t.test('redeem: unlimited links until they expire; expiry is exclusive', (t) => {
  const { shares } = open(t);
  shares.create(share({ maxUses: null }));
  for (let i = 1; i <= 5; i++) t.equal(shares.redeem('share-1', at(i))?.uses, i);
  t.equal(shares.redeem('share-1', at(59_999))?.uses, 6);
  t.equal(shares.redeem('share-1', at(60_000)), undefined, 'expired at expiresAt');
  t.equal(shares.get('share-1')!.uses, 6);
  shares.create(share({ id: 'zero', tokenHash: 'z'.repeat(64), maxUses: 0 }));
  t.equal(shares.redeem('zero', at(1)), undefined, 'maxUses 0 never redeems');
  t.end();
});

t.test('revoke: once, with who and when; the link stops redeeming and its sessions end', (t) => {
  const { shares } = open(t);
  shares.create(share({ maxUses: null }));
  shares.addSession({ tokenHash: 's1', shareId: 'share-1', createdAt: at(1), expiresAt: at(1000) });
  t.ok(shares.findSession('s1'));
  t.equal(shares.revoke('share-1', 'bob', at(5)), true);
  t.equal(shares.revoke('share-1', 'carol', at(6)), false, 'already revoked');
  t.equal(shares.revoke('missing', 'bob', at(6)), false);
  t.match(shares.get('share-1'), { revokedAt: at(5), revokedBy: 'bob' });
  t.equal(shares.redeem('share-1', at(7)), undefined);
  t.equal(shares.findSession('s1'), undefined);
  t.end();
});

t.test('failed second-factor attempts are counted', (t) => {
  const { shares } = open(t);
  shares.create(share());
  t.equal(shares.recordFailedAttempt('share-1'), 1);
  t.equal(shares.recordFailedAttempt('share-1'), 2);
  t.equal(shares.get('share-1')!.failedAttempts, 2);
  t.equal(shares.recordFailedAttempt('missing'), 0);
  t.end();
});

t.test('sessions: add, find, expire; a session must name an existing link', (t) => {
  const { shares } = open(t);
  shares.create(share());
  const s1 = { tokenHash: 's1', shareId: 'share-1', createdAt: at(1), expiresAt: at(100) };
  const s2 = { tokenHash: 's2', shareId: 'share-1', createdAt: at(2), expiresAt: at(200) };
  shares.addSession(s1);
  shares.addSession(s2);
  t.same(shares.findSession('s1'), s1);
  t.equal(shares.findSession('s3'), undefined);
  t.throws(() => shares.addSession({ ...s1, tokenHash: 's4', shareId: 'nope' }), /FOREIGN KEY/);
  t.equal(shares.deleteExpiredSessions(at(100)), 0, 'ends at expiresAt, not before');
  t.equal(shares.deleteExpiredSessions(at(101)), 1);
  t.equal(shares.findSession('s1'), undefined);
  t.same(shares.findSession('s2'), s2);
  t.end();
});

t.test('list: newest first, optionally only one creator', (t) => {
  const { shares } = open(t);
  shares.create(share({ id: 'a1', tokenHash: '1', createdBy: 'alice', createdAt: at(1) }));
  shares.create(share({ id: 'b1', tokenHash: '2', createdBy: 'bob', createdAt: at(2) }));
  shares.create(share({ id: 'a2', tokenHash: '3', createdBy: 'alice', createdAt: at(3) }));
  shares.create(share({ id: 'a3', tokenHash: '4', createdBy: 'alice', createdAt: at(3) }));
  t.same(shares.list().map((s) => s.id), ['a3', 'a2', 'b1', 'a1']);
  t.same(shares.list({ createdBy: 'alice' }).map((s) => s.id), ['a3', 'a2', 'a1']);
  t.same(shares.list({ createdBy: 'nobody' }), []);
  t.end();
});
