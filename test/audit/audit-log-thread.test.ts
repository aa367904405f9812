// The server's audit log on a writer thread (src/audit/audit-log-thread.ts): the same files, chain and
// guarantees as AuditLog in-process (audit-log.test.ts), seen through the thread's hand-over: order, durability
// when append() resolves, hooks on the main thread, errors carried back, and failing closed when the thread dies.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { AuditLog, AuditLogError, AuditLogInUseError, CHECKPOINT_FILE, decryptLine, listAuditFiles, parseRecordLine, readAuditLog, recordsOfLine } from '../../src/audit/audit-log.js';
import { AuditLogThread } from '../../src/audit/audit-log-thread.js';
import { Auditor, CollectedRequestAudit } from '../../src/audit/auditor.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { FACTS_FORM } from '../../src/audit/request-facts.js';
import { verifyAuditLog } from '../../src/audit/verify-audit.js';
import { PATIENT_ID, PATIENT_NAME, record, testKeys } from './audit-log-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

const open = (dir: string, keys = testKeys(), options = {}) => AuditLogThread.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0, ...options });

t.test('records written on the thread: in order, hash-chained, encrypted, verified; hooks on this thread in order', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const appended: number[] = [];
  const checkpoints: number[] = [];
  const log = await open(dir, keys, { checkpointEvery: 10, onAppended: (_r: unknown, n: number) => appended.push(n), onCheckpoint: (c: { n: number }) => checkpoints.push(c.n) });
  t.equal(log.size, 0);
  // Spread over several hand-overs and group commits.
  const results: { n: number; hash: string }[] = [];
  for (let i = 0; i < 25; i += 5) {
    results.push(...(await Promise.all(Array.from({ length: 5 }, (_, j) => log.append(record(i + j))))));
  }
  t.same(results.map((r) => r.n), Array.from({ length: 25 }, (_, i) => i), 'numbers in the order of append()');
  t.equal(log.size, 25, 'size follows the writer');
  t.same(appended, results.map((r) => r.n), 'onAppended once per record, in order, after it is on disk');
  // What resolved is on disk now, before close: the same hashes as the file's records.
  const onDisk = [];
  for await (const e of readAuditLog(dir, keys.auditKey)) onDisk.push(e);
  t.same(onDisk.map((e) => e.hash), results.map((r) => r.hash));
  // A hand-over is one group commit: each of the five went as one line (the records of one AES-GCM message).
  const [file] = listAuditFiles(dir);
  const lines = fs.readFileSync(file!.file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { n: number; count?: number; hash: string });
  t.same(lines.map((l) => [l.n, l.count]), [[0, 5], [5, 5], [10, 5], [15, 5], [20, 5]]);
  t.same(lines.map((l) => l.hash), [4, 9, 14, 19, 24].map((i) => results[i]!.hash), "a line's hash is its last record's");
  const first = createHash('sha256').update(Buffer.alloc(32)).update(canonicalJson(record(0))).digest('hex');
  t.equal(results[0]!.hash, first, 'hash = SHA-256(prev ‖ JCS(record)): the writer sorts members the fixture leaves unsorted');
  await log.close();
  t.same(checkpoints, [9, 19, 24], 'checkpoints every 10 records and on close, reported here');
  t.equal(log.lastCheckpoint?.n, 24);

  const entries = [];
  for await (const e of readAuditLog(dir, keys.auditKey)) entries.push(e);
  t.same(entries[7]!.record, record(7), 'decrypted records equal the appended ones');
  t.equal(entries[7]!.hash, results[7]!.hash);
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.same([report.records, report.problems], [25, []], 'dicomvault audit verify finds nothing wrong');
  const bytes = Buffer.concat(fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => fs.readFileSync(path.join(dir, f))));
  // Whole values only: they hold characters base64 has not ('-', '^', ' '), so ciphertext cannot match them by
  // chance (a 3-letter name part does, in one run of seven).
  t.notOk(bytes.includes(PATIENT_ID) || bytes.includes(PATIENT_NAME), 'no PHI in the clear');
});

