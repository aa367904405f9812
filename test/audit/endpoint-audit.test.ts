// The audit trail of every DICOMweb endpoint (issue 6 item 5; SECURITY.md 2, docs/audit.md): each request,
// driven through the real app over real storage, leaves exactly the records of the trigger table in the
// encrypted, hash-chained audit log, read back decrypted. Also: failed logins (401, unregistered certificate),
// refusals (403), break-glass, a refused TLS handshake, a response cut mid-way, and fail-closed 503s.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import t from 'tap';
import type { Test } from 'tap';
import { buildApp } from '../../src/app.js';
import type { AuditRecord } from '../../src/audit/audit-record.js';
import { AuditEventType } from '../../src/audit/audit-record.js';
import { shareLinks } from '../../src/compose.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { AuthenticationError, type PrincipalResolver, webResolver } from '../../src/http/plugins/authenticate.js';
import { createLogger } from '../../src/logger.js';
import { CedarPolicyEngine } from '../../src/policy/policy-engine.js';
import type { Principal } from '../../src/security/principal.js';
import { ADMIN_PRINCIPAL, DEFAULT_POLICY_FILE, certificatePrincipal } from '../helpers/access.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { storedArchive } from '../helpers/tamper.js';
import { tempDir } from '../helpers/temp-dir.js';
import { generatedSet } from '../helpers/testdata.js';

const { manifest, files } = generatedSet('ct-2studies');
const [S1, S2] = manifest.studies as [(typeof manifest.studies)[0], (typeof manifest.studies)[0]];
const bytesOf = (s: typeof S1): Buffer[] => s.series.flatMap((x) => x.instances.map((i) => files.find((f) => f.rel.endsWith(i.file))!.bytes));
const SERIES1 = S1.series[0]!.SeriesInstanceUID;
const SOP1 = S1.series[0]!.instances[0]!.SOPInstanceUID;
const IP = '127.0.0.1';

const dcm = (code: string) => ({ code, codeSystem: 'DCM' });
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const base64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** The requesting principal as ActiveParticipant; `role` its RoleIDCode when the event has directions. */
const requestor = (userId: string, role?: string) => ({
  userId,
  userIsRequestor: true,
  ...(role ? { roleIdCode: dcm(role) } : {}),
  networkAccessPoint: { typeCode: 2, id: IP },
});
/** The server: its listener URL, machine name, role (110150 Application unless the event has directions). */
const server = (role = '110150') => ({ userIsRequestor: false, roleIdCode: dcm(role), networkAccessPoint: { typeCode: 1, id: '127.0.0.1' } });
const studyObj = (uid: string, description?: string) => ({
  typeCode: 2,
  roleCode: 3,
  idTypeCode: dcm('110180'),
  id: uid,
  ...(description === undefined ? {} : { description }),
});
const patientObj = (id: string) => ({ typeCode: 1, roleCode: 1, idTypeCode: { code: '2', codeSystem: 'RFC-3881' }, id });
const subjectObj = (uri: string, description: string | RegExp) => ({
  typeCode: 2,
  idTypeCode: { code: '12', codeSystem: 'RFC-3881' },
  id: uri,
  details: [{ type: 'Alert Description', value: description }],
});

const POLICIES = `
@id("admin-all")
permit (principal in Role::"admin", action, resource);

@id("doc-break-glass")
permit (principal == User::"doc", action in [Action::"search", Action::"read"], resource)
when { context.breakGlass };
`;

const PEOPLE: Record<string, Principal> = {
  admin: ADMIN_PRINCIPAL,
  nobody: certificatePrincipal('test-nobody'),
  doc: certificatePrincipal('doc', ['physician']),
};
/** `x-as: <name>` picks the principal (default the admin). */
const byHeader = (request: FastifyRequest): Principal | undefined => PEOPLE[String(request.headers['x-as'] ?? 'admin')];

interface Audited extends TestApp {
  /** The records the requests in `fn` left (the log flushed before and after). */
  recordsOf(fn: () => Promise<unknown>): Promise<AuditRecord[]>;
}

