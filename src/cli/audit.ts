// `dicomvault audit verify [--public-key FILE] [--config FILE]` (issue 6 item 5): checks the audit log of
// storage.dataDir (audit/verify-audit.ts) with the audit keys unwrapped by the KEK of keys.file, the way
// `dicomvault verify` and `keys` open them: read-only, never creates a key, safe while the server runs
// (the last line may be in flight: run it again if only a torn last line is reported).
// Prints a summary line, one tab-separated line per problem (kind, record number, detail: no PHI), then OK or
// FAILED. Exit codes: 0 the log verifies, 1 a problem was found (or the check could not run), 2 wrong command line.
//
// `dicomvault audit report --patient ID [--from DATE] [--to DATE] [--format text|json] [--config FILE]`: the
// accounting of disclosures of one patient (audit/audit-report.ts). Reading the log is itself audited (110101
// Audit Log Used, the operating-system user as the participant): appended by this process when no server holds
// the log, else left in the log's inbox for the running server to append (audit-inbox.ts). The record is written
// before the report is printed: a report whose reading could not be audited is not shown (fail closed).

import os from 'node:os';
import path from 'node:path';
import { AUDIT_DIR, AUDIT_KEY_FILE, readAuditPublicKey } from '../audit/audit-keys.js';
import { type DisclosureQuery, accountingOfDisclosures, auditLogUsedRecord, formatDisclosuresText } from '../audit/audit-report.js';
import { type AuditVerifyReport, verifyAuditLog } from '../audit/verify-audit.js';
import { appendBesideWriter, systemUser, withAuditKeys } from './audit-access.js';
import { type CliIo, UsageError, parseOptions, runSubcommand } from './cli-args.js';

export interface AuditCliIo extends CliIo {
  env: Record<string, string | undefined>;
}

export const AUDIT_USAGE = `usage: dicomvault audit <subcommand> [--config FILE]

subcommands:
  verify [--public-key FILE]
      Recomputes the hash chain of the audit log (storage.dataDir/${AUDIT_DIR}) from its first record, checks
      every checkpoint's Ed25519 signature and hash, and names the first record that was modified, inserted,
      removed, reordered or cannot be decrypted, and records missing before the last signed checkpoint.
      --public-key: the checkpoint public key to trust (e.g. the off-box copy of audit-signing.pub.pem);
      default: the public key of the signing key in ${AUDIT_KEY_FILE}.
      Exit codes: 0 the log verifies, 1 a problem was found, 2 wrong command line.
  report --patient ID [--from DATE] [--to DATE] [--format text|json]
      Accounting of disclosures: every audit record naming patient ID (a patient participant object) from
      DATE to DATE (YYYY-MM-DD, UTC, both days included; or ISO date-times): time, event, action, outcome,
      who, from where, which studies and how. text: aligned columns ("no records" when there are none);
      json: an array. Reading the log is itself audited (110101 Audit Log Used, as the system user).
      Exit codes: 0 (also when nothing is found), 1 the log cannot be read, 2 wrong command line.
`;

export function runAuditCommand(argv: string[], io: AuditCliIo): Promise<number> {
  return runSubcommand('audit', AUDIT_USAGE, { verify, report }, argv, io);
}

async function verify(argv: string[], io: AuditCliIo): Promise<number> {
  const { values } = parseOptions(argv, { config: { type: 'string', short: 'c' }, 'public-key': { type: 'string' } });
  return withAuditKeys(values.config, io.env, async ({ dir, keys }) => {
    const trusted = values['public-key'] === undefined ? undefined : readAuditPublicKey(path.resolve(values['public-key']));
    const report = await verifyAuditLog(dir, keys.auditKey, trusted ?? keys.publicKey);
    io.stdout.write(formatAuditReport(report));
    return report.problems.length === 0 ? 0 : 1;
  });
}

async function report(argv: string[], io: AuditCliIo): Promise<number> {
  const { values } = parseOptions(argv, {
    config: { type: 'string', short: 'c' },
    patient: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    format: { type: 'string', default: 'text' },
  });
  if (values.patient === undefined || values.patient === '') throw new UsageError('report needs --patient ID');
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError(`--format must be text or json, not ${JSON.stringify(values.format)}`);
  const query: DisclosureQuery = {
    patientId: values.patient,
    since: values.from === undefined ? undefined : reportDate('--from', values.from, false),
    until: values.to === undefined ? undefined : reportDate('--to', values.to, true),
  };
  if (query.since && query.until && query.since > query.until) throw new UsageError(`--from ${values.from} is after --to ${values.to}`);
  const format = values.format;
  return withAuditKeys(values.config, io.env, async ({ config, dir, keys }) => {
    const rows = await accountingOfDisclosures(dir, keys.auditKey, query);
    const host = os.hostname();
    const used = auditLogUsedRecord({ user: systemUser(io.env), host, source: { id: `dicomvault-cli@${host}`, typeCode: '4' }, auditDir: dir, query });
    await appendBesideWriter(config, dir, keys, [used], io.stderr);
    io.stdout.write(format === 'json' ? `${JSON.stringify(rows, null, 2)}\n` : formatDisclosuresText(rows));
    return 0;
  });
}

/** YYYY-MM-DD (UTC; the start of the day, or with endOfDay its last millisecond) or an ISO date-time, as ISO. */
function reportDate(option: string, value: string, endOfDay: boolean): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const day = new Date(`${value}T00:00:00.000Z`);
    if (!Number.isNaN(day.getTime()) && day.toISOString().startsWith(value)) {
      return endOfDay ? new Date(day.getTime() + 86_400_000 - 1).toISOString() : day.toISOString();
    }
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value))) {
    return new Date(value).toISOString();
  }
  throw new UsageError(`${option} ${JSON.stringify(value)} is not a date (YYYY-MM-DD) or an ISO date-time with a zone`);
}


/** "records N, files F, last checkpoint ..., problems P", one line per problem (kind, n, detail), OK or FAILED. */
export function formatAuditReport(report: AuditVerifyReport): string {
  const cp = report.lastCheckpoint;
  const lines = [
    `records ${report.records}, files ${report.files}, last checkpoint ${cp ? `record ${cp.n} at ${cp.time}` : 'none'}, problems ${report.problems.length}`,
  ];
  for (const p of report.problems) lines.push(`${p.kind}\t${p.n}\t${p.detail}`);
  lines.push(report.problems.length === 0 ? 'OK' : 'FAILED');
  return `${lines.join('\n')}\n`;
}
