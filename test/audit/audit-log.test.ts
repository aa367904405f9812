// The audit log (src/audit/audit-log.ts): hash chain and checkpoints round trip, encryption at rest, a torn
// last line after a crash, rotation across files, and the append throughput with fsync batching.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { AuditLog, AuditLogError, CHECKPOINT_FILE, auditFileName, listAuditFiles, readAuditLog } from '../../src/audit/audit-log.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { verifyAuditLog } from '../../src/audit/verify-audit.js';
import { PATIENT_ID, PATIENT_NAME, record, testKeys, writtenLog } from './audit-log-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';

const lines = (file: string) => fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

t.test('chain and checkpoints: hash = SHA-256(prev ‖ JCS(record)), a signed checkpoint every N records and on close', async (t) => {
  const seen: number[] = [];
  const { dir, keys } = await writtenLog(t, 25, { checkpointEvery: 10, onCheckpoint: (c) => seen.push(c.n) });
  const [file] = listAuditFiles(dir);
  const rows = lines(file!.file);
  t.equal(rows.length, 25);
  t.same(Object.keys(rows[0]!), ['n', 'prev', 'hash', 'ct']);
  let prev = Buffer.alloc(32);
  rows.forEach((row, i) => {
    t.equal(row.n, i);
    t.equal(row.prev, prev.toString('hex'));
    const expected = createHash('sha256').update(prev).update(canonicalJson(record(i))).digest();
    if (row.hash !== expected.toString('hex')) t.fail(`hash of record ${i}`);
    prev = expected;
  });
  t.same(seen, [9, 19, 24], 'after 10, 20 records (batches of 10) and on close');
  const checkpoints = lines(path.join(dir, CHECKPOINT_FILE));
  t.same(checkpoints.map((c) => c.n), [9, 19, 24]);
  t.equal(checkpoints[2]!.hash, rows[24]!.hash);

  const entries = [];
  for await (const e of readAuditLog(dir, keys.auditKey)) entries.push(e);
  t.equal(entries.length, 25);
  t.same(entries[3]!.record, record(3), 'decrypted records equal the appended ones');
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.same(report, { records: 25, files: 1, lastCheckpoint: checkpoints[2], problems: [] });
});

t.test('reopening continues the chain; read() filters', async (t) => {
  const keys = testKeys();
  const { dir } = await writtenLog(t, 5, {}, keys);
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  t.equal(log.size, 5);
  t.equal(log.lastCheckpoint?.n, 4);
  t.same(await log.checkpoint(), log.lastCheckpoint, 'nothing new: no second checkpoint of the same record');
  const { n } = await log.append(record(5));
  t.equal(n, 5);
  const byPatient = [];
  for await (const e of log.read({ patientId: PATIENT_ID, since: '2026-01-01T00:00:02Z' })) byPatient.push(e.n);
  t.same(byPatient, [2, 4]);
  const byUser = [];
  for await (const e of log.read({ userId: 'sha256:client-1', eventIds: ['110104'], fromN: 2 })) byUser.push(e.n);
  t.same(byUser, [4]);
  await log.close();
  await t.rejects(log.append(record(6)), /closed/);
  await t.rejects(log.checkpoint(), /closed/);
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.equal(report.records, 6);
  t.equal(report.lastCheckpoint?.n, 5);
  t.same(report.problems, []);
  await t.rejects(AuditLog.open(dir, testKeys().auditKey, keys.signingKey), /does not decrypt with the audit key/, 'the wrong key stops open');
});

t.test('encrypted at rest: no patient name or ID in any file of the folder', async (t) => {
  const { dir } = await writtenLog(t, 20, { checkpointEvery: 5 });
  const files = fs.readdirSync(dir);
  t.ok(files.length >= 2);
  for (const name of files) {
    const bytes = fs.readFileSync(path.join(dir, name));
    for (const secret of [PATIENT_NAME, 'Jane Marie', PATIENT_ID, Buffer.from(`PatientName=${PATIENT_NAME}`).toString('base64').slice(0, 12)]) {
      t.notOk(bytes.includes(secret), `${name} does not contain ${secret}`);
    }
  }
  const keys = testKeys();
  const log = await AuditLog.open(path.join(tempDir(t), 'a'), keys.auditKey, keys.signingKey);
  await t.rejects(log.append({ ...record(0), outcome: Number.NaN as 0 }), /I-JSON/, 'a record that has no canonical form is refused');
  t.equal(log.size, 0);
  await log.close();
});

