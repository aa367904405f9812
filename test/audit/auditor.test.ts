// The Auditor's record builders and its fail-closed state (audit/auditor.ts), without HTTP: every AuditKind's
// EventID, action, type and participant roles (SECURITY.md 2, the trigger table), the study description, the
// merge rules of a request's studies, purge, alerts, start/stop, and what one failed append does.
import t from 'tap';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { AuditEventType, type AuditRecord, outcomeOfStatus, studyDescription } from '../../src/audit/audit-record.js';
import { AUDIT_KINDS, Auditor, CollectedRequestAudit, requestorOf, sopClassCounts } from '../../src/audit/auditor.js';
import type { AuditKind } from '../../src/audit/request-audit.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { unverifiedSubject } from '../../src/http/plugins/audit-trail.js';
import { certificatePrincipal } from '../helpers/access.js';

/** An AuditLog that keeps what it is given (or refuses, once `fail` is set). */
function fakeLog() {
  const appended: AuditRecord[] = [];
  const state = { fail: false };
  const log = {
    append: async (r: AuditRecord) => {
      if (state.fail) throw new Error('disk full');
      appended.push(r);
      return { n: appended.length - 1, hash: '' };
    },
  } as unknown as AuditLog;
  return { log, appended, state };
}

const SOURCE = { id: 'https://pacs.example:8443/dicomweb', typeCode: '4' as const };
const dcm = (code: string) => ({ code, codeSystem: 'DCM' });
const who = { userId: 'alice', alternativeUserId: 'ab12', address: '10.0.0.7' };
const facts = { requestor: who, uri: 'GET /dicomweb/studies', outcome: 0 as const };

t.test('every kind: EventID, action, type, roles (SECURITY.md 2)', async (t) => {
  const auditor = new Auditor(fakeLog().log, SOURCE);
  const expected: Record<AuditKind, [string, string, string | undefined, string | undefined, string | undefined]> = {
    // kind: eventId, action, eventType, requestor role, server role
    query: ['110112', 'E', undefined, '110153', '110152'],
    retrieve: ['110104', 'R', undefined, '110152', '110153'],
    store: ['110104', 'C', undefined, '110153', '110152'],
    remove: ['110103', 'D', undefined, undefined, '110150'],
    restore: ['110103', 'U', undefined, undefined, '110150'],
    retention: ['110103', 'U', undefined, undefined, '110150'],
    export: ['110106', 'R', undefined, '110152', '110153'],
    'share-login': ['110114', 'E', '110122', undefined, '110150'],
    'security-config': ['110113', 'E', '110129', undefined, '110150'],
    'audit-read': ['110101', 'R', undefined, undefined, '110150'],
  };
  t.same(Object.keys(AUDIT_KINDS).sort(), Object.keys(expected).sort(), 'every kind has a rule');
  for (const [kind, [eventId, action, type, requestorRole, serverRole]] of Object.entries(expected) as [AuditKind, (typeof expected)[AuditKind]][]) {
    const collected = new CollectedRequestAudit();
    collected.event(kind);
    const r = auditor.eventRecord(kind, collected, facts, new Date('2026-01-02T03:04:05Z'));
    t.match(r, { eventId: dcm(eventId), action, outcome: 0, dateTime: '2026-01-02T03:04:05.000Z', source: SOURCE }, kind);
    t.same(r.eventTypes?.map((c) => c.code), type === undefined ? undefined : [type], `${kind}: event type`);
    t.same(r.participants[0], {
      userId: 'alice',
      alternativeUserId: 'ab12',
      userIsRequestor: true,
      ...(requestorRole ? { roleIdCode: { ...dcm(requestorRole), displayName: requestorRole === '110153' ? 'Source Role ID' : 'Destination Role ID' } } : {}),
      networkAccessPoint: { typeCode: 2, id: '10.0.0.7' },
    }, `${kind}: the requestor`);
    t.match(r.participants[1], { userId: SOURCE.id, userIsRequestor: false, roleIdCode: dcm(serverRole!), networkAccessPoint: { typeCode: 1, id: 'pacs.example' } }, `${kind}: the server`);
  }
  const replaced = new CollectedRequestAudit();
  replaced.event('store', { replaced: true });
  t.equal(auditor.eventRecord('store', replaced, facts).action, 'U', 'store with a replaced instance: U');
});

