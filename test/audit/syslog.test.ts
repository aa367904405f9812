// Audit export over syslog-TLS (SECURITY.md 2, PS3.15 A.6, RFC 5424/5425) against a real TLS collector:
// header and framing, ordered delivery, the encrypted disk spool across an outage and a restart, the overflow
// policy, unreadable spool files, and a collector whose certificate does not verify.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { auditMessageToXml } from '../../src/audit/audit-xml.js';
import {
  SyslogTlsSender,
  formatSyslogMessage,
  frameSyslogMessage,
  listSpool,
  type SenderLogger,
  type SpoolSeal,
  type SyslogTlsSenderOptions,
} from '../../src/audit/syslog.js';
import { createCa } from '../../src/security/pki.js';
import { SyslogReceiver, receiverPki, type ReceiverPki } from '../helpers/syslog-receiver.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

const BOM = '\uFEFF';
/** A value that must never appear in a spool file: the spool is encrypted. */
const MARKER = 'PATIENT-DOE^JOHN';

/** AES-256-GCM, random key and nonce: layout nonce(12) | tag(16) | ciphertext. */
function aesGcmSeal(): SpoolSeal {
  const key = randomBytes(32);
  return {
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]);
    },
    open(sealed) {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
      decipher.setAuthTag(sealed.subarray(12, 28));
      return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
    },
  };
}

function recordingLogger(): SenderLogger & { lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => lines.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => lines.push({ level: 'error', msg, obj }),
  };
}

function auditXml(n: number): string {
  return auditMessageToXml({
    eventId: { code: '110112', codeSystem: 'DCM', displayName: 'Query' },
    action: 'E',
    dateTime: new Date('2026-11-29T10:00:00Z'),
    outcome: 0,
    participants: [{ userId: `user-${n}`, userIsRequestor: true }],
    source: { id: 'dicomvault' },
    objects: [{ id: `${MARKER}-${n}`, typeCode: 1, roleCode: 1, idTypeCode: { code: '2', codeSystem: 'RFC-3881', displayName: 'Patient Number' }, name: `${MARKER}\r\n<${n}>` }],
  });
}

const message = (n: number) => formatSyslogMessage(auditXml(n), { hostname: 'archive.example', procId: '42', timestamp: new Date('2026-11-29T10:00:00.5Z') });
/** The user id inside a delivered message: which message it is. */
const seqOf = (received: string) => Number(/UserID="user-(\d+)"/.exec(received)?.[1]);

