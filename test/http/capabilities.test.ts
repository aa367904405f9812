// Retrieve Capabilities (PS3.18 8.9) through the real app: OPTIONS on the base and on resource paths, WADL by
// default and JSON by Accept, 406, Allow, ETag; and CORS preflights still answered by plugins/cors.ts.
import t from 'tap';
import Fastify, { type LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { openStorage, shareLinks } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import type { ServiceDescription } from '../../src/http/capabilities.js';
import { CORS_ALLOW_HEADERS, CORS_ALLOW_METHODS } from '../../src/http/plugins/cors.js';
import { registerCapabilities } from '../../src/http/routes/capabilities.js';
import { createLogger } from '../../src/logger.js';
import { defaultPolicies } from '../helpers/access.js';
import { testApp } from '../helpers/app.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';

const WADL = 'application/vnd.sun.wadl+xml; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const FRAMES = '/dicomweb/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/frames/1,2';
const VIEWER = 'https://viewer.example.org';

const options = (url: string, headers: Record<string, string> = {}) => ({ method: 'OPTIONS' as const, url, headers });
const described = (res: LightMyRequestResponse) => JSON.parse(res.body) as ServiceDescription;
/** The resource paths of a WADL document, in document order. */
const wadlPaths = (body: string) => [...body.matchAll(/<resource path="([^"]*)">/g)].map((m) => m[1]);

t.test('OPTIONS on the base: the whole service as WADL, the default', async (t) => {
  const { app } = await testApp(t);
  const asked: Record<string, string>[] = [{}, { accept: '*/*' }, { accept: 'application/vnd.sun.wadl+xml' }, { accept: 'application/*' }];
  for (const headers of asked) {
    const res = await app.inject(options('/dicomweb', headers));
    t.equal(res.statusCode, 200, `Accept ${JSON.stringify(headers)}`);
    t.equal(res.headers['content-type'], WADL);
    t.equal(res.headers.allow, 'OPTIONS', 'the base itself offers only OPTIONS');
  }
  const res = await app.inject(options('/dicomweb/'));
  t.equal(res.statusCode, 200, 'with a trailing slash too');
  t.match(res.body, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<application xmlns="http:\/\/wadl\.dev\.java\.net\/2009\/02"/);
  t.match(res.body, '<resources base="https://127.0.0.1/dicomweb/">');
  const paths = wadlPaths(res.body);
  t.equal(paths[0], '', 'the base first');
  for (const p of ['studies', 'series', 'instances', 'studies/{study}/series/{series}/instances/{instance}/frames/{frames}', 'wado']) {
    t.ok(paths.includes(p), `resource ${p}`);
  }
  t.same(paths, [...paths].sort(), 'sorted by path');
  // Media types with quotes are escaped, not broken out of the attribute.
  t.match(res.body, '<representation mediaType="multipart/related; type=&#34;application/dicom&#34;"/>');
  t.notMatch(res.body, /mediaType="[^"]*"[^/>\s]/, 'every attribute closes where it should');
  const studies = /<resource path="studies">([\s\S]*?)<\/resource>/.exec(res.body)![1]!;
  t.match(studies, '<method name="GET">\n        <doc title="Search for Studies">PS3.18 10.6</doc>');
  t.match(studies, '<param name="includefield" style="query" type="xsd:string"/>');
  t.match(studies, '<method name="POST">\n        <doc title="Store Instances">PS3.18 10.5</doc>');
  t.match(studies, '<representation mediaType="application/dicom"/>', 'STOW consumes single-part application/dicom');
  const instance = /<resource path="studies\/\{study\}\/series\/\{series\}\/instances\/\{instance\}">([\s\S]*?)<\/resource>/.exec(res.body)![1]!;
  t.equal((instance.match(/<param name="(study|series|instance)" style="template" type="xsd:string" required="true"\/>/g) ?? []).length, 3, 'template parameters');
  t.equal((res.body.match(/<resource /g) ?? []).length, (res.body.match(/<\/resource>/g) ?? []).length, 'balanced resources');
});

t.test('JSON when Accept or the accept parameter prefers it', async (t) => {
  const { app } = await testApp(t);
  const asked = [
    options('/dicomweb', { accept: 'application/json' }),
    options('/dicomweb', { accept: 'application/vnd.sun.wadl+xml;q=0.5, application/json' }),
    options('/dicomweb?accept=application/json', { accept: 'application/vnd.sun.wadl+xml' }),
  ];
  for (const req of asked) {
    const res = await app.inject(req);
    t.equal(res.statusCode, 200, `${req.url} ${req.headers.accept}`);
    t.equal(res.headers['content-type'], JSON_TYPE);
    const service = described(res);
    t.equal(service.base, 'https://127.0.0.1/dicomweb');
    t.match(service.resources[0], { path: '/', parameters: [], allow: ['OPTIONS'], methods: [{ method: 'OPTIONS', transaction: 'Retrieve Capabilities' }] });
  }
  const res = await app.inject(options('/dicomweb', { accept: 'application/json' }));
  const studies = described(res).resources.find((r) => r.path === '/studies')!;
  t.same(studies.allow, ['GET', 'HEAD', 'POST', 'OPTIONS']);
  t.match(studies.methods[0], {
    method: 'GET',
    transaction: 'Search for Studies',
    reference: 'PS3.18 10.6',
    produces: ['application/dicom+json', 'multipart/related; type="application/dicom+xml"'],
    query: ['{attributeID}', 'includefield', 'fuzzymatching', 'limit', 'offset', 'accept'],
  });
  t.match(studies.methods[1], { method: 'POST', consumes: ['multipart/related; type="application/dicom"', 'application/dicom'] });
});

t.test('406 for an Accept that allows neither representation', async (t) => {
  const { app } = await testApp(t);
  for (const accept of ['text/html', 'application/xml', 'application/json;q=0, application/vnd.sun.wadl+xml;q=0']) {
    const res = await app.inject(options('/dicomweb', { accept }));
    t.equal(res.statusCode, 406, accept);
    t.match(JSON.parse(res.body), { error: 'NOT_ACCEPTABLE', message: /application\/vnd\.sun\.wadl\+xml, application\/json/ });
  }
  t.equal((await app.inject(options(FRAMES, { accept: 'image/jpeg' }))).statusCode, 406, 'on a resource path too');
});

t.test('OPTIONS on a resource path describes that resource, with its Allow', async (t) => {
  const { app } = await testApp(t);
  const frames = await app.inject(options(FRAMES, { accept: 'application/json' }));
  t.equal(frames.statusCode, 200);
  t.equal(frames.headers.allow, 'GET, HEAD, OPTIONS');
  const [resource, ...others] = described(frames).resources;
  t.same(others, [], 'only the resource asked about');
  t.equal(resource!.path, '/studies/{study}/series/{series}/instances/{instance}/frames/{frames}');
  t.same(resource!.parameters, ['study', 'series', 'instance', 'frames']);
  t.match(resource!.methods[0], { method: 'GET', transaction: 'Retrieve Frames', query: ['accept'] });
  for (const type of ['application/octet-stream', 'image/jpeg', 'image/jls', 'image/jp2', 'image/jpx', 'image/dicom-rle', 'video/mp4']) {
    t.ok(resource!.methods[0]!.produces.includes(`multipart/related; type="${type}"`), `frames as ${type}`);
  }

  const study = await app.inject(options('/dicomweb/studies/1.2.3'));
  t.equal(study.statusCode, 200);
  t.equal(study.headers['content-type'], WADL, 'WADL here too by default');
  t.equal(study.headers.allow, 'GET, HEAD, POST, DELETE, OPTIONS', 'retrieve, store into, delete');
  t.same(wadlPaths(study.body), ['studies/{study}']);

  const bulk = await app.inject(options('/dicomweb/studies/1.2/series/3.4/instances/5.6/bulk/7FE00010', { accept: 'application/json' }));
  t.equal(bulk.statusCode, 200);
  t.equal(described(bulk).resources[0]!.path, '/studies/{study}/series/{series}/instances/{instance}/bulk/{path}');

  const wado = await app.inject(options('/dicomweb/wado?requestType=WADO', { accept: 'application/json' }));
  t.match(described(wado).resources[0]!.methods[0], { transaction: 'Retrieve DICOM Instance (WADO-URI)', query: ['requestType', 'studyUID', 'seriesUID', 'objectUID', 'contentType', 'transferSyntax'] });

  t.equal((await app.inject(options('/dicomweb/nothing-here'))).statusCode, 404, 'no resource, no capabilities');
  t.equal((await app.inject(options('/elsewhere'))).statusCode, 404, 'outside the base path');
});

t.test('ETag and If-None-Match: 304 without a body', async (t) => {
  const { app } = await testApp(t);
  const first = await app.inject(options('/dicomweb', { accept: 'application/json' }));
  const etag = first.headers.etag as string;
  t.match(etag, /^"[A-Za-z0-9_-]{43}"$/);
  const again = await app.inject(options('/dicomweb', { accept: 'application/json', 'if-none-match': etag }));
  t.equal(again.statusCode, 304);
  t.equal(again.body, '');
  t.equal(again.headers.allow, 'OPTIONS', 'Allow on the 304 as well');
  const wadl = await app.inject(options('/dicomweb', { 'if-none-match': etag }));
  t.equal(wadl.statusCode, 200, 'the WADL is another representation with another tag');
  t.not(wadl.headers.etag, etag);
});

t.test('the base URL follows server.publicUrl', async (t) => {
  const { app } = await testApp(t, { DICOMVAULT_SERVER_PUBLIC_URL: 'https://pacs.example.org/dicomweb' });
  const res = await app.inject(options('/dicomweb', { accept: 'application/json' }));
  t.equal(described(res).base, 'https://pacs.example.org/dicomweb');
});

t.test('OPTIONS is authenticated like the resource it describes', async (t) => {
  const config = loadConfig({ env: { ...storageEnv(tempDir(t)), DICOMVAULT_LOG_LEVEL: 'silent', DICOMVAULT_CORS_ORIGINS: VIEWER } });
  const storage = await openStorage(config);
  const logger = createLogger('silent');
  const shares = shareLinks(config, storage, logger);
  const app = buildApp({ config, ...storage, readInstance, logger, policy: defaultPolicies(), shares, principalOf: () => undefined, listener: 'web' });
  t.teardown(async () => {
    await app.close();
    await storage.close();
  });
  for (const url of ['/dicomweb', FRAMES]) {
    const res = await app.inject(options(url));
    t.equal(res.statusCode, 401, `${url} without a principal`);
  }
  t.equal((await app.inject(options('/dicomweb/shares'))).statusCode, 401, 'share management is not public');
  // The share-link landing page is public (its token is the credential), and so is its description.
  const landing = await app.inject(options('/dicomweb/share/some-token', { accept: 'application/json' }));
  t.equal(landing.statusCode, 200, 'a public resource has a public OPTIONS');
  t.equal(landing.headers.allow, 'GET, HEAD, POST, OPTIONS');
  t.equal(described(landing).resources[0]!.path, '/share/{token}');
  // A CORS preflight is not the Capabilities transaction and needs no credentials (plugins/cors.ts).
  const preflight = await app.inject(options('/dicomweb', { origin: VIEWER, 'access-control-request-method': 'GET' }));
  t.equal(preflight.statusCode, 204, 'preflight without a principal');
});

t.test('a CORS preflight is still answered by the CORS plugin, on the base and on resources', async (t) => {
  const { app } = await testApp(t, { DICOMVAULT_CORS_ORIGINS: VIEWER });
  for (const url of ['/dicomweb', '/dicomweb/', FRAMES, '/dicomweb/studies']) {
    const res = await app.inject(options(url, { origin: VIEWER, 'access-control-request-method': 'POST', 'access-control-request-headers': 'accept' }));
    t.equal(res.statusCode, 204, `${url}: 204`);
    t.equal(res.body, '', `${url}: no capabilities body`);
    t.notOk(res.headers.allow, `${url}: no Allow (not the capabilities answer)`);
    t.equal(res.headers['access-control-allow-methods'], CORS_ALLOW_METHODS);
    t.equal(res.headers['access-control-allow-headers'], CORS_ALLOW_HEADERS);
    t.equal(res.headers['access-control-allow-origin'], VIEWER);
    const foreign = await app.inject(options(url, { origin: 'https://evil.example.org', 'access-control-request-method': 'GET' }));
    t.equal(foreign.statusCode, 403, `${url}: an unlisted origin's preflight is still refused`);
  }
  // A plain OPTIONS with an Origin is the Capabilities transaction, readable by the viewer.
  const plain = await app.inject(options('/dicomweb', { origin: VIEWER, accept: 'application/json' }));
  t.equal(plain.statusCode, 200);
  t.equal(plain.headers['content-type'], JSON_TYPE);
  t.equal(plain.headers['access-control-allow-origin'], VIEWER);
  t.notOk(plain.headers['access-control-allow-methods'], 'no preflight headers');
  t.equal(plain.headers.vary, 'Accept, Origin', 'Vary: Accept from the capabilities, Origin from the CORS plugin');
});

t.test('a route registered after the capabilities fails the start instead of going undescribed', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  app.register(async (scope) => void scope.get('/first', async () => 'ok'), { prefix: '/dicomweb' });
  registerCapabilities(app, { urls: { basePath: '/dicomweb' } });
  app.register(async (scope) => void scope.get('/late', async () => 'ok'), { prefix: '/dicomweb' });
  await t.rejects(async () => void (await app.ready()), { message: 'GET /dicomweb/late was registered after the capabilities routes: register it before them (app.ts)' });
});

