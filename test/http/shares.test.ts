// Share-link routes (http/routes/shares.ts) on a small Fastify app with the real error handler, security headers
// and authentication plugin (webResolver with the ShareLinks session lookup), over real SQLite stores.
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { CollectedRequestAudit } from '../../src/audit/auditor.js';
import { registerAuthentication, SHARE_SESSION_COOKIE, webResolver } from '../../src/http/plugins/authenticate.js';
import { registerErrorHandler } from '../../src/http/plugins/error-handler.js';
import { registerSecurityHeaders } from '../../src/http/plugins/security-headers.js';
import { shareRoutes } from '../../src/http/routes/shares.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { SqliteShareStore } from '../../src/index/sqlite/sqlite-share-store.js';
import { createLogger } from '../../src/logger.js';
import { Access } from '../../src/policy/access.js';
import { ShareLinks } from '../../src/policy/share-links.js';
import type { Principal } from '../../src/security/principal.js';
import { BATCH_1, ST1, ST2 } from '../contracts/index-store.fixtures.js';
import { person, sharePolicies } from '../helpers/share-policies.js';
import { tempDir } from '../helpers/temp-dir.js';

const T0 = Date.UTC(2025, 0, 1, 12);
const HOUR = 3_600_000;
const WEB = 'https://web.example.org/dicomweb';
const VIEWER = 'https://viewer.example.org/viewer?StudyInstanceUIDs={StudyInstanceUID}';

const PEOPLE: Record<string, Principal> = { alice: person('alice'), bob: person('bob'), root: person('root', ['admin']) };
const decider = sharePolicies(tempDir(t));

async function build(t: Test, options: { landing?: boolean; viewerUrl?: string } = {}) {
  const index = new SqliteIndexStore(path.join(tempDir(t), 'index.sqlite'));
  t.teardown(() => index.close());
  index.commit(BATCH_1, 'reject');
  const store = new SqliteShareStore(index.database);
  const clock = { now: T0 };
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const links = new ShareLinks({
    store,
    index,
    settings: { defaultTtlHours: 48, maxTtlHours: 720, sessionTtlMinutes: 60, maxFailedAttempts: 3 },
    log: logger,
    now: () => new Date(clock.now),
  });
  const app = Fastify({ loggerInstance: logger }) as unknown as FastifyInstance;
  registerErrorHandler(app);
  registerSecurityHeaders(app);
  // The routes tell the audit trail what they did (test/audit/endpoint-audit.test.ts checks the records).
  app.decorateRequest('audit', null as unknown as CollectedRequestAudit);
  app.addHook('onRequest', async (request) => {
    request.audit = new CollectedRequestAudit();
  });
  // Test principals by header (as the mTLS registry would name them); otherwise the web listener's resolver.
  const web = webResolver({ shareSession: (value) => links.sessionPrincipal(value) });
  registerAuthentication(app, (request) => {
    const id = request.headers['x-test-principal'];
    return typeof id === 'string' ? PEOPLE[id] : web(request);
  });
  await app.register(shareRoutes, {
    prefix: '/dicomweb',
    shares: links,
    accessOf: (request) => new Access(decider, request.principal),
    index,
    webBaseUrl: WEB,
    basePath: '/dicomweb',
    ...options,
  });
  app.get('/dicomweb/whoami', async (request) => ({ id: request.principal.id, share: request.principal.share ?? null }));
  await app.ready();
  t.teardown(() => app.close());
  return { app, store, clock, lines };
}

const as = (who: string) => ({ 'x-test-principal': who });

async function createLink(app: FastifyInstance, body: Record<string, unknown>, who = 'alice') {
  const res = await app.inject({ method: 'POST', url: '/dicomweb/shares', headers: as(who), payload: body });
  return { res, body: res.json() as Record<string, unknown> & { id: string; token: string; url: string } };
}

const tokenOf = (url: string) => url.slice(`${WEB}/share/`.length);

