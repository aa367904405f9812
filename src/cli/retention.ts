// `dicomvault retention sweep [--dry-run] [--config FILE]` (issue 6 item 4): the purge (services/purge.ts) the
// server also runs every retention.sweepIntervalMs, on demand: what has waited in the bin for its grace period is
// removed for good (blobs, bin rows, the study key of a study left with nothing), tombstones stay, and each purged
// study gets a 110105 "DICOM Study Deleted" audit record. --dry-run says what would go and changes nothing (no
// audit record either: nothing was deleted). Progress on stderr, the summary on stdout (UIDs and counts, never
// patient data). Exit codes: 0 done, 1 failed (or a blob could not be deleted), 2 wrong command line.
//
// `dicomvault retention show --study UID`: the study's stored keep-until date, the rules as they decide now (their
// explanations may carry dates derived from the birth date: an operator's terminal, not a log), active holds and
// what of it is in the bin. Read-only.

import os from 'node:os';
import path from 'node:path';
import { purgeRecords } from '../audit/purge-record.js';
import { openStorage } from '../compose.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { isValidUid } from '../dicom/uid.js';
import { explainKeepUntil, formatKeepUntil } from '../services/keep-until.js';
import { DEFAULT_PURGER, purge, type PurgeReport } from '../services/purge.js';
import { dataDirHasData } from '../storage/keys/open-key-provider.js';
import { appendBesideWriter, withAuditKeys } from './audit-access.js';
import { type CliIo, UsageError, parseOptions, runSubcommand } from './cli-args.js';
import { progressOn, type ProgressStream } from './progress.js';

export interface RetentionCliIo extends CliIo {
  stderr: ProgressStream;
  env: Record<string, string | undefined>;
}


export const RETENTION_USAGE = `usage: dicomvault retention <subcommand> [--config FILE]

subcommands:
  sweep [--dry-run]
      Purges what has waited in the bin (deleted or rejected instances) for retention.gracePeriod: deletes the
      objects, keeps a tombstone (UIDs, hash, who, why, when), destroys the key of each study left with nothing
      (crypto-shredding) and writes a "DICOM Study Deleted" audit record per study. Legal holds are checked again:
      held instances stay in the bin. Running it twice does nothing the second time.
      --dry-run: reports what would be purged and changes nothing.
      May run beside the server (which runs the same sweep every retention.sweepIntervalMs): its audit
      records then go through the audit log's inbox, which the server appends.
      Exit codes: 0 done, 1 failed (or an object could not be deleted), 2 wrong command line.
  show --study UID
      The study's keep-until date, the rules that set it (and why, recomputed now), active legal holds, and how many
      of its instances are in the bin. Read-only.
`;

export function runRetentionCommand(argv: string[], io: RetentionCliIo): Promise<number> {
  return runSubcommand('retention', RETENTION_USAGE, { sweep, show }, argv, io);
}

function openArchive(values: { config?: string }, io: RetentionCliIo): Config {
  const config = loadConfig({ configFile: values.config, env: io.env });
  // openStorage would start a new archive (and key file) in an empty folder: a wrong path must not do that.
  if (!dataDirHasData(config.storage.dataDir)) throw new Error(`no archive in ${path.resolve(config.storage.dataDir)} (storage.dataDir)`);
  return config;
}

async function sweep(argv: string[], io: RetentionCliIo): Promise<number> {
  const { values } = parseOptions(argv, { 'dry-run': { type: 'boolean' }, config: { type: 'string', short: 'c' } });
  const dryRun = values['dry-run'] === true;
  const config = openArchive(values, io);
  // Fail closed: a purge that could not be audited does not start (the audit keys must unwrap first).
  if (!dryRun) await withAuditKeys(values.config, io.env, async () => undefined);
  // Never the audit log's writer (the server may hold it): the 110105 records go beside it (cli/audit-access.ts).
  // A dry run changes nothing and writes no audit record.
  const storage = await openStorage(config, { audit: false });
  const progress = progressOn(io.stderr, dryRun ? 'bin instances checked' : 'bin instances purged');
  try {
    const report = await purge(storage, {
      dryRun,
      batchSize: config.retention.sweepBatchSize,
      by: DEFAULT_PURGER,
      onProgress: ({ done, total }) => progress.update(done, total),
    });
    progress.end();
    if (!dryRun && report.studies.length > 0) await appendPurgeRecords(values.config, io, report);
    io.stdout.write(formatPurgeReport(report));
    return report.blobErrors === 0 ? 0 : 1;
  } finally {
    progress.end();
    await storage.close();
  }
}

