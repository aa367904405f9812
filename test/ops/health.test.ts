// GET /healthz and GET /readyz (issue 8 item 5; README "Operations"): public, outside the base path, no audit
// record, 200 or 503 with every check named, and nothing in the answer but check names and fixed texts.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import t from 'tap';
import type { Test } from 'tap';
import { buildApp, type AppDeps } from '../../src/app.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { createLogger } from '../../src/logger.js';
import { checkReadiness, type ReadinessDeps } from '../../src/services/readiness.js';
import { KeyUnavailableError } from '../../src/storage/keys/key-provider.js';
import { defaultPolicies } from '../helpers/access.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { generatedSet } from '../helpers/testdata.js';

const { manifest, files } = generatedSet('ct-2studies');
const S1 = manifest.studies[0]!;
const S1_FILES = S1.series.flatMap((x) => x.instances.map((i) => files.find((f) => f.rel.endsWith(i.file))!.bytes));

/** An app on `base`'s storage and Auditor whose resolver finds no principal: any non-public route is a 401. */
async function anonymousApp(t: Test, base: TestApp, extra: Partial<AppDeps> = {}, lines?: string[], level: 'info' | 'error' = 'info'): Promise<FastifyInstance> {
  const logger = createLogger(level, { write: (s: string) => void lines?.push(s) });
  const app = buildApp({ ...base, readInstance, logger, policy: defaultPolicies(), principalOf: (_r: FastifyRequest) => undefined, ...extra });
  await app.ready();
  t.teardown(() => app.close());
  return app;
}

interface Ready {
  status: string;
  checks: Record<'index' | 'keys' | 'audit' | 'disk', { state: string; reason?: string }>;
}

t.test('liveness and readiness answer without a principal, and leave no audit record', async (t) => {
  const base = await testApp(t);
  // A stored study: the key check then really unwraps a study key.
  const { contentType, body } = multipartBody(S1_FILES);
  t.equal((await base.app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body })).statusCode, 200);
  let unwraps = 0;
  const app = await anonymousApp(t, base, {
    verifyKeys: async () => {
      unwraps += await base.verifyKeys();
    },
  });
  t.equal((await app.inject({ method: 'GET', url: '/dicomweb/studies' })).statusCode, 401, 'the DICOMweb routes still need a principal');
  await base.auditor.flush();
  const before = base.audit.size;

  const live = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(live.statusCode, 200);
  t.same(live.json(), { status: 'ok' });
  t.equal(live.headers['cache-control'], 'no-store');

  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200);
  t.same(ready.json(), { status: 'ready', checks: { index: { state: 'ok' }, keys: { state: 'ok' }, audit: { state: 'ok' }, disk: { state: 'ok' } } });
  t.equal(unwraps, 1, 'the key check unwrapped the stored study key');
  t.equal((await app.inject({ method: 'HEAD', url: '/readyz' })).statusCode, 200, 'HEAD works too (curl -I)');

  await new Promise((r) => setTimeout(r, 10));
  await base.auditor.flush();
  t.equal(base.audit.size, before, 'no audit record for the probes');
  // Outside the base path: not DICOMweb resources.
  t.equal((await app.inject({ method: 'GET', url: '/dicomweb/healthz' })).statusCode, 401, 'not under the base path');
});

