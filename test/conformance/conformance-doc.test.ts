// conformance/CONFORMANCE.md says what the server does; this keeps it true. The route table is collected here
// from the built app (both listeners), independently of the capabilities plugin, and compared with the
// statement's tables and with what Retrieve Capabilities (PS3.18 8.9) lists. The other machine-checkable
// tables (transfer syntaxes, matching keys, STOW failure reasons, error codes, limits, TLS suites) are compared
// with the code they describe.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { openStorage, shareLinks } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { ATTRIBUTES } from '../../src/dicom/levels.js';
import { FailureReason } from '../../src/dicom/status-codes.js';
import { TRANSFER_SYNTAXES } from '../../src/dicom/transfer-syntax.js';
import { DECODABLE_TRANSFER_SYNTAXES, ENCODABLE_TRANSFER_SYNTAXES } from '../../src/transcode/codec-table.js';
import { ERROR_STATUS } from '../../src/errors.js';
import { isKnownMethod, templatePath, type ServiceDescription } from '../../src/http/capabilities.js';
import { createLogger } from '../../src/logger.js';
import { TLS12_CIPHERS, TLS13_CIPHERSUITES } from '../../src/security/tls-options.js';
import { ADMIN_PRINCIPAL, defaultPolicies } from '../helpers/access.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';

const DOC = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../conformance/CONFORMANCE.md'), 'utf8');

