// verifyAuditLog (src/audit/verify-audit.ts) on a log of 30 records with checkpoints after records 9, 19 and
// 29: each tampering is named by its kind and the first record where the log stops verifying. Once with a line
// per record, once with lines of 10 records (the server's group commits, audit-log.ts).
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { AuditLog, CHECKPOINT_FILE, auditFileName, signCheckpoint } from '../../src/audit/audit-log.js';
import { type AuditProblem, verifyAuditLog } from '../../src/audit/verify-audit.js';
import { record, writtenLog } from './audit-log-fixtures.js';

type Lines = string[];

async function tampered(t: Test, edit: (lines: Lines) => Lines, editCheckpoints?: (lines: Lines) => Lines, linesOf = 1) {
  const { dir, keys } = await writtenLog(t, 30, { checkpointEvery: 10 }, undefined, linesOf);
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

t.test('lines of 10 records (group commits): each tampering named at the first record of the line it hits', async (t) => {
  const batched = (edit: (lines: Lines) => Lines) => tampered(t, edit, undefined, 10);
  let lines = 0;
  const intact = await batched((l) => ((lines = l.length), l));
  t.same({ lines, records: intact.records, problems: intact.problems }, { lines: 3, records: 30, problems: [] });

  const ct = await batched((l) => {
    const bytes = Buffer.from(field(at(l, 1), 'ct'), 'base64');
    bytes[200] = bytes[200]! ^ 1;
    l[1] = setField(at(l, 1), 'ct', bytes.toString('base64'));
    return l;
  });
  first(t, ct.problems, 10, 'undecryptable', /the line of records 10\.\.19 fails authentication/);
  t.equal(ct.records, 10, 'records 0..9 verified');
  const prev = await batched((l) => ((l[1] = setField(at(l, 1), 'prev', flipHex(field(at(l, 1), 'prev')))), l));
  first(t, prev.problems, 10, 'modified', /its prev is not the hash of record 9/);
  // The line's hash and count are authenticated data of its ciphertext.
  const hash = await batched((l) => ((l[1] = setField(at(l, 1), 'hash', flipHex(field(at(l, 1), 'hash')))), l));
  first(t, hash.problems, 10, 'undecryptable');
  const count = await batched((l) => ((l[1] = setField(at(l, 1), 'count', 9)), l));
  first(t, count.problems, 10, 'undecryptable');
  const removed = await batched((l) => (l.splice(1, 1), l));
  first(t, removed.problems, 10, 'removed', /record 20 follows record 9: records 10\.\.19 are missing/);
  const inserted = await batched((l) => (l.splice(2, 0, at(l, 0)), l));
  first(t, inserted.problems, 20, 'inserted', /record 0 appears again where record 20 is due/);
  const swapped = await batched((l) => ([l[0], l[1]] = [at(l, 1), at(l, 0)]) && l);
  first(t, swapped.problems, 0, 'reordered', /record 10 comes before record 0/);
  const cut = await batched((l) => l.slice(0, 2));
  first(t, cut.problems, 20, 'truncated', /covers records up to 29: 20\.\.29 are missing/);
});
