// The audit log's off-box copy (SECURITY.md 2, PS3.15 A.6, IHE ATNA): every record appended to the log
// (AuditLog onAppended) goes as DICOM Audit Message XML (record-to-xml.ts) in an RFC 5424 message to the
// collector at audit.syslogHost over TLS (syslog.ts: RFC 5425, verified against audit.syslogCa, mutual TLS with
// audit.syslogCert/syslogKey), through the disk spool <dataDir>/audit-spool while the collector is unreachable.
//
// The spool holds PHI, so it is sealed with AES-256-GCM under a key derived from the audit key (HKDF-SHA256,
// info "dicomvault audit-spool-key|v1": not the record key itself, and a spool file is no record line), AAD
// "dicomvault audit-spool|v1". The TLS files are read once at start; a missing or unreadable one stops the
// start (AuditExportError, fail closed). Without audit.syslogHost there is no export (openAuditExport: undefined).
// send() never rejects and never waits for the network: a record it cannot spool is logged (no content) and
// counted; the hash-chained local log stays the record of truth.

import { X509Certificate, hkdfSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AuditRecord } from './audit-record.js';
import { auditRecordToXml } from './record-to-xml.js';
import {
  type SendResult,
  type SenderLogger,
  type SenderStats,
  type SpoolSeal,
  type SyslogHeaderOptions,
  SyslogTlsSender,
  formatSyslogMessage,
} from './syslog.js';
import type { Config } from '../config/schema.js';
import { aeadUnwrap, aeadWrap } from '../storage/keys/aead-wrap.js';

/** The spool's folder inside the data folder. */
export const AUDIT_SPOOL_DIR = 'audit-spool';
const SPOOL_KEY_INFO = 'dicomvault audit-spool-key|v1';
const SPOOL_CONTEXT = 'dicomvault audit-spool|v1';

/** The export is configured but cannot start (a TLS file missing or not PEM): the server must not start. */
export class AuditExportError extends Error {
  override name = 'AuditExportError';
}

export interface ClosableSpoolSeal extends SpoolSeal {
  /** Zeroes the derived key. */
  close(): void;
}

/** The spool's AEAD: AES-256-GCM under HKDF-SHA256(audit key, info "dicomvault audit-spool-key|v1"). */
export function spoolSealFromAuditKey(auditKey: Buffer): ClosableSpoolSeal {
  const key = Buffer.from(hkdfSync('sha256', auditKey, Buffer.alloc(0), SPOOL_KEY_INFO, 32));
  return {
    seal: (plain) => aeadWrap(key, plain, SPOOL_CONTEXT),
    open: (sealed) => {
      const plain = aeadUnwrap(key, sealed, SPOOL_CONTEXT);
      if (!plain) throw new Error('the spool file fails authentication');
      return plain;
    },
    close: () => key.fill(0),
  };
}

export interface AuditExport {
  /** Spools the record's RFC 5424 message: 'spooled', 'dropped' (spool full, counted) or 'failed' (logged). Never rejects. */
  send(record: AuditRecord): Promise<SendResult | 'failed'>;
  stats(): SenderStats & { failed: number };
  /** Sends what it can within timeoutMs; the rest stays in the spool for the next start. */
  close(timeoutMs?: number): Promise<{ remaining: number }>;
}

export interface AuditExportOptions {
  /** RFC 5424 header fields (default: os.hostname(), no PROCID, MSGID DICOM+RFC3881). */
  header?: Pick<SyslogHeaderOptions, 'hostname' | 'procId' | 'msgId'>;
  /** Reconnect backoff (syslog.ts defaults: 500 ms .. 60 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

function readTlsFile(key: string, file: string): Buffer {
  try {
    return fs.readFileSync(path.resolve(file));
  } catch (e) {
    throw new AuditExportError(`${key}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * The export of `config.audit` (undefined when audit.syslogHost is not set). `key` is the audit key (the spool
 * seal is derived from it and zeroed by close()) or a seal of the caller's.
 */
export function openAuditExport(
  config: Pick<Config, 'audit'>,
  dataDir: string,
  key: Buffer | SpoolSeal,
  logger: SenderLogger,
  options: AuditExportOptions = {},
): AuditExport | undefined {
  const a = config.audit;
  if (a.syslogHost === undefined) return undefined;
  if (a.syslogCa === undefined) throw new AuditExportError('audit.syslogCa is required when audit.syslogHost is set');
  if ((a.syslogCert === undefined) !== (a.syslogKey === undefined)) throw new AuditExportError('audit.syslogCert and audit.syslogKey go together');
  const ca = readTlsFile('audit.syslogCa', a.syslogCa);
  try {
    new X509Certificate(ca);
  } catch (e) {
    throw new AuditExportError(`audit.syslogCa: ${a.syslogCa} is not a PEM certificate: ${(e as Error).message}`);
  }
  const client = a.syslogCert === undefined || a.syslogKey === undefined ? undefined : { cert: readTlsFile('audit.syslogCert', a.syslogCert), key: readTlsFile('audit.syslogKey', a.syslogKey) };
  if (client) {
    try {
      tls.createSecureContext(client);
    } catch (e) {
      throw new AuditExportError(`audit.syslogCert/audit.syslogKey: not a PEM certificate and its private key: ${(e as Error).message}`);
    }
  }
  const owned = Buffer.isBuffer(key) ? spoolSealFromAuditKey(key) : undefined;
  const sender = new SyslogTlsSender({
    host: a.syslogHost,
    port: a.syslogPort,
    ca,
    cert: client?.cert,
    key: client?.key,
    spoolDir: path.join(dataDir, AUDIT_SPOOL_DIR),
    seal: owned ?? (key as SpoolSeal),
    maxSpoolBytes: a.syslogSpoolMaxBytes,
    initialBackoffMs: options.initialBackoffMs,
    maxBackoffMs: options.maxBackoffMs,
    logger,
  });
  let failed = 0;
  const fail = (e: unknown): 'failed' => {
    failed++;
    // The error's name only: a message could quote record content.
    logger.error({ err: (e as Error).name ?? 'Error', failed }, 'audit export: a record could not be spooled for syslog');
    return 'failed';
  };
  return {
    send(record) {
      try {
        return sender.send(formatSyslogMessage(auditRecordToXml(record), options.header)).catch(fail);
      } catch (e) {
        return Promise.resolve(fail(e));
      }
    },
    stats: () => ({ ...sender.stats(), failed }),
    async close(timeoutMs) {
      try {
        return await sender.close(timeoutMs);
      } finally {
        owned?.close();
      }
    },
  };
}