t.test('the in-process log and the thread write the same chain: reopening either continues the other', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const a = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  await a.append(record(0));
  await a.close();
  const b = await open(dir, keys);
  t.equal(b.size, 1, 'the thread continues the chain');
  const { n } = await b.append(record(1));
  t.equal(n, 1);
  const read = [];
  for await (const e of b.read({ fromN: 1 })) read.push(e.record);
  t.same(read, [record(1)], 'read() on this thread');
  await b.close();
  const c = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  t.equal((await c.append(record(2))).n, 2);
  await c.close();
  t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, []);
});

t.test('errors come back as the in-process log gives them', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const holder = await AuditLog.open(dir, keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  await t.rejects(open(dir, keys), AuditLogInUseError, 'one writer per folder: the thread is refused while another holds it');
  await holder.append(record(0));
  await holder.close();
  await t.rejects(open(dir, testKeys()), /does not decrypt with the audit key/, 'the wrong key stops open');

  const log = await open(dir, keys);
  const refused = { ...record(1), outcomeDescription: 'lone \ud800 surrogate' };
  await t.rejects(log.append(refused), AuditLogError, 'a record that is not I-JSON is refused (RFC 8785)');
  t.equal((await log.append(record(1))).n, 1, 'and the log goes on, as in-process');
  const checkpoint = await log.checkpoint();
  t.equal(checkpoint?.n, 1, 'checkpoint() on demand');
  await log.close();
  await t.rejects(log.append(record(2)), /closed/, 'no append after close');
  t.equal(fs.readFileSync(path.join(dir, CHECKPOINT_FILE), 'utf8').trimEnd().split('\n').length, 2, 'on demand and on close');
});

t.test('fail closed: when the writer thread dies, waiting and later appends reject', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const log = await open(dir, keys, { commitDelayMs: 500 });
  await log.append(record(0));
  const waiting = log.append(record(1));
  // The thread's end, as a crash of it would look from here (the handle is private: no API ends it early).
  await (log as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  await t.rejects(waiting, /audit writer thread exited/, 'the record that was waiting');
  await t.rejects(log.append(record(2)), /audit writer thread exited/, 'and every later one');
  await log.close();
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  t.same([report.records, report.problems], [1, []], 'what reached the disk still verifies');
});

t.test('the Auditor writes request records without waiting (appendDetached) and fails closed when they fail', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  const log = await open(dir, keys);
  const errors: string[] = [];
  const auditor = new Auditor(log, { id: 'https://127.0.0.1:8443/dicomweb', typeCode: '4' });
  const requestLog = { error: (_o: object, msg: string) => void errors.push(msg) };
  const facts = { requestor: { userId: 'gateway-01', address: '127.0.0.1' }, uri: 'GET /dicomweb/studies', outcome: 0 as const };
  for (let i = 0; i < 20; i++) {
    const collected = new CollectedRequestAudit();
    collected.event('query', { query: `PatientID=P${i}`, resource: 'SearchForStudies' });
    collected.study({ studyInstanceUID: `1.2.3.${i}`, patientId: `P${i}` });
    auditor.request(collected, facts, requestLog);
  }
  await auditor.flush();
  t.equal(log.size, 20, 'flush() waits for records written without waiting');
  t.notOk(auditor.failed);
  const written = [];
  for await (const e of log.read()) written.push(e.record);
  t.same(written.map((r) => r.eventId.code), Array(20).fill('110112'), '110112 Query, one per request');
  t.match(written[19], { objects: [{ roleCode: 24 }, { id: '1.2.3.19', roleCode: 3 }, { id: 'P19', roleCode: 1 }] });

  await (log as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  const collected = new CollectedRequestAudit();
  collected.event('query', { query: 'PatientID=X', resource: 'SearchForStudies' });
  auditor.request(collected, facts, requestLog);
  await auditor.flush();
  t.ok(auditor.failed, 'a record that cannot be written marks the Auditor failed (503 from then on)');
  t.same(errors, ['cannot write to the audit log: refusing requests (503) until restarted'], 'logged once, without the record');
  await log.close();
});

