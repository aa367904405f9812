// verifyAuditLog (src/audit/verify-audit.ts) on a log of 30 records with checkpoints after records 9, 19 and
// 29: each tampering is named by its kind and the first record where the log stops verifying.
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { AuditLog, CHECKPOINT_FILE, auditFileName, signCheckpoint } from '../../src/audit/audit-log.js';
import { type AuditProblem, verifyAuditLog } from '../../src/audit/verify-audit.js';
import { record, writtenLog } from './audit-log-fixtures.js';

type Lines = string[];

async function tampered(t: Test, edit: (lines: Lines) => Lines, editCheckpoints?: (lines: Lines) => Lines) {
  const { dir, keys } = await writtenLog(t, 30, { checkpointEvery: 10 });
  const file = path.join(dir, auditFileName(1));
  const read = (f: string) => fs.readFileSync(f, 'utf8').trimEnd().split('\n');
  fs.writeFileSync(file, `${edit(read(file)).join('\n')}\n`);
  const cpFile = path.join(dir, CHECKPOINT_FILE);
  if (editCheckpoints) fs.writeFileSync(cpFile, `${editCheckpoints(read(cpFile)).join('\n')}\n`);
  return verifyAuditLog(dir, keys.auditKey, keys.publicKey);
}

const setField = (line: string, field: string, value: unknown) => JSON.stringify({ ...(JSON.parse(line) as object), [field]: value });
const flipHex = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
const at = (lines: Lines, i: number) => lines[i]!;
const field = (line: string, name: string) => (JSON.parse(line) as Record<string, string>)[name]!;

function first(t: Test, problems: AuditProblem[], n: number, kind: AuditProblem['kind'], detail?: RegExp) {
  t.match(problems[0], { n, kind, ...(detail ? { detail } : {}) }, `${kind} at ${n}`);
  t.equal(problems.length, 1, 'one problem: nothing after the first break is reported');
}

t.test('an intact log verifies', async (t) => {
  const report = await tampered(t, (l) => l);
  t.same({ records: report.records, problems: report.problems, cp: report.lastCheckpoint?.n }, { records: 30, problems: [], cp: 29 });
});

t.test('a ciphertext edited in place: undecryptable at that record', async (t) => {
  const report = await tampered(t, (l) => {
    const ct = Buffer.from(field(at(l, 7), 'ct'), 'base64');
    ct[20] = ct[20]! ^ 1;
    l[7] = setField(at(l, 7), 'ct', ct.toString('base64'));
    return l;
  });
  first(t, report.problems, 7, 'undecryptable', /audit-000001.jsonl byte \d+: the record fails authentication/);
  t.equal(report.records, 7);
});

t.test('prev or hash edited: modified at that record', async (t) => {
  const prev = await tampered(t, (l) => ((l[7] = setField(at(l, 7), 'prev', flipHex(field(at(l, 7), 'prev')))), l));
  first(t, prev.problems, 7, 'modified', /its prev is not the hash of record 6/);
  const hash = await tampered(t, (l) => ((l[7] = setField(at(l, 7), 'hash', flipHex(field(at(l, 7), 'hash')))), l));
  first(t, hash.problems, 7, 'modified', /its hash is not SHA-256/);
  const garbage = await tampered(t, (l) => ((l[7] = 'not json'), l));
  first(t, garbage.problems, 7, 'modified', /not an audit record line/);
});

t.test('a line deleted: removed at its number', async (t) => {
  const report = await tampered(t, (l) => (l.splice(7, 1), l));
  first(t, report.problems, 7, 'removed', /record 8 follows record 6: record 7 is missing/);
  const several = await tampered(t, (l) => (l.splice(7, 3), l));
  first(t, several.problems, 7, 'removed', /records 7\.\.9 are missing/);
});

t.test('a copied line inserted: inserted where it appears', async (t) => {
  const report = await tampered(t, (l) => (l.splice(8, 0, at(l, 3)), l));
  first(t, report.problems, 8, 'inserted', /record 3 appears again where record 8 is due/);
});

t.test('two lines swapped: reordered at the first', async (t) => {
  const adjacent = await tampered(t, (l) => ([l[7], l[8]] = [at(l, 8), at(l, 7)]) && l);
  first(t, adjacent.problems, 7, 'reordered', /record 8 comes before record 7/);
  const apart = await tampered(t, (l) => ([l[5], l[12]] = [at(l, 12), at(l, 5)]) && l);
  first(t, apart.problems, 5, 'reordered');
});

t.test('the tail cut before the last checkpoint: truncated, with the missing range', async (t) => {
  const report = await tampered(t, (l) => l.slice(0, 15));
  first(t, report.problems, 15, 'truncated', /ends after record 14 .* covers records up to 29: 15\.\.29 are missing/);
  t.equal(report.records, 15);
  t.equal(report.lastCheckpoint?.n, 29);
});

t.test('forged checkpoints: bad signature, and never trusted for truncation', async (t) => {
  const edited = await tampered(
    t,
    (l) => l,
    (c) => ((c[1] = setField(at(c, 1), 'hash', flipHex(field(at(c, 1), 'hash')))), c),
  );
  first(t, edited.problems, 19, 'bad-checkpoint-signature', /checkpoint of record 19 .* has no valid signature/);
  const other = generateKeyPairSync('ed25519').privateKey;
  const foreign = await tampered(
    t,
    (l) => l,
    (c) => [...c, JSON.stringify(signCheckpoint(other, { n: 40, hash: 'a'.repeat(64), time: new Date().toISOString() }))],
  );
  first(t, foreign.problems, 40, 'bad-checkpoint-signature');
  t.equal(foreign.lastCheckpoint?.n, 29, 'the forged checkpoint is not the last one');
});

t.test('a chain rewritten with the audit key: the signed checkpoint catches it', async (t) => {
  const { dir, keys } = await writtenLog(t, 30, { checkpointEvery: 10 });
  // Someone holding the audit key (but not the signing key) rebuilds records 0..29 with record 5 changed.
  const forgedDir = path.join(path.dirname(dir), 'forged');
  const forger = await AuditLog.open(forgedDir, keys.auditKey, generateKeyPairSync('ed25519').privateKey, { checkpointIntervalMs: 0 });
  for (let i = 0; i < 30; i++) await forger.append(i === 5 ? { ...record(5), outcome: 4 } : record(i));
  await forger.close();
  fs.copyFileSync(path.join(forgedDir, auditFileName(1)), path.join(dir, auditFileName(1)));
  const report = await verifyAuditLog(dir, keys.auditKey, keys.publicKey);
  first(t, report.problems, 9, 'modified', /a signed checkpoint holds another hash for record 9: the log was rewritten up to here/);
});
