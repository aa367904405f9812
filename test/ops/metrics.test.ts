// GET /metrics (issue 8 item 5; README "Operations"): who may read it, what it counts (latency and bytes per
// transaction, STOW failures by reason, policy denials, process metrics), and that no UID or PHI reaches it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import t from 'tap';
import type { Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { shareLinks } from '../../src/compose.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { templatePath } from '../../src/http/capabilities.js';
import { transactionOf } from '../../src/http/plugins/metrics.js';
import { createLogger } from '../../src/logger.js';
import { ArchiveMetrics } from '../../src/ops/metrics.js';
import type { Principal } from '../../src/security/principal.js';
import { ADMIN_PRINCIPAL, certificatePrincipal, defaultPolicies } from '../helpers/access.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { generatedSet } from '../helpers/testdata.js';

const { manifest, files } = generatedSet('ct-2studies');
const S1 = manifest.studies[0]!;
const S1_FILES = S1.series.flatMap((x) => x.instances.map((i) => files.find((f) => f.rel.endsWith(i.file))!.bytes));
const SERIES1 = S1.series[0]!;
const SOP1 = SERIES1.instances[0]!.SOPInstanceUID;

const PEOPLE: Record<string, Principal> = {
  admin: ADMIN_PRINCIPAL,
  nobody: certificatePrincipal('test-nobody'),
  scraper: certificatePrincipal('prometheus'),
};
/** `x-as: <name>` picks the principal (default the admin); `x-as: anonymous` none (401). */
const byHeader = (request: FastifyRequest): Principal | undefined => PEOPLE[String(request.headers['x-as'] ?? 'admin')];

interface MetricsApp extends TestApp {
  served: FastifyInstance;
  metrics: ArchiveMetrics;
  /** The exposition as the admin reads it. */
  scrape(): Promise<string>;
}

async function metricsApp(t: Test, env: Record<string, string> = {}, metrics = new ArchiveMetrics()): Promise<MetricsApp> {
  const base = await testApp(t, { DICOMVAULT_OPS_METRICS_PRINCIPALS: 'prometheus', ...env });
  const served = buildApp({ ...base, readInstance, logger: createLogger('silent'), policy: defaultPolicies(), principalOf: byHeader, metrics });
  await served.ready();
  t.teardown(() => served.close());
  const scrape = async () => {
    // onResponse of the request before may run after inject() resolved.
    await new Promise((r) => setImmediate(r));
    const res = await served.inject({ method: 'GET', url: '/metrics' });
    if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`);
    return res.body;
  };
  return { ...base, served, metrics, scrape };
}

/** The value of one sample line, e.g. sample(text, 'dicomvault_stow_failed_instances_total{reason="A900"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function stow(url: string, parts: Buffer[], headers: Record<string, string> = {}) {
  const { contentType, body } = multipartBody(parts);
  return { method: 'POST' as const, url, headers: { 'content-type': contentType, ...headers }, payload: body };
}

t.test('who may read /metrics: an admin or a listed principal; others 403, no principal 401', async (t) => {
  const app = await metricsApp(t);
  const read = (who: string) => app.served.inject({ method: 'GET', url: '/metrics', headers: { 'x-as': who } });
  const admin = await read('admin');
  t.equal(admin.statusCode, 200);
  t.match(admin.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.equal(admin.headers['cache-control'], 'no-store');
  t.match(admin.body, /^# HELP dicomvault_http_request_duration_seconds /m);
  await app.auditor.flush();
  const records = app.audit.size;

  const denials = async () => sample(await app.scrape(), 'dicomvault_policy_denials_total{action="admin"}');
  const before = await denials();
  t.equal((await read('scraper')).statusCode, 200, 'a principal listed in ops.metricsPrincipals, with no role');
  t.equal(await denials(), before, 'the listed scraper is never put to the policies');
  const refused = await read('nobody');
  t.equal(refused.statusCode, 403);
  t.match(refused.json(), { message: /admin action or an entry in ops\.metricsPrincipals/ });
  t.equal(await denials(), before! + 1, 'the refusal counts as a policy denial');
  t.equal((await read('anonymous')).statusCode, 401);
  await new Promise((r) => setTimeout(r, 10));
  await app.auditor.flush();
  // Reads name no event; the 403 and 401 are a security alert and a failed login, like any other refusal.
  t.equal(app.audit.size, records + 2, 'the two refusals are audited, the reads are not');
});

t.test('latency and bytes per transaction, labelled from the route, never from the URL', async (t) => {
  const app = await metricsApp(t);
  t.equal((await app.served.inject(stow('/dicomweb/studies', S1_FILES))).statusCode, 200);
  const qido = await app.served.inject({ method: 'GET', url: `/dicomweb/studies?PatientID=${encodeURIComponent(S1.PatientID)}` });
  t.equal(qido.statusCode, 200);
  const metadata = await app.served.inject({ method: 'GET', url: `/dicomweb/studies/${S1.StudyInstanceUID}/series/${SERIES1.SeriesInstanceUID}/metadata` });
  t.equal(metadata.statusCode, 200);
  t.equal((await app.served.inject({ method: 'GET', url: `/dicomweb/studies/${S1.StudyInstanceUID}/series/${SERIES1.SeriesInstanceUID}/instances/${SOP1}` })).statusCode, 200);
  t.equal((await app.served.inject({ method: 'GET', url: '/dicomweb/nothing-here' })).statusCode, 404);
  const text = await app.scrape();
  t.equal(sample(text, 'dicomvault_http_request_duration_seconds_count{transaction="stow",status="200"}'), 1);
  t.equal(sample(text, 'dicomvault_http_request_duration_seconds_count{transaction="qido",status="200"}'), 1);
  t.equal(sample(text, 'dicomvault_http_request_duration_seconds_count{transaction="metadata",status="200"}'), 1);
  t.equal(sample(text, 'dicomvault_http_request_duration_seconds_count{transaction="wado-rs",status="200"}'), 1);
  t.equal(sample(text, 'dicomvault_http_request_duration_seconds_count{transaction="unmatched",status="404"}'), 1);
  t.equal(sample(text, 'dicomvault_http_response_size_bytes_sum{transaction="qido"}'), Number(qido.headers['content-length']), 'the QIDO body');
  t.equal(sample(text, 'dicomvault_http_response_size_bytes_count{transaction="metadata"}'), 1);
  for (const value of [S1.StudyInstanceUID, SERIES1.SeriesInstanceUID, SOP1, S1.PatientID]) t.notOk(text.includes(value), 'no UID or patient ID in the metrics');
});

t.test('STOW failures by FailureReason, from JSON and XML responses alike', async (t) => {
  const app = await metricsApp(t);
  const other = '2.25.999';
  const reasonsOf = (body: Buffer | string): string[] => [...String(body).matchAll(/"00081197":\{"vr":"US","Value":\[(\d+)\]/g)].map((m) => Number(m[1]).toString(16).toUpperCase().padStart(4, '0'));
  // Every instance belongs to another study than the URL names: 409, each one failed (PS3.18 10.5.3).
  const json = await app.served.inject(stow(`/dicomweb/studies/${other}`, S1_FILES.slice(0, 2)));
  t.equal(json.statusCode, 409);
  const reasons = reasonsOf(json.body);
  t.equal(reasons.length, 2);
  const xml = await app.served.inject(stow(`/dicomweb/studies/${other}`, S1_FILES.slice(0, 1), { accept: 'application/dicom+xml' }));
  t.equal(xml.statusCode, 409);
  t.match(xml.headers['content-type'], /^application\/dicom\+xml/);
  // One stored, one not: 202.
  const mixed = await app.served.inject(stow('/dicomweb/studies', [S1_FILES[0]!, Buffer.from('not DICOM at all')]));
  t.equal(mixed.statusCode, 202);
  const mixedReasons = reasonsOf(mixed.body);
  t.equal(mixedReasons.length, 1);
  const text = await app.scrape();
  const expected = new Map<string, number>();
  for (const r of [...reasons, reasons[0]!, ...mixedReasons]) expected.set(r, (expected.get(r) ?? 0) + 1);
  for (const [reason, n] of expected) t.equal(sample(text, `dicomvault_stow_failed_instances_total{reason="${reason}"}`), n, `reason ${reason}`);
  const total = [...text.matchAll(/^dicomvault_stow_failed_instances_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
  t.equal(total, 4, 'and nothing else');
  t.equal(sample(text, 'dicomvault_stow_failed_instances_total{reason="0124"}'), 0, 'every reason is there from the start');
});

t.test('policy denials: a study the principal may not read counts, wherever the route answers 404', async (t) => {
  const app = await metricsApp(t);
  t.equal((await app.served.inject(stow('/dicomweb/studies', S1_FILES))).statusCode, 200);
  const before = sample(await app.scrape(), 'dicomvault_policy_denials_total{action="read"}')!;
  const res = await app.served.inject({ method: 'GET', url: `/dicomweb/studies/${S1.StudyInstanceUID}/metadata`, headers: { 'x-as': 'nobody' } });
  t.equal(res.statusCode, 404, 'not revealed');
  t.ok(sample(await app.scrape(), 'dicomvault_policy_denials_total{action="read"}')! > before, 'counted as a denial of read');
});

t.test('process metrics when asked for (compose.ts: once per process)', async (t) => {
  const app = await metricsApp(t, {}, new ArchiveMetrics({ processMetrics: true }));
  const text = await app.scrape();
  t.match(text, /^process_cpu_user_seconds_total /m);
  t.match(text, /^nodejs_eventloop_lag_seconds /m);
  t.notMatch(await (async () => (await (await metricsApp(t)).scrape()))(), /^process_cpu_user_seconds_total /m, 'not in an app without them');
});

t.test('every route of the app has a transaction (none falls through to "other")', async (t) => {
  const base = await testApp(t);
  const logger = createLogger('silent');
  // Every optional part on (shares, the web listener's landing page): the whole route table.
  const shares = shareLinks(base.config, base, logger);
  const app = buildApp({ ...base, readInstance, logger, policy: defaultPolicies(), shares, principalOf: () => ADMIN_PRINCIPAL, listener: 'web' });
  const seen: string[] = [];
  app.addHook('onRoute', (route) => {
    if (route.config?.methodNotAllowed === true) return;
    for (const method of [route.method].flat()) {
      const transaction = transactionOf(method, route.url, '/dicomweb');
      t.equal(route.config?.transaction, transaction, `${method} ${route.url}: labelled when registered`);
      seen.push(`${method} ${templatePath(route.url)} ${transaction}`);
    }
  });
  await app.ready();
  t.teardown(() => app.close());
  t.same(seen.filter((r) => r.endsWith(' other')), []);
  const expect = (method: string, path: string, transaction: string) => t.ok(seen.includes(`${method} ${path} ${transaction}`), `${method} ${path} -> ${transaction}`);
  expect('GET', '/dicomweb/studies', 'qido');
  expect('GET', '/dicomweb/studies/{study}/series/{series}/instances', 'qido');
  expect('POST', '/dicomweb/studies/{study}', 'stow');
  expect('GET', '/dicomweb/studies/{study}/series', 'qido');
  expect('GET', '/dicomweb/studies/{study}/series/{series}', 'wado-rs');
  expect('GET', '/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}', 'frames');
  expect('GET', '/dicomweb/studies/{study}/series/{series}/instances/{instance}/bulk/{path}', 'bulk');
  expect('GET', '/dicomweb/studies/{study}/metadata', 'metadata');
  expect('GET', '/dicomweb/studies/{study}/rendered', 'rendered');
  expect('GET', '/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered', 'rendered');
  expect('GET', '/dicomweb/studies/{study}/series/{series}/thumbnail', 'thumbnail');
  expect('GET', '/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail', 'thumbnail');
  expect('GET', '/dicomweb/wado', 'wado-uri');
  expect('OPTIONS', '/dicomweb', 'capabilities');
  expect('GET', '/dicomweb/admin/principals', 'admin');
  expect('GET', '/dicomweb/share/{token}', 'shares');
  expect('GET', '/healthz', 'health');
  expect('GET', '/readyz', 'health');
  expect('GET', '/metrics', 'metrics');
});