async function settle(app: TestApp): Promise<void> {
  // onResponse runs when the response finished, which may be after inject() resolved.
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 5));
  await app.auditor.flush();
}

async function read(app: TestApp, fromN: number): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const e of app.audit.read({ fromN })) out.push(e.record);
  return out;
}

function audited(app: TestApp): Audited {
  return {
    ...app,
    recordsOf: async (fn) => {
      await settle(app);
      const from = app.audit.size;
      await fn();
      await settle(app);
      return read(app, from);
    },
  };
}

async function auditedApp(t: Test, env: Record<string, string> = {}): Promise<Audited> {
  const policyFile = path.join(tempDir(t), 'policies.cedar');
  fs.writeFileSync(policyFile, POLICIES);
  return audited(await testApp(t, { DICOMVAULT_STOW_DUPLICATE_POLICY: 'replace', ...env }, { principal: byHeader, policyFile }));
}

function stowRequest(parts: Buffer[], headers: Record<string, string> = {}) {
  const { contentType, body } = multipartBody(parts);
  return { method: 'POST' as const, url: '/dicomweb/studies', headers: { 'content-type': contentType, ...headers }, payload: body };
}

/** An app on the same storage (and Auditor) as `app`, with its own resolver, listener and extra routes. */
async function sibling(t: Test, app: TestApp, principalOf: PrincipalResolver, options: { listener?: 'web'; routes?: (f: FastifyInstance) => void } = {}) {
  const logger = createLogger('silent');
  const policy = CedarPolicyEngine.fromFile(DEFAULT_POLICY_FILE);
  const shares = shareLinks(app.config, app, logger);
  const f = buildApp({ ...app, readInstance, logger, policy, shares, principalOf, ...(options.listener ? { listener: options.listener } : {}) });
  options.routes?.(f);
  await f.ready();
  t.teardown(() => f.close());
  return f;
}

