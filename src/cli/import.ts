// `dicomvault import DIR [--config FILE]` (issue 8 item 5): brings an existing folder of DICOM files into the
// archive (services/import-files.ts: the walk, and each file through the STOW store path), with a progress bar on
// stderr and a summary on stdout: stored, already stored (the same SOP Instance UID with identical bytes: nothing
// written twice), failed by PS3.4 failure reason with a few example paths (relative to DIR: never DIR itself),
// skipped by reason. Exit codes: 0 nothing failed, 1 some file failed (or the import was interrupted, or could not
// run), 2 wrong command line.
//
// Acts as the operating-system user running it, like the other tools (no policy decision: it can read the key
// file). Audited as one 110104 "DICOM Instances Transferred" C (U when an instance was replaced) per study, the OS
// user as the requestor (role Source), this tool on this host as the destination.
//
// Never beside a running server: the import becomes the audit log's writer (its single-writer lock, audit/.lock)
// for its whole run. A server holding the log makes the import refuse to start; a server started during the import
// refuses to start. Why not beside it, as `retention sweep` does through the audit inbox: the server removes, when it
// starts, every blob whose index commit is pending (compose.ts sweepAfterCrash: what a crash left); a server
// (re)started during an import would delete the blob of the file being imported just before the import commits its
// index row, leaving an instance that cannot be read. The lock makes that impossible.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AUDIT_DIR, AUDIT_KEY_FILE } from '../audit/audit-keys.js';
import { LOCK_FILE } from '../audit/audit-log.js';
import { Auditor, CollectedRequestAudit, auditedStudy, sopClassCounts } from '../audit/auditor.js';
import { openStorage, type Storage } from '../compose.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../logger.js';
import type { Config } from '../config/schema.js';
import { readInstance } from '../dicom/dataset-reader.js';
import { FailureReason } from '../dicom/status-codes.js';
import { type ImportFailureReason, type ImportReport, type ImportWalk, importFiles, listImportFiles, operatingSystemAccess } from '../services/import-files.js';
import type { StoreDeps } from '../services/store-instances.js';
import { dataDirHasData } from '../storage/keys/open-key-provider.js';
import { processAlive } from '../storage/pid-lock.js';
import { systemUser } from './audit-access.js';
import { type CliIo, UsageError, oneLine } from './cli-args.js';
import { progressOn, type ProgressStream } from './progress.js';

export interface ImportCliIo extends CliIo {
  stderr: ProgressStream;
  env: Record<string, string | undefined>;
  /** Aborted (SIGINT, SIGTERM): the import stops after the file in progress, audits and reports what it did. */
  signal?: AbortSignal;
}

export const IMPORT_USAGE = `usage: dicomvault import DIR [--config FILE]

  Brings the DICOM files of DIR (and its subfolders) into the archive, each through the same checks as STOW-RS.
  Skips DICOMDIR, hidden files and folders, what is not a regular file, and symbolic links leading out of DIR.
  A file already stored with the same bytes counts as "already stored": running it again is safe.
  Progress on stderr; on stdout a summary: stored, already stored, failed by DICOM failure reason (with a few
  paths relative to DIR), skipped. Each study is audited (110104 Instances Transferred) with you as the requestor.
  Does not run beside the server: stop it first (the import holds the audit log; a server start waits for it).
  Exit codes: 0 nothing failed, 1 some file failed (or the import could not run), 2 wrong command line.
`;

/** Example paths printed per failure reason. */
const EXAMPLES = 3;

