// The append-only audit log (issue 6 item 5; SECURITY.md 2 "tamper evidence"), separate from the application
// log. JSON lines in <dir>/audit-NNNNNN.jsonl, each holding one record or the records of one group commit:
//   {"n":N,"prev":"<hex>","hash":"<hex>","ct":"<base64>"}              record N
//   {"n":N,"count":K,"prev":"<hex>","hash":"<hex>","ct":"<base64>"}    records N..N+K-1 (K >= 2)
// - Every record has its chain hash H(n) = SHA-256(H(n-1) ‖ JCS(record)) (RFC 8785, canonical-json.ts); H(-1)
//   is 32 zero bytes. A line's prev is the hash before its first record, its hash the one after its last. The
//   chain continues across files: a file rotates when it would pass maxFileBytes.
// - A record is stored as the JCS text of its PS3.15 form (a JSON object), or, for a request whose facts make
//   exactly one record, as those facts (request-facts.ts: a JSON array, RFC 8785 text too), which the reader
//   makes into the record (readAuditLog). Most records are of that kind; the writer then does not build them.
// - ct = nonce(12) ‖ AES-256-GCM(audit key, plaintext) ‖ tag(16). One record: plaintext JCS(record), AAD
//   "dicomvault audit-record|v1|<n>|<prev>". K records: their JCS texts joined by "\n" (JCS never holds a raw
//   line feed), AAD "dicomvault audit-batch|v2|<n>|<K>|<prev>|<hash>". Records hold PHI and are encrypted at
//   rest like the rest of the data folder (SECURITY.md 4); a line moved to another place does not decrypt there.
//   One cipher per group commit rather than per record is most of what keeps auditing cheap (bench/README.md,
//   "The audit trail: what it costs"); the chain still names each record, so `audit verify` names the first
//   record of a line that was altered.
// - Every checkpointEvery records or checkpointIntervalMs, and on close, a checkpoint line
//   {"n","hash","time","sig"} goes to <dir>/checkpoints.jsonl, sig = Ed25519 over JCS({n,hash,time}); the
//   onCheckpoint hook ships it off-box (a chain alone cannot show tail truncation or a full rewrite).
// Appends are serialised; concurrent ones are batched into one write (O_APPEND) and one fdatasync, and
// append() resolves only after its batch is on disk. A write or sync failure stops the log (every later
// append rejects): the caller fails closed. A torn last line (a crash mid-write) stops open() unless the
// caller asks to set it aside (recoverTornTail), which is then reported in `recovered`: never silently.
// verify-audit.ts checks a log.
// One process at a time appends to a folder: open() takes <dir>/.lock (storage/pid-lock.ts: O_EXCL, the pid;
// a lock of a process that no longer exists is taken over) and close() removes it; a second open() while the
// owner lives is an AuditLogInUseError. A tool that must add a record meanwhile (`dicomvault audit report`
// auditing its own read) leaves it in <dir>/inbox (audit-inbox.ts); the owner appends inbox files on open and
// every inboxIntervalMs, and sets aside (inbox/rejected/, counted in inboxRejected) any that does not decrypt.
// onAppended sees each record once it is durable (the syslog export, audit-export.ts).

import { type KeyObject, createCipheriv, createDecipheriv, createHash, randomBytes, sign, verify } from 'node:crypto';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { INBOX_DIR, readInboxRecord, removeInboxFile, setAsideInboxFile } from './audit-inbox.js';
import type { AuditRecord } from './audit-record.js';
import { recordBuilder } from './auditor.js';
import { canonicalJson } from './canonical-json.js';
import { isFactsText, requestRecords } from './request-facts.js';
import { fsyncDirectorySync } from '../storage/durable-file.js';
import { LockHeldError, acquirePidLock } from '../storage/pid-lock.js';

export const CHECKPOINT_FILE = 'checkpoints.jsonl';
/** The writer lock of a log folder. */
export const LOCK_FILE = '.lock';
const AUDIT_FILE = /^audit-(\d{6})\.jsonl$/;
const INBOX_FILE = /^[^.].*\.rec$/;
export const ZERO_HASH = '0'.repeat(64);
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEX64 = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export const DEFAULT_AUDIT_LOG_OPTIONS = {
  checkpointEvery: 1000,
  checkpointIntervalMs: 60_000,
  maxFileBytes: 64 * 1024 * 1024,
  maxBatch: 128,
  inboxIntervalMs: 1000,
  commitDelayMs: 0,
} as const;

