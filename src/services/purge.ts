// The purge (issue 6 items 3-4, SECURITY.md 5): what has waited in the bin for its grace period goes for good.
// Per batch, in ONE lifecycle transaction: re-check the legal holds (a hold placed since the removal keeps the
// instance in the bin), mark each blob pending in the index (the crash sweeper, compose.ts sweepAfterCrash, then
// finishes a delete a crash interrupted), take the instances out of the bin, write their tombstones (UIDs, hash,
// size, who/why/when removed, who purged) and drop the settings kept for removed studies. After the commit: the
// blobs are deleted and their pending marks dropped; then each study left with nothing, live or binned, has its
// key destroyed (crypto-shredding, erase-study.ts): copies of its blobs in backups become unreadable.
//
// Idempotent: a second run finds nothing due and does nothing. A dry run reports what would go and changes nothing.
// Gap: a crash between a batch's commit and the key destruction leaves that study's key (its blobs are gone, the
// crash sweeper deletes any left); the next removal and purge of the study, or erase-study, destroys it.
// No PHI here: the report carries PatientIDs for the audit record (110105) only, never for the log.

import type { IndexStore } from '../index/index-store.js';
import type { BinnedInstance, LifecycleStore, RemovalCode, Tombstone } from '../index/lifecycle-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { destroyStudyKey, type EraseStudyDeps } from './erase-study.js';

export interface PurgeDeps extends EraseStudyDeps {
  index: IndexStore;
  lifecycle: LifecycleStore;
  blobs: Pick<BlobStore, 'delete'>;
  /** PHI-free log (blob keys and counts only). */
  log?: { warn(obj: Record<string, unknown>, msg: string): void };
}

export interface PurgeProgress {
  /** Binned instances handled so far (purged, or kept by a hold, or — dry run — counted). */
  done: number;
  /** The bin's size when the run started (instances not yet due are never handled: the run ends below it). */
  total: number;
}

export interface PurgeOptions {
  now?: Date;
  dryRun?: boolean;
  /** Instances per transaction (retention.sweepBatchSize). */
  batchSize?: number;
  /** Who purges: 'retention-sweep' (scheduled or CLI) or a principal id; kept in the tombstones. */
  by?: string;
  onProgress?: (progress: PurgeProgress) => void;
}

/** One study's share of a purge: what the 110105 "DICOM Study Deleted" record says. */
export interface PurgedStudy {
  studyInstanceUID: string;
  /** PatientID at removal ('' when absent). */
  patientId: string;
  /** SOP Class UID -> instances purged. */
  sopClasses: Map<string, number>;
  instances: number;
  bytes: number;
  /** Who removed them and why (distinct: principal, code, reason). */
  removals: { by: string; code: RemovalCode; reason?: string }[];
  /** The study key was destroyed by this run (nothing of the study is left). */
  keyDestroyed: boolean;
}

export interface PurgeReport {
  dryRun: boolean;
  /** Instances purged (dry run: that would be). */
  instances: number;
  bytes: number;
  studies: PurgedStudy[];
  /** Study keys destroyed (dry run: that would be). */
  keysDestroyed: number;
  /** Instances due but kept in the bin by a legal hold, and their studies. */
  held: number;
  heldStudies: string[];
  /** Blobs whose delete failed: their pending marks stay, the crash sweeper removes them at the next start. */
  blobErrors: number;
}

export const DEFAULT_PURGER = 'retention-sweep';
const MAX_STUDIES = Number.MAX_SAFE_INTEGER;

export async function purge(deps: PurgeDeps, options: PurgeOptions = {}): Promise<PurgeReport> {
  const now = options.now ?? new Date();
  const batchSize = Math.max(1, options.batchSize ?? 200);
  const by = options.by ?? DEFAULT_PURGER;
  const dryRun = options.dryRun === true;
  const total = deps.lifecycle.binnedStudies(MAX_STUDIES).reduce((n, s) => n + s.instances, 0);
  const studies = new Map<string, PurgedStudy>();
  const held = new Set<string>();
  const heldStudies = new Set<string>();
  // Instances listPurgeable keeps returning because they stay in the bin: held ones, and every one in a dry run.
  const passed = new Set<string>();
  let done = 0;
  let blobErrors = 0;
  for (;;) {
    const batch = deps.lifecycle.listPurgeable(now, batchSize + passed.size).filter((b) => !passed.has(b.record.sopInstanceUID)).slice(0, batchSize);
    if (batch.length === 0) break;
    const purged = dryRun ? dryBatch(deps, batch, passed, held) : purgeBatch(deps, batch, now, by, passed, held);
    for (const b of batch) if (held.has(b.record.sopInstanceUID)) heldStudies.add(b.record.studyInstanceUID);
    for (const b of purged) tally(studies, b);
    if (!dryRun) blobErrors += await deleteBlobs(deps, purged);
    done += batch.length;
    options.onProgress?.({ done, total: Math.max(total, done) });
  }
  let keysDestroyed = 0;
  for (const study of studies.values()) {
    // Nothing live, nothing left in the bin (dry run: nothing but what this run counted): the study key goes.
    if (deps.index.studyAttributes(study.studyInstanceUID) !== undefined) continue;
    const leftInBin = dryRun ? deps.lifecycle.listBin({ studyInstanceUID: study.studyInstanceUID }).length > study.instances : deps.lifecycle.studyHasBinned(study.studyInstanceUID);
    if (leftInBin) continue;
    const alreadyErased = dryRun ? deps.keyring.isErased(study.studyInstanceUID) : (await destroyStudyKey(deps, study.studyInstanceUID)).alreadyErased;
    study.keyDestroyed = !alreadyErased;
    if (!alreadyErased) keysDestroyed += 1;
  }
  const list = [...studies.values()];
  return {
    dryRun,
    instances: list.reduce((n, s) => n + s.instances, 0),
    bytes: list.reduce((n, s) => n + s.bytes, 0),
    studies: list,
    keysDestroyed,
    held: held.size,
    heldStudies: [...heldStudies],
    blobErrors,
  };
}

