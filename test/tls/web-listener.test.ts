// The two listeners (issue 5 items 1-2), on real TLS: `dicomvault serve` with web.enabled and a real OIDC
// issuer. The web port needs no client certificate and wants a bearer token (RFC 6750 challenges); the mTLS port
// refuses a CA-valid certificate the registry does not know (403) and lets the development admin in.
// Then the web resolver's rules (bearer vs cookie, public routes) over app.inject().
import path from 'node:path';
import Fastify from 'fastify';
import t from 'tap';
import { registerErrorHandler } from '../../src/http/plugins/error-handler.js';
import { AUTH_REALM, SHARE_SESSION_COOKIE, cookieValue, registerAuthentication, webResolver } from '../../src/http/plugins/authenticate.js';
import { configSchema } from '../../src/config/schema.js';
import { OidcVerifier } from '../../src/security/oidc.js';
import { issueClientCertificate } from '../../src/security/pki.js';
import { NO_ATTRIBUTES, type Principal } from '../../src/security/principal.js';
import { startServer } from '../e2e/cli-process.js';
import { request } from '../helpers/https-client.js';
import { startOidcIssuer } from '../helpers/oidc-issuer.js';
import { tempDir } from '../helpers/temp-dir.js';
import fs from 'node:fs';

const CHALLENGE = `Bearer realm="${AUTH_REALM}"`;

t.test('serve with web.enabled: two listeners', async (t) => {
  const issuer = await startOidcIssuer(t);
  const cwd = tempDir(t);
  const server = await startServer(t, cwd, {
    DICOMVAULT_WEB_ENABLED: 'true',
    DICOMVAULT_WEB_PORT: '0',
    DICOMVAULT_OIDC_ISSUER: issuer.issuer,
    DICOMVAULT_OIDC_AUDIENCE: issuer.audience,
  });
  const webBase = /Web listener for browsers[^\n]*: (https:\/\/\S+)/.exec(server.output().stdout)?.[1];
  t.ok(webBase, 'the startup message names the web URL');
  t.not(webBase, server.base, 'another port');
  const ca = { ca: server.tls.ca };

  t.test('web: no client certificate needed; anonymous -> 401 with a Bearer challenge', async (t) => {
    const res = await request(`${webBase}/studies`, ca);
    t.equal(res.status, 401);
    t.equal(res.headers['www-authenticate'], CHALLENGE, 'no error attribute when no credentials were sent (RFC 6750 3.1)');
    t.match(JSON.parse(res.body.toString()), { error: 'UNAUTHENTICATED' });
  });

  t.test('web: a valid bearer token gets past authentication', async (t) => {
    const res = await request(`${webBase}/studies`, ca, { headers: { authorization: `Bearer ${await issuer.sign({ roles: ['reader'] })}` } });
    // Authenticated; the default policies give a 'reader' nothing, so the search finds no study (not a 401/403).
    t.equal(res.status, 204, `status ${res.status}`);
    t.notOk(res.headers['www-authenticate']);
  });

  t.test('web: an expired token -> 401 invalid_token', async (t) => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.sign({ iat: now - 900, exp: now - 600 });
    const res = await request(`${webBase}/studies`, ca, { headers: { authorization: `Bearer ${token}` } });
    t.equal(res.status, 401);
    t.equal(res.headers['www-authenticate'], `${CHALLENGE}, error="invalid_token", error_description="the token has expired"`);
    t.notMatch(res.body.toString(), token.split('.')[1]!, 'the token is not echoed');
  });

  t.test('web: a malformed Authorization header -> 401 invalid_token', async (t) => {
    const res = await request(`${webBase}/studies`, ca, { headers: { authorization: 'Bearer a b' } });
    t.equal(res.status, 401);
    t.match(res.headers['www-authenticate'], /^Bearer realm="dicomvault", error="invalid_token", error_description="[^"]+"$/);
  });

  t.test('mTLS: a CA-valid certificate the registry does not know -> 403', async (t) => {
    const issued = await issueClientCertificate(path.join(cwd, 'certs/dev'), { name: 'stranger', outDir: tempDir(t) });
    const res = await request(`${server.base}/studies`, { ca: server.tls.ca, cert: fs.readFileSync(issued.certPath), key: fs.readFileSync(issued.keyPath) });
    t.equal(res.status, 403);
    t.same(JSON.parse(res.body.toString()), { error: 'FORBIDDEN', message: 'client certificate is not registered' });
    const refusals = () =>
      server
        .output()
        .stdout.split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.msg === 'client certificate is not registered');
    // The log line travels through the child's stdout pipe: it may arrive just after the response.
    for (let i = 0; i < 40 && refusals().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const logged = refusals();
    if (logged.length === 0) t.comment(server.output().stdout);
    t.equal(logged.length, 1, 'logged once (warn)');
    t.equal(logged[0]?.fingerprint256, issued.fingerprint256, 'by fingerprint');
    t.notMatch(JSON.stringify(logged[0]), /stranger/, 'not by subject');
  });

  t.test('mTLS: the development admin certificate -> not 403', async (t) => {
    const res = await request(`${server.base}/studies`, server.tls);
    t.not(res.status, 403);
    t.not(res.status, 401);
  });

  t.test('both listeners stop on SIGTERM', async (t) => {
    t.equal(await server.stop(), 0);
    await t.rejects(request(`${webBase}/studies`, ca), 'web port closed');
  });
});