export interface AuditLogOptions {
  /** A checkpoint after this many records (default 1000). */
  checkpointEvery?: number;
  /** ... or after this long when records were added since the last one (default 60 s; 0 = never by time). */
  checkpointIntervalMs?: number;
  /** A file rotates before it would grow past this (default 64 MiB). */
  maxFileBytes?: number;
  /** Records per write + fdatasync at most (default 128: ~5 ms of CPU per batch, so the event loop is not held long). */
  maxBatch?: number;
  /**
   * Group commit: a record may wait this long for others before the batch is written and fdatasync'd (default 0:
   * at once). A server auditing every request sets a few ms: one fdatasync per batch instead of per request, the
   * difference between auditing costing a tenth of a QIDO and almost nothing (bench/audit-cost.sh).
   */
  commitDelayMs?: number;
  /** Called after each checkpoint is durable: ship it off-box (syslog, WORM bucket). */
  onCheckpoint?: (checkpoint: Checkpoint) => void;
  /** A torn last line is moved to torn-<file>-<offset> and the log continues (reported in `recovered`). */
  recoverTornTail?: boolean;
  /**
   * Write and fdatasync the records with blocking calls on this thread instead of the thread pool: for a thread
   * that does nothing else (audit-log-worker.ts). It saves each group commit two trips through the pool, and
   * what arrives during an fdatasync simply forms the next batch.
   */
  blockingWrites?: boolean;
  /**
   * Called with each record and its number once it is on disk (e.g. the syslog export). Synchronous and
   * isolated: what it throws is ignored (the record is in the log either way).
   */
  onAppended?: (record: AuditRecord, n: number) => void;
  /** How often the inbox (records other processes left, audit-inbox.ts) is ingested (default 1 s; 0 = only on open). */
  inboxIntervalMs?: number;
}

/** One line of an audit file: records n..n+count-1. */
export interface RecordLine {
  n: number;
  /** 1 for a line without "count". */
  count: number;
  /** The chain hash before the line's first record. */
  prev: string;
  /** The chain hash of its last record. */
  hash: string;
  ct: string;
}

/** A group commit's records go in lines of at most this much plaintext (a line holds at least one record). */
const MAX_LINE_PLAINTEXT = 1024 * 1024;

export interface Checkpoint {
  n: number;
  hash: string;
  time: string;
  /** Ed25519 signature over JCS({n, hash, time}), base64. */
  sig: string;
}

export interface AuditEntry {
  n: number;
  hash: string;
  record: AuditRecord;
}

export interface AuditReadFilter {
  /** Records with n >= fromN. */
  fromN?: number;
  /** ISO date-times, inclusive. */
  since?: string;
  until?: string;
  /** EventID codes, e.g. ['110112']. */
  eventIds?: string[];
  /** A participant object of type 1 (person) with this id. */
  patientId?: string;
  /** An active participant with this userId. */
  userId?: string;
}

/** What open() set aside when recoverTornTail was on. */
export interface TornTail {
  file: string;
  offset: number;
  bytes: number;
  movedTo: string;
}

/** The log cannot be opened or continued as it is: an operator must look (it is never silently repaired). */
export class AuditLogError extends Error {
  override name = 'AuditLogError';
}

/** Another live process has the log open (its writer lock): records for it go to its inbox (audit-inbox.ts). */
export class AuditLogInUseError extends AuditLogError {
  override name = 'AuditLogInUseError';
  constructor(
    readonly pid: number,
    lockFile: string,
  ) {
    super(
      pid > 0
        ? `the audit log is in use by process ${pid} (${lockFile}; if that process is not dicomvault, remove the file)`
        : `the audit log is in use by another process (${lockFile} is being written)`,
    );
  }
}

export function auditFileName(index: number): string {
  return `audit-${String(index).padStart(6, '0')}.jsonl`;
}