t.test('POST /shares: 201 with the link, once; GET lists and reads it without the token; DELETE revokes', async (t) => {
  const { app, store } = await build(t);
  const { res, body } = await createLink(app, { studyInstanceUID: ST1, scope: 'download', expiresInHours: 2, maxUses: 5, secondFactor: '1970-01-02', note: 'Dr Who' });
  t.equal(res.statusCode, 201);
  t.equal(res.headers['cache-control'], 'no-store');
  t.match(body.token, /^[A-Za-z0-9_-]{43}$/);
  t.equal(body.url, `${WEB}/share/${body.token}`);
  t.match(body, {
    id: /^[A-Za-z0-9_-]{22}$/,
    studyInstanceUID: ST1,
    scope: 'download',
    createdBy: 'alice',
    createdAt: new Date(T0).toISOString(),
    expiresAt: new Date(T0 + 2 * HOUR).toISOString(),
    maxUses: 5,
    uses: 0,
    secondFactor: true,
    status: 'active',
    note: 'Dr Who',
  });
  t.notOk('tokenHash' in body || 'secondFactorHash' in body);

  const list = await app.inject({ method: 'GET', url: '/dicomweb/shares', headers: as('alice') });
  t.equal(list.statusCode, 200);
  t.equal(list.headers['cache-control'], 'no-store');
  const listed = list.json() as Record<string, unknown>[];
  t.same(listed.map((s) => s.id), [body.id]);
  t.notOk(list.payload.includes(body.token), 'the token is shown once only');
  t.same((await app.inject({ method: 'GET', url: '/dicomweb/shares', headers: as('bob') })).json(), []);
  t.equal((await app.inject({ method: 'GET', url: '/dicomweb/shares', headers: as('root') })).json<unknown[]>().length, 1);

  const one = await app.inject({ method: 'GET', url: `/dicomweb/shares/${body.id}`, headers: as('alice') });
  t.equal(one.statusCode, 200);
  t.match(one.json(), { id: body.id, status: 'active' });
  t.notOk(one.payload.includes(body.token));
  const notHis = await app.inject({ method: 'GET', url: `/dicomweb/shares/${body.id}`, headers: as('bob') });
  const missing = await app.inject({ method: 'GET', url: '/dicomweb/shares/nosuchid', headers: as('bob') });
  t.equal(notHis.statusCode, 404);
  t.same(notHis.json(), missing.json(), "someone else's link looks like no link");

  t.equal((await app.inject({ method: 'DELETE', url: `/dicomweb/shares/${body.id}`, headers: as('bob') })).statusCode, 404);
  t.equal(store.get(body.id)!.revokedAt, undefined);
  const del = await app.inject({ method: 'DELETE', url: `/dicomweb/shares/${body.id}`, headers: as('alice') });
  t.equal(del.statusCode, 204);
  t.equal(del.payload, '');
  t.ok(store.get(body.id)!.revokedAt);
  t.match((await app.inject({ method: 'GET', url: `/dicomweb/shares/${body.id}`, headers: as('alice') })).json(), { status: 'revoked', revokedBy: 'alice' });
});

t.test('POST /shares: refusals', async (t) => {
  const { app, store } = await build(t);
  const denied = await createLink(app, { studyInstanceUID: ST2, scope: 'view' });
  const absent = await createLink(app, { studyInstanceUID: '1.2.3.404', scope: 'view' });
  t.equal(denied.res.statusCode, 404);
  t.same(denied.body, absent.body, 'a study alice may not share looks like a missing one');
  t.same(denied.body, { error: 'NOT_FOUND', message: 'no such study' });

  t.match((await createLink(app, { studyInstanceUID: ST1, scope: 'edit' })).res.statusCode, 400);
  t.match((await createLink(app, { studyInstanceUID: ST1, scope: 'view', maxUses: 0 })).res.statusCode, 400);
  t.match((await createLink(app, { studyInstanceUID: ST1, scope: 'view', expiresInHours: 10_000 })).body, { error: 'BAD_REQUEST', message: /at most 720/ });
  t.match((await createLink(app, { studyInstanceUID: ST1, scope: 'view', extra: 1 })).res.statusCode, 400, 'unknown keys are refused');
  const form = await app.inject({
    method: 'POST',
    url: '/dicomweb/shares',
    headers: { ...as('alice'), 'content-type': 'application/x-www-form-urlencoded' },
    payload: `studyInstanceUID=${ST1}&scope=view`,
  });
  t.equal(form.statusCode, 415, 'JSON only: a cross-site form cannot create links');
  const unauthenticated = await app.inject({ method: 'POST', url: '/dicomweb/shares', payload: { studyInstanceUID: ST1, scope: 'view' } });
  t.equal(unauthenticated.statusCode, 401);
  t.same(store.list(), []);
});

