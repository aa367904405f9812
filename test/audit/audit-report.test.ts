// Accounting of disclosures (src/audit/audit-report.ts) on a log built with AuditLog and the audit-record.ts
// builders: the patient filter (type 1 role 1 only, exact id), the date range (inclusive), the row fields, the
// text and JSON forms, and the 110101 Audit Log Used record that reading the log leaves.

import path from 'node:path';
import t, { type Test } from 'tap';
import { AuditLog } from '../../src/audit/audit-log.js';
import {
  AuditEventId,
  AuditEventType,
  AuditRoleId,
  type AuditRecord,
  patientObject,
  queryObject,
  studyObject,
} from '../../src/audit/audit-record.js';
import { accountingOfDisclosures, auditLogUsedRecord, formatDisclosuresText } from '../../src/audit/audit-report.js';
import { auditRecordToXml } from '../../src/audit/record-to-xml.js';
import { tempDir } from '../helpers/temp-dir.js';
import { testKeys } from './audit-log-fixtures.js';

const P = 'PID-42';
const source = { id: 'https://archive.example/dicomweb', typeCode: '4' as const };
const server = { userId: 'dicomvault', userIsRequestor: false, roleIdCode: AuditRoleId.source };

function at(dateTime: string, over: Partial<AuditRecord>): AuditRecord {
  return {
    eventId: AuditEventId.instancesTransferred,
    action: 'R',
    dateTime,
    outcome: 0,
    participants: [{ userId: 'viewer-a', userIsRequestor: true, networkAccessPoint: { typeCode: 2, id: '10.1.1.1' } }, server],
    source,
    objects: [patientObject(P, 'Roe^Ann'), studyObject('1.2.840.1')],
    ...over,
  };
}

const log = [
  at('2025-12-31T23:59:59.999Z', {}), // before the range
  at('2026-01-01T00:00:00.000Z', {}), // first day, first millisecond
  at('2026-01-10T08:30:00.000Z', {
    eventId: AuditEventId.query,
    action: 'E',
    participants: [{ userId: 'oidc:jdoe', alternativeUserId: 'J. Doe', userIsRequestor: true, networkAccessPoint: { typeCode: 1, id: 'ws-7.example' } }, server],
    objects: [queryObject('SearchForStudies', 'PatientID=PID-42'), patientObject(P), studyObject('1.2.840.1'), studyObject('1.2.840.2'), studyObject('1.2.840.1')],
  }),
  at('2026-01-15T00:00:00.000Z', { objects: [patientObject('PID-420'), studyObject('9.9')] }), // another patient (prefix)
  at('2026-01-16T00:00:00.000Z', { objects: [{ ...patientObject(P), roleCode: 6 }] }), // a person, not as the patient
  at('2026-01-20T12:00:00.000Z', {
    eventId: AuditEventId.userAuthentication,
    action: 'E',
    outcome: 8,
    eventTypes: [AuditEventType.login],
    participants: [{ userId: 'share:abc\u001b[31m', userIsRequestor: true }],
  }),
  at('2026-01-31T23:59:59.999Z', { action: 'C', eventId: AuditEventId.instancesTransferred }), // last day, last millisecond
  at('2026-02-01T00:00:00.000Z', {}), // after the range
];

async function builtLog(t: Test) {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const audit = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  for (const r of log) await audit.append(r);
  await audit.close();
  return { dir, key: keys.auditKey };
}

t.test('the patient: type 1 role 1 with exactly that id; the range: both days included', async (t) => {
  const { dir, key } = await builtLog(t);
  const all = await accountingOfDisclosures(dir, key, { patientId: P });
  t.same(all.map((r) => r.n), [0, 1, 2, 5, 6, 7], 'not another patient, not a person in another role');
  const january = await accountingOfDisclosures(dir, key, { patientId: P, since: '2026-01-01T00:00:00.000Z', until: '2026-01-31T23:59:59.999Z' });
  t.same(january.map((r) => r.n), [1, 2, 5, 6]);
  t.same(await accountingOfDisclosures(dir, key, { patientId: 'PID-4' }), [], 'no prefix match');
  t.same(await accountingOfDisclosures(dir, key, { patientId: P, since: '2027-01-01T00:00:00.000Z' }), []);

  t.same(january[1], {
    n: 2,
    time: '2026-01-10T08:30:00.000Z',
    eventId: '110112',
    event: 'Query',
    action: 'E',
    outcome: 0,
    who: [{ userId: 'oidc:jdoe', alternativeUserId: 'J. Doe' }],
    from: ['ws-7.example'],
    studies: ['1.2.840.1', '1.2.840.2'],
    how: [],
  }, 'who is the requestor (not the server), studies once each');
  t.match(january[2], { event: 'User Authentication', outcome: 8, how: ['Login'], from: [] });
});

t.test('text: a header and aligned columns, control characters neutralised; json: an array; "no records"', async (t) => {
  const { dir, key } = await builtLog(t);
  const rows = await accountingOfDisclosures(dir, key, { patientId: P, since: '2026-01-01T00:00:00.000Z', until: '2026-01-31T23:59:59.999Z' });
  const text = formatDisclosuresText(rows);
  const lines = text.trimEnd().split('\n');
  t.same(lines, [
    'TIME                      EVENT                        ACTION   OUTCOME          WHO                 FROM          STUDIES               HOW',
    '2026-01-01T00:00:00.000Z  DICOM Instances Transferred  read     success          viewer-a            10.1.1.1      1.2.840.1             -',
    '2026-01-10T08:30:00.000Z  Query                        execute  success          oidc:jdoe (J. Doe)  ws-7.example  1.2.840.1, 1.2.840.2  -',
    '2026-01-20T12:00:00.000Z  User Authentication          execute  serious failure  share:abc?[31m      -             1.2.840.1             Login',
    '2026-01-31T23:59:59.999Z  DICOM Instances Transferred  create   success          viewer-a            10.1.1.1      1.2.840.1             -',
  ]);
  t.notOk(text.includes('\u001b'), 'no terminal escape from a user id');
  t.equal(formatDisclosuresText([]), 'no records\n');
  t.same(JSON.parse(JSON.stringify(rows)), rows, 'rows are plain JSON');
});

t.test('110101 Audit Log Used: action R, the system user as requestor, the log and the patient as objects', async (t) => {
  const r = auditLogUsedRecord(
    { user: 'alice', host: 'ops-1', source: { id: 'dicomvault-cli@ops-1', typeCode: '4' }, auditDir: '/srv/data/audit', query: { patientId: P, since: '2026-01-01T00:00:00.000Z' } },
    new Date('2026-03-01T10:00:00Z'),
  );
  t.match(r, {
    eventId: { code: '110101', displayName: 'Audit Log Used' },
    action: 'R',
    dateTime: '2026-03-01T10:00:00.000Z',
    outcome: 0,
    participants: [{ userId: 'alice', userIsRequestor: true, networkAccessPoint: { typeCode: 1, id: 'ops-1' } }],
    objects: [
      { typeCode: 2, roleCode: 13, idTypeCode: { code: '12' }, id: 'file:///srv/data/audit' },
      { typeCode: 1, roleCode: 1, id: P },
    ],
  });
  t.equal(Buffer.from(r.objects[0]!.query!, 'base64').toString(), `patient=${P}&from=2026-01-01T00%3A00%3A00.000Z`);
  t.match(auditRecordToXml(r), /<EventID csd-code="110101" codeSystemName="DCM" originalText="Audit Log Used"\/>/);
});