/** One batch in one transaction; returns the instances it purged (held ones stay in the bin, remembered in `held`). */
function purgeBatch(deps: PurgeDeps, batch: BinnedInstance[], now: Date, by: string, passed: Set<string>, held: Set<string>): BinnedInstance[] {
  return deps.lifecycle.transaction(() => {
    const gone: BinnedInstance[] = [];
    const holdOf = holdCheck(deps.lifecycle);
    for (const b of batch) {
      if (holdOf(b)) {
        held.add(b.record.sopInstanceUID);
        passed.add(b.record.sopInstanceUID);
      } else {
        gone.push(b);
      }
    }
    if (gone.length === 0) return gone;
    for (const b of gone) deps.index.addPending(b.record.blobKey, now);
    deps.lifecycle.removeFromBin(gone.map((b) => b.record.sopInstanceUID));
    deps.lifecycle.addTombstones(gone.map((b) => tombstoneOf(b, now, by)));
    // The settings kept for a study removed entirely go with its last binned instance (restore can no longer need them).
    for (const study of new Set(gone.map((b) => b.record.studyInstanceUID))) {
      if (!deps.lifecycle.studyHasBinned(study)) deps.lifecycle.takeRemovedStudy(study);
    }
    return gone;
  });
}

function dryBatch(deps: PurgeDeps, batch: BinnedInstance[], passed: Set<string>, held: Set<string>): BinnedInstance[] {
  const holdOf = holdCheck(deps.lifecycle);
  for (const b of batch) passed.add(b.record.sopInstanceUID);
  return batch.filter((b) => {
    if (!holdOf(b)) return true;
    held.add(b.record.sopInstanceUID);
    return false;
  });
}

/** Active holds per study and patient, asked once per batch and study. */
function holdCheck(lifecycle: Pick<LifecycleStore, 'activeHoldsFor'>): (b: BinnedInstance) => boolean {
  const cache = new Map<string, boolean>();
  return (b) => {
    const key = `${b.record.studyInstanceUID}\u0000${b.patientId}`;
    let isHeld = cache.get(key);
    if (isHeld === undefined) {
      isHeld = lifecycle.activeHoldsFor(b.record.studyInstanceUID, b.patientId).length > 0;
      cache.set(key, isHeld);
    }
    return isHeld;
  };
}

export function tombstoneOf(b: BinnedInstance, purgedAt: Date, purgedBy: string): Tombstone {
  const r = b.record;
  return {
    studyInstanceUID: r.studyInstanceUID,
    seriesInstanceUID: r.seriesInstanceUID,
    sopInstanceUID: r.sopInstanceUID,
    sopClassUID: r.sopClassUID,
    sha256: r.sha256,
    size: r.size,
    removal: b.removal,
    purgedAt,
    purgedBy,
  };
}

function tally(studies: Map<string, PurgedStudy>, b: BinnedInstance): void {
  const uid = b.record.studyInstanceUID;
  let s = studies.get(uid);
  if (!s) {
    s = { studyInstanceUID: uid, patientId: b.patientId, sopClasses: new Map(), instances: 0, bytes: 0, removals: [], keyDestroyed: false };
    studies.set(uid, s);
  }
  s.sopClasses.set(b.record.sopClassUID, (s.sopClasses.get(b.record.sopClassUID) ?? 0) + 1);
  s.instances += 1;
  s.bytes += b.record.size;
  const { by, code, reason } = b.removal;
  if (!s.removals.some((r) => r.by === by && r.code === code && r.reason === reason)) s.removals.push({ by, code, ...(reason === undefined ? {} : { reason }) });
}

/** After the commit: the blobs, then their pending marks. A failed delete keeps its mark for the crash sweeper. */
async function deleteBlobs(deps: PurgeDeps, purged: BinnedInstance[]): Promise<number> {
  let errors = 0;
  for (const b of purged) {
    try {
      await deps.blobs.delete(b.record.blobKey);
      deps.index.removePending(b.record.blobKey);
    } catch (err) {
      errors += 1;
      deps.log?.warn({ err, blobKey: b.record.blobKey }, 'purge: blob delete failed; the crash sweeper removes it at the next start');
    }
  }
  return errors;
}
