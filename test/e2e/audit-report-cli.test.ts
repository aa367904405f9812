// `dicomvault audit report` as a process (test/helpers/cli-process.ts) against a data folder: the accounting of
// disclosures of one patient in text and JSON, exit codes (0 also for nothing found, 2 a wrong command line, 1 a
// log that cannot be read), and the 110101 Audit Log Used record it leaves: appended by itself when no server
// holds the log, through the inbox when `dicomvault serve` runs beside it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { AUDIT_DIR, loadAuditKeys, loadOrCreateAuditKeys } from '../../src/audit/audit-keys.js';
import { AuditLog, auditFileName, readAuditLog } from '../../src/audit/audit-log.js';
import type { AuditRecord } from '../../src/audit/audit-record.js';
import { verifyAuditLog } from '../../src/audit/verify-audit.js';
import { createKekFile } from '../../src/storage/keys/kek-file.js';
import { LocalKeyfileProvider } from '../../src/storage/keys/local-keyfile.js';
import { PATIENT_ID, record } from '../audit/audit-log-fixtures.js';
import { runCli } from '../helpers/cli-process.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { startServer } from './cli-process.js';

const USER = os.userInfo().username;

/** The records of the log in `dataDir` and whether it verifies. */
async function readLog(dataDir: string, keyFile: string): Promise<{ records: AuditRecord[]; problems: unknown[] }> {
  const provider = LocalKeyfileProvider.open(keyFile);
  try {
    const keys = await loadAuditKeys(dataDir, provider);
    try {
      const dir = path.join(dataDir, AUDIT_DIR);
      const records: AuditRecord[] = [];
      for await (const e of readAuditLog(dir, keys.auditKey)) records.push(e.record);
      return { records, problems: (await verifyAuditLog(dir, keys.auditKey, keys.publicKey)).problems };
    } finally {
      keys.close();
    }
  } finally {
    provider.close();
  }
}

/** A data folder whose audit log holds record(0..count-1) (PATIENT_ID in the even ones, one second apart from 2026-01-01). */
async function dataFolder(t: Test, count: number) {
  const root = tempDir(t);
  const env = storageEnv(root);
  createKekFile(env.DICOMVAULT_KEYS_FILE);
  const provider = LocalKeyfileProvider.open(env.DICOMVAULT_KEYS_FILE);
  const keys = await loadOrCreateAuditKeys(env.DICOMVAULT_STORAGE_DATA_DIR, provider);
  const log = await AuditLog.open(path.join(env.DICOMVAULT_STORAGE_DATA_DIR, AUDIT_DIR), keys.auditKey, keys.signingKey, { checkpointIntervalMs: 0 });
  for (let i = 0; i < count; i++) await log.append(record(i));
  await log.close();
  keys.close();
  provider.close();
  return { root, env };
}

const used = (records: AuditRecord[]) => records.filter((r) => r.eventId.code === '110101');

t.test('report: json and text, the date range, "no records"; each run leaves a 110101 record', async (t) => {
  const { root, env } = await dataFolder(t, 6);
  const json = await runCli(root, ['audit', 'report', '--patient', PATIENT_ID, '--format', 'json'], env);
  t.equal(json.code, 0, json.stderr);
  t.equal(json.stderr, '');
  const rows = JSON.parse(json.stdout) as { n: number; time: string; event: string; who: { userId: string }[]; from: string[]; studies: string[] }[];
  t.same(rows.map((r) => r.n), [0, 2, 4]);
  t.match(rows[1], { n: 2, time: '2026-01-01T00:00:02.000Z', event: 'DICOM Instances Transferred', action: 'R', outcome: 0, who: [{ userId: 'sha256:client-2' }], from: ['10.0.0.7'], studies: ['1.2.3.2'], how: [] });

  let log = await readLog(env.DICOMVAULT_STORAGE_DATA_DIR, env.DICOMVAULT_KEYS_FILE);
  t.equal(log.records.length, 7);
  t.same(log.problems, [], 'the chain still verifies');
  t.match(used(log.records), [
    {
      eventId: { code: '110101', displayName: 'Audit Log Used' },
      action: 'R',
      outcome: 0,
      participants: [{ userId: USER, userIsRequestor: true, networkAccessPoint: { typeCode: 1, id: os.hostname() } }],
      objects: [{ typeCode: 2, roleCode: 13 }, { typeCode: 1, roleCode: 1, id: PATIENT_ID }],
    },
  ]);

  const text = await runCli(root, ['audit', 'report', '--patient', PATIENT_ID, '--from', '2026-01-01', '--to', '2026-01-01'], env);
  t.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  t.match(lines[0], /^TIME +EVENT +ACTION +OUTCOME +WHO +FROM +STUDIES +HOW$/);
  t.equal(lines.length, 4, 'the three records of 2026-01-01; not the Audit Log Used record of today');
  t.match(lines[1], /^2026-01-01T00:00:00\.000Z {2}DICOM Instances Transferred {2}read {4}success {2}sha256:client-0 {2}10\.0\.0\.7 {2}1\.2\.3\.0 {2}-$/);

  const none = await runCli(root, ['audit', 'report', '--patient', 'NOBODY'], env);
  t.equal(none.code, 0, none.stderr);
  t.equal(none.stdout, 'no records\n');
  log = await readLog(env.DICOMVAULT_STORAGE_DATA_DIR, env.DICOMVAULT_KEYS_FILE);
  t.equal(used(log.records).length, 3, 'every report is audited, also one that found nothing');
  t.same(log.problems, []);
});

