// One writer per audit log (audit/.lock, src/storage/pid-lock.ts) and the inbox through which another process
// adds records meanwhile (src/audit/audit-inbox.ts): a second open is refused while the owner lives, a dead
// owner's lock is taken over, inbox records join the chain (which still verifies), bad inbox files are set aside.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { INBOX_DIR, INBOX_REJECTED_DIR, writeInboxRecord } from '../../src/audit/audit-inbox.js';
import { AuditLog, AuditLogError, AuditLogInUseError, LOCK_FILE, auditFileName, listInbox, readAuditLog } from '../../src/audit/audit-log.js';
import { verifyAuditLog } from '../../src/audit/verify-audit.js';
import { aeadWrap } from '../../src/storage/keys/aead-wrap.js';
import { acquirePidLock } from '../../src/storage/pid-lock.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';
import { PATIENT_ID, PATIENT_NAME, record, testKeys } from './audit-log-fixtures.js';

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

t.test('the writer lock: a second open is refused while the owner lives; close releases it', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  const lock = path.join(dir, LOCK_FILE);
  t.equal(fs.readFileSync(lock, 'utf8'), `${process.pid}\n`);
  t.equal(fs.statSync(lock).mode & 0o777, 0o600);
  const second = AuditLog.open(dir, keys.auditKey, keys.signingKey);
  await t.rejects(second, AuditLogInUseError);
  await t.rejects(AuditLog.open(dir, keys.auditKey, keys.signingKey), { name: 'AuditLogInUseError', pid: process.pid, message: new RegExp(`^the audit log is in use by process ${process.pid} `) });
  t.ok((await second.catch((e: unknown) => e)) instanceof AuditLogError, 'an AuditLogError (compose reports it as a startup error)');
  await log.append(record(0));
  await log.close();
  t.notOk(fs.existsSync(lock), 'released on close');
  const again = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  t.equal(again.size, 1);
  await again.close();

  // An open that fails (a torn tail) does not leave the lock behind.
  const file = path.join(dir, auditFileName(1));
  fs.appendFileSync(file, '{"n":1,"prev":');
  await t.rejects(AuditLog.open(dir, keys.auditKey, keys.signingKey), /torn line/);
  await t.rejects(AuditLog.open(dir, keys.auditKey, keys.signingKey), /torn line/, 'the same error, not "in use"');
  t.notOk(fs.existsSync(lock));
});

t.test('a stale lock (its process is gone, or it was never written) is taken over', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  fs.mkdirSync(dir);
  const lock = path.join(dir, LOCK_FILE);
  const dead = deadPid();
  t.ok(dead > 0);
  fs.writeFileSync(lock, `${dead}\n`);
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  t.equal(fs.readFileSync(lock, 'utf8'), `${process.pid}\n`, 'taken over');
  await log.close();

  fs.writeFileSync(lock, '');
  await t.rejects(AuditLog.open(dir, keys.auditKey, keys.signingKey), { name: 'AuditLogInUseError', pid: 0 }, 'an empty lock just made: its owner is writing it');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(lock, old, old);
  const taken = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  await taken.close();
  t.notOk(fs.existsSync(lock));

  // A releaser never removes a lock that another process took over meanwhile.
  const release = acquirePidLock(lock);
  fs.writeFileSync(lock, `${dead}\n`);
  release();
  t.equal(fs.readFileSync(lock, 'utf8'), `${dead}\n`);
});

t.test('the inbox: records left by another process join the chain in order; the chain verifies', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const appended: number[] = [];
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0, inboxIntervalMs: 30, onAppended: (_r, n) => appended.push(n) });
  await log.append(record(0));
  const first = writeInboxRecord(dir, keys.auditKey, record(1), new Date('2026-01-01T00:00:01Z'));
  const second = writeInboxRecord(dir, keys.auditKey, record(2), new Date('2026-01-01T00:00:02Z'));
  t.match(path.basename(first), /^20260101T000001000Z-[0-9a-f]{16}\.rec$/);
  t.equal(fs.statSync(first).mode & 0o777, 0o600);
  for (const secret of [PATIENT_ID, PATIENT_NAME]) t.notOk(fs.readFileSync(first).includes(secret), `the inbox file holds no ${secret}`);
  await until(() => log.size === 3);
  t.same(appended, [0, 1, 2], 'onAppended sees ingested records too');
  await until(() => listInbox(dir).length === 0);
  t.notOk(fs.existsSync(first) || fs.existsSync(second), 'deleted once appended');
  await log.close();
  const ids: string[] = [];
  for await (const { record: r } of readAuditLog(dir, keys.auditKey)) ids.push(r.objects[1]!.id);
  t.same(ids, ['1.2.3.0', '1.2.3.1', '1.2.3.2']);
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.same(report.problems, []);
  t.equal(report.records, 3);
});

t.test('the inbox is ingested by open() before it resolves (the writer was down)', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  writeInboxRecord(dir, keys.auditKey, record(0));
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0, inboxIntervalMs: 0 });
  t.equal(log.size, 1);
  t.same(listInbox(dir), []);
  await log.close();
  t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, []);
});

t.test('an inbox file that does not decrypt or is refused is set aside, counted, never deleted; temp files are left alone', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const inbox = path.join(dir, INBOX_DIR);
  fs.mkdirSync(inbox, { recursive: true });
  fs.writeFileSync(path.join(inbox, '20260101T000000000Z-garbage.rec'), 'not a record at all');
  const foreign = writeInboxRecord(dir, testKeys().auditKey, record(7)); // another archive's key
  const good = writeInboxRecord(dir, keys.auditKey, record(1), new Date('2027-01-01T00:00:00Z'));
  fs.writeFileSync(path.join(inbox, '.half-written.rec.tmp'), 'x');
  // Authentic, but no canonical form (a lone surrogate): append() refuses it, so it must not block the inbox.
  const lone = JSON.stringify(record(8)).replace('"dicomvault@test"', '"\\ud800"');
  fs.writeFileSync(path.join(inbox, '20260101T000000001Z-lone.rec'), aeadWrap(keys.auditKey, Buffer.from(lone), 'dicomvault audit-inbox|v1'));
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0, inboxIntervalMs: 0 });
  t.equal(log.size, 1, 'the good one is appended');
  t.equal(log.inboxRejected, 3);
  t.same(fs.readdirSync(path.join(inbox, INBOX_REJECTED_DIR)).sort(), ['20260101T000000000Z-garbage.rec', '20260101T000000001Z-lone.rec', path.basename(foreign)].sort());
  t.equal(fs.readFileSync(path.join(inbox, INBOX_REJECTED_DIR, '20260101T000000000Z-garbage.rec'), 'utf8'), 'not a record at all', 'kept as it was');
  t.notOk(fs.existsSync(good));
  t.ok(fs.existsSync(path.join(inbox, '.half-written.rec.tmp')));
  t.equal(await log.ingestInbox(), 0, 'nothing more to do');
  await log.close();
  t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, []);
});
