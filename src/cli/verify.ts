// `dicomvault verify [--study UID] [--config FILE]`: reads back every stored object (services/verify-store.ts)
// through the storage the server uses (compose.ts openStorage: same key file, index key, encrypted blobs) and
// prints a report. Read-only (no crash sweep, no key created), so it may run while the server runs.
// Progress goes to stderr, the report to stdout: counts, then one line per problem, with UIDs and blob keys
// only (never patient names or IDs). Exit codes: 0 all verified, 1 any problem (or stopped), 2 wrong command line.

import path from 'node:path';
import { openStorage } from '../compose.js';
import { isValidUid } from '../dicom/uid.js';
import { loadConfig } from '../config/load.js';
import { type VerifyReport, VerifyAbortedError, verifyStore } from '../services/verify-store.js';
import { dataDirHasData } from '../storage/keys/open-key-provider.js';
import { type CliIo, UsageError, oneLine, parseOptions } from './cli-args.js';
import { progressOn, type ProgressStream } from './progress.js';

export interface VerifyCliIo extends CliIo {
  stderr: ProgressStream;
  env: Record<string, string | undefined>;
}

export const VERIFY_USAGE = `usage: dicomvault verify [--study UID] [--config FILE]

Reads every stored object back (decrypting it) and compares its size and SHA-256 with what the index recorded
at STOW. Reports missing objects, objects that fail authentication (tampered, swapped, corrupted), size and
hash mismatches; objects of erased studies are counted apart. Read-only: safe while the server runs.
Exit codes: 0 everything verified, 1 a problem was found (or the check stopped), 2 wrong command line.
`;

export async function runVerifyCommand(argv: string[], io: VerifyCliIo): Promise<number> {
  try {
    const { values } = parseOptions(argv, { study: { type: 'string' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } });
    if (values.help === true) {
      io.stdout.write(VERIFY_USAGE);
      return 0;
    }
    if (values.study !== undefined && !isValidUid(values.study)) throw new UsageError(`--study must be a UID, got ${JSON.stringify(values.study)}`);
    return await verify(values.study, values.config, io);
  } catch (err) {
    io.stderr.write(`dicomvault verify: ${oneLine(err)}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

async function verify(study: string | undefined, configFile: string | undefined, io: VerifyCliIo): Promise<number> {
  const config = loadConfig({ configFile, env: io.env });
  // openStorage would start a new archive (and key file) in an empty folder: a wrong path must not do that.
  if (!dataDirHasData(config.storage.dataDir)) throw new Error(`no archive in ${path.resolve(config.storage.dataDir)} (storage.dataDir)`);
  // Without the audit log: verify may run beside the server, which alone appends to it.
  const storage = await openStorage(config, { audit: false });
  const progress = progressOn(io.stderr, 'objects verified');
  try {
    const report = await verifyStore(storage, { study, onProgress: ({ done, total }) => progress.update(done, total) });
    progress.end();
    if (study !== undefined && report.checked === 0) throw new Error(`the index has no instance of study ${study}`);
    io.stdout.write(formatReport(report));
    return report.problems.length === 0 ? 0 : 1;
  } catch (err) {
    progress.end();
    if (!(err instanceof VerifyAbortedError)) throw err;
    io.stdout.write(formatReport(err.report));
    io.stderr.write(`dicomvault verify: stopped: ${err.message}; the objects not yet read were not checked, run it again\n`);
    return 1;
  } finally {
    await storage.close();
  }
}

/** Counts, erased studies, then one tab-separated line per problem: kind, SOP Instance UID, blob key, detail. */
export function formatReport(report: VerifyReport): string {
  const erased = report.erased.reduce((n, s) => n + s.instances, 0);
  const lines = [
    `checked ${report.checked}, verified ${report.verified}, problems ${report.problems.length}, erased ${erased}, changed while checking ${report.changed}`,
  ];
  for (const s of report.erased) lines.push(`erased\tstudy ${s.studyInstanceUID}\t${s.instances} instances (study key destroyed)`);
  for (const p of report.problems) lines.push(`${p.kind}\t${p.sopInstanceUID}\tblob ${p.blobKey}\t${p.detail}`);
  lines.push(report.problems.length === 0 ? 'OK' : 'FAILED');
  return `${lines.join('\n')}\n`;
}