t.test('objects: the query first, then studies (merged), then distinct patients', async (t) => {
  const auditor = new Auditor(fakeLog().log, SOURCE);
  const c = new CollectedRequestAudit();
  c.event('query', { query: 'PatientID=P1&limit=5', resource: 'SearchForSeries' });
  c.study({ studyInstanceUID: '1.2.3', patientId: '' });
  c.study({ studyInstanceUID: '1.2.3', patientId: 'P1', accessionNumber: 'A9', sopClasses: new Map([['1.2.840.10008.5.1.4.1.1.2', 2]]) });
  c.study({ studyInstanceUID: '1.2.3', patientId: 'P2', sopClasses: new Map([['1.2.840.10008.5.1.4.1.1.2', 1], ['1.2.840.10008.5.1.4.1.1.4', 1]]) });
  c.study({ studyInstanceUID: '1.2.4', patientId: 'P1' });
  c.patient('P3');
  c.patient('');
  const r = auditor.eventRecord('query', c, { ...facts, outcome: 4, outcomeDescription: 'why' });
  t.equal(r.outcome, 4);
  t.equal(r.outcomeDescription, 'why');
  t.same(
    r.objects.map((o) => [o.typeCode, o.roleCode, o.idTypeCode.code, o.id, o.query ?? o.description]),
    [
      [2, 24, '110181', 'SearchForSeries', Buffer.from('PatientID=P1&limit=5').toString('base64')],
      [2, 3, '110180', '1.2.3', 'SOP classes: 1.2.840.10008.5.1.4.1.1.2 x3, 1.2.840.10008.5.1.4.1.1.4 x1; accession: A9'],
      [2, 3, '110180', '1.2.4', undefined],
      [1, 1, '2', 'P1', undefined],
      [1, 1, '2', 'P3', undefined],
    ],
    'the first non-empty patient of a study wins; counts add up; patients once',
  );
});

