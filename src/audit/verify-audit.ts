// `dicomvault audit verify` (issue 6 item 5; SECURITY.md 2): recomputes the hash chain of an audit log
// (audit-log.ts) from record 0, checks every checkpoint's Ed25519 signature and that its hash is the chain's
// at its n, and reports the FIRST record at which the log stops verifying (after it the chain proves nothing),
// classified: a line altered (modified), undecryptable, a record out of place (inserted, removed, reordered),
// or the log ending before the last signed checkpoint (truncated). Records are decrypted (the hash covers the
// plaintext), so this needs the audit key; the checkpoints alone need only the public key.
// Limits: a rewrite of the whole log by someone holding the audit key is caught only up to the last
// checkpoint, and checkpoints removed from checkpoints.jsonl are caught only by their off-box copies.

import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  CHECKPOINT_FILE,
  type Checkpoint,
  ZERO_HASH,
  checkpointSignatureValid,
  decryptLine,
  listAuditFiles,
  parseCheckpointLine,
  parseRecordLine,
  readLines,
  recordsOfLine,
} from './audit-log.js';

export type AuditProblemKind = 'modified' | 'inserted' | 'removed' | 'reordered' | 'truncated' | 'undecryptable' | 'bad-checkpoint-signature';

export interface AuditProblem {
  /** The record number where the log stops verifying (for a checkpoint problem: the checkpoint's n; -1 when unknown). */
  n: number;
  kind: AuditProblemKind;
  /** File names, byte offsets and record numbers only: never record contents. */
  detail: string;
}

export interface AuditVerifyReport {
  /** Records verified from 0 without a break. */
  records: number;
  files: number;
  /** The validly signed checkpoint with the highest n. */
  lastCheckpoint: Checkpoint | null;
  problems: AuditProblem[];
}

export async function verifyAuditLog(dir: string, key: Buffer, publicKey: KeyObject): Promise<AuditVerifyReport> {
  const problems: AuditProblem[] = [];
  const { byN, last } = await readCheckpoints(dir, publicKey, problems);
  const files = listAuditFiles(dir);
  const lastPosition = await positionsOfRecords(files.map((f) => f.file));

  let expected = 0;
  let prev = ZERO_HASH;
  let position = 0;
  let broken: AuditProblem | null = null;
  const stop = (kind: AuditProblemKind, detail: string) => {
    broken = { n: expected, kind, detail };
  };
  outer: for (const [i, { file }] of files.entries()) {
    const name = path.basename(file);
    for await (const { text, offset, terminated } of readLines(file)) {
      const at = `${name} byte ${offset}`;
      if (!terminated) {
        if (i === files.length - 1) stop('truncated', `${at}: the last line is torn (incomplete write)`);
        else stop('modified', `${at}: the file ends without a line end but more files follow`);
        break outer;
      }
      const line = parseRecordLine(text);
      if (!line) {
        stop('modified', `${at}: not an audit record line`);
        break outer;
      }
      if (line.n < expected) {
        stop('inserted', `${at}: record ${line.n} appears again where record ${expected} is due`);
        break outer;
      }
      if (line.n > expected) {
        if ((lastPosition.get(expected) ?? -1) > position) stop('reordered', `${at}: record ${line.n} comes before record ${expected}`);
        else stop('removed', `${at}: record ${line.n} follows record ${expected - 1}: ${line.n === expected + 1 ? `record ${expected} is` : `records ${expected}..${line.n - 1} are`} missing`);
        break outer;
      }
      if (line.prev !== prev) {
        stop('modified', `${at}: its prev is not the hash of record ${expected - 1}`);
        break outer;
      }
      const plaintext = decryptLine(key, line);
      const what = line.count === 1 ? 'the record' : `the line of records ${line.n}..${line.n + line.count - 1}`;
      if (!plaintext) {
        stop('undecryptable', `${at}: ${what} fails authentication (altered ciphertext, or a line moved here)`);
        break outer;
      }
      const records = recordsOfLine(line, plaintext);
      if (!records) {
        stop('modified', `${at}: ${what} does not chain: its hash is not SHA-256(prev ‖ record) in turn`);
        break outer;
      }
      for (const { hash } of records) {
        const signed = byN.get(expected);
        if (signed && signed.some((c) => c.hash !== hash)) {
          stop('modified', `${at}: a signed checkpoint holds another hash for record ${expected}: the log was rewritten up to here`);
          break outer;
        }
        expected++;
      }
      prev = line.hash;
      position++;
    }
  }
  const chainProblem = broken as AuditProblem | null;
  if (chainProblem) problems.unshift(chainProblem);
  else if (last && expected <= last.n) {
    problems.unshift({
      n: expected,
      kind: 'truncated',
      detail: `the log ends after record ${expected - 1} but the checkpoint of ${last.time} covers records up to ${last.n}: ${expected}..${last.n} are missing`,
    });
  }
  return { records: expected, files: files.length, lastCheckpoint: last, problems };
}

/** The validly signed checkpoints by n, and the last of them; a bad signature or malformed line is a problem. */
async function readCheckpoints(
  dir: string,
  publicKey: KeyObject,
  problems: AuditProblem[],
): Promise<{ byN: Map<number, Checkpoint[]>; last: Checkpoint | null }> {
  const byN = new Map<number, Checkpoint[]>();
  let last: Checkpoint | null = null;
  const file = path.join(dir, CHECKPOINT_FILE);
  if (!fs.existsSync(file)) return { byN, last };
  for await (const { text, offset, terminated } of readLines(file)) {
    const checkpoint = parseCheckpointLine(text);
    if (!checkpoint) {
      const what = terminated ? 'not a checkpoint' : 'a torn checkpoint line';
      problems.push({ n: -1, kind: 'bad-checkpoint-signature', detail: `${CHECKPOINT_FILE} byte ${offset}: ${what}` });
      continue;
    }
    if (!checkpointSignatureValid(publicKey, checkpoint)) {
      problems.push({
        n: checkpoint.n,
        kind: 'bad-checkpoint-signature',
        detail: `${CHECKPOINT_FILE} byte ${offset}: the checkpoint of record ${checkpoint.n} (${checkpoint.time}) has no valid signature`,
      });
      continue;
    }
    byN.set(checkpoint.n, [...(byN.get(checkpoint.n) ?? []), checkpoint]);
    if (!last || checkpoint.n > last.n) last = checkpoint;
  }
  return { byN, last };
}

/** Record number -> the last line position holding it (to tell a reordered record from a removed one). */
async function positionsOfRecords(files: string[]): Promise<Map<number, number>> {
  const positions = new Map<number, number>();
  let position = 0;
  for (const file of files) {
    for await (const { text, terminated } of readLines(file)) {
      if (!terminated) break;
      const line = cheapN(text);
      if (line) for (let n = line.n; n < line.n + line.count; n++) positions.set(n, position);
      position++;
    }
  }
  return positions;
}

/** The "n" and "count" of a line without parsing its ciphertext. */
function cheapN(text: string): { n: number; count: number } | null {
  const m = /^\{"n":(\d+),(?:"count":(\d+),)?/.exec(text);
  return m ? { n: Number(m[1]), count: Math.min(Number(m[2] ?? 1), 1_000_000) } : null;
}
