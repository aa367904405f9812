// `dicomvault import DIR` as a use case (issue 8 item 5): a folder of DICOM files into the archive through the same
// path as STOW-RS (store-instances.ts: staged, pre-scanned, parsed, checked, two-phase commit), one file at a time,
// so what one file does (unreadable, hostile, a duplicate) is that file's outcome and never the others'.
// Knows nothing about the command line or the audit log: it returns what happened, per file and per study.
//
// The walk: every regular file under the folder, sorted, recursively; skipped are DICOMDIR (a PS3.10 media
// directory, not an instance), hidden entries (a name starting with "."; hidden folders are not entered),
// what is neither a file nor a folder (sockets, devices, FIFOs), and symbolic links leading out of the folder
// (or broken). A link to a file inside the folder is imported (its target then counts as already stored); a link
// to a folder inside it is not followed (its target is walked where it is: no cycles, no double walk).

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { FailureReason } from '../dicom/status-codes.js';
import { Access, type PolicyDecider } from '../policy/access.js';
import { TRUE } from '../policy/study-condition.js';
import { NO_ATTRIBUTES, type Principal } from '../security/principal.js';
import { type IncomingPart, type StoreDeps, storeInstances } from './store-instances.js';

/** A file to import: where to open it, and its path relative to the imported folder (what is reported). */
export interface ImportFile {
  path: string;
  rel: string;
}

export type SkipReason = 'DICOMDIR' | 'hidden' | 'not a regular file' | 'symbolic link out of the folder' | 'symbolic link to a folder';

export interface ImportWalk {
  files: ImportFile[];
  skipped: Map<SkipReason, string[]>;
}

const isInside = (root: string, target: string): boolean => {
  const rel = path.relative(root, target);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

/** Code-unit order: the same on every machine (localeCompare is not). */
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The files of `root` to import, sorted by relative path, and what was skipped (relative paths by reason). */
export async function listImportFiles(root: string): Promise<ImportWalk> {
  const realRoot = await fsp.realpath(root);
  if (!(await fsp.stat(realRoot)).isDirectory()) throw new Error(`${root} is not a folder`);
  const files: ImportFile[] = [];
  const skipped = new Map<SkipReason, string[]>();
  const skip = (reason: SkipReason, rel: string) => skipped.set(reason, [...(skipped.get(reason) ?? []), rel]);
  const folders = [''];
  for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
    const entries = await fsp.readdir(path.join(realRoot, folder), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => byName(a.name, b.name))) {
      const rel = path.join(folder, entry.name);
      const full = path.join(realRoot, rel);
      if (entry.name.startsWith('.')) skip('hidden', rel);
      else if (entry.isDirectory()) folders.push(rel);
      else if (entry.isFile()) {
        if (entry.name.toUpperCase() === 'DICOMDIR') skip('DICOMDIR', rel);
        else files.push({ path: full, rel });
      } else if (entry.isSymbolicLink()) {
        const target = await fsp.realpath(full).catch(() => undefined);
        const stat = target !== undefined && isInside(realRoot, target) ? await fsp.stat(target).catch(() => undefined) : undefined;
        if (!stat) skip('symbolic link out of the folder', rel);
        else if (stat.isDirectory()) skip('symbolic link to a folder', rel);
        else if (!stat.isFile()) skip('not a regular file', rel);
        else if (path.basename(target!).toUpperCase() === 'DICOMDIR') skip('DICOMDIR', rel);
        else files.push({ path: target!, rel });
      } else skip('not a regular file', rel);
    }
  }
  files.sort((a, b) => byName(a.rel, b.rel));
  for (const list of skipped.values()) list.sort(byName);
  return { files, skipped };
}

/**
 * Why a file failed: a PS3.4 failure reason of the store service; "unreadable" (the file could not be opened), or
 * "error" (reading it or storing it threw: an I/O error, a full disk).
 */
export type ImportFailureReason = number | 'unreadable' | 'error';

export interface ImportFailure {
  rel: string;
  /** PHI-free: the store service's detail, or the file system's error code. */
  detail: string;
}

export interface ImportedStudy {
  /** SOP Class UIDs of the instances of this study stored or found already stored (one per instance). */
  sopClassUIDs: string[];
  /** Some instance replaced one with other bytes (stow.duplicatePolicy "replace"). */
  replaced: boolean;
}

