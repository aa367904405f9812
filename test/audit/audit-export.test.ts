// The syslog export of the audit log (src/audit/audit-export.ts, record-to-xml.ts) against a real TLS collector
// (test/helpers/syslog-receiver.ts): AuditLog onAppended -> PS3.15 A.5 XML in RFC 5424 messages (PRI <85>,
// MSGID DICOM+RFC3881); an outage spools encrypted (no patient ID in the bytes) and delivers in order after it;
// configuration errors stop the start; the spool key is derived, not the audit key.

import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { AUDIT_SPOOL_DIR, AuditExportError, openAuditExport, spoolSealFromAuditKey } from '../../src/audit/audit-export.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { auditRecordToXml } from '../../src/audit/record-to-xml.js';
import { listSpool, type SenderLogger } from '../../src/audit/syslog.js';
import { verifyAuditLog } from '../../src/audit/verify-audit.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { issueCertificate } from '../../src/security/pki.js';
import { aeadUnwrap } from '../../src/storage/keys/aead-wrap.js';
import { SyslogReceiver, receiverPki } from '../helpers/syslog-receiver.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';
import { PATIENT_ID, PATIENT_NAME, record, testKeys } from './audit-log-fixtures.js';

const BOM = '\uFEFF';
const quiet: SenderLogger = { info() {}, warn() {}, error() {} };

function auditConfig(over: Partial<Config['audit']>): Pick<Config, 'audit'> {
  return { audit: { ...loadConfig({ env: {} }).audit, ...over } };
}

function writeFile(t: Test, name: string, content: string): string {
  const file = path.join(tempDir(t), name);
  fs.writeFileSync(file, content);
  return file;
}

t.test('an AuditRecord as A.5 XML: every field mapped, values escaped', async (t) => {
  const r = record(0);
  const xml = auditRecordToXml({ ...r, outcome: 4, outcomeDescription: 'denied <policy>', eventTypes: [{ code: '110122', codeSystem: 'DCM', displayName: 'Login' }] });
  t.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?><AuditMessage><EventIdentification EventActionCode="R" EventDateTime="2026-01-01T00:00:00.000Z" EventOutcomeIndicator="4">/);
  t.match(xml, '<EventID csd-code="110104" codeSystemName="DCM" originalText="DICOM Instances Transferred"/><EventTypeCode csd-code="110122"');
  t.match(xml, '<EventOutcomeDescription>denied &lt;policy&gt;</EventOutcomeDescription>');
  t.match(xml, '<ActiveParticipant UserID="sha256:client-0" UserIsRequestor="true" NetworkAccessPointID="10.0.0.7" NetworkAccessPointTypeCode="2"><RoleIDCode csd-code="110152"');
  t.match(xml, '<AuditSourceIdentification AuditSourceID="dicomvault@test"><AuditSourceTypeCode csd-code="4"');
  t.match(xml, `<ParticipantObjectIdentification ParticipantObjectID="${PATIENT_ID}" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"><ParticipantObjectIDTypeCode csd-code="2" codeSystemName="RFC-3881" originalText="Patient Number"/><ParticipantObjectName>${PATIENT_NAME}</ParticipantObjectName>`);
  t.match(xml, '<ParticipantObjectIdentification ParticipantObjectID="1.2.3.0" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3"><ParticipantObjectIDTypeCode csd-code="110180"');
  t.match(xml, `<ParticipantObjectQuery>${r.objects[2]!.query}</ParticipantObjectQuery>`, 'the stored base64 query as it is');
});

t.test('configuration: off without syslogHost; an unreadable or invalid TLS file stops the start', async (t) => {
  const keys = testKeys();
  const dataDir = tempDir(t);
  t.equal(openAuditExport(auditConfig({}), dataDir, keys.auditKey, quiet), undefined);
  t.notOk(fs.existsSync(path.join(dataDir, AUDIT_SPOOL_DIR)), 'no spool without an export');
  const missing = path.join(dataDir, 'nope.pem');
  t.throws(() => openAuditExport(auditConfig({ syslogHost: 'collector', syslogCa: missing }), dataDir, keys.auditKey, quiet), {
    name: 'AuditExportError',
    message: `audit.syslogCa: cannot read ${missing}: ENOENT`,
  });
  t.throws(() => openAuditExport(auditConfig({ syslogHost: 'collector' }), dataDir, keys.auditKey, quiet), /audit\.syslogCa is required/);
  const garbage = writeFile(t, 'ca.pem', 'not a certificate');
  t.throws(() => openAuditExport(auditConfig({ syslogHost: 'collector', syslogCa: garbage }), dataDir, keys.auditKey, quiet), /^audit\.syslogCa: .* is not a PEM certificate/);
  const pki = await receiverPki();
  const ca = writeFile(t, 'ca.pem', pki.ca.certPem);
  const other = await issueCertificate(pki.ca, { commonName: 'other', eku: 'clientAuth' });
  const cert = writeFile(t, 'client.crt', pki.server.certPem);
  const wrongKey = writeFile(t, 'client.key', other.keyPem);
  t.throws(
    () => openAuditExport(auditConfig({ syslogHost: 'collector', syslogCa: ca, syslogCert: cert, syslogKey: wrongKey }), dataDir, keys.auditKey, quiet),
    AuditExportError,
    'a client key that is not the certificate\'s',
  );
  t.throws(() => openAuditExport(auditConfig({ syslogHost: 'collector', syslogCa: ca, syslogCert: path.join(dataDir, 'x.crt'), syslogKey: wrongKey }), dataDir, keys.auditKey, quiet), /^audit\.syslogCert: cannot read .*ENOENT/);
});