t.test('every DICOMweb endpoint leaves the records of the trigger table', async (t) => {
  const app = await auditedApp(t);
  const inject = app.app.inject.bind(app.app);
  const CT = '1.2.840.10008.5.1.4.1.1.2';

  // STOW-RS new: 110104 C, the requestor the source, the server the destination; one study object with its
  // SOP classes and accession, one patient object.
  let records = await app.recordsOf(async () => t.equal((await inject(stowRequest(bytesOf(S1)))).statusCode, 200));
  t.equal(app.index.findInstance(SOP1)!.sopClassUID, CT, 'the generated files are CT Image Storage');
  t.equal(records.length, 1, 'STOW: one record');
  t.match(records[0], {
    eventId: dcm('110104'),
    action: 'C',
    outcome: 0,
    participants: [requestor('test-admin', '110153'), server('110152')],
    source: { id: /^https:\/\/127\.0\.0\.1:8443\/dicomweb$/, typeCode: '4' },
    objects: [studyObj(S1.StudyInstanceUID, `SOP classes: ${CT} x12; accession: ${S1.AccessionNumber}`), patientObj(S1.PatientID)],
  });
  t.equal(records[0]!.objects.length, 2);
  t.equal(records[0]!.participants[1]!.userId, app.auditor.source.id, 'the server participant is the listener');
  records = await app.recordsOf(async () => t.equal((await inject(stowRequest(bytesOf(S2)))).statusCode, 200));
  t.match(records, [{ eventId: dcm('110104'), action: 'C', objects: [studyObj(S2.StudyInstanceUID), patientObj(S2.PatientID)] }]);

  // STOW-RS replace (duplicate policy replace, other bytes under the same SOP Instance UID): action U.
  const changed = Buffer.from(bytesOf(S1)[0]!);
  changed[changed.length - 1]! ^= 0xff;
  records = await app.recordsOf(async () => t.equal((await inject(stowRequest([changed]))).statusCode, 200));
  t.match(records, [{ eventId: dcm('110104'), action: 'U', outcome: 0, objects: [studyObj(S1.StudyInstanceUID, `SOP classes: ${CT} x1; accession: ${S1.AccessionNumber}`), patientObj(S1.PatientID)] }]);
  t.equal(records.length, 1);

  // Partial failure (202): outcome 4; all failed (409): outcome 8 and no study.
  const junk = Buffer.from('not a DICOM file at all');
  records = await app.recordsOf(async () => t.equal((await inject(stowRequest([bytesOf(S2)[0]!, junk]))).statusCode, 202));
  t.match(records, [{ eventId: dcm('110104'), action: 'C', outcome: 4, outcomeDescription: '1 of 2 instances not stored, 0 stored with warnings', objects: [studyObj(S2.StudyInstanceUID), patientObj(S2.PatientID)] }]);
  records = await app.recordsOf(async () => t.equal((await inject(stowRequest([junk]))).statusCode, 409));
  t.match(records, [{ eventId: dcm('110104'), action: 'C', outcome: 8, objects: [] }]);
  t.equal(records[0]!.objects.length, 0);

  // QIDO-RS, all six resources: 110112 E, the query (base64) under the resource's name, then the studies and
  // patients of the page.
  const qido: [string, string, string][] = [
    [`/dicomweb/studies?PatientID=${S1.PatientID}`, 'SearchForStudies', `PatientID=${S1.PatientID}`],
    [`/dicomweb/studies/${S1.StudyInstanceUID}/series`, 'SearchForSeries', ''],
    [`/dicomweb/studies/${S1.StudyInstanceUID}/instances?limit=2`, 'SearchForInstances', 'limit=2'],
    [`/dicomweb/series?StudyInstanceUID=${S1.StudyInstanceUID}&includefield=PatientID`, 'SearchForSeries', `StudyInstanceUID=${S1.StudyInstanceUID}&includefield=PatientID`],
    [`/dicomweb/studies/${S1.StudyInstanceUID}/series/${SERIES1}/instances`, 'SearchForInstances', ''],
    [`/dicomweb/instances?SOPInstanceUID=${SOP1}&includefield=00100020`, 'SearchForInstances', `SOPInstanceUID=${SOP1}&includefield=00100020`],
  ];
  for (const [url, resource, query] of qido) {
    records = await app.recordsOf(async () => t.equal((await inject({ method: 'GET', url })).statusCode, 200, url));
    t.equal(records.length, 1, `${resource}: one record`);
    const queryObj = { typeCode: 2, roleCode: 24, idTypeCode: dcm('110181'), id: resource, query: b64(query) };
    t.match(records[0], { eventId: dcm('110112'), action: 'E', outcome: 0, participants: [requestor('test-admin', '110153'), server('110152')] }, url);
    // PatientID is in the study-level answer and where includefield asks for it.
    const withPatient = resource === 'SearchForStudies' || query.includes('includefield');
    const objects = [queryObj, studyObj(S1.StudyInstanceUID), ...(withPatient ? [patientObj(S1.PatientID)] : [])];
    t.match(records[0]!.objects, objects, `${url}: the query, the study and the patients of the page`);
    t.equal(records[0]!.objects.length, objects.length, `${url}: no other object`);
  }
  records = await app.recordsOf(async () => t.equal((await inject({ method: 'GET', url: '/dicomweb/studies?PatientID=NOBODY' })).statusCode, 204));
  t.match(records, [{ eventId: dcm('110112'), outcome: 0, objects: [{ id: 'SearchForStudies', query: b64('PatientID=NOBODY') }] }], 'an empty answer is a query too');
  t.equal(records[0]!.objects.length, 1);

  // WADO-RS whole study and series: 110102 E when the body starts, then 110104 R (the server the source).
  const retrieved = (sopCount: number, extra: object = {}) => ({
    eventId: dcm('110104'),
    action: 'R',
    outcome: 0,
    participants: [requestor('test-admin', '110152'), server('110153')],
    objects: [studyObj(S1.StudyInstanceUID, `SOP classes: ${CT} x${sopCount}; accession: ${S1.AccessionNumber}`), patientObj(S1.PatientID)],
    ...extra,
  });
  const begin = (sopCount: number) => ({ ...retrieved(sopCount), eventId: dcm('110102'), action: 'E' });
  for (const [url, n] of [
    [`/dicomweb/studies/${S1.StudyInstanceUID}`, 12],
    [`/dicomweb/studies/${S1.StudyInstanceUID}/series/${SERIES1}`, 6],
  ] as const) {
    records = await app.recordsOf(async () => t.equal((await inject({ method: 'GET', url })).statusCode, 200, url));
    t.match(records, [begin(n), retrieved(n)], `${url}: 110102 then 110104`);
    t.equal(records.length, 2);
  }
  // Single instances, metadata, frames, bulk data, WADO-URI: 110104 R only.
  const instanceUrl = `/dicomweb/studies/${S1.StudyInstanceUID}/series/${SERIES1}/instances/${SOP1}`;
  for (const [url, n, accept] of [
    [instanceUrl, 1, 'application/dicom'],
    [`/dicomweb/studies/${S1.StudyInstanceUID}/metadata`, 12, undefined],
    [`/dicomweb/studies/${S1.StudyInstanceUID}/series/${SERIES1}/metadata`, 6, undefined],
    [`${instanceUrl}/metadata`, 1, undefined],
    [`${instanceUrl}/frames/1`, 1, 'multipart/related; type="application/octet-stream"'],
    [`${instanceUrl}/bulk/7FE00010`, 1, undefined],
    [`/dicomweb/wado?requestType=WADO&studyUID=${S1.StudyInstanceUID}&seriesUID=${SERIES1}&objectUID=${SOP1}&contentType=application/dicom`, 1, undefined],
  ] as const) {
    records = await app.recordsOf(async () => t.equal((await inject({ method: 'GET', url, headers: accept ? { accept } : {} })).statusCode, 200, url));
    t.match(records, [retrieved(n)], url);
    t.equal(records.length, 1, `${url}: one record`);
  }
  // A refused retrieve (406: a content type not offered) and an unknown study (404): outcome 4.
  records = await app.recordsOf(async () =>
    t.equal((await inject({ method: 'GET', url: `/dicomweb/wado?requestType=WADO&studyUID=${S1.StudyInstanceUID}&seriesUID=${SERIES1}&objectUID=${SOP1}&contentType=text/html` })).statusCode, 406),
  );
  t.match(records, [{ eventId: dcm('110104'), action: 'R', outcome: 4, objects: [] }]);
  records = await app.recordsOf(async () => t.equal((await inject({ method: 'GET', url: '/dicomweb/studies/1.2.3.4' })).statusCode, 404));
  t.match(records, [{ eventId: dcm('110104'), action: 'R', outcome: 4, objects: [] }], 'no 110102: nothing was transferred');
  t.equal(records.length, 1);

  // Admin: 110113 E, 110129 Security Configuration; the study (and patient) when one is named.
  const config = (uri: string, description: string | RegExp, objects: object[] = []) => ({
    eventId: dcm('110113'),
    action: 'E',
    outcome: 0,
    eventTypes: [dcm('110129')],
    participants: [requestor('test-admin'), server()],
    objects: [subjectObj(uri, description), ...objects],
  });
  records = await app.recordsOf(async () =>
    t.equal((await inject({ method: 'PUT', url: `/dicomweb/admin/studies/${S1.StudyInstanceUID}/labels`, payload: { labels: ['vip', 'research'] } })).statusCode, 200),
  );
  t.match(records, [config('PUT /dicomweb/admin/studies/:study/labels', 'study labels set: research, vip', [studyObj(S1.StudyInstanceUID, `accession: ${S1.AccessionNumber}`), patientObj(S1.PatientID)])]);
  records = await app.recordsOf(async () =>
    t.equal((await inject({ method: 'PUT', url: `/dicomweb/admin/studies/${S1.StudyInstanceUID}/confidentiality`, payload: { confidentiality: 'R' } })).statusCode, 200),
  );
  t.match(records, [config('PUT /dicomweb/admin/studies/:study/confidentiality', 'study confidentiality set: R', [studyObj(S1.StudyInstanceUID), patientObj(S1.PatientID)])]);
  records = await app.recordsOf(async () => t.equal((await inject({ method: 'POST', url: '/dicomweb/admin/policies/reload' })).statusCode, 200));
  t.match(records, [config('POST /dicomweb/admin/policies/reload', /^policies reloaded: version \d+$/)]);
  records = await app.recordsOf(async () =>
    t.equal((await inject({ method: 'PUT', url: '/dicomweb/admin/policies', headers: { 'content-type': 'text/plain' }, payload: POLICIES })).statusCode, 200),
  );
  t.match(records, [config('PUT /dicomweb/admin/policies', /^policies replaced: version \d+$/)]);
  records = await app.recordsOf(async () =>
    t.equal((await inject({ method: 'PUT', url: '/dicomweb/admin/policies', headers: { 'content-type': 'text/plain' }, payload: 'permit (' })).statusCode, 400),
  );
  t.match(records, [{ ...config('PUT /dicomweb/admin/policies', 'policies replaced'), outcome: 4 }], 'a refused change is audited as failed');
  // Reading the configuration changes nothing: not audited.
  records = await app.recordsOf(async () => t.equal((await inject({ method: 'GET', url: '/dicomweb/admin/policies' })).statusCode, 200));
  t.same(records, []);

  // Share-link creation: 110106 Export R, the server the source.
  let token = '';
  records = await app.recordsOf(async () => {
    const res = await inject({ method: 'POST', url: '/dicomweb/shares', payload: { studyInstanceUID: S1.StudyInstanceUID, secondFactor: '1970-01-01' } });
    t.equal(res.statusCode, 201);
    token = (res.json() as { token: string }).token;
  });
  t.match(records, [
    { eventId: dcm('110106'), action: 'R', outcome: 0, participants: [requestor('test-admin', '110152'), server('110153')], objects: [studyObj(S1.StudyInstanceUID), patientObj(S1.PatientID)] },
  ]);

  // Share-link exchange on the web listener: 110114 Login; a wrong second factor outcome 4; the landing page nothing.
  const web = await sibling(t, app, webResolver({}) as PrincipalResolver, { listener: 'web' });
  const shareId = (await app.app.inject({ method: 'GET', url: '/dicomweb/shares' })).json<{ id: string }[]>()[0]!.id;
  records = await app.recordsOf(async () => t.equal((await web.inject({ method: 'GET', url: `/dicomweb/share/${token}` })).statusCode, 200));
  t.same(records, [], 'the landing page (public, no event) leaves no record');
  records = await app.recordsOf(async () => t.equal((await web.inject({ method: 'POST', url: `/dicomweb/share/${token}`, payload: { secondFactor: '1999-12-31' } })).statusCode, 401));
  const login = (userId: string, outcome: number) => ({ eventId: dcm('110114'), action: 'E', outcome, eventTypes: [dcm('110122')], participants: [requestor(userId), server()], objects: [] });
  t.match(records, [{ ...login(`share:${shareId}`, 4), outcomeDescription: 'share link refused: second-factor-wrong' }]);
  records = await app.recordsOf(async () => t.equal((await web.inject({ method: 'POST', url: '/dicomweb/share/not-a-real-token' })).statusCode, 401));
  t.match(records, [{ ...login('unknown', 4), outcomeDescription: /^share link refused: (malformed|unknown)-token$/ }]);
  records = await app.recordsOf(async () => t.equal((await web.inject({ method: 'POST', url: `/dicomweb/share/${token}`, payload: { secondFactor: '1970-01-01' } })).statusCode, 200));
  t.match(records, [login(`share:${shareId}`, 0)]);
  t.equal(records.length, 1);

  // Unknown routes leave nothing.
  records = await app.recordsOf(async () => t.equal((await inject({ method: 'GET', url: '/dicomweb/nothing-here' })).statusCode, 404));
  t.same(records, []);
});