t.test('a method a resource does not offer: 405 with Allow (RFC 9110 15.5.6), an unknown path stays 404', async (t) => {
  const { app } = await testApp(t);
  const cases: [method: 'PUT' | 'PATCH' | 'GET' | 'DELETE', url: string, allow: string][] = [
    ['PUT', '/dicomweb/studies', 'GET, HEAD, POST, OPTIONS'],
    ['PATCH', '/dicomweb/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5', 'GET, HEAD, DELETE, OPTIONS'],
    ['DELETE', FRAMES, 'GET, HEAD, OPTIONS'],
    ['GET', '/dicomweb', 'OPTIONS'],
  ];
  for (const [method, url, allow] of cases) {
    const res = await app.inject({ method, url, headers: { 'content-type': 'application/dicom+json' }, payload: '[]' });
    t.equal(res.statusCode, 405, `${method} ${url}`);
    t.equal(res.headers.allow, allow, `${method} ${url}: Allow`);
    t.match(res.json(), { error: 'METHOD_NOT_ALLOWED' });
    const asked = await app.inject(options(url));
    t.equal(asked.headers.allow, allow, `${url}: OPTIONS says the same Allow`);
  }
  const unknown = await app.inject({ method: 'PUT', url: '/dicomweb/nothing-here' });
  t.equal(unknown.statusCode, 404, 'no such resource at all');
});