t.test('crash: a torn last line stops open() and verify reports it; recoverTornTail sets it aside, reported', async (t) => {
  const keys = testKeys();
  const { dir } = await writtenLog(t, 12, { checkpointEvery: 100 }, keys);
  const file = path.join(dir, auditFileName(1));
  const full = fs.readFileSync(file);
  const lastStart = full.subarray(0, full.length - 1).lastIndexOf(0x0a) + 1;
  fs.appendFileSync(file, full.subarray(lastStart, lastStart + 40)); // a half-written 13th line
  await t.rejects(AuditLog.open(dir, keys.auditKey, keys.signingKey), AuditLogError);
  await t.rejects(AuditLog.open(dir, keys.auditKey, keys.signingKey), new RegExp(`ends with a torn line at byte ${full.length} \\(40 bytes`));
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.equal(report.records, 12);
  t.match(report.problems, [{ n: 12, kind: 'truncated', detail: /audit-000001.jsonl byte \d+: the last line is torn/ }]);
  t.equal(report.problems.length, 1);

  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { recoverTornTail: true, checkpointIntervalMs: 0 });
  t.match(log.recovered, [{ file, offset: full.length, bytes: 40, movedTo: path.join(dir, `torn-audit-000001.jsonl-${full.length}`) }]);
  t.equal(fs.readFileSync(log.recovered[0]!.movedTo).length, 40);
  t.match(await log.append(record(12)), { n: 12, hash: /^[0-9a-f]{64}$/ });
  await log.close();
  t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, []);
});

t.test('rotation: files rotate by size, the chain continues across them, reopen continues in the last file', async (t) => {
  const keys = testKeys();
  const { dir } = await writtenLog(t, 60, { maxFileBytes: 8 * 1024, maxBatch: 4, checkpointEvery: 16 }, keys);
  const files = listAuditFiles(dir);
  t.ok(files.length >= 4, `${files.length} files`);
  for (const { file } of files) t.ok(fs.statSync(file).size <= 8 * 1024, path.basename(file));
  const first = lines(files[1]!.file)[0]!;
  const before = lines(files[0]!.file).at(-1)!;
  t.equal(first.prev, before.hash, 'the first record of a file chains to the last of the previous one');
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { maxFileBytes: 8 * 1024, checkpointIntervalMs: 0 });
  t.equal(log.size, 60);
  await log.append(record(60));
  await log.close();
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.same({ records: report.records, problems: report.problems }, { records: 61, problems: [] });
  t.ok(report.files >= files.length);
  const firstOfThird = lines(files[2]!.file)[0]!.n as number;
  fs.rmSync(files[1]!.file);
  const gap = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.match(gap.problems[0], { n: first.n, kind: 'removed', detail: new RegExp(`^audit-000003.jsonl byte 0: record ${firstOfThird} follows record ${(first.n as number) - 1}`) }, 'a whole file removed');
});

t.test('throughput: concurrent appends share one write + fdatasync', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  const single = 50;
  let start = process.hrtime.bigint();
  for (let i = 0; i < single; i++) await log.append(record(i));
  t.equal(log.writes, single, 'an append awaited alone is its own batch');
  const oneMs = Number(process.hrtime.bigint() - start) / 1e6 / single;
  const total = 5000;
  start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: total }, (_, i) => log.append(record(single + i))));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const serial = Math.round(1000 / oneMs);
  const batched = Math.round(total / seconds);
  t.comment(`one append awaited alone: ${oneMs.toFixed(3)} ms (${serial} records/s); ${total} concurrent: ${batched} records/s`);
  // Timings are only reported (machines differ); the batching itself is asserted.
  const batches = log.writes - single;
  t.ok(batches <= Math.ceil(total / 128) + 1, `${total} concurrent appends in ${batches} write + fdatasync batches (up to 128 records each)`);
  await log.close();
  t.equal((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).records, single + total);
});