t.test('readiness: each failing check is named, the answer is 503, and the causes go to the log only', async (t) => {
  const base = await testApp(t, { DICOMVAULT_OPS_READINESS_TIMEOUT_MS: '100' });
  const lines: string[] = [];
  const app = await anonymousApp(t, base, { verifyKeys: () => Promise.reject(new KeyUnavailableError('KMS at 10.1.2.3 refused the call')) }, lines);
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 503);
  const ready = res.json<Ready>();
  t.equal(ready.status, 'not ready');
  t.same(ready.checks.keys, { state: 'failed', reason: 'the key provider cannot unwrap a stored key' });
  t.same(ready.checks.index, { state: 'ok' });
  t.notMatch(res.body, /KMS|10\.1\.2\.3/, 'no error text in the answer');
  const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string; failed?: string[]; errors?: Record<string, string> }).find((l) => l.msg === 'not ready');
  t.match(logged, { level: 40, failed: ['keys'], errors: { keys: 'KeyUnavailableError: KMS at 10.1.2.3 refused the call' } }, 'the cause is logged');
  t.notOk(lines.some((l) => l.includes('"msg":"request"')), 'no request line for a probe');
  const quiet: string[] = [];
  const quietApp = await anonymousApp(t, base, { verifyKeys: () => Promise.reject(new KeyUnavailableError('down')) }, quiet, 'error');
  t.equal((await quietApp.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
  t.same(quiet, [], 'a quieter configured level stays quieter on the probe routes');

  // A key service that does not answer fails the check after ops.readinessTimeoutMs instead of hanging the probe.
  const hung = await anonymousApp(t, base, { verifyKeys: () => new Promise(() => undefined) });
  const started = Date.now();
  const slow = await hung.inject({ method: 'GET', url: '/readyz' });
  t.equal(slow.statusCode, 503);
  t.same(slow.json<Ready>().checks.keys, { state: 'failed', reason: 'no answer within 100 ms' });
  t.ok(Date.now() - started < 2000, 'answered promptly');
  t.equal((await hung.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'liveness asks no dependency');
});

t.test('readiness: less free disk space than ops.minFreeDiskBytes is not ready', async (t) => {
  const base = await testApp(t, { DICOMVAULT_OPS_MIN_FREE_DISK_BYTES: String(2 ** 52) });
  const app = await anonymousApp(t, base);
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 503);
  t.same(res.json<Ready>().checks.disk, { state: 'failed', reason: 'the data folder has less free space than ops.minFreeDiskBytes' });
  t.equal(res.json<Ready>().checks.keys.state, 'ok', 'the other checks are still reported');
});

t.test('a failed audit trail: readiness and liveness are 503 (only a restart brings the server back)', async (t) => {
  const base = await testApp(t);
  const app = await anonymousApp(t, base);
  await base.audit.close();
  // Any request with a record to write now fails the append (the admin's QIDO on the original app).
  await base.app.inject({ method: 'GET', url: '/dicomweb/studies' });
  await new Promise((r) => setTimeout(r, 10));
  await base.auditor.flush();
  t.ok(base.auditor.failed);
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 503);
});

t.test('checkReadiness: every check, run against stand-ins', async (t) => {
  const deps = (over: Partial<ReadinessDeps> = {}): ReadinessDeps => ({
    index: { findInstance: () => undefined },
    auditFailed: () => false,
    dataDir: '/nowhere',
    minFreeDiskBytes: 1000,
    timeoutMs: 100,
    freeBytes: async () => 1000,
    ...over,
  });
  t.same((await checkReadiness(deps())).ready, true, 'exactly the minimum is enough');
  const index = await checkReadiness(
    deps({
      index: {
        findInstance: () => {
          throw new Error('SQLITE_CORRUPT');
        },
      },
    }),
  );
  t.same(index.checks.index, { state: 'failed', reason: 'the index does not answer' });
  t.equal(index.ready, false);
  t.same((await checkReadiness(deps({ auditFailed: () => true }))).checks.audit, { state: 'failed', reason: 'the audit trail failed: restart the server' });
  t.same((await checkReadiness(deps({ freeBytes: async () => 999 }))).checks.disk.state, 'failed');
  t.same((await checkReadiness(deps({ freeBytes: () => Promise.reject(new Error('EACCES')) }))).checks.disk, {
    state: 'failed',
    reason: 'the free space of the data folder cannot be read',
  });
  t.same((await checkReadiness(deps({ minFreeDiskBytes: 0, freeBytes: () => Promise.reject(new Error('unused')) }))).checks.disk.state, 'ok', '0: not checked');
  t.same((await checkReadiness(deps({ verifyKeys: undefined }))).checks.keys.state, 'ok', 'no key check given: ok');
});