t.test('the spool seal: AES-256-GCM under a key derived from the audit key, authenticated', async (t) => {
  const { auditKey } = testKeys();
  const seal = spoolSealFromAuditKey(auditKey);
  const sealed = seal.seal(Buffer.from(PATIENT_ID));
  t.notOk(sealed.includes(PATIENT_ID));
  t.equal(seal.open(sealed).toString(), PATIENT_ID);
  t.equal(aeadUnwrap(auditKey, sealed, 'dicomvault audit-spool|v1'), null, 'the audit key itself does not open it: the key is derived');
  const tampered = Buffer.from(sealed);
  tampered[20]! ^= 1;
  t.throws(() => seal.open(tampered), /fails authentication/);
  t.throws(() => spoolSealFromAuditKey(testKeys().auditKey).open(sealed), /fails authentication/, 'another audit key: another spool key');
  seal.close();
  t.throws(() => seal.open(sealed), /fails authentication/, 'close() zeroes the derived key');
});

t.test('appended records reach a TLS collector; an outage is spooled encrypted and delivered in order', async (t) => {
  const pki = await receiverPki();
  const receiver = new SyslogReceiver({ pki });
  await receiver.start();
  t.teardown(() => receiver.stop());
  const keys = testKeys();
  const dataDir = tempDir(t);
  const config = auditConfig({ syslogHost: '127.0.0.1', syslogPort: receiver.port, syslogCa: writeFile(t, 'ca.pem', pki.ca.certPem) });
  const exporter = openAuditExport(config, dataDir, keys.auditKey, quiet, { header: { hostname: 'archive.example', procId: '4242' }, initialBackoffMs: 30, maxBackoffMs: 150 })!;
  t.ok(exporter);
  const dir = path.join(dataDir, 'audit');
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0, onAppended: (r) => void exporter.send(r) });
  t.teardown(async () => {
    await log.close();
    await exporter.close(200);
  });

  for (let i = 0; i < 3; i++) await log.append(record(i));
  await receiver.waitFor(3);
  const first = receiver.texts()[0]!;
  t.match(first, /^<85>1 \d{4}-\d\d-\d\dT[\d:.]+Z archive\.example dicomvault 4242 DICOM\+RFC3881 - /, 'RFC 5424 header: PRI 85, version 1, MSGID');
  const xml = first.slice(first.indexOf(BOM) + 1);
  t.equal(xml, auditRecordToXml(record(0)), 'the MSG is the record\'s A.5 XML after the BOM');
  t.same(receiver.texts().map((m) => /ParticipantObjectID="(1\.2\.3\.\d+)"/.exec(m)?.[1]), ['1.2.3.0', '1.2.3.1', '1.2.3.2']);

  await receiver.stop();
  for (let i = 3; i < 9; i++) await log.append(record(i));
  const spoolDir = path.join(dataDir, AUDIT_SPOOL_DIR);
  await until(() => exporter.stats().spooled === 6 && exporter.stats().connectFailures > 0);
  const files = listSpool(spoolDir);
  t.equal(files.length, 6, 'the outage waits on disk');
  for (const f of files) {
    const bytes = fs.readFileSync(path.join(spoolDir, f));
    for (const secret of [PATIENT_ID, PATIENT_NAME, 'AuditMessage', '1.2.3.']) t.notOk(bytes.includes(secret), `${f} holds no ${secret}`);
  }
  t.equal(receiver.messages.length, 3);

  await receiver.start();
  await receiver.waitFor(9);
  await until(() => exporter.stats().spooled === 0);
  await new Promise((r) => setTimeout(r, 100)); // room for a duplicate to show up
  t.same(
    receiver.texts().map((m) => /ParticipantObjectID="(1\.2\.3\.\d+)"/.exec(m)?.[1]),
    Array.from({ length: 9 }, (_, i) => `1.2.3.${i}`),
    'every record once, in log order',
  );
  t.match(exporter.stats(), { delivered: 9, dropped: 0, failed: 0 });
  t.same(receiver.framingErrors, []);
});

t.test('onAppended: called once per durable record with its number; what it throws does not break the log', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const seen: number[] = [];
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, {
    checkpointIntervalMs: 0,
    onAppended: (r, n) => {
      seen.push(n);
      if (r.objects.some((o) => o.id === '1.2.3.1')) throw new Error('exporter down');
    },
  });
  await Promise.all([0, 1, 2, 3].map((i) => log.append(record(i))));
  t.match(await log.append(record(4)), { n: 4 });
  t.same(seen, [0, 1, 2, 3, 4]);
  await log.close();
  t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, []);
});
