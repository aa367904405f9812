// CORS (Fetch 3.2) and CORP (Fetch 3.8) through the real app: what an OHIF viewer on another origin needs
// (PROTOCOL.md §2), and nothing for anyone else.
import fs from 'node:fs';
import t from 'tap';
import type { Test } from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { openStorage } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { createLogger } from '../../src/logger.js';
import { testApp } from '../helpers/app.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { defaultPolicies } from '../helpers/access.js';

const VIEWER = 'https://viewer.example.org';
const OTHER = 'https://evil.example.org';
const ORIGINS = { DICOMVAULT_CORS_ORIGINS: `${VIEWER}, http://localhost:3000` };
const FRAMES = '/dicomweb/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/frames/1';
const QIDO = '/dicomweb/studies?PatientName=*x*&limit=101';

const corsHeaders = (res: LightMyRequestResponse) => Object.keys(res.headers).filter((h) => h.startsWith('access-control-'));

function preflight(origin: string, url: string, requestHeaders = 'authorization, accept') {
  return {
    method: 'OPTIONS' as const,
    url,
    headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': requestHeaders },
  };
}

function expectActualCors(t: Test, res: LightMyRequestResponse, origin: string, what: string): void {
  t.equal(res.headers['access-control-allow-origin'], origin, `${what}: Allow-Origin is the caller, never *`);
  t.match(res.headers.vary, /(^|, )Origin(,|$)/, `${what}: Vary: Origin`);
  t.equal(
    res.headers['access-control-expose-headers'],
    'Warning, Content-Type, Content-Length, Content-Location, ETag, Content-Range, WWW-Authenticate',
    `${what}: exposed headers`,
  );
}

function expectPreflightOk(t: Test, res: LightMyRequestResponse, origin: string, what: string): void {
  t.equal(res.statusCode, 204, `${what}: 204`);
  t.equal(res.body, '', `${what}: empty body`);
  t.equal(res.headers['access-control-allow-methods'], 'GET, POST, DELETE, OPTIONS', `${what}: methods`);
  t.equal(res.headers['access-control-allow-headers'], 'Authorization, Accept, Content-Type, If-None-Match, Range, Break-Glass-Reason', `${what}: headers`);
  t.equal(res.headers['access-control-max-age'], '600', `${what}: max age`);
  expectActualCors(t, res, origin, what);
}

t.test('a listed origin gets CORS headers on preflight and on the actual request', async (t) => {
  const { app } = await testApp(t, ORIGINS);
  for (const url of [FRAMES, QIDO, '/dicomweb/studies', '/dicomweb/wado?requestType=WADO']) {
    expectPreflightOk(t, await app.inject(preflight(VIEWER, url)), VIEWER, `preflight ${url}`);
  }
  expectPreflightOk(t, await app.inject(preflight('http://localhost:3000', FRAMES)), 'http://localhost:3000', 'second listed origin');

  const qido = await app.inject({ method: 'GET', url: QIDO, headers: { origin: VIEWER, accept: 'application/dicom+json' } });
  t.equal(qido.statusCode, 204, 'QIDO without matches');
  expectActualCors(t, qido, VIEWER, 'QIDO');
  // Whatever the frames route answers (it may not exist yet: 404), the viewer must be able to read it.
  const frames = await app.inject({ method: 'GET', url: FRAMES, headers: { origin: VIEWER } });
  t.ok(frames.statusCode >= 200, `frames answered ${frames.statusCode}`);
  expectActualCors(t, frames, VIEWER, 'frames');
  const error = await app.inject({ method: 'GET', url: '/dicomweb/studies/not-a-uid', headers: { origin: VIEWER } });
  t.equal(error.statusCode, 400);
  expectActualCors(t, error, VIEWER, 'an error answer');
});

t.test('an origin that is not listed gets no CORS headers, and its preflight is 403', async (t) => {
  const { app } = await testApp(t, ORIGINS);
  for (const origin of [OTHER, `${VIEWER}:443`, `${VIEWER}/`, 'https://VIEWER.example.org', 'null', 'http://viewer.example.org']) {
    const pre = await app.inject(preflight(origin, FRAMES));
    t.equal(pre.statusCode, 403, `preflight from ${origin}`);
    t.same(corsHeaders(pre), [], `preflight from ${origin}: no CORS headers`);
    const get = await app.inject({ method: 'GET', url: QIDO, headers: { origin } });
    t.same(corsHeaders(get), [], `GET from ${origin}: no CORS headers`);
  }
  const sameOrigin = await app.inject({ method: 'GET', url: QIDO });
  t.same(corsHeaders(sameOrigin), [], 'no Origin: no CORS headers');
});