t.test('401 on the web listener: 110114 Login, outcome 4, the unverified token subject or "unknown"', async (t) => {
  const app = await auditedApp(t);
  const web = await sibling(t, app, webResolver({}) as PrincipalResolver, { listener: 'web' });
  const jwt = `${base64url({ alg: 'RS256' })}.${base64url({ sub: 'alice', iss: 'https://idp' })}.c2ln`;
  let records = await app.recordsOf(async () =>
    t.equal((await web.inject({ method: 'GET', url: '/dicomweb/studies', headers: { authorization: `Bearer ${jwt}` } })).statusCode, 401),
  );
  t.match(records, [
    {
      eventId: dcm('110114'),
      action: 'E',
      outcome: 4,
      outcomeDescription: 'bearer tokens are not accepted by this server',
      eventTypes: [dcm('110122')],
      participants: [requestor('unverified:alice'), server()],
      objects: [],
    },
  ]);
  t.equal(records.length, 1, 'no other record (no query was made)');
  records = await app.recordsOf(async () => t.equal((await web.inject({ method: 'GET', url: '/dicomweb/studies' })).statusCode, 401));
  t.match(records, [{ eventId: dcm('110114'), outcome: 4, participants: [requestor('unknown'), server()] }]);
});

t.test('403: an unregistered certificate is a failed login; a refused principal a Security Alert 110132', async (t) => {
  const app = await auditedApp(t);
  const unregistered = await sibling(t, app, () => {
    throw new AuthenticationError(403, 'client certificate is not registered');
  });
  let records = await app.recordsOf(async () => t.equal((await unregistered.inject({ method: 'GET', url: '/dicomweb/studies' })).statusCode, 403));
  t.match(records, [{ eventId: dcm('110114'), outcome: 4, outcomeDescription: 'client certificate is not registered', participants: [requestor('unknown'), server()] }]);
  t.equal(records.length, 1);

  records = await app.recordsOf(async () => t.equal((await app.app.inject({ method: 'GET', url: '/dicomweb/admin/principals', headers: { 'x-as': 'nobody' } })).statusCode, 403));
  t.match(records, [
    {
      eventId: dcm('110113'),
      action: 'E',
      outcome: 4,
      eventTypes: [dcm('110132')],
      participants: [requestor('test-nobody'), server()],
      objects: [subjectObj('GET /dicomweb/admin/principals', 'the admin action is required')],
    },
  ]);
  t.equal(records.length, 1);
  // A study the principal may not read is a 404 like a missing one: a failed retrieve, no alert, no study named.
  await app.recordsOf(async () => t.equal((await app.app.inject(stowRequest(bytesOf(S1)))).statusCode, 200));
  records = await app.recordsOf(async () => t.equal((await app.app.inject({ method: 'GET', url: `/dicomweb/studies/${S1.StudyInstanceUID}/metadata`, headers: { 'x-as': 'nobody' } })).statusCode, 404));
  t.match(records, [{ eventId: dcm('110104'), outcome: 4, participants: [requestor('test-nobody', '110152'), server('110153')], objects: [] }]);
  t.equal(records[0]!.objects.length, 0);
});

