// Issue 6 over HTTP (routes/lifecycle.ts) on real storage: DELETE and OHIF's reject refused before expiry, under a
// study or patient hold and without delete permission (403 with the reason, a remove event and a Security Alert
// 110132 in the audit log), 404 for a study the caller cannot read; after expiry 204 and the study is gone from
// QIDO and WADO at once; restore brings it back; the admin API for retention and holds; DELETE after the purge 410.
import type { FastifyRequest } from 'fastify';
import t, { type Test } from 'tap';
import type { AuditRecord } from '../../src/audit/audit-record.js';
import { purge } from '../../src/services/purge.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { auditRecordsOf } from '../helpers/audit-records.js';
import { ADMIN, OLD, OUTSIDER, READER, RECENT, RECENT_KEEP_UNTIL, lifecyclePolicyFile, stow, studyInstances } from '../helpers/lifecycle.js';
import { tempDir } from '../helpers/temp-dir.js';

const principals = { admin: ADMIN, reader: READER, outsider: OUTSIDER };
const as = (who: keyof typeof principals) => ({ 'x-test-as': who });
const byHeader = (request: FastifyRequest) => principals[(request.headers['x-test-as'] as keyof typeof principals | undefined) ?? 'admin'];
const dcm = (code: string) => ({ code, codeSystem: 'DCM' });

async function lifecycleApp(t: Test): Promise<TestApp> {
  const app = await testApp(t, { DICOMVAULT_RETENTION_GRACE_PERIOD: 'P0D' }, { principal: byHeader, policyFile: lifecyclePolicyFile(tempDir(t)) });
  await stow(t, app.app, [...studyInstances(OLD), ...studyInstances(RECENT)].map((i) => i.bytes));
  return app;
}

/** The audit records the requests in `fn` left. */

const json = (body: string) => JSON.parse(body) as unknown;
const studiesFound = async (app: TestApp) => {
  const res = await app.app.inject({ url: '/dicomweb/studies', headers: { accept: 'application/dicom+json' } });
  if (res.statusCode === 204) return [];
  return (JSON.parse(res.body) as Record<string, { Value: string[] }>[]).map((r) => r['0020000D']!.Value[0]).sort();
};

t.test('refusals: before expiry, under a hold, without permission (403 + alert); unreadable 404', async (t) => {
  const app = await lifecycleApp(t);
  const del = (url: string, who: keyof typeof principals = 'admin') => app.app.inject({ method: 'DELETE', url, headers: as(who) });

  let res!: Awaited<ReturnType<typeof del>>;
  const records = await auditRecordsOf(app, async () => {
    res = await del(`/dicomweb/studies/${RECENT.study}`);
  });
  t.equal(res.statusCode, 403);
  t.same(json(res.body), { error: 'FORBIDDEN', message: `retained until ${RECENT_KEEP_UNTIL} (rule default)` });
  t.equal(records.length, 2, 'a remove event and a Security Alert');
  t.match(records[0], { eventId: dcm('110103'), action: 'D', outcome: 4, objects: [{ id: RECENT.study }, { id: RECENT.patientId }] });
  t.match(records[1], { eventId: dcm('110113'), eventTypes: [dcm('110132')], outcome: 4 });
  t.match(JSON.stringify(records[1]), /delete refused: retained until 2031-01-01/);

  res = await app.app.inject({ method: 'POST', url: `/dicomweb/studies/${RECENT.study}/series/${RECENT.study}.1/reject/113039%5EDCM` });
  t.equal(res.statusCode, 403, '113039 before expiry');
  t.match(json(res.body), { message: /^rejection code 113039 \(data retention period expired\) before expiry: retained until 2031-01-01/ });

  res = await del(`/dicomweb/studies/${OLD.study}`, 'reader');
  t.same([res.statusCode, json(res.body)], [403, { error: 'FORBIDDEN', message: 'the policy does not permit delete' }], 'readable, not deletable');
  const hidden = await del(`/dicomweb/studies/${OLD.study}`, 'outsider');
  const missing = await del('/dicomweb/studies/2.25.404');
  t.equal(hidden.statusCode, 404, 'unreadable: 404');
  t.equal(hidden.body, missing.body, 'like a missing study');

  const placed = await app.app.inject({ method: 'POST', url: '/dicomweb/admin/holds', payload: { name: 'CASE-1', scope: 'study', target: OLD.study, reason: 'litigation' } });
  t.equal(placed.statusCode, 201);
  const hold = (json(placed.body) as { hold: { id: string } }).hold;
  t.match(hold, { name: 'CASE-1', scope: 'study', target: OLD.study, reason: 'litigation', placedBy: 'admin-1' });
  res = await del(`/dicomweb/studies/${OLD.study}/series/${OLD.study}.1`);
  t.same([res.statusCode, json(res.body)], [403, { error: 'FORBIDDEN', message: `under legal hold "CASE-1" (id ${hold.id}, on the study)` }], 'study hold');
  t.equal((await app.app.inject({ method: 'POST', url: `/dicomweb/admin/holds/${hold.id}/lift`, payload: { reason: 'settled' } })).statusCode, 200);
  const patientHold = await app.app.inject({ method: 'POST', url: '/dicomweb/admin/holds', payload: { name: 'CASE-2', scope: 'patient', target: OLD.patientId, reason: 'subpoena' } });
  res = await app.app.inject({ method: 'POST', url: `/dicomweb/studies/${OLD.study}/series/${OLD.study}.1/reject/113001%5EDCM` });
  t.equal(res.statusCode, 403, 'patient hold');
  t.match(json(res.body), { message: /^under legal hold "CASE-2" .*on the patient\)$/ });

  res = await app.app.inject({ method: 'POST', url: `/dicomweb/studies/${OLD.study}/series/${OLD.study}.1/reject/113002%5EDCM` });
  t.equal(res.statusCode, 400, 'unknown rejection code');
  t.match(json(res.body), { message: /unknown rejection code/ });
  t.equal((await del('/dicomweb/studies/not-a-uid')).statusCode, 400, 'a UID is checked first');
  t.same(await studiesFound(app), [OLD.study, RECENT.study].sort(), 'nothing was removed');

  const lifted = (json(patientHold.body) as { hold: { id: string } }).hold.id;
  t.equal((await app.app.inject({ method: 'POST', url: `/dicomweb/admin/holds/${lifted}/lift`, payload: { reason: 'released' } })).statusCode, 200);
  t.equal((await app.app.inject({ method: 'POST', url: `/dicomweb/admin/holds/${lifted}/lift`, payload: { reason: 'again' } })).statusCode, 409, 'lifted already');
  const all = json((await app.app.inject({ url: '/dicomweb/admin/holds?includeLifted=true' })).body) as { holds: { name: string; liftReason?: string }[] };
  t.same(all.holds.map((h) => [h.name, h.liftReason]).sort(), [['CASE-1', 'settled'], ['CASE-2', 'released']]);
  t.same(json((await app.app.inject({ url: '/dicomweb/admin/holds' })).body), { holds: [] }, 'no active hold');
  t.equal((await app.app.inject({ url: '/dicomweb/admin/holds', headers: as('reader') })).statusCode, 403, 'admins only');
});