export interface ImportReport {
  files: number;
  stored: number;
  alreadyStored: number;
  failed: Map<ImportFailureReason, ImportFailure[]>;
  studies: Map<string, ImportedStudy>;
  /** The signal stopped the import before every file was tried. */
  interrupted: boolean;
}

export interface ImportOptions {
  access: Access;
  /** A file larger than this fails (A700) unread, as STOW refuses a part over stow.maxPartBytes. */
  maxFileBytes: number;
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Stops after the file in progress. */
  signal?: AbortSignal;
}

/**
 * The operating-system user running the import, as a principal that may store anything: it can read the key
 * file and the data folder, so the policy engine (which governs network principals) would protect nothing from it.
 */
export function operatingSystemAccess(userId: string): Access {
  const decider: PolicyDecider = { decide: () => ({ allowed: true, policies: [] }), studyCondition: () => TRUE };
  const principal: Principal = { kind: 'system', id: userId, roles: [], attributes: NO_ATTRIBUTES };
  return new Access(decider, principal);
}

/** One file as STOW's single application/dicom part: at most the `size` bytes it had when opened. */
async function* filePart(handle: fsp.FileHandle, size: number): AsyncGenerator<IncomingPart> {
  const body = size === 0 ? [] : handle.createReadStream({ start: 0, end: size - 1, autoClose: false });
  yield { contentType: 'application/dicom', body: body as AsyncIterable<Buffer> };
}

type FileOutcome = { kind: 'stored' | 'already stored'; studyInstanceUID: string; sopClassUID: string; replaced: boolean } | { kind: 'failed'; reason: ImportFailureReason; detail: string };

async function importFile(deps: StoreDeps, file: ImportFile, options: ImportOptions): Promise<FileOutcome> {
  let handle: fsp.FileHandle;
  try {
    // O_NOFOLLOW: a file swapped for a link after the walk is not followed out of the folder.
    handle = await fsp.open(file.path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    return { kind: 'failed', reason: 'unreadable', detail: errorCode(e) };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { kind: 'failed', reason: 'unreadable', detail: 'not a regular file' };
    if (stat.size > options.maxFileBytes) {
      return { kind: 'failed', reason: FailureReason.OUT_OF_RESOURCES, detail: `the file exceeds ${options.maxFileBytes} bytes (stow.maxPartBytes)` };
    }
    const [outcome] = await storeInstances(deps, { parts: filePart(handle, stat.size), access: options.access });
    if (!outcome) return { kind: 'failed', reason: FailureReason.PROCESSING_FAILURE, detail: 'the store service returned no outcome' };
    if (outcome.status === 'failed') return { kind: 'failed', reason: outcome.reason, detail: outcome.detail ?? '' };
    return {
      kind: outcome.alreadyStored ? 'already stored' : 'stored',
      studyInstanceUID: outcome.studyInstanceUID,
      sopClassUID: outcome.sopClassUID,
      replaced: outcome.replaced === true,
    };
  } catch (e) {
    // A read error mid-file, a full disk (the store service discarded what it staged).
    return { kind: 'failed', reason: 'error', detail: errorCode(e) };
  } finally {
    await handle.close();
  }
}

/** The file system's error code (EACCES, EIO...), never a message that could quote a file name. */
function errorCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unexpected error';
}

/** Imports `files` in order through the store service; per-file outcomes are counted, never thrown. */
export async function importFiles(deps: StoreDeps, files: ImportFile[], options: ImportOptions): Promise<ImportReport> {
  const report: ImportReport = { files: files.length, stored: 0, alreadyStored: 0, failed: new Map(), studies: new Map(), interrupted: false };
  let done = 0;
  for (const file of files) {
    if (options.signal?.aborted) {
      report.interrupted = true;
      break;
    }
    const outcome = await importFile(deps, file, options);
    if (outcome.kind === 'failed') {
      const list = report.failed.get(outcome.reason) ?? [];
      list.push({ rel: file.rel, detail: outcome.detail });
      report.failed.set(outcome.reason, list);
    } else {
      if (outcome.kind === 'stored') report.stored++;
      else report.alreadyStored++;
      const study = report.studies.get(outcome.studyInstanceUID) ?? { sopClassUIDs: [], replaced: false };
      study.sopClassUIDs.push(outcome.sopClassUID);
      study.replaced ||= outcome.replaced;
      report.studies.set(outcome.studyInstanceUID, study);
    }
    options.onProgress?.({ done: ++done, total: files.length });
  }
  return report;
}
