// The audit log's inbox (SECURITY.md 2: "Reading the audit log" is itself an audit event): a tool that must
// write an audit record while another process holds the log (audit-log.ts: one writer, audit/.lock) leaves it
// as one file <audit>/inbox/<time>-<random>.rec, and the writer appends it to the chain (AuditLog ingests the
// inbox when it opens and then every inboxIntervalMs) and deletes the file.
// A file is nonce(12) ‖ AES-256-GCM(audit key, JCS(record)) ‖ tag(16), AAD "dicomvault audit-inbox|v1": records
// hold PHI, and only a holder of the audit key can put a record into the chain this way. Written to a temp name,
// fsynced, renamed, folder fsynced: the writer sees a whole file or none.
// Delivery is at least once: a crash between the append and the delete appends the record again on the next ingest.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditRecord } from './audit-record.js';
import { canonicalJson } from './canonical-json.js';
import { fsyncDirectorySync, replaceFileDurably } from '../storage/durable-file.js';
import { aeadUnwrap, aeadWrap } from '../storage/keys/aead-wrap.js';

export const INBOX_DIR = 'inbox';
/** Where files that do not decrypt (another key, damaged, foreign) are set aside for an operator. */
export const INBOX_REJECTED_DIR = 'rejected';
const INBOX_CONTEXT = 'dicomvault audit-inbox|v1';

/** Leaves `record` in the inbox of the audit log `auditDir`; returns the file's path. */
export function writeInboxRecord(auditDir: string, key: Buffer, record: AuditRecord, now = new Date()): string {
  const dir = path.join(auditDir, INBOX_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  const file = path.join(dir, `${stamp}-${randomBytes(8).toString('hex')}.rec`);
  replaceFileDurably(file, aeadWrap(key, Buffer.from(canonicalJson(record), 'utf8'), INBOX_CONTEXT));
  return file;
}

/** The record in an inbox file, or null when it does not decrypt under `key` or is not a record. */
export function readInboxRecord(key: Buffer, bytes: Buffer): AuditRecord | null {
  const plain = aeadUnwrap(key, bytes, INBOX_CONTEXT);
  if (!plain) return null;
  try {
    const v = JSON.parse(plain.toString('utf8')) as Partial<AuditRecord> | null;
    const ok = v !== null && typeof v === 'object' && typeof v.eventId?.code === 'string' && Array.isArray(v.participants) && Array.isArray(v.objects);
    return ok ? (v as AuditRecord) : null;
  } catch {
    return null;
  } finally {
    plain.fill(0);
  }
}

/** Moves an inbox file that cannot be ingested to inbox/rejected/ (never deleted: an operator looks). */
export function setAsideInboxFile(file: string): string {
  const dir = path.join(path.dirname(file), INBOX_REJECTED_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const movedTo = path.join(dir, path.basename(file));
  fs.renameSync(file, movedTo);
  fsyncDirectorySync(path.dirname(file));
  return movedTo;
}

/** Deletes an ingested inbox file durably. */
export function removeInboxFile(file: string): void {
  fs.rmSync(file, { force: true });
  fsyncDirectorySync(path.dirname(file));
}