t.test('web resolver rules (app.inject)', async (t) => {
  const issuer = await startOidcIssuer(t);
  const oidc = new OidcVerifier(configSchema.parse({ oidc: { issuer: issuer.issuer, audience: [issuer.audience] } }).oidc);
  const share: Principal = { kind: 'share', id: 'share:s1', roles: [], attributes: { ...NO_ATTRIBUTES, sites: [] } };
  const seen: string[] = [];
  const app = Fastify();
  registerErrorHandler(app);
  registerAuthentication(
    app,
    webResolver({
      oidc,
      shareSession: (value) => {
        seen.push(value);
        return value === 'good-session' ? share : undefined;
      },
    }),
  );
  app.get('/who', async (request) => ({ id: request.principal.id, kind: request.principal.kind }));
  app.get('/landing', { config: { public: true } }, async (request) => ({ principal: request.principal }));
  t.teardown(() => app.close());
  const get = (headers: Record<string, string>, url = '/who') => app.inject({ method: 'GET', url, headers });
  const cookie = (v: string) => `${SHARE_SESSION_COOKIE}=${v}`;

  t.test('share-session cookie', async (t) => {
    const res = await get({ cookie: `theme=dark; ${cookie('good-session')}` });
    t.equal(res.statusCode, 200);
    t.same(res.json(), { id: 'share:s1', kind: 'share' });
    const bad = await get({ cookie: cookie('expired-session') });
    t.equal(bad.statusCode, 401);
    t.equal(bad.headers['www-authenticate'], CHALLENGE);
  });

  t.test('bearer wins over the cookie, also when the token is bad', async (t) => {
    seen.length = 0;
    const ok = await get({ authorization: `Bearer ${await issuer.sign()}`, cookie: cookie('good-session') });
    t.same(ok.json(), { id: 'oidc:alice', kind: 'token' });
    const bad = await get({ authorization: 'Bearer xyz', cookie: cookie('good-session') });
    t.equal(bad.statusCode, 401, 'a bad token is not rescued by the cookie');
    t.match(bad.headers['www-authenticate'], /error="invalid_token"/);
    t.same(seen, [], 'the cookie was not even looked up');
  });

  t.test('another Authorization scheme is ignored (cookie, else a plain challenge)', async (t) => {
    t.equal((await get({ authorization: 'Basic dXNlcjpwYXNz', cookie: cookie('good-session') })).statusCode, 200);
    const res = await get({ authorization: 'Basic dXNlcjpwYXNz' });
    t.equal(res.statusCode, 401);
    t.equal(res.headers['www-authenticate'], CHALLENGE);
  });

  t.test('bearer scheme is case-insensitive; token only in the header', async (t) => {
    t.equal((await get({ authorization: `bearer ${await issuer.sign()}` })).statusCode, 200);
    t.equal((await get({}, `/who?access_token=${await issuer.sign()}`)).statusCode, 401, 'RFC 6750 2.3 query tokens are not accepted');
  });

  t.test('a route with config.public skips authentication', async (t) => {
    const res = await get({}, '/landing');
    t.equal(res.statusCode, 200);
    t.same(res.json(), { principal: null });
  });

  t.test('no verifier: bearer tokens are refused', async (t) => {
    const bare = Fastify();
    registerErrorHandler(bare);
    registerAuthentication(bare, webResolver({}));
    bare.get('/who', async () => 'x');
    t.teardown(() => bare.close());
    const res = await bare.inject({ method: 'GET', url: '/who', headers: { authorization: `Bearer ${await issuer.sign()}` } });
    t.equal(res.statusCode, 401);
    t.match(res.headers['www-authenticate'], /error="invalid_token", error_description="bearer tokens are not accepted by this server"/);
  });

  t.test('cookie parsing', async (t) => {
    t.equal(cookieValue(`a=1; ${cookie('v')}; b=2`, SHARE_SESSION_COOKIE), 'v');
    t.equal(cookieValue(`${cookie('"quoted"')}`, SHARE_SESSION_COOKIE), 'quoted');
    t.equal(cookieValue(`${cookie('one')}; ${cookie('two')}`, SHARE_SESSION_COOKIE), undefined, 'the same name twice: none');
    t.equal(cookieValue(`x${cookie('v')}`, SHARE_SESSION_COOKIE), undefined, 'another name');
    t.equal(cookieValue(`${SHARE_SESSION_COOKIE}=`, SHARE_SESSION_COOKIE), undefined, 'empty');
    t.equal(cookieValue(undefined, SHARE_SESSION_COOKIE), undefined);
  });
});
