// How command-line tools reach the audit log (issue 6): its keys unwrapped read-only (never created here: the
// server creates them with a new data folder), and appending beside a running server. AuditLog is single-writer
// (audit/.lock): when no process holds it the tool appends itself; when the server does, the records go to the
// log's inbox (audit/audit-inbox.ts), which the server appends within audit.inboxIntervalMs, or on its next start.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeInboxRecord } from '../audit/audit-inbox.js';
import { AUDIT_DIR, AUDIT_KEY_FILE, type AuditKeys, loadAuditKeys } from '../audit/audit-keys.js';
import { AuditLog, AuditLogInUseError } from '../audit/audit-log.js';
import { type AuditRecord, AuditEventId, AuditEventType, alertSubjectObject, auditRecord } from '../audit/audit-record.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LocalKeyfileProvider } from '../storage/keys/local-keyfile.js';

export interface AuditFolder {
  config: Config;
  /** The audit log's folder. */
  dir: string;
  keys: AuditKeys;
}

/** Runs `fn` with the audit keys of storage.dataDir unwrapped; an archive without an audit log is an error. */
export async function withAuditKeys<T>(
  configFile: string | undefined,
  env: Record<string, string | undefined>,
  fn: (folder: AuditFolder) => Promise<T>,
): Promise<T> {
  const config = loadConfig({ configFile, env });
  const dataDir = path.resolve(config.storage.dataDir);
  if (!fs.existsSync(path.join(dataDir, AUDIT_KEY_FILE))) throw new Error(`no audit log in ${dataDir} (storage.dataDir): ${AUDIT_KEY_FILE} is missing`);
  const provider = LocalKeyfileProvider.open(path.resolve(config.keys.file));
  try {
    const keys = await loadAuditKeys(dataDir, provider);
    try {
      return await fn({ config, dir: path.join(dataDir, AUDIT_DIR), keys });
    } finally {
      keys.close();
    }
  } finally {
    provider.close();
  }
}

/** Appends `records` in order: itself when no process holds the log, else through the holder's inbox. */
export async function appendBesideWriter(
  config: Config,
  dir: string,
  keys: AuditKeys,
  records: AuditRecord[],
  stderr: { write(text: string): unknown },
): Promise<'appended' | 'inbox'> {
  let log: AuditLog;
  try {
    log = await AuditLog.open(dir, keys.auditKey, keys.signingKey, {
      checkpointEvery: config.audit.checkpointEvery,
      maxFileBytes: config.audit.maxFileBytes,
      checkpointIntervalMs: 0,
      inboxIntervalMs: 0,
      recoverTornTail: true,
    });
  } catch (e) {
    if (!(e instanceof AuditLogInUseError)) throw e;
    for (const record of records) writeInboxRecord(dir, keys.auditKey, record);
    return 'inbox';
  }
  for (const torn of log.recovered) {
    stderr.write(`dicomvault: set aside a torn last line of the audit log ${path.basename(torn.file)} (${torn.bytes} bytes) in ${path.basename(torn.movedTo)}: run dicomvault audit verify\n`);
  }
  try {
    for (const record of records) await log.append(record);
  } finally {
    await log.close();
  }
  return 'appended';
}

/** The operating-system user running the tool: the requesting participant of its audit records. */
export function systemUser(env: Record<string, string | undefined>): string {
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry for the uid (some containers).
    return env.USER ?? env.LOGNAME ?? 'unknown';
  }
}

/**
 * 110113 Security Alert E, 110129 Security Configuration (SECURITY.md 2: a key change), by the system user from
 * this host: what a command-line tool changed (no PHI), e.g. a key-encryption key rotation.
 */
export function commandSecurityConfigurationRecord(tool: string, description: string, outcome: 0 | 4 | 8, env: Record<string, string | undefined>): AuditRecord {
  const host = os.hostname();
  return auditRecord(
    {
      eventId: AuditEventId.securityAlert,
      action: 'E',
      outcome,
      eventTypes: [AuditEventType.securityConfiguration],
      participants: [{ userId: systemUser(env), userIsRequestor: true, networkAccessPoint: { typeCode: 1, id: host } }],
      objects: [alertSubjectObject(`dicomvault ${tool}`, description)],
    },
    { id: `dicomvault-cli@${host}`, typeCode: '4' },
  );
}