t.test('after expiry: 204, gone from QIDO and WADO at once, restored by an admin, purged: 410', async (t) => {
  const app = await lifecycleApp(t);
  const metadata = (url: string) => app.app.inject({ url: `${url}/metadata`, headers: { accept: 'application/dicom+json' } });
  const before = await metadata(`/dicomweb/studies/${OLD.study}`);
  t.equal(before.statusCode, 200);

  let res!: Awaited<ReturnType<typeof metadata>>;
  const records = await auditRecordsOf(app, async () => {
    res = await app.app.inject({ method: 'POST', url: `/dicomweb/studies/${OLD.study}/series/${OLD.study}.2/reject/113001%5EDCM` });
  });
  t.equal(res.statusCode, 204, 'OHIF reject');
  t.equal(records.length, 1);
  t.match(records[0], { eventId: dcm('110103'), action: 'D', outcome: 0, objects: [{ id: OLD.study, description: /1\.2\.840\.10008\.5\.1\.4\.1\.1\.4 x1/ }, { id: OLD.patientId }] });
  t.equal((await app.app.inject({ method: 'DELETE', url: `/dicomweb/studies/${OLD.study}` })).statusCode, 204, 'DELETE the rest');
  t.same(await studiesFound(app), [RECENT.study], 'QIDO no longer finds it');
  t.equal((await metadata(`/dicomweb/studies/${OLD.study}`)).statusCode, 404, 'WADO 404 at once');

  const bin = json((await app.app.inject({ url: '/dicomweb/admin/bin' })).body) as { studies: { studyInstanceUID: string; instances: number }[] };
  t.match(bin.studies, [{ studyInstanceUID: OLD.study, instances: 3 }]);
  const restored = await app.app.inject({ method: 'POST', url: `/dicomweb/admin/studies/${OLD.study}/restore` });
  t.same([restored.statusCode, json(restored.body)], [200, { restored: 3, skipped: [] }]);
  const after = await metadata(`/dicomweb/studies/${OLD.study}`);
  t.same(json(after.body), json(before.body), 'the same metadata');

  t.equal((await app.app.inject({ method: 'DELETE', url: `/dicomweb/studies/${OLD.study}` })).statusCode, 204);
  const report = await purge({ index: app.index, lifecycle: app.lifecycle, blobs: app.blobs, keyring: app.keyring });
  t.match(report, { instances: 3, keysDestroyed: 1 });
  const gone = await app.app.inject({ method: 'DELETE', url: `/dicomweb/studies/${OLD.study}/series/${OLD.study}.1` });
  t.same([gone.statusCode, json(gone.body)], [410, { error: 'GONE', message: 'the series was deleted for good' }], 'DELETE of a purged series: 410');
  t.same(await studiesFound(app), [RECENT.study], 'QIDO: still not found');
  for (const url of [`/dicomweb/studies/${OLD.study}`, `/dicomweb/studies/${OLD.study}/series/${OLD.study}.1`, `/dicomweb/studies/${OLD.study}/series/${OLD.study}.1/instances/${OLD.study}.1.1`]) {
    t.equal((await metadata(url)).statusCode, 410, `WADO metadata ${url.split('/').length > 5 ? 'below the study' : 'of the study'}: 410`);
    t.equal((await app.app.inject({ url, headers: { accept: 'multipart/related; type="application/dicom"' } })).statusCode, 410, 'WADO retrieve: 410');
  }
  const instanceUrl = `/dicomweb/studies/${OLD.study}/series/${OLD.study}.1/instances/${OLD.study}.1.1`;
  t.equal((await app.app.inject({ url: `${instanceUrl}/frames/1`, headers: { accept: 'multipart/related; type="application/octet-stream"' } })).statusCode, 410, 'frames: 410');
  t.equal((await app.app.inject({ url: `${instanceUrl}/bulk/7FE00010` })).statusCode, 410, 'bulk data: 410');
  const wadoUri = `/dicomweb/wado?requestType=WADO&studyUID=${OLD.study}&seriesUID=${OLD.study}.1&objectUID=${OLD.study}.1.1&contentType=application%2Fdicom`;
  t.equal((await app.app.inject({ url: wadoUri })).statusCode, 410, 'WADO-URI: 410');
  const retention = json((await app.app.inject({ url: `/dicomweb/admin/studies/${OLD.study}/retention` })).body);
  t.match(retention, { studyInstanceUID: OLD.study, rules: ['receipt-floor'], expired: true, current: null, holds: [], binned: 0 }, 'the stored date outlives the study');
});

