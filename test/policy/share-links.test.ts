// ShareLinks (policy/share-links.ts) over a real SqliteIndexStore and SqliteShareStore in a temporary folder,
// with an injected clock. The policy decisions come from a small table decider (the policy engine has its own tests).
import { createHash } from 'node:crypto';
import path from 'node:path';
import t, { type Test } from 'tap';
import { AppError } from '../../src/errors.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { SqliteShareStore } from '../../src/index/sqlite/sqlite-share-store.js';
import { createLogger } from '../../src/logger.js';
import { Access } from '../../src/policy/access.js';
import { normalizeSecondFactor, ShareLinks, type ShareLinksSettings } from '../../src/policy/share-links.js';
import { NO_ATTRIBUTES, type Principal } from '../../src/security/principal.js';
import { BATCH_1, ST1, ST2 } from '../contracts/index-store.fixtures.js';
import { person, sharePolicies } from '../helpers/share-policies.js';
import { tempDir } from '../helpers/temp-dir.js';

const T0 = Date.UTC(2025, 0, 1, 12);
const HOUR = 3_600_000;
const SETTINGS: ShareLinksSettings = { defaultTtlHours: 48, maxTtlHours: 720, sessionTtlMinutes: 60, maxFailedAttempts: 3 };

const ALICE = person('alice');
const BOB = person('bob');
const ADMIN = person('root', ['admin']);
const NOBODY = person('nobody');

const decider = sharePolicies(tempDir(t));
const accessOf = (p: Principal) => new Access(decider, p);

function setup(t: Test, settings: ShareLinksSettings = SETTINGS) {
  const index = new SqliteIndexStore(path.join(tempDir(t), 'index.sqlite'));
  t.teardown(() => index.close());
  index.commit(BATCH_1, 'reject'); // studies ST1 and ST2
  const store = new SqliteShareStore(index.database);
  const clock = { now: T0 };
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = createLogger('info', {
    write(s: string) {
      raw.push(s);
      lines.push(JSON.parse(s) as Record<string, unknown>);
    },
  });
  const links = new ShareLinks({ store, index, settings, log, now: () => new Date(clock.now) });
  const events = (event: string) => lines.filter((l) => l.event === event);
  return { links, store, clock, events, raw, index };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

t.test('create: a random token, only its hash stored, a public view without secrets, one log event', async (t) => {
  const { links, store, events, raw } = setup(t);
  const { share, token } = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view', note: 'for Dr Who' });
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url');
  const record = store.get(share.id)!;
  t.equal(record.tokenHash, sha256(token));
  t.notOk(JSON.stringify(record).includes(token), 'the token itself is stored nowhere in the record');
  t.same(share, {
    id: record.id,
    studyInstanceUID: ST1,
    scope: 'view',
    createdBy: 'alice',
    createdAt: new Date(T0),
    expiresAt: new Date(T0 + 48 * HOUR),
    maxUses: null,
    uses: 0,
    secondFactor: false,
    failedAttempts: 0,
    status: 'active',
    note: 'for Dr Who',
  });
  t.notOk('tokenHash' in share || 'secondFactorHash' in share);
  const [created, ...more] = events('share.created');
  t.equal(more.length, 0);
  t.match(created, { event: 'share.created', shareId: share.id, principal: 'alice', scope: 'view', maxUses: null, secondFactor: false });
  t.notOk(raw.join('').includes(token), 'no token in the log');
  t.notOk(raw.join('').includes(ST1), 'no study UID in the log');

  const second = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'download', expiresInHours: 2, maxUses: 3 });
  t.not(second.token, token);
  t.not(second.share.id, share.id);
  t.equal(second.share.expiresAt.getTime(), T0 + 2 * HOUR);
  t.equal(second.share.maxUses, 3);
});