t.test('without cors.origins there are no CORS headers at all', async (t) => {
  const { app, config } = await testApp(t);
  t.same(config.cors.origins, []);
  for (const req of [preflight(VIEWER, FRAMES), { method: 'GET' as const, url: QIDO, headers: { origin: VIEWER } }]) {
    const res = await app.inject(req);
    t.same(corsHeaders(res), [], `${req.method}: no CORS headers`);
    // A preflight here is a plain OPTIONS (Capabilities), whose answer varies by Accept, never by Origin.
    t.notMatch(String(res.headers.vary ?? ''), /origin/i, `${req.method}: no Vary: Origin`);
  }
  const pre = await app.inject(preflight(VIEWER, FRAMES));
  t.not(pre.statusCode, 204, 'no preflight answer');
});

t.test('a plain OPTIONS (Capabilities, PS3.18 8.9) is not taken for a preflight', async (t) => {
  const { app } = await testApp(t, ORIGINS);
  const res = await app.inject({ method: 'OPTIONS', url: '/dicomweb/', headers: { origin: VIEWER } });
  t.not(res.statusCode, 204, 'not answered by the CORS plugin');
  t.notOk(res.headers['access-control-allow-methods'], 'no preflight headers');
  t.equal(res.headers['access-control-allow-origin'], VIEWER, 'but readable by the viewer, like any answer');
});

t.test('preflight is answered before authentication; the actual request still needs it', async (t) => {
  const dataDir = tempDir(t);
  const config = loadConfig({ env: { ...storageEnv(dataDir), DICOMVAULT_LOG_LEVEL: 'silent', ...ORIGINS } });
  const storage = await openStorage(config);
  const app = buildApp({ config, ...storage, readInstance, logger: createLogger('silent'), policy: defaultPolicies(), principalOf: () => undefined });
  t.teardown(async () => {
    await app.close();
    await storage.close();
  });
  expectPreflightOk(t, await app.inject(preflight(VIEWER, FRAMES)), VIEWER, 'preflight without a principal');
  t.equal((await app.inject(preflight(OTHER, FRAMES))).statusCode, 403, 'unlisted origin still refused');
  const get = await app.inject({ method: 'GET', url: QIDO, headers: { origin: VIEWER } });
  t.equal(get.statusCode, 401, 'GET without a principal');
  expectActualCors(t, get, VIEWER, '401');
});

t.test('Cross-Origin-Resource-Policy: cross-origin on every response', async (t) => {
  for (const env of [{}, ORIGINS]) {
    const { app } = await testApp(t, env);
    const requests = [
      { method: 'GET' as const, url: QIDO },
      { method: 'GET' as const, url: FRAMES },
      { method: 'GET' as const, url: '/dicomweb/studies/bad' },
      { method: 'GET' as const, url: '/elsewhere' },
      preflight(VIEWER, FRAMES),
      preflight(OTHER, FRAMES),
    ];
    for (const req of requests) {
      const res = await app.inject(req);
      t.equal(res.headers['cross-origin-resource-policy'], 'cross-origin', `${req.method} ${req.url} (${res.statusCode}, ${JSON.stringify(env)})`);
    }
  }
});

t.test('cors.origins from the environment and the file', async (t) => {
  const env = (v: string) => loadConfig({ env: { DICOMVAULT_CORS_ORIGINS: v } }).cors.origins;
  t.same(env(`${VIEWER},http://localhost:3000`), [VIEWER, 'http://localhost:3000'], 'comma-separated');
  t.same(env(` ${VIEWER} , , https://a.example:8443 `), [VIEWER, 'https://a.example:8443'], 'blanks and empty entries dropped');
  t.same(env(VIEWER), [VIEWER], 'one origin');
  t.same(env(''), [], 'empty variable: none');
  t.same(loadConfig().cors.origins, [], 'default: none');

  const bad = ['*', `${VIEWER}/`, `${VIEWER}/ohif`, 'viewer.example.org', 'https://Viewer.example.org', 'https://viewer.example.org:443', 'ftp://viewer.example.org', 'null', `${VIEWER}?x=1`];
  for (const origin of bad) {
    t.throws(
      () => env(`http://localhost:3000,${origin}`),
      { name: 'ConfigError', message: /^configuration cors\.origins\.1 \(from DICOMVAULT_CORS_ORIGINS\): must be an origin/ },
      `refused: ${origin}`,
    );
  }
  const dir = tempDir(t);
  const file = `${dir}/c.json`;
  fs.writeFileSync(file, JSON.stringify({ cors: { origins: ['*'] } }));
  t.throws(() => loadConfig({ configFile: file }), { name: 'ConfigError', message: /^configuration cors\.origins\.0 \(in .*c\.json\): must be an origin/ });
  fs.writeFileSync(file, JSON.stringify({ cors: { origins: VIEWER } }));
  t.throws(() => loadConfig({ configFile: file }), { name: 'ConfigError', message: /^configuration cors\.origins / }, 'a string is not a list');
});
