// Integrity check of the archive (issue 4, item 6; `dicomvault verify`): every indexed instance's blob is read
// back through the (encrypted) BlobStore and its plaintext size and SHA-256 compared with what the index
// recorded at STOW. Read-only, so it may run beside the server. Knows nothing about the command line.
//
// The report names instances by UIDs and blob keys only (operators need them to find the object; UIDs are not
// patient names or IDs) and never carries bytes, names or IDs of the object.
//
// Blobs the index does not know (orphans) are not looked for: the BlobStore port cannot list its keys, and the
// crash sweeper (compose.ts sweepAfterCrash) already removes what an interrupted write leaves.

import { createHash } from 'node:crypto';
import type { IndexStore, StoredInstanceRef } from '../index/index-store.js';
import { BlobNotFoundError, type BlobStore } from '../storage/blob-store.js';
import { KeyIntegrityError, KeyUnavailableError } from '../storage/keys/key-provider.js';
import { StudyKeyErasedError } from '../storage/keys/study-keyring.js';
import { mapLimited } from './map-limited.js';

/**
 * What can be wrong with one stored object:
 * - missing: the index names a blob that does not exist;
 * - integrity: the blob (or the wrapped key in its header) fails authentication: tampered, swapped or corrupted;
 * - size-mismatch: the blob holds another number of bytes than the index recorded (e.g. truncated);
 * - hash-mismatch: the bytes authenticate but their SHA-256 is not the recorded one (index and blob disagree);
 * - read-error: the store could not read it (an I/O error: detail is the error code).
 */
export type VerifyProblemKind = 'missing' | 'integrity' | 'size-mismatch' | 'hash-mismatch' | 'read-error';

export interface VerifiedInstance {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  blobKey: string;
}

export interface VerifyProblem extends VerifiedInstance {
  kind: VerifyProblemKind;
  /** What was found, without plaintext: sizes, the failing part of the blob, an error code. */
  detail: string;
}

export interface VerifyReport {
  /** Instances looked at. */
  checked: number;
  /** Read back whole, authenticated, with the recorded size and SHA-256. */
  verified: number;
  /**
   * Instances of erased studies (their study key was destroyed: services/erase-study.ts leaves index rows and
   * blobs in place). Unreadable on purpose, so not a problem: counted, by study.
   */
  erased: { studyInstanceUID: string; instances: number }[];
  /** Replaced or removed while the check ran (the server kept serving): not judged. */
  changed: number;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  /** Only this study's instances. */
  study?: string;
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Blobs read at once (default 4): reading is I/O, decryption and hashing are cheap. */
  concurrency?: number;
  /** Index page size when walking the whole archive (default 500). */
  pageSize?: number;
}