t.test('create: a missing study and one the caller may not share answer the same NOT_FOUND', async (t) => {
  const { links, store } = setup(t);
  const refused = async (p: Principal, uid: string) => {
    try {
      await links.create(accessOf(p), { studyInstanceUID: uid, scope: 'view' });
      return undefined;
    } catch (e) {
      return e instanceof AppError ? { code: e.code, message: e.message } : e;
    }
  };
  const missing = await refused(ALICE, '1.2.3.4.404');
  t.same(missing, { code: 'NOT_FOUND', message: 'no such study' });
  t.same(await refused(ALICE, ST2), missing, 'exists, but alice may not share it');
  t.same(await refused(NOBODY, ST1), missing);
  const sharePrincipal: Principal = { ...person('share:x'), kind: 'share', share: { shareId: 'x', studyInstanceUID: ST1, scope: 'download', expiresAt: new Date(T0 + HOUR) } };
  t.same(await refused(sharePrincipal, ST1), missing, 'a share session cannot pass its study on');
  t.same(store.list(), [], 'nothing was stored');
  t.ok(await links.create(accessOf(BOB), { studyInstanceUID: ST2, scope: 'view' }));
});

t.test('create: input bounds', async (t) => {
  const { links } = setup(t);
  const a = accessOf(ALICE);
  await t.rejects(links.create(a, { studyInstanceUID: ST1, scope: 'view', expiresInHours: 721 }), { code: 'BAD_REQUEST', message: /at most 720/ });
  await t.rejects(links.create(a, { studyInstanceUID: ST1, scope: 'view', expiresInHours: 0 }), { code: 'BAD_REQUEST' });
  await t.rejects(links.create(a, { studyInstanceUID: ST1, scope: 'view', maxUses: 0 }), { code: 'BAD_REQUEST' });
  await t.rejects(links.create(a, { studyInstanceUID: ST1, scope: 'view', maxUses: 1.5 }), { code: 'BAD_REQUEST' });
  await t.rejects(links.create(a, { studyInstanceUID: ST1, scope: 'view', secondFactor: '   ' }), { code: 'BAD_REQUEST' });
  await t.rejects(links.create(a, { studyInstanceUID: 'not a uid', scope: 'view' }), { code: 'INVALID_UID' });
  await t.rejects(links.create(a, { studyInstanceUID: ST1, scope: 'edit' as 'view' }), { code: 'BAD_REQUEST' });
  const max = await links.create(a, { studyInstanceUID: ST1, scope: 'view', expiresInHours: 720 });
  t.equal(max.share.expiresAt.getTime(), T0 + 720 * HOUR);
});

t.test('exchange: a session for the link study, then the cookie is a share principal', async (t) => {
  const { links, store, clock, events, raw, index } = setup(t);
  const { share, token } = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'download' });
  clock.now += 1000;
  const result = await links.exchange(token);
  if (!result.ok) throw new Error(`refused: ${result.reason}`);
  t.match(result.cookieValue, /^[A-Za-z0-9_-]{43}$/);
  t.not(result.cookieValue, token);
  t.same(result.session, { tokenHash: sha256(result.cookieValue), shareId: share.id, createdAt: new Date(T0 + 1000), expiresAt: new Date(T0 + 1000 + HOUR) });
  t.same(result.grant, { shareId: share.id, studyInstanceUID: ST1, scope: 'download', expiresAt: new Date(T0 + 1000 + HOUR) });
  t.equal(result.share.uses, 1);
  t.equal(store.get(share.id)!.uses, 1);
  t.same(store.findSession(sha256(result.cookieValue)), result.session, 'only the cookie hash is stored');
  t.match(events('share.used'), [{ shareId: share.id, principal: `share:${share.id}`, uses: 1 }]);
  t.notOk(raw.join('').includes(result.cookieValue), 'no cookie value in the log');

  const principal = links.sessionPrincipal(result.cookieValue);
  t.same(principal, {
    kind: 'share',
    id: `share:${share.id}`,
    roles: [],
    attributes: NO_ATTRIBUTES,
    share: { shareId: share.id, studyInstanceUID: ST1, scope: 'download', expiresAt: new Date(T0 + 1000 + HOUR) },
  });
  const access = accessOf(principal!);
  t.ok(access.allows('read', index.studyAttributes(ST1)!), 'reads its study');
  t.notOk(access.allows('read', index.studyAttributes(ST2)!), 'and no other');

  t.equal(links.sessionPrincipal('x'.repeat(43)), undefined, 'unknown cookie');
  t.equal(links.sessionPrincipal('not a cookie'), undefined);
  t.equal(links.sessionPrincipal(token), undefined, 'the link token is not a session');

  clock.now = T0 + 1000 + HOUR - 1;
  t.ok(links.sessionPrincipal(result.cookieValue), 'still open just before the session ends');
  clock.now = T0 + 1000 + HOUR;
  t.equal(links.sessionPrincipal(result.cookieValue), undefined, 'the session ended after sessionTtlMinutes');
  t.equal(links.deleteExpiredSessions(), 0, 'ends strictly after expiresAt in the store');
  clock.now += 1;
  t.equal(links.deleteExpiredSessions(), 1);
});