/**
 * One 110105 record per purged study, appended to the archive's audit log, or to its inbox when the server holds
 * the log. sweep() checked first that the audit keys unwrap: no audit keys, no purge.
 */
async function appendPurgeRecords(configFile: string | undefined, io: RetentionCliIo, report: PurgeReport): Promise<void> {
  await withAuditKeys(configFile, io.env, async ({ config, dir, keys }) => {
    const source = { id: `dicomvault retention sweep@${os.hostname()}`, typeCode: '4' as const };
    await appendBesideWriter(config, dir, keys, purgeRecords(report, DEFAULT_PURGER, source), io.stderr);
  });
}

/** A summary line, one tab-separated line per study (UID, instances, key destroyed), then held studies. */
export function formatPurgeReport(report: PurgeReport): string {
  const verb = report.dryRun ? 'would purge' : 'purged';
  const lines = [
    `${report.dryRun ? 'dry run: ' : ''}${verb} ${report.instances} instances (${report.bytes} bytes) of ${report.studies.length} studies; ` +
      `study keys ${report.dryRun ? 'to destroy' : 'destroyed'} ${report.keysDestroyed}; held ${report.held} instances of ${report.heldStudies.length} studies` +
      (report.blobErrors > 0 ? `; ${report.blobErrors} objects could not be deleted (removed at the next server start)` : ''),
  ];
  for (const s of report.studies) lines.push(`study\t${s.studyInstanceUID}\t${s.instances} instances${s.keyDestroyed ? '\tkey destroyed' : ''}`);
  for (const uid of report.heldStudies) lines.push(`held\t${uid}\tunder legal hold: stays in the bin`);
  return `${lines.join('\n')}\n`;
}

async function show(argv: string[], io: RetentionCliIo): Promise<number> {
  const { values } = parseOptions(argv, { study: { type: 'string' }, config: { type: 'string', short: 'c' } });
  if (values.study === undefined || !isValidUid(values.study)) throw new UsageError('--study UID is required (a valid StudyInstanceUID)');
  const study = values.study;
  const config = openArchive(values, io);
  const storage = await openStorage(config, { audit: false });
  try {
    const stored = storage.lifecycle.getRetention(study);
    const now = new Date();
    const decision = explainKeepUntil({ index: storage.index, retention: config.retention }, study, now);
    const binned = storage.lifecycle.listBin({ studyInstanceUID: study });
    if (!stored && !decision && binned.length === 0) throw new Error(`no study ${study} in the archive`);
    const patientId = storage.index.studyAttributes(study)?.patientId ?? binned[0]?.patientId ?? '';
    const lines = [
      `study ${study}`,
      `keep until ${stored ? `${formatKeepUntil(stored.keepUntil)} (rule ${stored.rules.join(', ')}; computed ${stored.computedAt.toISOString()})` : 'not stored yet'}`,
    ];
    if (decision) {
      lines.push(`rules now: ${formatKeepUntil(decision.keepUntil)}${decision.expired ? ' (expired)' : ''}`);
      for (const r of decision.reasons) lines.push(`  ${r.rule}\t${formatKeepUntil(r.keepUntil)}\t${r.explanation}`);
      for (const n of decision.notes) lines.push(`  note\t${n}`);
    }
    for (const h of storage.lifecycle.activeHoldsFor(study, patientId)) lines.push(`hold\t${h.id}\t"${h.name}" on the ${h.scope} since ${h.placedAt.toISOString()}`);
    lines.push(`in the bin: ${binned.length} instances`);
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await storage.close();
  }
}