/** The names in `dir`; none when it does not exist. */
function namesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** The audit files of `dir` in chain order: [index, full path]. */
export function listAuditFiles(dir: string): { index: number; file: string }[] {
  return namesIn(dir)
    .map((name) => ({ name, m: AUDIT_FILE.exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
    .map(({ name, m }) => ({ index: Number(m[1]), file: path.join(dir, name) }))
    .sort((a, b) => a.index - b.index);
}

/** The lines of `file` with their byte offsets; `terminated` is false only for a last line without "\n". */
export async function* readLines(file: string): AsyncGenerator<{ text: string; offset: number; terminated: boolean }> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let offset = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, i);
      const line = pendingBytes === 0 ? piece : Buffer.concat([...pending, piece]);
      yield { text: line.toString('utf8'), offset, terminated: true };
      offset += line.length + 1;
      pending = [];
      pendingBytes = 0;
      start = i + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
    }
  }
  if (pendingBytes > 0) yield { text: Buffer.concat(pending).toString('utf8'), offset, terminated: false };
}

/** The inbox files (audit-inbox.ts) of the log in `dir`, in the order they were left; temp files (`.name.tmp`) are not whole yet. */
export function listInbox(dir: string): string[] {
  const inbox = path.join(dir, INBOX_DIR);
  return namesIn(inbox).filter((name) => INBOX_FILE.test(name)).sort().map((name) => path.join(inbox, name));
}

/** A JSON object's fields, or null for anything else (a torn or foreign line). */
function jsonFields(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A well-formed record line, or null. */
export function parseRecordLine(text: string): RecordLine | null {
  const v = jsonFields(text);
  if (!v) return null;
  const { n, count = 1, prev, hash, ct } = v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return null;
  // A line of one record has no count (the v1 form); "count":1 is not written, so it is not accepted either.
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || (count === 1 && 'count' in v)) return null;
  if (typeof prev !== 'string' || !HEX64.test(prev) || typeof hash !== 'string' || !HEX64.test(hash)) return null;
  if (typeof ct !== 'string' || !BASE64.test(ct) || ct.length < 4) return null;
  return { n, count, prev, hash, ct };
}

/** A well-formed checkpoint line, or null (the signature is not checked here). */
export function parseCheckpointLine(text: string): Checkpoint | null {
  const v = jsonFields(text);
  if (!v) return null;
  const { n, hash, time, sig } = v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || typeof hash !== 'string' || !HEX64.test(hash)) return null;
  if (typeof time !== 'string' || typeof sig !== 'string') return null;
  return { n, hash, time, sig };
}

/** H(n) = SHA-256(H(n-1) ‖ JCS(record)), hex. */
export function chainHash(prevHex: string, canonicalRecord: Buffer | string): string {
  return createHash('sha256').update(Buffer.from(prevHex, 'hex')).update(canonicalRecord).digest('hex');
}

function lineAad(line: Omit<RecordLine, 'ct'>): Buffer {
  const text =
    line.count === 1
      ? `dicomvault audit-record|v1|${line.n}|${line.prev}`
      : `dicomvault audit-batch|v2|${line.n}|${line.count}|${line.prev}|${line.hash}`;
  return Buffer.from(text, 'utf8');
}

/** Random nonces drawn from one randomBytes call per 4096 records: a call per record costs as much as the cipher. */
let noncePool = Buffer.alloc(0);
let noncePoolAt = 0;
function freshNonce(): Buffer {
  if (noncePoolAt + NONCE_BYTES > noncePool.length) {
    noncePool = randomBytes(NONCE_BYTES * 4096);
    noncePoolAt = 0;
  }
  noncePoolAt += NONCE_BYTES;
  return noncePool.subarray(noncePoolAt - NONCE_BYTES, noncePoolAt);
}

/** The "ct" of a line (see the top of this file): `plaintext` is its records' JCS texts joined by "\n". */
export function encryptLine(key: Buffer, line: Omit<RecordLine, 'ct'>, plaintext: Buffer): string {
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(lineAad(line));
  return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]).toString('base64');
}

/** The JSON text of a line, as JSON.stringify would write it (a number, hex and base64 need no escaping). */
function lineText(line: RecordLine): string {
  const count = line.count === 1 ? '' : `"count":${line.count},`;
  return `{"n":${line.n},${count}"prev":"${line.prev}","hash":"${line.hash}","ct":"${line.ct}"}\n`;
}