t.test('a checkpoint by time: after checkpointIntervalMs when records were added, none when idle', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const seen: number[] = [];
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 40, onCheckpoint: (c) => seen.push(c.n) });
  await new Promise((r) => setTimeout(r, 100));
  t.same(seen, [], 'an empty log gets no checkpoint');
  await log.append(record(0));
  await log.append(record(1));
  await new Promise((r) => setTimeout(r, 250));
  // A tick may fall between the two appends (then record 0 has its own checkpoint): timing is not asserted.
  t.equal(seen.at(-1), 1, 'a checkpoint of record 1 by time alone');
  t.same(seen, [...new Set(seen)], 'not repeated while idle');
  const count = seen.length;
  await log.close();
  t.equal(seen.length, count, 'close adds none: nothing new');
});

t.test('group commit: records appended within commitDelayMs share one write; close and checkpoints do not wait', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'a');
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0, inboxIntervalMs: 0, commitDelayMs: 200 });
  const started = Date.now();
  const appended = await Promise.all([log.append(record(0)), log.append(record(1)), log.append(record(2))]);
  t.ok(Date.now() - started >= 150, 'the batch waited for company');
  t.same(appended.map((a) => a.n), [0, 1, 2]);
  t.equal(log.writes, 1, 'three records, one write + fdatasync');

  const pending = log.append(record(3));
  const checkpoint = await log.checkpoint();
  t.equal(checkpoint?.n, 3, 'a checkpoint takes the waiting record with it at once');
  t.equal((await pending).n, 3);

  await log.close();
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.same([report.records, report.problems], [4, []], 'the chain verifies');

  // A delay far longer than close() takes even on a loaded machine (a checkpoint's fsyncs can take 100s of ms).
  const patient = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0, inboxIntervalMs: 0, commitDelayMs: 60_000 });
  const last = patient.append(record(4));
  const closing = Date.now();
  await patient.close();
  t.ok(Date.now() - closing < 30_000, `close writes what waits without the delay (${Date.now() - closing} ms)`);
  t.equal((await last).n, 4);
  const after = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.same([after.records, after.problems], [5, []], 'the chain verifies');
});

t.test('a group commit is one line: one AES-GCM message for its records, each still chained and read back on its own', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  const single = await log.append(record(0));
  const group = await log.appendCanonical([1, 2, 3].map((i) => canonicalJson(record(i))));
  t.equal(group.first, 1);
  // Records of about 400 KiB: a commit of more than MAX_LINE_PLAINTEXT (1 MiB) goes in several lines.
  const big = (i: number) => ({ ...record(i), objects: [...record(i).objects, { id: 'x'.repeat(400 * 1024), typeCode: 2, roleCode: 3 }] });
  const large = await log.appendCanonical([4, 5, 6, 7].map((i) => canonicalJson(big(i))));
  t.equal(log.writes, 3, 'three commits, three writes');
  await log.close();

  const rows = lines(listAuditFiles(dir)[0]!.file);
  t.same(rows.map((r) => [r.n, r.count]), [[0, undefined], [1, 3], [4, 2], [6, 2]], 'a line per record alone, per commit, and per MiB of a large commit');
  let prev = Buffer.alloc(32);
  const expected = [record(0), record(1), record(2), record(3), big(4), big(5), big(6), big(7)].map((r) => {
    prev = createHash('sha256').update(prev).update(canonicalJson(r)).digest();
    return prev.toString('hex');
  });
  t.same([single.hash, ...group.hashes, ...large.hashes], expected, 'every record has its own SHA-256(prev ‖ JCS(record))');
  t.same(rows.map((r) => r.hash), [expected[0], expected[3], expected[5], expected[7]], "a line's hash is its last record's");

  const entries = [];
  for await (const e of readAuditLog(dir, keys.auditKey, { fromN: 2 })) entries.push(e);
  t.same(entries.map((e) => [e.n, e.hash]), [2, 3, 4, 5, 6, 7].map((n) => [n, expected[n]]), 'read() from the middle of a line');
  t.same(entries[0]!.record, record(2));
  const reopened = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  t.same(await reopened.append(record(8)), { n: 8, hash: createHash('sha256').update(prev).update(canonicalJson(record(8))).digest('hex') }, 'reopening continues after the last line');
  await reopened.close();
  t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, []);
});
