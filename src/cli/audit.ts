// `dicomvault audit verify [--public-key FILE] [--config FILE]` (issue 6 item 5): checks the audit log of
// storage.dataDir (audit/verify-audit.ts) with the audit keys unwrapped by the KEK of keys.file, the way
// `dicomvault verify` and `keys` open them: read-only, never creates a key, safe while the server runs
// (the last line may be in flight: run it again if only a torn last line is reported).
// Prints a summary line, one tab-separated line per problem (kind, record number, detail: no PHI), then OK or
// FAILED. Exit codes: 0 the log verifies, 1 a problem was found (or the check could not run), 2 wrong command line.

import fs from 'node:fs';
import path from 'node:path';
import { AUDIT_DIR, AUDIT_KEY_FILE, loadAuditKeys, readAuditPublicKey } from '../audit/audit-keys.js';
import { type AuditVerifyReport, verifyAuditLog } from '../audit/verify-audit.js';
import { loadConfig } from '../config/load.js';
import { LocalKeyfileProvider } from '../storage/keys/local-keyfile.js';
import { type CliIo, parseOptions, runSubcommand } from './cli-args.js';

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
`;

export function runAuditCommand(argv: string[], io: AuditCliIo): Promise<number> {
  return runSubcommand('audit', AUDIT_USAGE, { verify }, argv, io);
}

async function verify(argv: string[], io: AuditCliIo): Promise<number> {
  const { values } = parseOptions(argv, { config: { type: 'string', short: 'c' }, 'public-key': { type: 'string' } });
  const config = loadConfig({ configFile: values.config, env: io.env });
  const dataDir = path.resolve(config.storage.dataDir);
  const dir = path.join(dataDir, AUDIT_DIR);
  if (!fs.existsSync(path.join(dataDir, AUDIT_KEY_FILE))) throw new Error(`no audit log in ${dataDir} (storage.dataDir): ${AUDIT_KEY_FILE} is missing`);
  const trusted = values['public-key'] === undefined ? undefined : readAuditPublicKey(path.resolve(values['public-key']));
  // The key file is never created here: the server creates it with a new data folder.
  const provider = LocalKeyfileProvider.open(path.resolve(config.keys.file));
  try {
    const keys = await loadAuditKeys(dataDir, provider);
    try {
      const report = await verifyAuditLog(dir, keys.auditKey, trusted ?? keys.publicKey);
      io.stdout.write(formatAuditReport(report));
      return report.problems.length === 0 ? 0 : 1;
    } finally {
      keys.close();
    }
  } finally {
    provider.close();
  }
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