t.test('GET /share/:token: a public page with a form; looks nothing up and uses nothing', async (t) => {
  const { app, store } = await build(t, { landing: true, viewerUrl: VIEWER });
  const { body } = await createLink(app, { studyInstanceUID: ST1, scope: 'view', maxUses: 1 });
  const page = await app.inject({ method: 'GET', url: `/dicomweb/share/${body.token}` });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /^text\/html; charset=utf-8/);
  t.equal(page.headers['content-security-policy'], "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://viewer.example.org; frame-ancestors 'none'; base-uri 'none'");
  t.equal(page.headers['referrer-policy'], 'no-referrer');
  t.equal(page.headers['cache-control'], 'no-store');
  t.match(page.payload, /<form method="post">/);
  t.match(page.payload, /name="secondFactor"/);
  t.notOk(page.payload.includes(body.token), 'the token is not repeated in the page');
  t.notOk(/<script/i.test(page.payload));
  t.equal(store.get(body.id)!.uses, 0, 'previewers may GET it freely');
  const unknown = await app.inject({ method: 'GET', url: `/dicomweb/share/${'A'.repeat(43)}` });
  t.equal(unknown.payload, page.payload, 'the same page for any token');
});

t.test('POST /share/:token (form): HttpOnly Secure SameSite=Strict cookie and 303 to the viewer; the cookie is the principal', async (t) => {
  const { app, store, lines } = await build(t, { landing: true, viewerUrl: VIEWER });
  const { body } = await createLink(app, { studyInstanceUID: ST1, scope: 'view', secondFactor: '19700102' });
  const res = await app.inject({
    method: 'POST',
    url: `/dicomweb/share/${body.token}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'secondFactor=1970-01-02',
  });
  t.equal(res.statusCode, 303);
  t.equal(res.headers.location, `https://viewer.example.org/viewer?StudyInstanceUIDs=${ST1}`);
  t.equal(res.headers['referrer-policy'], 'no-referrer');
  t.equal(res.headers['cache-control'], 'no-store');
  const cookie = String(res.headers['set-cookie']);
  const m = new RegExp(`^${SHARE_SESSION_COOKIE.replace(/[-_]/g, '\\$&')}=([A-Za-z0-9_-]{43}); Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Strict$`).exec(cookie);
  t.ok(m, `cookie attributes: ${cookie}`);
  t.equal(store.get(body.id)!.uses, 1);
  t.notOk(JSON.stringify(lines).includes(body.token), 'the token is not logged (not even the URL)');

  const me = await app.inject({ method: 'GET', url: '/dicomweb/whoami', headers: { cookie: `${SHARE_SESSION_COOKIE}=${m![1]}` } });
  t.equal(me.statusCode, 200);
  t.same(me.json(), { id: `share:${body.id}`, share: { shareId: body.id, studyInstanceUID: ST1, scope: 'view', expiresAt: new Date(T0 + HOUR).toISOString() } });
  const list = await app.inject({ method: 'GET', url: '/dicomweb/shares', headers: { cookie: `${SHARE_SESSION_COOKIE}=${m![1]}` } });
  t.same(list.json(), [], 'a share session sees no links');

  await app.inject({ method: 'DELETE', url: `/dicomweb/shares/${body.id}`, headers: as('alice') });
  const after = await app.inject({ method: 'GET', url: '/dicomweb/whoami', headers: { cookie: `${SHARE_SESSION_COOKIE}=${m![1]}` } });
  t.equal(after.statusCode, 401, 'revoking the link ends the session');
});

t.test('POST /share/:token (JSON) without viewerUrl: 200 JSON; every refusal is the same 401', async (t) => {
  const { app, clock, lines } = await build(t, { landing: true });
  const post = (token: string, payload?: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: `/dicomweb/share/${token}`, ...(payload ? { payload } : {}) });

  const plain = await createLink(app, { studyInstanceUID: ST1, scope: 'download', maxUses: 1 });
  const ok = await post(plain.body.token);
  t.equal(ok.statusCode, 200);
  t.same(ok.json(), { studyInstanceUID: ST1, scope: 'download', expiresAt: new Date(T0 + HOUR).toISOString() });
  t.match(String(ok.headers['set-cookie']), /HttpOnly; Secure; SameSite=Strict$/);

  const unknown = await post('A'.repeat(43));
  t.equal(unknown.statusCode, 401);
  t.same(unknown.json(), { error: 'UNAUTHENTICATED', message: 'This link cannot be opened. It may have expired or been revoked, or the answer was not right.' });
  t.equal(unknown.headers['set-cookie'], undefined);

  const usedUp = await post(plain.body.token);
  const withFactor = await createLink(app, { studyInstanceUID: ST1, scope: 'view', secondFactor: '1234' });
  const noFactor = await post(withFactor.body.token);
  const wrong = await post(withFactor.body.token, { secondFactor: '4321' });
  const revoked = await createLink(app, { studyInstanceUID: ST1, scope: 'view' });
  await app.inject({ method: 'DELETE', url: `/dicomweb/shares/${revoked.body.id}`, headers: as('alice') });
  const revokedRes = await post(revoked.body.token);
  const expiring = await createLink(app, { studyInstanceUID: ST1, scope: 'view', expiresInHours: 1 });
  clock.now = T0 + HOUR;
  const expired = await post(expiring.body.token);
  for (const [name, res] of Object.entries({ usedUp, noFactor, wrong, revokedRes, expired })) {
    t.equal(res.statusCode, 401, `${name}: 401`);
    t.equal(res.payload, unknown.payload, `${name}: the same body as an unknown token`);
    t.equal(res.headers['set-cookie'], undefined);
  }
  t.same(
    lines.filter((l) => l.event === 'share.refused').map((l) => l.reason),
    ['unknown-token', 'used-up', 'second-factor-missing', 'second-factor-wrong', 'revoked', 'expired'],
    'the log says which',
  );
});

t.test('POST /share/:token (form) refused: 401 with the page again', async (t) => {
  const { app } = await build(t, { landing: true, viewerUrl: VIEWER });
  const { body } = await createLink(app, { studyInstanceUID: ST1, scope: 'view', secondFactor: '1234' });
  const res = await app.inject({
    method: 'POST',
    url: `/dicomweb/share/${body.token}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'secondFactor=0000',
  });
  t.equal(res.statusCode, 401);
  t.match(res.headers['content-type'], /^text\/html/);
  t.match(res.payload, /role="alert">This link cannot be opened/);
  t.match(res.payload, /<form method="post">/);
  t.ok(res.headers['content-security-policy']);

  const big = await app.inject({
    method: 'POST',
    url: `/dicomweb/share/${body.token}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `secondFactor=${'x'.repeat(8192)}`,
  });
  t.equal(big.statusCode, 413, 'form bodies are capped');
  const forged = await app.inject({
    method: 'POST',
    url: `/dicomweb/share/${body.token}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
    payload: 'secondFactor=1234',
  });
  t.equal(forged.statusCode, 401, 'a form on another site cannot exchange the link, even with the right factor');
  t.equal(forged.headers['set-cookie'], undefined);
  const own = await app.inject({
    method: 'POST',
    url: `/dicomweb/share/${body.token}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
    payload: 'secondFactor=1234',
  });
  t.equal(own.statusCode, 303, 'from the landing page itself');
  const xml = await app.inject({ method: 'POST', url: `/dicomweb/share/${body.token}`, headers: { 'content-type': 'text/plain' }, payload: 'x' });
  t.equal(xml.statusCode, 415);
});

t.test('without landing: true (the mTLS listener) there is no /share/:token', async (t) => {
  const { app } = await build(t);
  const { body } = await createLink(app, { studyInstanceUID: ST1, scope: 'view' });
  t.equal((await app.inject({ method: 'GET', url: `/dicomweb/share/${body.token}`, headers: as('alice') })).statusCode, 404);
  t.equal((await app.inject({ method: 'POST', url: `/dicomweb/share/${body.token}`, headers: as('alice') })).statusCode, 404);
});