t.test('break-glass: the event, then 110113 Emergency Override Started with the reason and the study', async (t) => {
  const app = await auditedApp(t);
  await app.recordsOf(async () => t.equal((await app.app.inject(stowRequest(bytesOf(S1)))).statusCode, 200));
  const headers = { 'x-as': 'doc', 'break-glass-reason': 'trauma bay 2, patient unconscious' };
  let records = await app.recordsOf(async () => t.equal((await app.app.inject({ method: 'GET', url: `/dicomweb/studies/${S1.StudyInstanceUID}/metadata`, headers })).statusCode, 200));
  t.match(records, [
    { eventId: dcm('110104'), action: 'R', outcome: 0, participants: [requestor('doc', '110152'), server('110153')], objects: [studyObj(S1.StudyInstanceUID), patientObj(S1.PatientID)] },
    {
      eventId: dcm('110113'),
      action: 'E',
      outcome: 0,
      eventTypes: [dcm('110127')],
      participants: [requestor('doc'), server()],
      objects: [subjectObj('GET /dicomweb/studies/:study/metadata', 'break-glass read: trauma bay 2, patient unconscious'), studyObj(S1.StudyInstanceUID)],
    },
  ]);
  t.equal(records.length, 2);
  t.equal(records[1]!.objects.length, 2, 'the break-glass decision names the study only (its patient is in the event)');
  // Without a reason the physician may not read: nothing but the failed retrieve.
  records = await app.recordsOf(async () => t.equal((await app.app.inject({ method: 'GET', url: `/dicomweb/studies/${S1.StudyInstanceUID}/metadata`, headers: { 'x-as': 'doc' } })).statusCode, 404));
  t.match(records, [{ eventId: dcm('110104'), outcome: 4 }]);
  t.equal(records.length, 1);
  // A search with a reason: one alert for the search decision.
  records = await app.recordsOf(async () => t.equal((await app.app.inject({ method: 'GET', url: '/dicomweb/studies', headers })).statusCode, 200));
  t.match(records, [{ eventId: dcm('110112') }, { eventId: dcm('110113'), eventTypes: [dcm('110127')], objects: [subjectObj('GET /dicomweb/studies', 'break-glass search: trauma bay 2, patient unconscious')] }]);
  t.equal(records.length, 2);
});

