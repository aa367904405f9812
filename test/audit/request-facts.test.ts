// A request's audit facts (src/audit/request-facts.ts): the JSON text a request hands the writer thread, stored as
// its one record when it makes one. Stored, it must be an RFC 8785 text (the chain hash covers JCS(record)) and
// must read back as the record the Auditor builds of the same request.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { AuditLog, AuditLogError, listAuditFiles, readAuditLog } from '../../src/audit/audit-log.js';
import { Auditor, CollectedRequestAudit, type RequestFacts } from '../../src/audit/auditor.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { FACTS_FORM, factsAreOneRecord, isFactsText, requestRecords } from '../../src/audit/request-facts.js';
import { verifyAuditLog } from '../../src/audit/verify-audit.js';
import { testKeys } from './audit-log-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';

// A patient ID with '-', which neither base64 ciphertext nor a line's other members can hold by chance.
const STORED_PATIENT = 'PID-FACTS-0005';
const source = { id: 'https://127.0.0.1:8443/dicomweb', typeCode: '4' as const };
const auditor = () => new Auditor({ append: () => Promise.reject(new Error('unused')) }, source);

/** Requests as routes collect them, their objects built in any member order. */
function requests(): { name: string; collected: CollectedRequestAudit; facts: RequestFacts }[] {
  const query = new CollectedRequestAudit();
  // resource before query, as a caller may well write it
  query.event('query', { resource: 'SearchForStudies', query: 'PatientName=M%C3%BCller*&00100020=X"1\\2' });
  query.study({ studyInstanceUID: '1.2.3', patientId: 'PID "quoted" \u00e9\u{1F600}\n2', accessionNumber: 'A1' });
  query.study({ studyInstanceUID: '1.2.4', patientId: '' });
  const store = new CollectedRequestAudit();
  store.event('store', { replaced: true });
  store.study({ studyInstanceUID: '1.2.5', patientId: STORED_PATIENT, sopClasses: new Map([['1.2.840.10008.5.1.4.1.1.2', 3]]) });
  store.patient('OTHER');
  const config = new CollectedRequestAudit();
  config.event('security-config', { description: 'policies reloaded: version 4' });
  return [
    { name: 'query', collected: query, facts: { uri: 'GET /dicomweb/studies', requestor: { userId: 'gateway-01', address: '::1', alternativeUserId: 'ab'.repeat(32) }, outcome: 0 } },
    { name: 'store', collected: store, facts: { outcomeDescription: 'some failed', outcome: 4, uri: 'POST /dicomweb/studies', requestor: { userId: 'modality' } } },
    { name: 'security-config', collected: config, facts: { requestor: { address: '10.0.0.1', userId: 'admin' }, uri: 'POST /admin/policies/reload', outcome: 0 } },
  ];
}

t.test('facts are RFC 8785 text whatever order their objects were built in, and make the record built here', async (t) => {
  const a = auditor();
  for (const { name, collected, facts } of requests()) {
    const text = a.requestFactsText(collected, facts, Date.UTC(2026, 10, 30, 2, 0, 0));
    t.ok(isFactsText(text), `${name}: recognised as facts`);
    t.equal(canonicalJson(JSON.parse(text)), text, `${name}: the text is its own JCS form`);
    t.ok(factsAreOneRecord(collected), `${name}: an event and no alert is one record`);
    const built = requestRecords(text, auditor());
    t.same(built, [a.eventRecord(collected.kind!, collected, facts, new Date(Date.UTC(2026, 10, 30, 2, 0, 0)))], `${name}: the same record`);
  }
});

t.test('facts with alerts are not one record; facts of another form are refused', async (t) => {
  const collected = new CollectedRequestAudit();
  collected.event('retrieve');
  collected.alert({ displayName: 'Emergency Override Started', code: '110127', codeSystem: 'DCM' }, 'break-glass');
  t.notOk(factsAreOneRecord(collected));
  const text = auditor().requestFactsText(collected, { requestor: { userId: 'u' }, uri: 'GET /x', outcome: 0 });
  t.equal(canonicalJson(JSON.parse(text)), text, 'the alert code is written in order too');
  t.equal(requestRecords(text, auditor()).length, 2);
  const alertOnly = new CollectedRequestAudit();
  alertOnly.alert({ code: '110132', codeSystem: 'DCM', displayName: 'Use of a Restricted Function' }, 'denied');
  t.notOk(factsAreOneRecord(alertOnly), 'no event: not one record either');
  t.throws(() => requestRecords(text.replace(FACTS_FORM, 'request/0'), auditor()), /unknown form \("request\/0"\)/);
  t.throws(() => requestRecords('{"a":1}', auditor()), /unknown form \("object"\)/);
});

t.test('a log holding facts as records: read back as records, verified, and a stored text of an unknown form is an error', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  const a = auditor();
  const made = requests();
  const texts = made.map(({ collected, facts }, i) => a.requestFactsText(collected, facts, Date.UTC(2026, 10, 30, 2, 0, i)));
  await log.appendCanonical(texts);
  const read = [];
  for await (const e of readAuditLog(dir, keys.auditKey)) read.push(e);
  t.same(
    read.map((e) => e.record),
    made.map(({ collected, facts }, i) => a.eventRecord(collected.kind!, collected, facts, new Date(Date.UTC(2026, 10, 30, 2, 0, i)))),
  );
  const filtered = [];
  for await (const e of readAuditLog(dir, keys.auditKey, { patientId: STORED_PATIENT })) filtered.push(e.n);
  t.same(filtered, [1], 'filters see the record, not the facts');
  await log.appendCanonical([texts[0]!.replace(FACTS_FORM, 'request/0')]);
  await log.close();
  t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, [], 'the chain is intact: the form is the reader\'s business');
  await t.rejects(async () => {
    for await (const _ of readAuditLog(dir, keys.auditKey));
  }, new AuditLogError(`${listAuditFiles(dir)[0]!.file}: record 3 is not a request's facts: request facts of an unknown form ("request/0")`));
  t.notOk(fs.readFileSync(listAuditFiles(dir)[0]!.file, 'utf8').includes(STORED_PATIENT), 'encrypted at rest like every record');
});