t.test('request records built on the writer from their facts equal those built on this thread; with an onAppended hook they are built here', async (t) => {
  const keys = testKeys();
  const source = { id: 'https://127.0.0.1:8443/dicomweb', typeCode: '4' as const };
  const facts = { requestor: { userId: 'gateway-01', alternativeUserId: 'ab'.repeat(32), address: '::1' }, uri: 'POST /dicomweb/studies', outcome: 4 as const, outcomeDescription: 'some failed' };
  const collected = new CollectedRequestAudit();
  collected.event('store', { replaced: true });
  collected.study({ studyInstanceUID: '1.2.3', patientId: PATIENT_ID, accessionNumber: 'ACC-1', sopClasses: new Map([['1.2.840.10008.5.1.4.1.1.2', 3], ['1.2.840.10008.5.1.4.1.1.4', 1]]) });
  collected.study({ studyInstanceUID: '1.2.4', patientId: '' });
  collected.patient('OTHER-PATIENT');
  collected.alert({ code: '110127', codeSystem: 'DCM', displayName: 'Emergency Override Started' }, 'break-glass', { studyInstanceUID: '9.9.9', patientId: 'P-ALERT' });
  collected.alert({ code: '110132', codeSystem: 'DCM', displayName: 'Use of a Restricted Function' }, 'no study');
  const local = new Auditor({ append: () => Promise.reject(new Error('unused')) }, source);
  const expected = [local.eventRecord('store', collected, facts), local.alertRecord(collected.alerts[0]!.type, 'break-glass', facts, collected.alerts[0]!.study), local.alertRecord(collected.alerts[1]!.type, 'no study', facts)];
  const withoutTime = (r: object) => ({ ...r, dateTime: undefined });

  for (const hook of [false, true]) {
    const dir = path.join(tempDir(t), 'audit');
    const appended: number[] = [];
    const log = await open(dir, keys, hook ? { onAppended: (_r: unknown, n: number) => appended.push(n) } : {});
    t.equal(log.appendRequestDetached === undefined, hook, hook ? 'a hook needs the records here' : 'facts go to the writer');
    const auditor = new Auditor(log, source);
    auditor.request(collected, facts);
    auditor.request(collected, facts);
    await auditor.flush();
    t.notOk(auditor.failed);
    const written = [];
    for await (const e of log.read()) written.push(e);
    t.same(written.map((e) => e.n), [0, 1, 2, 3, 4, 5]);
    t.same(written.map((e) => withoutTime(e.record)), [...expected, ...expected].map(withoutTime), 'the same records, in order');
    t.same(appended, hook ? [0, 1, 2, 3, 4, 5] : []);
    await log.close();
    t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, []);
  }
});