t.test('report: wrong command lines exit 2; a log that cannot be read exits 1', async (t) => {
  const { root, env } = await dataFolder(t, 4);
  const cases: [string[], RegExp][] = [
    [['audit', 'report'], /^dicomvault audit: report needs --patient ID\n$/],
    [['audit', 'report', '--patient', 'X', '--from', '2026-02-30'], /--from "2026-02-30" is not a date/],
    [['audit', 'report', '--patient', 'X', '--to', 'yesterday'], /--to "yesterday" is not a date/],
    [['audit', 'report', '--patient', 'X', '--from', '2026-03-01', '--to', '2026-02-01'], /--from 2026-03-01 is after --to 2026-02-01/],
    [['audit', 'report', '--patient', 'X', '--format', 'xml'], /--format must be text or json/],
    [['audit', 'report', '--patient', 'X', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const res = await runCli(root, args, env);
    t.equal(res.code, 2, args.join(' '));
    t.match(res.stderr, message);
    t.equal(res.stdout, '');
  }
  const file = path.join(env.DICOMVAULT_STORAGE_DATA_DIR, AUDIT_DIR, auditFileName(1));
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const line = JSON.parse(lines[1]!) as { ct: string };
  line.ct = `${line.ct[0] === 'A' ? 'B' : 'A'}${line.ct.slice(1)}`;
  lines[1] = JSON.stringify(line);
  fs.writeFileSync(file, lines.join('\n'));
  const bad = await runCli(root, ['audit', 'report', '--patient', PATIENT_ID], env);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^dicomvault audit: .*audit-000001\.jsonl: record 1 fails authentication \(run dicomvault audit verify\)\n$/);
  t.equal(bad.stdout, '', 'no partial report');
  const empty = await runCli(tempDir(t), ['audit', 'report', '--patient', PATIENT_ID], storageEnv(tempDir(t)));
  t.equal(empty.code, 1);
  t.match(empty.stderr, /no audit log in .*audit\.key\.json is missing/);
});

t.test('report beside a running server: its record goes through the inbox into the server\'s chain', async (t) => {
  const cwd = tempDir(t);
  const server = await startServer(t, cwd);
  const env = { DICOMVAULT_STORAGE_DATA_DIR: path.join(cwd, 'data'), DICOMVAULT_KEYS_FILE: path.join(cwd, 'keys/kek.json') };
  const res = await runCli(cwd, ['audit', 'report', '--patient', PATIENT_ID], env);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout, 'no records\n');
  const deadline = Date.now() + 10_000;
  let records: AuditRecord[] = [];
  while (Date.now() < deadline) {
    records = (await readLog(env.DICOMVAULT_STORAGE_DATA_DIR, env.DICOMVAULT_KEYS_FILE)).records;
    if (used(records).length > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.match(used(records), [{ action: 'R', participants: [{ userId: USER }] }], 'the server appended it');
  t.same(fs.readdirSync(path.join(cwd, 'data', AUDIT_DIR, 'inbox')), [], 'and deleted the inbox file');
  t.equal(await server.stop(), 0);
  const after = await readLog(env.DICOMVAULT_STORAGE_DATA_DIR, env.DICOMVAULT_KEYS_FILE);
  t.same(after.records.map((r) => r.eventId.code), ['110100', '110101', '110100']);
  t.same(after.problems, []);
});