/** The key service could not answer: nothing can be concluded about the objects not yet read. */
export class VerifyAbortedError extends Error {
  override name = 'VerifyAbortedError';
  constructor(
    message: string,
    readonly report: VerifyReport,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface VerifyDeps {
  index: Pick<IndexStore, 'listAllInstances' | 'listInstances' | 'findInstance' | 'counts'>;
  blobs: Pick<BlobStore, 'size' | 'createReadStream'>;
}

type Outcome = { kind: 'verified' } | { kind: 'erased' } | { kind: 'problem'; problem: Omit<VerifyProblem, keyof VerifiedInstance> };

export async function verifyStore(deps: VerifyDeps, options: VerifyOptions = {}): Promise<VerifyReport> {
  const concurrency = options.concurrency ?? 4;
  const report: VerifyReport = { checked: 0, verified: 0, erased: [], changed: 0, problems: [] };
  const erasedByStudy = new Map<string, number>();
  const total = options.study === undefined ? deps.index.counts().instances : undefined;
  let done = 0;
  // Set when the key service fails: the other workers stop taking objects (mapLimited cannot be cancelled).
  let aborted = false;

  const checkPage = async (refs: StoredInstanceRef[], pageTotal: number) => {
    await mapLimited(refs, concurrency, async (ref) => {
      if (aborted) return;
      let outcome: Outcome;
      try {
        outcome = await checkOne(deps.blobs, ref);
      } catch (e) {
        aborted = true;
        if (e instanceof KeyUnavailableError) {
          throw new VerifyAbortedError(`the key service is unavailable (${e.message}); stopped after ${done} instances`, report, { cause: e });
        }
        throw e;
      }
      report.checked++;
      if (outcome.kind === 'verified') report.verified++;
      else if (outcome.kind === 'erased') erasedByStudy.set(ref.studyInstanceUID, (erasedByStudy.get(ref.studyInstanceUID) ?? 0) + 1);
      else if (changedMeanwhile(deps.index, ref)) report.changed++;
      else report.problems.push({ ...instanceOf(ref), ...outcome.problem });
      done++;
      options.onProgress?.({ done, total: Math.max(pageTotal, done) });
    });
  };

  try {
    if (options.study !== undefined) {
      const refs = deps.index.listInstances({ studyInstanceUID: options.study });
      options.onProgress?.({ done: 0, total: refs.length });
      await checkPage(refs, refs.length);
    } else {
      options.onProgress?.({ done: 0, total: total! });
      const limit = options.pageSize ?? 500;
      for (let page = deps.index.listAllInstances({ limit }); page.length > 0; ) {
        await checkPage(page, total!);
        page = page.length < limit ? [] : deps.index.listAllInstances({ after: page.at(-1)!.sopInstanceUID, limit });
      }
    }
  } finally {
    report.erased = [...erasedByStudy].map(([studyInstanceUID, instances]) => ({ studyInstanceUID, instances }));
    report.problems.sort((a, b) => a.sopInstanceUID.localeCompare(b.sopInstanceUID));
  }
  return report;
}

function instanceOf(ref: StoredInstanceRef): VerifiedInstance {
  return { studyInstanceUID: ref.studyInstanceUID, seriesInstanceUID: ref.seriesInstanceUID, sopInstanceUID: ref.sopInstanceUID, blobKey: ref.blobKey };
}

/** A STOW with policy 'replace' (or a deletion) between the listing and the read is not a problem of the store. */
function changedMeanwhile(index: VerifyDeps['index'], ref: StoredInstanceRef): boolean {
  return index.findInstance(ref.sopInstanceUID)?.blobKey !== ref.blobKey;
}

/** One object: size from the header first (no key needed), then every byte decrypted, counted and hashed. */
async function checkOne(blobs: VerifyDeps['blobs'], ref: StoredInstanceRef): Promise<Outcome> {
  const problem = (kind: VerifyProblemKind, detail: string): Outcome => ({ kind: 'problem', problem: { kind, detail } });
  try {
    const size = await blobs.size(ref.blobKey);
    if (size === undefined) return problem('missing', 'no blob under this key');
    if (size !== ref.size) return problem('size-mismatch', `the index recorded ${ref.size} bytes, the blob holds ${size}`);
    const hash = createHash('sha256');
    let read = 0;
    const stream = await blobs.createReadStream(ref.blobKey);
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      read += (chunk as Buffer).length;
    }
    if (read !== ref.size) return problem('size-mismatch', `the index recorded ${ref.size} bytes, ${read} were read`);
    const sha256 = hash.digest('hex');
    if (sha256 !== ref.sha256) return problem('hash-mismatch', `SHA-256 ${sha256}, the index recorded ${ref.sha256}`);
    return { kind: 'verified' };
  } catch (e) {
    if (e instanceof StudyKeyErasedError) return { kind: 'erased' };
    if (e instanceof BlobNotFoundError) return problem('missing', 'no blob under this key');
    if (e instanceof KeyIntegrityError) return problem('integrity', e.message);
    if (e instanceof KeyUnavailableError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return problem('read-error', code);
    throw e;
  }
}