t.test('a refused TLS handshake: 110113 Security Alert, 110126 Node Authentication, outcome 4, the remote address', async (t) => {
  const app = await auditedApp(t);
  const records = await app.recordsOf(async () => {
    app.app.server.emit('tlsClientError', Object.assign(new Error('handshake'), { code: 'ERR_SSL_X' }), { remoteAddress: '10.1.2.3', authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });
  t.match(records, [
    {
      eventId: dcm('110113'),
      action: 'E',
      outcome: 4,
      eventTypes: [dcm('110126')],
      participants: [{ userId: '10.1.2.3', userIsRequestor: true, networkAccessPoint: { typeCode: 2, id: '10.1.2.3' } }, server()],
      objects: [subjectObj(app.auditor.source.id, 'TLS handshake refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE')],
    },
  ]);
});

t.test('lifecycle routes (remove, restore, retention) through a route that names them', async (t) => {
  const app = await auditedApp(t);
  await app.recordsOf(async () => t.equal((await app.app.inject(stowRequest(bytesOf(S1)))).statusCode, 200));
  const study = { studyInstanceUID: S1.StudyInstanceUID, patientId: S1.PatientID, sopClasses: new Map([['1.2.840.10008.5.1.4.1.1.2', 12]]) };
  const fake = await sibling(t, app, () => ADMIN_PRINCIPAL, {
    routes: (f) => {
      f.delete('/dicomweb/fake-lifecycle/studies/:study', async (request, reply) => {
        request.audit.event('remove');
        request.audit.study(study);
        return reply.code(202).send();
      });
      f.post('/dicomweb/fake-lifecycle/studies/:study/restore', async (request) => {
        request.audit.event('restore');
        request.audit.study(study);
        return {};
      });
      f.put('/dicomweb/fake-lifecycle/patients/:patient/legal-hold', async (request) => {
        request.audit.event('retention');
        request.audit.patient('PAT-HOLD');
        request.audit.alert(AuditEventType.useOfRestrictedFunction, 'legal hold placed over a retention policy');
        return {};
      });
    },
  });
  const accessed = (action: string, objects: object[]) => ({ eventId: dcm('110103'), action, outcome: 0, participants: [requestor('test-admin'), server()], objects });
  let records = await app.recordsOf(() => fake.inject({ method: 'DELETE', url: `/dicomweb/fake-lifecycle/studies/${S1.StudyInstanceUID}` }));
  t.match(records, [accessed('D', [studyObj(S1.StudyInstanceUID, 'SOP classes: 1.2.840.10008.5.1.4.1.1.2 x12'), patientObj(S1.PatientID)])]);
  records = await app.recordsOf(() => fake.inject({ method: 'POST', url: `/dicomweb/fake-lifecycle/studies/${S1.StudyInstanceUID}/restore` }));
  t.match(records, [accessed('U', [studyObj(S1.StudyInstanceUID), patientObj(S1.PatientID)])]);
  records = await app.recordsOf(() => fake.inject({ method: 'PUT', url: '/dicomweb/fake-lifecycle/patients/PAT-HOLD/legal-hold' }));
  t.match(records, [
    accessed('U', [patientObj('PAT-HOLD')]),
    { eventId: dcm('110113'), eventTypes: [dcm('110132')], outcome: 0, objects: [subjectObj('PUT /dicomweb/fake-lifecycle/patients/:patient/legal-hold', 'legal hold placed over a retention policy')] },
  ]);
  t.equal(records[0]!.objects.length, 1);
});

t.test('a retrieve cut mid-way (a stored object fails its check): 110102, then 110104 with outcome 8', async (t) => {
  const archive = await storedArchive(t);
  const app = audited(archive);
  const [, other] = archive.studies;
  const series = other[0]!.series;
  const order = archive.index.listInstances({ studyInstanceUID: other[0]!.study, seriesInstanceUID: series });
  const victim = other.find((f) => f.sop === order[2]!.sopInstanceUID)!;
  const cipher = fs.readFileSync(victim.file);
  cipher[cipher.length - 100]! ^= 0x80;
  fs.writeFileSync(victim.file, cipher);
  await archive.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = archive.app.server.address() as AddressInfo;
  const records = await app.recordsOf(async () => {
    const complete = await new Promise<boolean>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: `/dicomweb/studies/${victim.study}/series/${series}` }, (res) => {
          res.resume();
          res.on('close', () => resolve(res.complete));
        })
        .on('error', reject);
    });
    t.notOk(complete, 'the client saw an incomplete body');
    await new Promise((r) => setTimeout(r, 50));
  });
  t.match(records, [
    { eventId: dcm('110102'), outcome: 0 },
    { eventId: dcm('110104'), action: 'R', outcome: 8, outcomeDescription: 'the response was cut off before it was complete', objects: [studyObj(victim.study), patientObj(S2.PatientID)] },
  ]);
  t.equal(records.length, 2);
});