/** The plaintext of a line (its records' JCS texts joined by "\n"), or null when it fails authentication (altered, moved, or the wrong key). */
export function decryptLine(key: Buffer, line: RecordLine): Buffer | null {
  const ct = Buffer.from(line.ct, 'base64');
  if (ct.length < NONCE_BYTES + TAG_BYTES) return null;
  const decipher = createDecipheriv('aes-256-gcm', key, ct.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(lineAad(line));
  decipher.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
  const body = decipher.update(ct.subarray(NONCE_BYTES, ct.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    return null;
  }
  return body;
}

/**
 * The records of a decrypted line with their chain hashes, or null when they are not `line.count` records or
 * their chain does not run from line.prev to line.hash (an authentic line never does that: it was written so).
 */
export function recordsOfLine(line: RecordLine, plaintext: Buffer): { text: Buffer; hash: string }[] | null {
  const records: { text: Buffer; hash: string }[] = [];
  let prev = line.prev;
  let start = 0;
  for (let i = 0; i < line.count; i++) {
    const end = i === line.count - 1 ? plaintext.length : plaintext.indexOf(0x0a, start);
    if (end === -1) return null;
    const text = plaintext.subarray(start, end);
    prev = chainHash(prev, text);
    records.push({ text, hash: prev });
    start = end + 1;
  }
  return prev === line.hash && start === plaintext.length + 1 ? records : null;
}

/** The signed bytes of a checkpoint. */
export function checkpointPayload(c: { n: number; hash: string; time: string }): Buffer {
  return Buffer.from(canonicalJson({ n: c.n, hash: c.hash, time: c.time }), 'utf8');
}

export function signCheckpoint(signingKey: KeyObject, c: { n: number; hash: string; time: string }): Checkpoint {
  return { n: c.n, hash: c.hash, time: c.time, sig: sign(null, checkpointPayload(c), signingKey).toString('base64') };
}

export function checkpointSignatureValid(publicKey: KeyObject, c: Checkpoint): boolean {
  try {
    return verify(null, checkpointPayload(c), publicKey, Buffer.from(c.sig, 'base64'));
  } catch {
    return false;
  }
}

/** The decrypted records of the log in `dir` (no chain check: verify-audit.ts does that). Skips an unterminated last line. */
export async function* readAuditLog(dir: string, key: Buffer, filter: AuditReadFilter = {}): AsyncGenerator<AuditEntry> {
  for (const { file } of listAuditFiles(dir)) {
    for await (const { text, offset, terminated } of readLines(file)) {
      if (!terminated) break;
      const line = parseRecordLine(text);
      if (!line) throw new AuditLogError(`${file} at byte ${offset}: not an audit record line (run dicomvault audit verify)`);
      if (filter.fromN !== undefined && line.n + line.count <= filter.fromN) continue;
      const plaintext = decryptLine(key, line);
      if (!plaintext) throw new AuditLogError(`${file}: record ${line.n} fails authentication (run dicomvault audit verify)`);
      const records = recordsOfLine(line, plaintext);
      if (!records) throw new AuditLogError(`${file}: the records from ${line.n} do not chain (run dicomvault audit verify)`);
      for (const [i, { text, hash }] of records.entries()) {
        const n = line.n + i;
        if (filter.fromN !== undefined && n < filter.fromN) continue;
        const record = storedRecord(text.toString('utf8'), `${file}: record ${n}`);
        if (matches(record, filter)) yield { n, hash, record };
      }
    }
  }
}

/** The record a stored text is: its JCS text, or a request's facts stored as its one record (request-facts.ts). */
function storedRecord(text: string, where: string): AuditRecord {
  if (!isFactsText(text)) return JSON.parse(text) as AuditRecord;
  let records: AuditRecord[];
  try {
    records = requestRecords(text, recordBuilder());
  } catch (e) {
    throw new AuditLogError(`${where} is not a request's facts: ${(e as Error).message}`);
  }
  if (records.length !== 1) throw new AuditLogError(`${where}: request facts stored as a record make ${records.length} records`);
  return records[0]!;
}

function matches(r: AuditRecord, f: AuditReadFilter): boolean {
  const time = Date.parse(r.dateTime);
  if (f.since !== undefined && !(time >= Date.parse(f.since))) return false;
  if (f.until !== undefined && !(time <= Date.parse(f.until))) return false;
  if (f.eventIds !== undefined && !f.eventIds.includes(r.eventId.code)) return false;
  if (f.patientId !== undefined && !r.objects.some((o) => o.typeCode === 1 && o.id === f.patientId)) return false;
  if (f.userId !== undefined && !r.participants.some((p) => p.userId === f.userId)) return false;
  return true;
}

/** What appendCanonical() resolves with: the first record's number and each record's chain hash. */
export interface AppendedRecords {
  first: number;
  hashes: string[];
}

type QueueItem =
  | { kind: 'records'; texts: string[]; record?: AuditRecord; resolve: (v: AppendedRecords) => void; reject: (e: unknown) => void }
  | { kind: 'checkpoint'; resolve: (v: Checkpoint | null) => void; reject: (e: unknown) => void };

interface LastLine {
  text: string;
  offset: number;
  terminated: boolean;
}

export class AuditLog {
  private readonly key: Buffer;
  private readonly options: Required<Omit<AuditLogOptions, 'onCheckpoint' | 'onAppended' | 'recoverTornTail' | 'blockingWrites'>> &
    Pick<AuditLogOptions, 'blockingWrites'> &
    Pick<AuditLogOptions, 'onCheckpoint' | 'onAppended'>;
  private queue: QueueItem[] = [];
  private running: Promise<void> | null = null;
  private failed: Error | null = null;
  private closing = false;
  private timer: NodeJS.Timeout | undefined;
  /** Set while records wait for a group commit (commitDelayMs). */
  private commitTimer: NodeJS.Timeout | undefined;
  private checkpointHandle: FileHandle | null = null;
  private writesValue = 0;
  private inboxTimer: NodeJS.Timeout | undefined;
  private ingesting: Promise<number> | null = null;
  private inboxRejectedValue = 0;
  private closed: Promise<void> | null = null;

  private constructor(
    readonly dir: string,
    key: Buffer,
    private readonly signingKey: KeyObject,
    options: AuditLogOptions,
    private fileIndex: number,
    private handle: FileHandle,
    private fileSize: number,
    private nextN: number,
    private prevHash: string,
    private lastCheckpointValue: Checkpoint | null,
    /** What open() set aside (recoverTornTail), for the caller to log and audit. */
    readonly recovered: TornTail[],
    private readonly releaseLock: () => void,
  ) {
    this.key = Buffer.alloc(key.length);
    key.copy(this.key);
    this.options = { ...DEFAULT_AUDIT_LOG_OPTIONS, ...stripUndefined(options) };
    if (this.options.checkpointIntervalMs > 0) {
      this.timer = setInterval(() => {
        if (this.nextN - 1 > (this.lastCheckpointValue?.n ?? -1)) this.checkpoint().catch(() => undefined);
      }, this.options.checkpointIntervalMs);
      this.timer.unref();
    }
    if (this.options.inboxIntervalMs > 0) {
      this.inboxTimer = setInterval(() => {
        this.ingestInbox().catch(() => undefined);
      }, this.options.inboxIntervalMs);
      this.inboxTimer.unref();
    }
  }

  /**
   * Opens (or starts) the log in `dir` and continues its chain from the last line. The last record must
   * decrypt under `key` (the wrong key stops here, not at the first verify). AuditLogError on a torn or
   * malformed tail (unless recoverTornTail, for a torn one). AuditLogInUseError while another live process has
   * it open. Records waiting in the inbox are appended before it resolves.
   */
  static async open(dir: string, key: Buffer, signingKey: KeyObject, options: AuditLogOptions = {}): Promise<AuditLog> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lockFile = path.join(dir, LOCK_FILE);
    let release: () => void;
    try {
      release = acquirePidLock(lockFile);
    } catch (e) {
      if (e instanceof LockHeldError) throw new AuditLogInUseError(e.pid, lockFile);
      throw e;
    }
    let log: AuditLog;
    try {
      log = await AuditLog.openLocked(dir, key, signingKey, options, release);
    } catch (e) {
      release();
      throw e;
    }
    try {
      await log.ingestInbox();
    } catch (e) {
      await log.close();
      throw e;
    }
    return log;
  }

  private static async openLocked(dir: string, key: Buffer, signingKey: KeyObject, options: AuditLogOptions, release: () => void): Promise<AuditLog> {
    const recovered: TornTail[] = [];
    const files = listAuditFiles(dir);
    let nextN = 0;
    let prevHash = ZERO_HASH;
    for (let i = files.length - 1; i >= 0; i--) {
      const { file } = files[i]!;
      const last = tailLine(file, options.recoverTornTail === true, recovered);
      if (!last) continue;
      const line = parseRecordLine(last.text);
      if (!line) throw new AuditLogError(`${file} at byte ${last.offset}: the last line is not an audit record: run dicomvault audit verify`);
      if (!decryptLine(key, line)) throw new AuditLogError(`${file}: the last line (record ${line.n}) does not decrypt with the audit key`);
      nextN = line.n + line.count;
      prevHash = line.hash;
      break;
    }
    const current = files.at(-1) ?? { index: 1, file: path.join(dir, auditFileName(1)) };
    const handle = await fsp.open(current.file, 'a', 0o600);
    const { size } = await handle.stat();
    if (files.length === 0) fsyncDirectorySync(dir);
    const cpFile = path.join(dir, CHECKPOINT_FILE);
    let lastCheckpoint: Checkpoint | null = null;
    if (fs.existsSync(cpFile)) {
      const last = tailLine(cpFile, options.recoverTornTail === true, recovered);
      if (last) {
        lastCheckpoint = parseCheckpointLine(last.text);
        if (!lastCheckpoint) {
          await handle.close();
          throw new AuditLogError(`${cpFile} at byte ${last.offset}: the last line is not a checkpoint: run dicomvault audit verify`);
        }
      }
    }
    return new AuditLog(dir, key, signingKey, options, current.index, handle, size, nextN, prevHash, lastCheckpoint, recovered, release);
  }

  /** The number of the next record. */
  get size(): number {
    return this.nextN;
  }

  /** Record batches written (each one write + one fdatasync) since open: for metrics. */
  get writes(): number {
    return this.writesValue;
  }

  get lastCheckpoint(): Checkpoint | null {
    return this.lastCheckpointValue;
  }

  /** Inbox files set aside (inbox/rejected/) since open (not decrypting, or not a record): for metrics and alerts. */
  get inboxRejected(): number {
    return this.inboxRejectedValue;
  }

  /**
   * Appends the records waiting in the inbox (audit-inbox.ts) in the order they were left, deleting each file
   * once its record is on disk; a file that does not decrypt is set aside. Resolves with the number appended.
   * Runs on open and every inboxIntervalMs; a call while one runs joins it.
   */
  ingestInbox(): Promise<number> {
    this.ingesting ??= this.ingestFiles().finally(() => {
      this.ingesting = null;
    });
    return this.ingesting;
  }

  private async ingestFiles(): Promise<number> {
    let appended = 0;
    for (const file of listInbox(this.dir)) {
      if (this.closing || this.failed) break;
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const record = readInboxRecord(this.key, bytes);
      // A record append() refuses while the log works (no canonical form) would block the inbox: set aside too.
      const refused = record ? await this.append(record).then(() => false, (e: unknown) => (this.failed || this.closing ? Promise.reject(e) : true)) : true;
      if (refused) {
        setAsideInboxFile(file);
        this.inboxRejectedValue++;
        continue;
      }
      removeInboxFile(file);
      appended++;
    }
    return appended;
  }

  /** Appends `record`; resolves with its number and chain hash once it is on disk (fdatasync). */
  append(record: AuditRecord): Promise<{ n: number; hash: string }> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new AuditLogError('the audit log is closed'));
    let text: string;
    try {
      text = canonicalJson(record);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'records', texts: [text], record, resolve: (r) => resolve({ n: r.first, hash: r.hashes[0]! }), reject });
      this.kick();
    });
  }

  /**
   * Appends records given as their JCS texts (canonicalJson() of each, checked by the caller: the writer
   * thread gets them so from audit-log-thread.ts), in order, as one unit: they are written together and
   * resolve together once on disk. onAppended is not called for them (it needs the records).
   */
  appendCanonical(texts: string[]): Promise<AppendedRecords> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new AuditLogError('the audit log is closed'));
    if (texts.length === 0) return Promise.resolve({ first: this.nextN, hashes: [] });
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'records', texts, resolve, reject });
      this.kick();
    });
  }

  /** Writes a signed checkpoint of the records appended so far (null when there is nothing new to cover). */
  checkpoint(): Promise<Checkpoint | null> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new AuditLogError('the audit log is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'checkpoint', resolve, reject });
      this.kick();
    });
  }

  /** Every record from the files (decrypted), see readAuditLog. */
  read(filter: AuditReadFilter = {}): AsyncGenerator<AuditEntry> {
    return readAuditLog(this.dir, this.key, filter);
  }

  /** Waits for pending appends, writes a last checkpoint, closes the files and zeroes the audit key. */
  close(): Promise<void> {
    this.closed ??= this.closeOnce();
    return this.closed;
  }

  private async closeOnce(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.inboxTimer);
    // A last full pass, so that what was left in the inbox up to now is covered by this run's final checkpoint.
    await this.ingesting?.catch(() => undefined);
    await this.ingestInbox().catch(() => undefined);
    const last = this.failed ? null : this.checkpoint().catch(() => null);
    this.closing = true;
    // Records waiting for a group commit go now (kick() does not wait once closing).
    if (this.queue.length > 0) this.kick();
    await last;
    await this.running;
    await this.handle.close().catch(() => undefined);
    await this.checkpointHandle?.close().catch(() => undefined);
    this.key.fill(0);
    this.releaseLock();
  }

  private kick(): void {
    if (this.running) return;
    const delay = this.options.commitDelayMs;
    if (this.commitTimer) {
      // Waiting for company: a full batch, a checkpoint or closing goes now.
      if (this.queue.length < this.options.maxBatch && !this.closing && this.queue.every((i) => i.kind === 'records')) return;
      clearTimeout(this.commitTimer);
      this.commitTimer = undefined;
    } else if (delay > 0 && !this.closing && this.queue.length < this.options.maxBatch && this.queue.every((i) => i.kind === 'records')) {
      this.commitTimer = setTimeout(() => {
        this.commitTimer = undefined;
        if (!this.running) this.startDrain();
      }, delay);
      return;
    }
    this.startDrain();
  }

  private startDrain(): void {
    this.running = this.drain().finally(() => {
      this.running = null;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      if (this.failed) {
        for (const item of this.queue.splice(0)) item.reject(this.failed);
        return;
      }
      const head = this.queue[0]!;
      if (head.kind === 'checkpoint') {
        this.queue.shift();
        try {
          head.resolve(await this.writeCheckpoint());
        } catch (e) {
          this.fail(e);
          head.reject(this.failed);
        }
        continue;
      }
      // Whole items, up to maxBatch records (an item larger than that goes alone).
      let count = 0;
      let records = 0;
      for (const item of this.queue) {
        if (item.kind !== 'records' || (count > 0 && records + item.texts.length > this.options.maxBatch)) break;
        count++;
        records += item.texts.length;
      }
      const batch = this.queue.splice(0, count) as Extract<QueueItem, { kind: 'records' }>[];
      try {
        const results = await this.writeRecords(batch);
        batch.forEach((item, i) => item.resolve(results[i]!));
        this.notifyAppended(batch, results);
        if (this.nextN - 1 - (this.lastCheckpointValue?.n ?? -1) >= this.options.checkpointEvery) await this.writeCheckpoint();
      } catch (e) {
        this.fail(e);
        for (const item of batch) item.reject(this.failed);
      }
    }
  }

  private notifyAppended(batch: { record?: AuditRecord }[], results: AppendedRecords[]): void {
    const hook = this.options.onAppended;
    if (!hook) return;
    batch.forEach((item, i) => {
      if (!item.record) return;
      try {
        hook(item.record, results[i]!.first);
      } catch {
        // The record is durable; an exporter's failure is its own to report.
      }
    });
  }

  private fail(e: unknown): void {
    this.failed ??= new AuditLogError(`the audit log stopped: ${(e as Error).message}`, { cause: e });
  }

  /** One group commit: the items' records in as few lines as MAX_LINE_PLAINTEXT allows, one write, one fdatasync. */
  private async writeRecords(batch: { texts: string[] }[]): Promise<AppendedRecords[]> {
    let n = this.nextN;
    let prev = this.prevHash;
    const results: AppendedRecords[] = [];
    let text = '';
    let line: { n: number; prev: string; parts: string[]; bytes: number } = { n, prev, parts: [], bytes: 0 };
    const endLine = () => {
      const plaintext = Buffer.from(line.parts.join('\n'), 'utf8');
      const head = { n: line.n, count: line.parts.length, prev: line.prev, hash: prev };
      text += lineText({ ...head, ct: encryptLine(this.key, head, plaintext) });
      line = { n, prev, parts: [], bytes: 0 };
    };
    for (const item of batch) {
      const hashes: string[] = [];
      results.push({ first: n, hashes });
      for (const record of item.texts) {
        // JCS text is mostly ASCII: its length is a close enough measure of its bytes for a soft limit.
        if (line.parts.length > 0 && line.bytes + record.length > MAX_LINE_PLAINTEXT) endLine();
        prev = chainHash(prev, record);
        hashes.push(prev);
        line.parts.push(record);
        line.bytes += record.length + 1;
        n++;
      }
    }
    if (line.parts.length > 0) endLine();
    const bytes = Buffer.from(text, 'utf8');
    if (this.fileSize > 0 && this.fileSize + bytes.length > this.options.maxFileBytes) await this.rotate();
    if (this.options.blockingWrites) {
      writeAllSync(this.handle.fd, bytes);
      fs.fdatasyncSync(this.handle.fd);
    } else {
      await writeAll(this.handle, bytes);
      await this.handle.datasync();
    }
    this.writesValue++;
    this.fileSize += bytes.length;
    this.nextN = n;
    this.prevHash = prev;
    return results;
  }

  private async rotate(): Promise<void> {
    const next = this.fileIndex + 1;
    const handle = await fsp.open(path.join(this.dir, auditFileName(next)), 'ax', 0o600);
    fsyncDirectorySync(this.dir);
    await this.handle.close();
    this.handle = handle;
    this.fileIndex = next;
    this.fileSize = 0;
  }

  private async writeCheckpoint(): Promise<Checkpoint | null> {
    const n = this.nextN - 1;
    if (n < 0) return null;
    if (this.lastCheckpointValue?.n === n) return this.lastCheckpointValue;
    const checkpoint = signCheckpoint(this.signingKey, { n, hash: this.prevHash, time: new Date().toISOString() });
    if (!this.checkpointHandle) {
      this.checkpointHandle = await fsp.open(path.join(this.dir, CHECKPOINT_FILE), 'a', 0o600);
      fsyncDirectorySync(this.dir);
    }
    await writeAll(this.checkpointHandle, Buffer.from(`${JSON.stringify(checkpoint)}\n`, 'utf8'));
    await this.checkpointHandle.datasync();
    this.lastCheckpointValue = checkpoint;
    this.options.onCheckpoint?.(checkpoint);
    return checkpoint;
  }
}