/** The text of the `## ...` section whose title starts with `title`. */
function section(title: string): string {
  const parts = DOC.split(/^## /m);
  const found = parts.find((p) => p.replace(/^\d+\.\s*/, '').startsWith(title));
  if (!found) throw new Error(`CONFORMANCE.md has no section "${title}"`);
  return found;
}

/** The first cells of a section's table rows matching `cell` (a regexp source for the first cell). */
function firstCells(text: string, cell: string): string[] {
  return [...text.matchAll(new RegExp(`^\\|\\s*(${cell})\\s*\\|`, 'gm'))].map((m) => m[1]!.replace(/`/g, ''));
}

const sorted = (values: Iterable<string>) => [...new Set(values)].sort();

interface Listener {
  app: FastifyInstance;
  config: Config;
  /** `METHOD /path/{param}`, relative to the base path, HEAD left out (Fastify's, for every GET). */
  routes: string[];
}

/** The app of one listener, with every optional part on (lifecycle, shares), and its route table. */
async function listener(t: Test, which: 'mtls' | 'web'): Promise<Listener> {
  const config = loadConfig({ env: { ...storageEnv(tempDir(t)), DICOMVAULT_LOG_LEVEL: 'silent' } });
  const logger = createLogger('silent');
  const storage = await openStorage(config);
  t.ok(storage.lifecycle, 'the lifecycle routes are part of the table');
  const app = buildApp({ config, ...storage, readInstance, logger, policy: defaultPolicies(), shares: shareLinks(config, storage, logger), principalOf: () => ADMIN_PRINCIPAL, listener: which });
  const routes: string[] = [];
  app.addHook('onRoute', (route) => {
    // The 405 answers for methods a path lacks (routes/capabilities.ts) are not resources.
    if (route.config?.methodNotAllowed === true) return;
    // Outside the base path: the operations endpoints (README "Operations"), not DICOMweb resources; they must be
    // exactly those, so nothing else escapes the statement this way.
    if (!route.url.startsWith(config.server.basePath)) {
      if (!['/healthz', '/readyz', '/metrics'].includes(route.url)) t.fail(`${route.url} is outside the base path`);
      return;
    }
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push(`${method} ${templatePath(route.url.slice(config.server.basePath.length))}`);
    }
  });
  await app.ready();
  t.teardown(async () => {
    await app.close();
    await storage.close();
  });
  return { app, config, routes };
}

const withoutOptions = (routes: Iterable<string>) => sorted([...routes].filter((r) => !r.startsWith('OPTIONS ')));
const pathOf = (route: string) => route.slice(route.indexOf(' ') + 1);

t.test('the route table and the statement list the same routes', async (t) => {
  const mtls = await listener(t, 'mtls');
  const web = await listener(t, 'web');
  const rows = [...section('Transactions and resources').matchAll(/^\|\s*(GET|POST|PUT|DELETE|OPTIONS)\s*\|\s*`?([^|`\s]+)`?\s*\|/gm)];
  const table = sorted(rows.map((m) => `${m[1]} ${m[2]}`));
  t.ok(table.length > 40, `the statement's table has ${table.length} rows`);
  const served = sorted([...withoutOptions([...mtls.routes, ...web.routes]), 'OPTIONS /']);
  t.same(table.filter((r) => !served.includes(r)), [], 'every row of the statement has a route');
  t.same(served.filter((r) => !table.includes(r)), [], 'every route is in the statement');
  const webOnly = withoutOptions(web.routes).filter((r) => !mtls.routes.includes(r));
  t.same(webOnly, ['GET /share/{token}', 'POST /share/{token}'], 'the share-link landing is the web listener only');
  for (const r of webOnly) t.match(section('Transactions and resources'), new RegExp(`^\\| ${r.replace(' ', ' \\| ').replace(/[{}/]/g, '\\$&')} \\|.*web listener only`, 'm'), `${r} is marked web listener only`);

  for (const { routes } of [mtls, web]) {
    // Every resource path answers OPTIONS (Retrieve Capabilities), the base included, and nothing else does.
    const paths = sorted(withoutOptions(routes).map(pathOf));
    t.same(sorted(routes.filter((r) => r.startsWith('OPTIONS ')).map(pathOf)), sorted(['/', ...paths]), 'OPTIONS on every resource path');
    // The capabilities description knows every method of the table (media types, transaction, parameters).
    t.same(withoutOptions(routes).filter((r) => !isKnownMethod(r.slice(0, r.indexOf(' ')), pathOf(r))), [], 'every route has a capabilities description');
  }
});

t.test('Retrieve Capabilities lists the same routes as the route table', async (t) => {
  for (const which of ['mtls', 'web'] as const) {
    const { app, routes } = await listener(t, which);
    const res = await app.inject({ method: 'OPTIONS', url: '/dicomweb', headers: { accept: 'application/json' } });
    t.equal(res.statusCode, 200);
    const service = JSON.parse(res.body) as ServiceDescription;
    const listed = service.resources.flatMap((r) => r.methods.map((m) => `${m.method} ${r.path}`));
    t.same(sorted(listed), sorted(routes), `${which}: the same methods on the same paths`);
    const wadl = (await app.inject({ method: 'OPTIONS', url: '/dicomweb' })).body;
    const wadlPaths = [...wadl.matchAll(/<resource path="([^"]*)">/g)].map((m) => `/${m[1]}`);
    t.same(sorted(wadlPaths), sorted(routes.map(pathOf)), `${which}: the WADL has a resource per path`);
  }
});

t.test('transfer syntaxes: the statement lists exactly the supported ones', async (t) => {
  const rows = firstCells(section('Transfer syntaxes'), '`?1\\.2\\.840\\.10008\\.1\\.2[0-9.]*`?');
  t.same(sorted(rows), sorted(TRANSFER_SYNTAXES.map((ts) => ts.uid)));
  // The transcoding column says what src/transcode/codec-table.ts decodes and encodes.
  for (const m of section('Transfer syntaxes').matchAll(/^\|\s*(1\.2\.840\.10008\.1\.2[0-9.]*)\s*\|[^|]*\|[^|]*\|\s*([^|]*?)\s*\|$/gm)) {
    const [, uid, cell] = m as unknown as [string, string, string];
    const ts = TRANSFER_SYNTAXES.find((x) => x.uid === uid)!;
    const read = !ts.encapsulated || DECODABLE_TRANSFER_SYNTAXES.includes(uid);
    const written = ENCODABLE_TRANSFER_SYNTAXES.includes(uid);
    t.equal(/\b(read|decoded)\b/.test(cell), read, `${uid}: "${cell}" says whether it is decoded`);
    t.equal(/\b(written|encoded)\b/.test(cell.replace(/not (written|encoded)/, '')), written, `${uid}: "${cell}" says whether it is encoded`);
    t.equal(/lossy/.test(cell), written && ts.encapsulated && ts.lossy, `${uid}: "${cell}" says whether the encoding is lossy`);
  }
});

t.test('QIDO matching keys: the statement lists exactly the matchable attributes', async (t) => {
  const rows = firstCells(section('QIDO-RS matching keys'), '`?[0-9A-F]{8}(?:\\.[0-9A-F]{8})?`?');
  const keys = ATTRIBUTES.filter((a) => a.matching).flatMap((a) => (a.items ? a.items.map((i) => `${a.tag}.${i.tag}`) : [a.tag]));
  t.same(sorted(rows), sorted(keys));
});

t.test('STOW-RS failure reasons: the statement lists exactly the codes the server can send', async (t) => {
  const rows = firstCells(section('STOW-RS failure'), '`?[0-9A-F]{4}`?');
  t.same(sorted(rows), sorted(Object.values(FailureReason).map((c) => c.toString(16).toUpperCase().padStart(4, '0'))));
});

t.test('status codes: every error code of src/errors.ts, with its status', async (t) => {
  const text = section('Status codes');
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    t.match(text, new RegExp(`^\\| ${status} \\|.*\`${code}\``, 'm'), `${code} -> ${status}`);
  }
});

t.test('limits: the defaults the statement gives are those of src/config/schema.ts', async (t) => {
  const defaults = loadConfig({ env: {} }) as unknown as Record<string, Record<string, unknown>>;
  const rows = [...section('Limits').matchAll(/^\|\s*`([a-z]+)\.([A-Za-z]+)`\s*\|\s*([0-9]+)\s*\|/gm)];
  t.ok(rows.length >= 10, `${rows.length} limits`);
  for (const [, group, key, value] of rows) t.equal(Number(value), defaults[group!]![key!], `${group}.${key}`);
});

t.test('security: the TLS suites are those of src/security/tls-options.ts', async (t) => {
  const text = section('Security');
  for (const suite of [...TLS12_CIPHERS, ...TLS13_CIPHERSUITES]) t.match(text, `\`${suite}\``, suite);
  const listed = [...text.matchAll(/`((?:TLS_|ECDHE-)[A-Z0-9_-]+)`/g)].map((m) => m[1]!);
  t.same(sorted(listed), sorted([...TLS12_CIPHERS, ...TLS13_CIPHERSUITES]), 'and no other');
});