t.test('fail closed: after an append fails, every request but a CORS preflight is 503', async (t) => {
  const lines: string[] = [];
  const policyFile = path.join(tempDir(t), 'policies.cedar');
  fs.writeFileSync(policyFile, POLICIES);
  const app = await testApp(
    t,
    { DICOMVAULT_CORS_ORIGINS: '["https://viewer.example"]' },
    { principal: byHeader, policyFile, logTo: { write: (s: string) => void lines.push(s) } },
  );
  t.equal((await app.app.inject(stowRequest(bytesOf(S1)))).statusCode, 200);
  await app.auditor.flush();
  t.notOk(app.auditor.failed);
  await app.audit.close();
  // The request whose record cannot be written was already answered: it is the last one served.
  t.equal((await app.app.inject({ method: 'GET', url: `/dicomweb/studies?PatientID=${S1.PatientID}` })).statusCode, 200);
  await settle(app);
  t.ok(app.auditor.failed, 'the failed append marks the Auditor failed');
  for (const url of ['/dicomweb/studies', `/dicomweb/studies/${S1.StudyInstanceUID}/metadata`, '/dicomweb/nothing-here']) {
    const res = await app.app.inject({ method: 'GET', url });
    t.equal(res.statusCode, 503, `${url}: 503`);
  }
  t.equal((await app.app.inject(stowRequest(bytesOf(S2)))).statusCode, 503, 'STOW: 503 before the body is read');
  t.equal(app.index.studyAttributes(S2.StudyInstanceUID), undefined, 'nothing stored');
  const preflight = await app.app.inject({
    method: 'OPTIONS',
    url: '/dicomweb/studies',
    headers: { origin: 'https://viewer.example', 'access-control-request-method': 'GET' },
  });
  t.equal(preflight.statusCode, 204, 'a CORS preflight is still answered');
  const errors = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
  t.equal(errors.filter((l) => l.msg.startsWith('cannot write to the audit log')).length, 1, 'one error logged');
  t.notOk(
    lines.some((l) => l.includes(S1.PatientID) || l.includes(S1.StudyInstanceUID)),
    'no DICOM value (patient ID, study UID) in the application log',
  );
});