t.test('exchange: the session never outlives the link', async (t) => {
  const { links, clock } = setup(t);
  const { token } = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view', expiresInHours: 0.25 });
  const result = await links.exchange(token);
  if (!result.ok) throw new Error(result.reason);
  t.equal(result.session.expiresAt.getTime(), T0 + 15 * 60_000, 'min(60 min, link expiry)');
  clock.now = T0 + 15 * 60_000;
  t.equal(links.sessionPrincipal(result.cookieValue), undefined);
  t.match(await links.exchange(token), { ok: false, reason: 'expired' });
});

t.test('exchange: maxUses, expiry, unknown and malformed tokens are refused with a reason for the log', async (t) => {
  const { links, clock, events } = setup(t);
  const { share, token } = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view', maxUses: 2, expiresInHours: 1 });
  t.match(await links.exchange(token), { ok: true });
  t.match(await links.exchange(token), { ok: true });
  t.same(await links.exchange(token), { ok: false, reason: 'used-up', shareId: share.id });
  t.same(links.get(accessOf(ALICE), share.id).status, 'used-up');

  const other = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view', expiresInHours: 1 });
  const early = await links.exchange(other.token);
  clock.now = T0 + HOUR;
  t.same(await links.exchange(other.token), { ok: false, reason: 'expired', shareId: other.share.id });
  t.equal(links.sessionPrincipal((early as { cookieValue: string }).cookieValue), undefined);

  t.same(await links.exchange('A'.repeat(43)), { ok: false, reason: 'unknown-token' });
  t.same(await links.exchange('short'), { ok: false, reason: 'malformed-token' });
  t.same(await links.exchange(`${token}=`), { ok: false, reason: 'malformed-token' });
  t.same(
    events('share.refused').map((e) => e.reason),
    ['used-up', 'expired', 'unknown-token', 'malformed-token', 'malformed-token'],
  );
  t.match(events('share.refused')[0], { shareId: share.id, principal: `share:${share.id}` });
});

t.test('second factor: normalised, salted scrypt; wrong answers count and lock the link', async (t) => {
  const { links, store, events, raw } = setup(t);
  t.equal(normalizeSecondFactor(' 1970-01-02 '), '19700102');
  t.equal(normalizeSecondFactor('19700102'), '19700102');
  t.equal(normalizeSecondFactor(' 1234 '), '1234');

  const { share, token } = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view', secondFactor: '1970-01-02' });
  t.equal(share.secondFactor, true);
  const stored = store.get(share.id)!.secondFactorHash!;
  t.match(stored, /^scrypt\$[0-9a-f]{32}\$[0-9a-f]{64}$/);
  t.notOk(stored.includes('19700102'));
  const again = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view', secondFactor: '19700102' });
  t.not(store.get(again.share.id)!.secondFactorHash, stored, 'a fresh salt per link');

  t.same(await links.exchange(token), { ok: false, reason: 'second-factor-missing', shareId: share.id });
  t.same(await links.exchange(token, '  '), { ok: false, reason: 'second-factor-missing', shareId: share.id });
  t.equal(store.get(share.id)!.failedAttempts, 0, 'a missing factor is not a guess');
  t.match(await links.exchange(token, '19700102'), { ok: true }, 'YYYYMMDD');
  t.match(await links.exchange(token, ' 1970-01-02 '), { ok: true }, 'YYYY-MM-DD with blanks');
  t.same(await links.exchange(token, '19700103'), { ok: false, reason: 'second-factor-wrong', shareId: share.id });
  t.equal(store.get(share.id)!.failedAttempts, 1);
  t.equal(store.get(share.id)!.uses, 2, 'a wrong factor uses nothing');
  t.same(await links.exchange(token, '1970-01-03'), { ok: false, reason: 'second-factor-wrong', shareId: share.id });
  t.same(await links.exchange(token, 'x'.repeat(1000)), { ok: false, reason: 'second-factor-wrong', shareId: share.id }, 'overlong: wrong, not hashed');
  t.match(events('share.locked'), [{ shareId: share.id, failedAttempts: 3 }]);
  t.same(await links.exchange(token, '19700102'), { ok: false, reason: 'locked', shareId: share.id }, 'locked: even the right answer');
  t.equal(links.get(accessOf(ALICE), share.id).status, 'locked');
  t.notOk(raw.join('').includes('19700102') || raw.join('').includes('1970-01-0'), 'no second factor in the log');
});