function writeAllSync(fd: number, bytes: Buffer): void {
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The last complete line of `file` (null for an empty file). A torn last line (no "\n": a crash mid-write)
 * is an AuditLogError, or with `recover` is moved aside (torn-<name>-<offset>), cut off and recorded.
 */
function tailLine(file: string, recover: boolean, recovered: TornTail[]): LastLine | null {
  for (;;) {
    const last = lastLine(file);
    if (!last || last.terminated) return last;
    if (!recover) {
      throw new AuditLogError(
        `${file} ends with a torn line at byte ${last.offset} (${Buffer.byteLength(last.text)} bytes, a crash during a write?): ` +
          'run dicomvault audit verify; the log is not continued until an operator looks',
      );
    }
    const movedTo = path.join(path.dirname(file), `torn-${path.basename(file)}-${last.offset}`);
    fs.writeFileSync(movedTo, last.text, { mode: 0o600, flag: 'wx' });
    const fd = fs.openSync(file, 'r+');
    try {
      fs.ftruncateSync(fd, last.offset);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fsyncDirectorySync(path.dirname(file));
    recovered.push({ file, offset: last.offset, bytes: Buffer.byteLength(last.text), movedTo });
  }
}

/** The last line of `file` read backwards in growing chunks (records are small; the file may be large). */
function lastLine(file: string): LastLine | null {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return null;
    for (let chunk = 64 * 1024; ; chunk *= 4) {
      const start = Math.max(0, size - chunk);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      const terminated = buf[buf.length - 1] === 0x0a;
      const body = terminated ? buf.subarray(0, buf.length - 1) : buf;
      const nl = body.lastIndexOf(0x0a);
      if (nl !== -1 || start === 0) {
        return { text: body.subarray(nl + 1).toString('utf8'), offset: start + nl + 1, terminated };
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