t.test('small pieces: study description, outcome of a status, SOP class counts, requestorOf, unverified subject', async (t) => {
  t.equal(studyDescription(), undefined);
  t.equal(studyDescription(new Map(), ''), undefined);
  t.equal(studyDescription(undefined, 'ACC'), 'accession: ACC');
  t.same([200, 204, 206, 304, 400, 401, 403, 404, 409, 500, 503].map(outcomeOfStatus), [0, 0, 0, 0, 4, 4, 4, 4, 4, 8, 8]);
  t.same([...sopClassCounts(['a', 'b', 'a'])], [['a', 2], ['b', 1]]);
  const cert = { ...certificatePrincipal('gw'), certificate: { fingerprint256: 'ff00' } as never };
  t.same(requestorOf(cert, '::1'), { userId: 'gw', alternativeUserId: 'ff00', address: '::1' });
  const token = { ...certificatePrincipal('oidc:bob'), kind: 'token' as const, token: { issuer: 'i', subject: 'bob', expiresAt: new Date() } };
  t.same(requestorOf(token, undefined), { userId: 'oidc:bob', alternativeUserId: 'bob' });
  const jwt = (claims: object) => `Bearer e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
  t.equal(unverifiedSubject(jwt({ sub: 'carol' })), 'unverified:carol');
  t.equal(unverifiedSubject(jwt({ iss: 'x' })), undefined, 'no sub');
  t.equal(unverifiedSubject(jwt({ sub: 42 })), undefined, 'a sub that is not a string');
  t.equal(unverifiedSubject('Bearer e30.!!!.x'), undefined);
  t.equal(unverifiedSubject('Bearer e30.bm90IGpzb24.x'), undefined, 'not JSON');
  t.equal(unverifiedSubject('Basic YWxhZGRpbjpvcGVuc2VzYW1l'), undefined);
  t.equal(unverifiedSubject(undefined), undefined);
});

t.test('alerts are one per distinct decision; purge is one 110105 D per study; start/stop; TLS alert', async (t) => {
  const { log, appended } = fakeLog();
  const auditor = new Auditor(log, SOURCE);
  const c = new CollectedRequestAudit();
  const study = { studyInstanceUID: '1.2.3', patientId: 'P1' };
  c.alert(AuditEventType.emergencyOverrideStarted, 'break-glass read: x', study);
  c.alert(AuditEventType.emergencyOverrideStarted, 'break-glass read: x', study);
  c.alert(AuditEventType.emergencyOverrideStarted, 'break-glass read: x', { studyInstanceUID: '1.2.4', patientId: '' });
  t.equal(c.alerts.length, 2, 'the same decision twice is one alert');
  auditor.request(c, facts);
  await auditor.flush();
  t.equal(appended.length, 2, 'no event named: the alerts only');
  t.match(appended[0], { eventId: dcm('110113'), action: 'E', eventTypes: [dcm('110127')], objects: [{ id: 'GET /dicomweb/studies', details: [{ type: 'Alert Description', value: 'break-glass read: x' }] }, { id: '1.2.3' }, { id: 'P1', typeCode: 1 }] });

  appended.length = 0;
  const purged = (uid: string, patientId: string) => ({
    studyInstanceUID: uid,
    patientId,
    sopClasses: new Map([['1.2.840.10008.5.1.4.1.1.2', 12]]),
    instances: 12,
    bytes: 1000,
    removals: [{ by: 'test-admin', code: 'delete' as const }],
    keyDestroyed: true,
  });
  t.same(await auditor.purged({ dryRun: true, studies: [purged('1.2.3', 'P1')] }, 'retention-sweep'), [], 'a dry run writes nothing');
  const results = await auditor.purged({ dryRun: false, studies: [purged('1.2.3', 'P1'), purged('1.2.4', '')] }, 'retention-sweep');
  t.same(results, [true, true]);
  t.match(appended, [
    { eventId: dcm('110105'), action: 'D', outcome: 0, participants: [{ userId: 'retention-sweep', userIsRequestor: true }], objects: [{ id: '1.2.3', description: 'SOP classes: 1.2.840.10008.5.1.4.1.1.2 x12' }, { id: 'P1' }] },
    { eventId: dcm('110105'), action: 'D', objects: [{ id: '1.2.4' }] },
  ]);
  t.equal(appended[1]!.objects.length, 1, 'no patient object without a PatientID');

  appended.length = 0;
  auditor.setSource({ id: 'https://[::1]:9443/dv', typeCode: '4' });
  await auditor.applicationStart();
  await auditor.securityAlert(AuditEventType.nodeAuthentication, 'TLS handshake refused: CERT_HAS_EXPIRED', { userId: '10.9.9.9', address: '10.9.9.9' });
  await auditor.applicationStop();
  t.match(appended, [
    { eventId: dcm('110100'), eventTypes: [dcm('110120')], source: { id: 'https://[::1]:9443/dv' } },
    { eventId: dcm('110113'), outcome: 4, eventTypes: [dcm('110126')], participants: [{ userId: '10.9.9.9', networkAccessPoint: { typeCode: 2, id: '10.9.9.9' } }, { networkAccessPoint: { typeCode: 1, id: '::1' } }] },
    { eventId: dcm('110100'), eventTypes: [dcm('110121')] },
  ]);
});

t.test('fail closed: the first failed append marks the Auditor failed, logs once, and nothing more is appended', async (t) => {
  const { log, appended, state } = fakeLog();
  const errors: { obj: object; msg: string }[] = [];
  const auditor = new Auditor(log, SOURCE, { log: { error: (obj, msg) => void errors.push({ obj, msg }) } });
  await auditor.applicationStart();
  state.fail = true;
  const c = new CollectedRequestAudit();
  c.event('query', { query: 'PatientName=SECRET' });
  auditor.request(c, facts);
  auditor.request(c, facts);
  await auditor.flush();
  t.ok(auditor.failed);
  t.equal(errors.length, 1, 'one error');
  t.match(errors[0], { msg: /^cannot write to the audit log/, obj: { err: { message: 'disk full' } } });
  t.notOk(JSON.stringify(errors).includes('SECRET'), 'the record is not logged');
  state.fail = false;
  t.equal(await auditor.write(auditor.eventRecord('query', c, facts)), false, 'a failed Auditor writes nothing more');
  t.equal(appended.length, 1, 'only the start record');
  await t.rejects(auditor.applicationStop(), { message: 'disk full' }, 'start/stop reject: the caller stops');
});

t.test('records are built with their members in RFC 8785 order: the canonical form has nothing to sort', async (t) => {
  // canonicalJson sorts what is out of order, so it equals JSON.stringify exactly when the builders are in order
  // (audit-record.ts): the shortcut every request's record is meant to take (bench/README.md).
  const auditor = new Auditor(fakeLog().log, SOURCE);
  const collected = new CollectedRequestAudit();
  collected.event('query', { query: 'PatientID=P1', resource: 'SearchForStudies' });
  collected.study({ studyInstanceUID: '1.2.3', patientId: 'P1', accessionNumber: 'A1', sopClasses: sopClassCounts(['1.2.840.10008.5.1.4.1.1.2']) });
  collected.patient('P2');
  const records: [string, AuditRecord][] = [
    ...(Object.keys(AUDIT_KINDS) as AuditKind[]).map((kind): [string, AuditRecord] => [kind, auditor.eventRecord(kind, collected, { ...facts, outcome: 4, outcomeDescription: 'why' })]),
    ['begin transfer', auditor.beginTransferRecord(collected, who)],
    ['alert', auditor.alertRecord(AuditEventType.useOfRestrictedFunction, 'refused', facts, [...collected.studies.values()][0])],
    ['login failure', auditor.authenticationFailureRecord({ userId: 'unknown' }, 'bad token')],
  ];
  for (const [name, r] of records) t.equal(canonicalJson(r), JSON.stringify(r), name);
});