t.test('admin retention: shows the rules and why, extends only (409 when earlier)', async (t) => {
  const app = await lifecycleApp(t);
  const url = `/dicomweb/admin/studies/${RECENT.study}/retention`;
  const shown = json((await app.app.inject({ url })).body);
  t.match(shown, {
    studyInstanceUID: RECENT.study,
    keepUntil: `${RECENT_KEEP_UNTIL}T00:00:00.000Z`,
    rules: ['default'],
    expired: false,
    current: { keepUntil: `${RECENT_KEEP_UNTIL}T00:00:00.000Z`, reasons: [{ rule: 'default', explanation: 'StudyDate + P7Y' }] },
    holds: [],
  });
  let records: AuditRecord[] = [];
  let res!: Awaited<ReturnType<typeof app.app.inject>>;
  records = await auditRecordsOf(app, async () => {
    res = await app.app.inject({ method: 'PUT', url, payload: { keepUntil: '2040-06-30', reason: 'research hold' } });
  });
  t.same([res.statusCode, json(res.body)], [200, { studyInstanceUID: RECENT.study, keepUntil: '2040-06-30T00:00:00.000Z', rules: ['manual'], computedAt: (json(res.body) as { computedAt: string }).computedAt }]);
  t.match(records, [{ eventId: dcm('110103'), action: 'U', outcome: 0, objects: [{ id: RECENT.study }, { id: RECENT.patientId }] }]);
  res = await app.app.inject({ method: 'PUT', url, payload: { keepUntil: '2035-01-01', reason: 'oops' } });
  t.same([res.statusCode, json(res.body)], [409, { error: 'CONFLICT', message: 'keep-until may only be extended: the study is retained until 2040-06-30, and 2035-01-01 is earlier' }]);
  t.equal((await app.app.inject({ method: 'PUT', url, payload: { keepUntil: 'soon', reason: 'x' } })).statusCode, 400);
  t.equal((await app.app.inject({ method: 'PUT', url, payload: { keepUntil: '2041-01-01' } })).statusCode, 400, 'a reason is required');
  t.equal((await app.app.inject({ method: 'PUT', url: '/dicomweb/admin/studies/2.25.404/retention', payload: { keepUntil: '2041-01-01', reason: 'x' } })).statusCode, 404);
  t.equal((await app.app.inject({ url, headers: as('reader') })).statusCode, 403, 'admins only');
  res = await app.app.inject({ method: 'PUT', url, payload: { keepUntil: 'indefinite', reason: 'forever' } });
  t.match(json(res.body), { keepUntil: 'indefinite', rules: ['manual'] });
  res = await app.app.inject({ method: 'DELETE', url: `/dicomweb/studies/${RECENT.study}` });
  t.match(json(res.body), { message: 'retained indefinitely (rule manual)' });
});