export async function runImportCommand(argv: string[], io: ImportCliIo): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    } catch (err) {
      throw new UsageError(oneLine(err));
    }
    if (parsed.values.help === true) {
      io.stdout.write(IMPORT_USAGE);
      return 0;
    }
    if (parsed.positionals.length !== 1) throw new UsageError('one folder to import is required: dicomvault import DIR');
    return await importFolder(parsed.positionals[0]!, parsed.values.config, io);
  } catch (err) {
    io.stderr.write(`dicomvault import: ${oneLine(err)}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

async function importFolder(dir: string, configFile: string | undefined, io: ImportCliIo): Promise<number> {
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`${dir} is not a folder`);
  const config = loadConfig({ configFile, env: io.env });
  const dataDir = path.resolve(config.storage.dataDir);
  // openStorage would start a new archive (and key file) in an empty folder: a wrong path must not do that.
  if (!dataDirHasData(dataDir)) throw new Error(`no archive in ${dataDir} (storage.dataDir): start the server once to create it`);
  if (!fs.existsSync(path.join(dataDir, AUDIT_KEY_FILE))) throw new Error(`no audit log in ${dataDir} (storage.dataDir): ${AUDIT_KEY_FILE} is missing`);
  const [realDir, realData] = [fs.realpathSync(dir), fs.realpathSync(dataDir)];
  if (within(realDir, realData) || within(realData, realDir)) throw new UsageError('the folder to import and the data folder (storage.dataDir) must not contain each other');
  const walk = await listImportFiles(realDir);
  const storage = await openWriter(config, dataDir, io.stderr);
  const progress = progressOn(io.stderr, 'files imported');
  try {
    const store: StoreDeps = {
      index: storage.index,
      blobs: storage.blobs,
      readInstance,
      limits: {
        maxSequenceDepth: config.dicom.maxSequenceDepth,
        maxElements: config.dicom.maxElements,
        maxInflatedBytes: config.dicom.maxInflatedBytes,
        maxHeaderBytes: config.dicom.maxHeaderBytes,
      },
      duplicatePolicy: config.stow.duplicatePolicy,
      // The store service's messages carry no DICOM value; of an error only its code or class (a parser's message
      // could quote the file).
      log: {
        warn: (_obj, msg) => io.stderr.write(`dicomvault import: ${msg}\n`),
        error: (obj, msg) => io.stderr.write(`dicomvault import: ${msg}${obj.err instanceof Error ? ` (${(obj.err as NodeJS.ErrnoException).code ?? obj.err.name})` : ''}\n`),
      },
      retention: { lifecycle: storage.lifecycle, retention: config.retention },
    };
    const report = await importFiles(store, walk.files, {
      access: operatingSystemAccess(systemUser(io.env)),
      maxFileBytes: config.stow.maxPartBytes,
      onProgress: ({ done, total }) => progress.update(done, total),
      ...(io.signal ? { signal: io.signal } : {}),
    });
    progress.end();
    await auditImport(storage, report, io.env);
    io.stdout.write(formatImportReport(report, walk));
    if (report.interrupted) io.stderr.write('dicomvault import: interrupted: the files not yet tried were not imported, run it again\n');
    return report.failed.size === 0 && !report.interrupted ? 0 : 1;
  } finally {
    progress.end();
    await storage.close();
  }
}

const within = (parent: string, child: string): boolean => {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/**
 * The storage with the audit log held by this process, or an error naming the process that holds it. With a logger
 * (JSON lines on stderr), so that with audit.syslogHost set the import's records go to the collector as the
 * server's do (the exporter logs its connection state there, never a record).
 */
async function openWriter(config: Config, dataDir: string, stderr: ProgressStream): Promise<Storage> {
  let storage: Storage;
  try {
    storage = await openStorage(config, { logger: createLogger(config.log.level, { write: (line: string) => void stderr.write(line) }) });
  } catch (err) {
    const holder = lockHolder(path.join(dataDir, AUDIT_DIR, LOCK_FILE));
    if (holder === undefined) throw err;
    throw new Error(`the archive is in use by process ${holder} (a running server?): dicomvault import does not run beside the server, stop it first`);
  }
  for (const torn of storage.audit.recovered) {
    stderr.write(`dicomvault import: set aside a torn last line of the audit log ${path.basename(torn.file)} in ${path.basename(torn.movedTo)}: run dicomvault audit verify\n`);
  }
  return storage;
}

/** The live process named in a pid lock file, if any. */
function lockHolder(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return pid > 0 && pid !== process.pid && processAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One 110104 record per study with instances stored or already stored (the files were transferred either way,
 * as STOW audits an identical re-send): C, or U when an instance replaced another. The study's patient and
 * accession number from the index, its SOP classes with counts from what was imported.
 */
async function auditImport(storage: Storage, report: ImportReport, env: Record<string, string | undefined>): Promise<void> {
  const host = os.hostname();
  const auditor = new Auditor(storage.audit, { id: `dicomvault import@${host}`, typeCode: '4' }, { host });
  const facts = { requestor: { userId: systemUser(env) }, uri: 'dicomvault import', outcome: 0 as const };
  for (const [uid, study] of report.studies) {
    const collected = new CollectedRequestAudit();
    collected.event('store', { replaced: study.replaced });
    const sopClasses = sopClassCounts(study.sopClassUIDs);
    const attributes = storage.index.studyAttributes(uid);
    collected.study(attributes ? auditedStudy(attributes, sopClasses) : { studyInstanceUID: uid, patientId: '', sopClasses });
    await storage.audit.append(auditor.eventRecord('store', collected, facts));
  }
}

const REASON_NAMES: Record<number, string> = {
  [FailureReason.PROCESSING_FAILURE]: 'processing failure',
  [FailureReason.DUPLICATE_SOP_INSTANCE]: 'duplicate SOP instance (same UID, other bytes)',
  [FailureReason.SOP_CLASS_NOT_SUPPORTED]: 'SOP class not supported',
  [FailureReason.NOT_AUTHORIZED]: 'refused: not authorized',
  [FailureReason.OUT_OF_RESOURCES]: 'refused: out of resources',
  [FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS]: 'data set does not match SOP class',
  [FailureReason.CANNOT_UNDERSTAND]: 'cannot understand',
  [FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED]: 'transfer syntax not supported',
};

/** "C000 cannot understand", or the non-DICOM reason itself ("unreadable"). */
export function failureLabel(reason: ImportFailureReason): string {
  if (typeof reason === 'string') return reason;
  const code = reason.toString(16).toUpperCase().padStart(4, '0');
  return `${code} ${REASON_NAMES[reason] ?? 'failure'}`;
}

/**
 * A count line, then per failure reason (DICOM code order) its count and up to three "  path: detail" lines,
 * then per skip reason its count and up to three paths. Paths are relative to the imported folder.
 */
export function formatImportReport(report: ImportReport, walk: ImportWalk): string {
  const failed = [...report.failed.values()].reduce((n, list) => n + list.length, 0);
  const skipped = [...walk.skipped.values()].reduce((n, list) => n + list.length, 0);
  const lines = [`${report.files} files: ${report.stored} stored, ${report.alreadyStored} already stored, ${failed} failed; ${skipped} skipped`];
  const reasons = [...report.failed.keys()].map((r) => [failureLabel(r), r] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [label, reason] of reasons) {
    const list = report.failed.get(reason)!;
    lines.push(`failed ${label}: ${list.length}`);
    for (const f of list.slice(0, EXAMPLES)) lines.push(`  ${f.rel}: ${f.detail}`);
  }
  for (const [reason, list] of walk.skipped) {
    lines.push(`skipped ${reason}: ${list.length}`);
    for (const rel of list.slice(0, EXAMPLES)) lines.push(`  ${rel}`);
  }
  return `${lines.join('\n')}\n`;
}