t.test('a request whose facts make one record (an event, no alert) is stored as its facts and read back as that record', async (t) => {
  const keys = testKeys();
  const source = { id: 'https://127.0.0.1:8443/dicomweb', typeCode: '4' as const };
  const facts = { requestor: { userId: 'gateway-01', alternativeUserId: 'cd'.repeat(32), address: '::1' }, uri: 'GET /dicomweb/studies', outcome: 0 as const };
  const collected = new CollectedRequestAudit();
  collected.event('query', { query: 'PatientID=' + PATIENT_ID, resource: 'SearchForStudies' });
  collected.study({ studyInstanceUID: '1.2.3', patientId: PATIENT_ID });
  const dir = path.join(tempDir(t), 'audit');
  const log = await open(dir, keys);
  const auditor = new Auditor(log, source);
  for (let i = 0; i < 3; i++) auditor.request(collected, facts);
  await auditor.flush();
  await log.close();
  const written = [];
  for await (const e of readAuditLog(dir, keys.auditKey)) written.push(e);
  const expected = new Auditor({ append: () => Promise.reject(new Error('unused')) }, source).eventRecord('query', collected, facts);
  const withoutTime = (r: object) => ({ ...r, dateTime: undefined });
  t.same(written.map((e) => withoutTime(e.record)), [expected, expected, expected].map(withoutTime), 'the records the Auditor builds');
  const [file] = listAuditFiles(dir);
  const line = parseRecordLine(fs.readFileSync(file!.file, 'utf8').split('\n')[0]!)!;
  const stored = recordsOfLine(line, decryptLine(keys.auditKey, line)!)!.map((r) => r.text.toString('utf8'));
  t.ok(stored.length > 0 && stored.every((text) => text.startsWith(`["${FACTS_FORM}","query",`)), 'stored as the facts');
  t.ok(stored.every((text) => canonicalJson(JSON.parse(text)) === text), 'in RFC 8785 form');
  t.same((await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems, []);
});

t.test('records nobody waits for are answered lazily: on asking, with a record somebody waits for, after answerDelayMs; a failure at once', async (t) => {
  const keys = testKeys();
  const dir = path.join(tempDir(t), 'audit');
  // Long enough that "at once" (a message each way) cannot be mistaken for it on a loaded machine.
  const answerDelayMs = 3000;
  const log = await open(dir, keys, { commitDelayMs: 5, answerDelayMs });
  const settled: (number | string)[] = [];
  const collect = (r: { n: number } | Error) => void settled.push(r instanceof Error ? `error: ${r.message}` : r.n);
  const onDisk = async () => {
    let count = 0;
    for await (const _ of readAuditLog(dir, keys.auditKey)) count++;
    return count;
  };

  for (let i = 0; i < 3; i++) log.appendDetached(record(i), collect);
  await until(async () => (await onDisk()) === 3);
  t.same(settled, [], 'written (the reader sees them) but not answered yet: the writer holds their results');
  log.answerNow();
  const asked = await until(() => settled.length === 3);
  t.same(settled, [0, 1, 2], 'answerNow(): every result, in order');
  t.ok(asked < answerDelayMs / 2, `at once (${asked} ms)`);

  log.appendDetached(record(3), collect);
  await until(async () => (await onDisk()) === 4);
  t.equal((await log.append(record(4))).n, 4, 'a record somebody waits for is answered at once');
  t.same(settled, [0, 1, 2, 3], 'with the lazy results before it');

  log.appendDetached(record(5), collect);
  const lazy = await until(() => settled.length === 5, 4 * answerDelayMs);
  t.ok(lazy >= answerDelayMs / 2, `nobody asking: answered after answerDelayMs all the same (${lazy} ms)`);

  log.appendDetached(record(6), collect);
  await until(async () => (await onDisk()) === 7);
  // An entry that cannot be made into records: the writer refuses it and says so at once.
  log.appendRequestDetached!('["not/facts"]', collect, false);
  const failed = await until(() => settled.length === 7);
  t.equal(settled[5], 6, 'the result written before it first');
  t.match(settled[6], /^error: /, 'then the failure');
  t.ok(failed < answerDelayMs / 2, `a failure is not held back (${failed} ms)`);
  await log.close();
});

t.test('an idle log does not hold the process open; a record waiting does', async (t) => {
  const dir = path.join(tempDir(t), 'audit');
  const script = `
    import { generateKeyPairSync, randomBytes } from 'node:crypto';
    import { AuditLogThread } from ${JSON.stringify(new URL('../../src/audit/audit-log-thread.ts', import.meta.url).href)};
    const log = await AuditLogThread.open(${JSON.stringify(dir)}, randomBytes(32), generateKeyPairSync('ed25519').privateKey, { checkpointIntervalMs: 0, commitDelayMs: 300 });
    log.append({ action: 'E', dateTime: new Date().toISOString(), eventId: { code: '110100', codeSystem: 'DCM', displayName: 'Application Activity' }, objects: [], outcome: 0, participants: [], source: { id: 'x', typeCode: '4' } })
      .then(({ n }) => console.log('written', n));
    // no close(): the process must still write the waiting record, then end by itself
  `;
  const { spawnSync } = await import('node:child_process');
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /written 0/, 'the waiting record was written before the process ended');
  t.ok(Date.now() - started < 30_000, 'and the process ended without close()');
});