function waitEvent(emitter: SyslogTlsSender, event: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${timeoutMs} ms`)), timeoutMs);
    emitter.once(event, (value: unknown) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}


t.test('RFC 5424 header and RFC 5425 framing', async (t) => {
  const xml = '<AuditMessage>é</AuditMessage>';
  const msg = formatSyslogMessage(xml, { hostname: 'archive.example', procId: '1234', timestamp: new Date('2026-11-29T10:00:00.5Z') });
  const header = '<85>1 2026-11-29T10:00:00.500Z archive.example dicomvault 1234 DICOM+RFC3881 - ';
  t.equal(msg.subarray(0, header.length).toString('ascii'), header);
  t.same([...msg.subarray(header.length, header.length + 3)], [0xef, 0xbb, 0xbf], 'UTF-8 BOM before MSG (RFC 5424 6.4)');
  t.equal(msg.subarray(header.length + 3).toString('utf8'), xml);

  // Facility/severity, NILVALUEs, and header fields cleaned to PRINTUSASCII with their maximum lengths.
  const other = formatSyslogMessage('x', { facility: 13, severity: 4, hostname: 'bad host\n', appName: 'a'.repeat(60), msgId: 'IHE+RFC-3881', timestamp: new Date(0) }).toString('utf8');
  t.equal(other, `<108>1 1970-01-01T00:00:00.000Z bad_host_ ${'a'.repeat(48)} - IHE+RFC-3881 - ${BOM}x`);
  t.throws(() => formatSyslogMessage('x', { facility: 24 }), RangeError);
  t.throws(() => formatSyslogMessage('x', { severity: 8 }), RangeError);

  // MSG-LEN counts octets, not characters.
  const framed = frameSyslogMessage(msg);
  t.equal(framed.subarray(0, framed.indexOf(0x20)).toString('ascii'), String(msg.length));
  t.not(msg.length, msg.toString('utf8').length, 'multi-byte content: octets, not UTF-16 units');
  t.same(framed.subarray(framed.indexOf(0x20) + 1), msg);

  t.throws(() => new SyslogTlsSender({ host: '127.0.0.1', ca: 'x', spoolDir: tempDir(t) }), /seal/, 'no plaintext spool by accident');
});

t.test('syslog over TLS with a disk spool', async (t) => {
  const pki = await receiverPki();
  const receiver = new SyslogReceiver({ pki });
  await receiver.start();
  t.teardown(() => receiver.stop());

  const open = (t: Test, over: Partial<SyslogTlsSenderOptions> = {}, key: ReceiverPki = pki) => {
    const sender = new SyslogTlsSender({
      host: '127.0.0.1',
      port: receiver.port,
      ca: key.ca.certPem,
      spoolDir: tempDir(t),
      seal: aesGcmSeal(),
      initialBackoffMs: 30,
      maxBackoffMs: 150,
      connectTimeoutMs: 2000,
      ...over,
    });
    t.teardown(() => sender.close(200));
    return sender;
  };

  t.test('delivers in order, framed, including a 40 KiB message with CR/LF inside', async (t) => {
    receiver.messages.length = 0;
    const sender = open(t);
    const big = formatSyslogMessage(auditXml(0).replace('</AuditMessage>', `<!-- ${'z'.repeat(40 * 1024)} --></AuditMessage>`));
    for (let i = 1; i <= 20; i++) t.equal(await sender.send(message(i)), 'spooled');
    await sender.send(big);
    await receiver.waitFor(21);
    t.same(receiver.texts().slice(0, 20).map(seqOf), Array.from({ length: 20 }, (_, i) => i + 1));
    t.same(receiver.messages[0], message(1), 'byte-exact SYSLOG-MSG');
    t.same(receiver.messages[20], big);
    t.same(receiver.framingErrors, []);
    await until(() => sender.stats().delivered === 21);
    t.match(sender.stats(), { spooled: 0, spooledBytes: 0, delivered: 21, dropped: 0, connected: true });
    t.same(listSpool(sender.spoolDir), []);
  });

  t.test('collector down: spooled encrypted on disk, then delivered in order, none lost, none duplicated', async (t) => {
    receiver.messages.length = 0;
    const logger = recordingLogger();
    const sender = open(t, { logger });
    const spoolDir = sender.spoolDir;
    await sender.send(message(1));
    await receiver.waitFor(1);
    await until(() => sender.stats().delivered === 1);

    const disconnected = waitEvent(sender, 'disconnected');
    await receiver.stop();
    await disconnected;
    for (let i = 2; i <= 11; i++) t.equal(await sender.send(message(i)), 'spooled');
    await waitEvent(sender, 'connect-error');
    const files = listSpool(spoolDir);
    t.equal(files.length, 10, 'every message waits on disk');
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(spoolDir, f));
      t.notOk(bytes.includes(MARKER), `${f} holds no plaintext PHI`);
      t.notOk(bytes.includes('AuditMessage'), `${f} holds no plaintext XML`);
      t.equal(fs.statSync(path.join(spoolDir, f)).mode & 0o777, 0o600);
    }
    t.equal(receiver.messages.length, 1);
    t.ok(sender.stats().connectFailures >= 1);
    t.equal(sender.stats().lastError, 'ECONNREFUSED');
    t.ok(logger.lines.some((l) => l.msg === 'syslog connection failed'));
    t.notOk(JSON.stringify(logger.lines).includes(MARKER), 'the application log holds no audit content');

    await receiver.start();
    await receiver.waitFor(11);
    await until(() => sender.stats().spooled === 0);
    await new Promise((r) => setTimeout(r, 100)); // room for a duplicate to show up
    t.same(receiver.texts().map(seqOf), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    t.same(listSpool(spoolDir), []);
    t.equal(sender.stats().delivered, 11);
  });

  t.test('what is spooled at close() is sent by the next sender on the same spool', async (t) => {
    receiver.messages.length = 0;
    await receiver.stop();
    const spoolDir = tempDir(t);
    const seal = aesGcmSeal();
    const first = new SyslogTlsSender({ host: '127.0.0.1', port: receiver.port, ca: pki.ca.certPem, spoolDir, seal, initialBackoffMs: 30, maxBackoffMs: 100 });
    for (let i = 1; i <= 3; i++) await first.send(message(i));
    const started = Date.now();
    t.same(await first.close(300), { remaining: 3 });
    t.ok(Date.now() - started < 2000, 'close() honours its timeout');
    await t.rejects(first.send(message(4)), /closed/);

    await receiver.start();
    const second = new SyslogTlsSender({ host: '127.0.0.1', port: receiver.port, ca: pki.ca.certPem, spoolDir, seal, initialBackoffMs: 30 });
    t.teardown(() => second.close(200));
    await second.send(message(4));
    await receiver.waitFor(4);
    t.same(receiver.texts().map(seqOf), [1, 2, 3, 4]);
    t.same(await second.close(1000), { remaining: 0 });
  });

  t.test('spool full: new messages are dropped, counted and logged, older ones kept in order', async (t) => {
    receiver.messages.length = 0;
    await receiver.stop();
    const logger = recordingLogger();
    const size = aesGcmSeal().seal(message(1)).length;
    const sender = open(t, { logger, maxSpoolBytes: size * 3 + 10 });
    const dropped: unknown[] = [];
    sender.on('dropped', (d) => dropped.push(d));
    const results = [];
    for (let i = 1; i <= 6; i++) results.push(await sender.send(message(i)));
    t.same(results, ['spooled', 'spooled', 'spooled', 'dropped', 'dropped', 'dropped']);
    t.same(dropped, [{ reason: 'spool-full' }, { reason: 'spool-full' }, { reason: 'spool-full' }]);
    t.match(sender.stats(), { spooled: 3, dropped: 3 });
    const overflowLogs = logger.lines.filter((l) => l.msg.startsWith('syslog spool full'));
    t.equal(overflowLogs.length, 1, 'one error line per overflow episode');
    t.equal(overflowLogs[0]!.level, 'error');

    await receiver.start();
    await receiver.waitFor(3);
    await until(() => sender.stats().spooled === 0);
    t.equal(await sender.send(message(7)), 'spooled', 'room again once drained');
    await receiver.waitFor(4);
    t.same(receiver.texts().map(seqOf), [1, 2, 3, 7]);
    t.match(logger.lines.find((l) => l.msg.startsWith('syslog spool accepting again'))?.obj, { dropped: 3, droppedTotal: 3 });
  });

  t.test('a spool file that does not open is set aside and counted, the rest still flows', async (t) => {
    receiver.messages.length = 0;
    await receiver.stop();
    const sender = open(t);
    const spoolDir = sender.spoolDir;
    for (let i = 1; i <= 3; i++) await sender.send(message(i));
    const second = path.join(spoolDir, listSpool(spoolDir)[1]!);
    const bytes = fs.readFileSync(second);
    bytes[bytes.length - 1]! ^= 0x01;
    fs.writeFileSync(second, bytes);
    const dropped = waitEvent(sender, 'dropped');
    await receiver.start();
    t.same(await dropped, { reason: 'unreadable' });
    await receiver.waitFor(2);
    await until(() => sender.stats().spooled === 0);
    t.same(receiver.texts().map(seqOf), [1, 3]);
    t.equal(sender.stats().dropped, 1);
    t.same(fs.readdirSync(path.join(spoolDir, 'rejected')), [path.basename(second)]);
  });

  t.test('a collector whose certificate does not chain to the configured CA gets nothing', async (t) => {
    receiver.messages.length = 0;
    const connections = receiver.connections;
    const foreignCa = await createCa('foreign CA');
    const sender = open(t, {}, { ...pki, ca: foreignCa });
    const failures: unknown[] = [];
    sender.on('connect-error', (code) => failures.push(code));
    await sender.send(message(1));
    await until(() => failures.length >= 2);
    t.equal(failures[0], 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    t.match(sender.stats(), { spooled: 1, delivered: 0, connected: false, lastError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    t.ok(sender.stats().connectFailures >= 2, 'retried with backoff, still refused');
    t.equal(receiver.messages.length, 0);
    t.equal(receiver.connections, connections, 'the handshake never completed on the collector side');
  });

  t.test('a wrong host name is refused too (certificate identity, RFC 5425 5.2)', async (t) => {
    receiver.messages.length = 0;
    const sender = open(t, { host: 'localhost', servername: 'collector.example' });
    await sender.send(message(1));
    t.equal(await waitEvent(sender, 'connect-error'), 'ERR_TLS_CERT_ALTNAME_INVALID');
    t.equal(receiver.messages.length, 0);
  });

  t.test('mutual TLS: the sender presents its client certificate', async (t) => {
    const { issueCertificate } = await import('../../src/security/pki.js');
    const client = await issueCertificate(pki.ca, { commonName: 'dicomvault', eku: 'clientAuth' });
    const mutual = new SyslogReceiver({ pki, clientCa: pki.ca.certPem });
    await mutual.start();
    t.teardown(() => mutual.stop());
    const withCert = open(t, { port: mutual.port, cert: client.certPem, key: client.keyPem });
    await withCert.send(message(1));
    await mutual.waitFor(1);
    t.equal(seqOf(mutual.texts()[0]!), 1);
    // TLS 1.3: the refusal comes after the client's handshake completed; nothing may be counted as sent meanwhile.
    const without = open(t, { port: mutual.port });
    await without.send(message(2));
    await until(() => without.stats().lastError !== undefined);
    await new Promise((r) => setTimeout(r, 200));
    t.equal(mutual.messages.length, 1, 'nothing accepted from a client without a certificate');
    t.match(without.stats(), { spooled: 1, delivered: 0, lastError: /CERTIFICATE_REQUIRED/ }, 'refused in the handshake; the message stays spooled');
    t.ok(without.stats().connectFailures >= 1);
  });
});