t.test('revoke: creator or admin; sessions end with the link; idempotent', async (t) => {
  const { links, events } = setup(t);
  const { share, token } = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view' });
  const used = await links.exchange(token);
  if (!used.ok) throw new Error(used.reason);
  t.ok(links.sessionPrincipal(used.cookieValue));

  t.throws(() => links.revoke(accessOf(BOB), share.id), { code: 'NOT_FOUND', message: 'no such share link' }, 'not his');
  t.throws(() => links.revoke(accessOf(BOB), 'no-such-id'), { code: 'NOT_FOUND', message: 'no such share link' }, 'same answer');
  t.ok(links.sessionPrincipal(used.cookieValue), 'a refused revoke changes nothing');

  const revoked = links.revoke(accessOf(ALICE), share.id);
  t.match(revoked, { status: 'revoked', revokedBy: 'alice', revokedAt: new Date(T0) });
  t.equal(links.sessionPrincipal(used.cookieValue), undefined, 'its session ended');
  t.same(await links.exchange(token), { ok: false, reason: 'revoked', shareId: share.id });
  t.match(links.revoke(accessOf(ALICE), share.id), { status: 'revoked' }, 'again: no error');
  t.match(events('share.revoked'), [{ shareId: share.id, principal: 'alice' }]);

  const bobs = await links.create(accessOf(BOB), { studyInstanceUID: ST2, scope: 'view' });
  t.match(links.revoke(accessOf(ADMIN), bobs.share.id), { status: 'revoked', revokedBy: 'root' }, 'admins revoke anyone\'s');
});

t.test('list and get: their own for creators, everything for admins', async (t) => {
  const { links, clock } = setup(t);
  const a1 = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view' });
  clock.now += 1;
  const b1 = await links.create(accessOf(BOB), { studyInstanceUID: ST2, scope: 'download', secondFactor: '1234' });
  clock.now += 1;
  const a2 = await links.create(accessOf(ALICE), { studyInstanceUID: ST1, scope: 'view' });

  t.same(links.list(accessOf(ALICE)).map((s) => s.id), [a2.share.id, a1.share.id], 'newest first');
  t.same(links.list(accessOf(BOB)).map((s) => s.id), [b1.share.id]);
  t.same(links.list(accessOf(ADMIN)).map((s) => s.id), [a2.share.id, b1.share.id, a1.share.id]);
  t.same(links.list(accessOf(NOBODY)), []);
  for (const view of links.list(accessOf(ADMIN))) {
    t.notOk('tokenHash' in view || 'secondFactorHash' in view, 'no hashes in a view');
    t.notOk(JSON.stringify(view).includes(a1.token) || JSON.stringify(view).includes(b1.token));
  }
  t.match(links.get(accessOf(BOB), b1.share.id), { id: b1.share.id, secondFactor: true, scope: 'download' });
  t.match(links.get(accessOf(ADMIN), b1.share.id), { id: b1.share.id });
  t.throws(() => links.get(accessOf(ALICE), b1.share.id), { code: 'NOT_FOUND' });
});
