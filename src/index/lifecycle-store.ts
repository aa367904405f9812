// The lifecycle port (issue 6, SECURITY.md 5): what retention, legal holds, deletion/rejection, restore and the
// purge need to keep. Implementation: sqlite/sqlite-lifecycle-store.ts, in the same encrypted file and on the
// same connection as the index, so a rejection (rows out of the index, into the bin) is one transaction.
//
// The bin: a deleted or rejected instance leaves the live index at once (QIDO and WADO cannot see it: nothing
// there needs a status filter) and its whole InstanceRecord waits in the bin, blob untouched, until the purge.
// Restore puts the records back with IndexStore.commit(). The purge deletes blob and bin row and leaves a
// tombstone; when a study has nothing left (live or binned) its key is destroyed (crypto-shredding).

import type { InstanceRecord, RetrieveScope } from './index-store.js';

/** The date until which a study must be kept; 'indefinite' never expires. */
export type KeepUntil = Date | 'indefinite';

/** A study's stored retention (policy/retention.ts computes it; only ever extended automatically). */
export interface StudyRetention {
  studyInstanceUID: string;
  keepUntil: KeepUntil;
  /** Ids of the rules that set keepUntil (`default`, `receipt-floor`, a configured id, or `manual`). */
  rules: string[];
  computedAt: Date;
}

export type HoldScope = 'patient' | 'study';

/** A named legal hold on a patient (PatientID, all their studies, also future ones) or on one study. */
export interface LegalHold {
  /** Random public id. */
  id: string;
  /** Short name given by the admin, e.g. a case number. */
  name: string;
  scope: HoldScope;
  /** PatientID (scope patient) or StudyInstanceUID (scope study). */
  target: string;
  reason: string;
  placedBy: string;
  placedAt: Date;
  liftedBy?: string;
  liftedAt?: Date;
  liftReason?: string;
}

/**
 * Why an instance left the index: an IOCM rejection note code (PS3.16 CID 7011: 113001 quality, 113037 patient
 * safety, 113038 wrong modality worklist entry, 113039 data retention period expired) or 'delete' (DELETE).
 */
export type RemovalCode = '113001' | '113037' | '113038' | '113039' | 'delete';

export interface RemovalInfo {
  code: RemovalCode;
  /** Principal id. */
  by: string;
  /** Free text (optional for rejections, recorded in the tombstone). */
  reason?: string;
  at: Date;
  /** The purge may remove it from this time on (at + grace period). */
  purgeAfter: Date;
}

/** One instance in the bin. */
export interface BinnedInstance {
  record: InstanceRecord;
  removal: RemovalInfo;
  /** PatientID of the study at removal ('' when absent): holds on the patient keep applying in the bin. */
  patientId: string;
}

/** What is left of a purged instance: no dataset, no PHI but the UIDs. */
export interface Tombstone {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
  /** SHA-256 (hex) and size of the purged Part 10 bytes. */
  sha256: string;
  size: number;
  removal: RemovalInfo;
  purgedAt: Date;
  /** Who ran the purge: 'retention-sweep' (scheduled or CLI) or a principal id. */
  purgedBy: string;
}

export interface LifecycleStore {
  /** Runs `fn` in one transaction together with the index (same connection); nested calls join it. */
  transaction<T>(fn: () => T): T;

  getRetention(studyInstanceUID: string): StudyRetention | undefined;
  /** Inserts or replaces (callers extend only: policy/retention.ts extendOnly). */
  putRetention(retention: StudyRetention): void;

  /** Inserts a hold (its id must be new). */
  placeHold(hold: LegalHold): void;
  /** Lifts an active hold; the lifted hold, or undefined when no active hold has that id. */
  liftHold(id: string, by: string, reason: string, at: Date): LegalHold | undefined;
  getHold(id: string): LegalHold | undefined;
  /** Holds, newest first; active only unless `includeLifted`. */
  listHolds(filter?: { scope?: HoldScope; target?: string; includeLifted?: boolean }): LegalHold[];
  /** Active holds on the study or on the patient (patientId '' never matches a patient hold). */
  activeHoldsFor(studyInstanceUID: string, patientId: string): LegalHold[];

  /** Puts removed records in the bin (same transaction as IndexStore.removeInstances, via transaction()). */
  addToBin(items: BinnedInstance[]): void;
  /** Keeps the administrator's settings of studies removed entirely (RemovedInstances.removedStudies). */
  saveRemovedStudies(studies: { studyInstanceUID: string; labels: string[]; confidentiality: string }[]): void;
  /** And takes them back (restore; purge drops them): undefined when none was kept. */
  takeRemovedStudy(studyInstanceUID: string): { labels: string[]; confidentiality: string } | undefined;
  /** Binned instances in a scope (study, series of it, or instance), in removal order. */
  listBin(scope: RetrieveScope): BinnedInstance[];
  /** Binned instances whose purgeAfter <= before, oldest first, at most `limit`. */
  listPurgeable(before: Date, limit: number): BinnedInstance[];
  /** Removes bin entries by SOP Instance UID (restore or purge); returns how many were removed. */
  removeFromBin(sopInstanceUIDs: string[]): number;
  /** Distinct studies with something in the bin (admin listing), oldest removal first, at most `limit`. */
  binnedStudies(limit: number): { studyInstanceUID: string; instances: number; oldestRemoval: Date }[];
  /** Which of these SOP Instance UIDs are in the bin already (an earlier removal of an instance stored again since). */
  alreadyBinned(sopInstanceUIDs: string[]): string[];
  /** Is any instance of the study still binned? */
  studyHasBinned(studyInstanceUID: string): boolean;

  addTombstones(tombstones: Tombstone[]): void;
  /** Tombstones in a scope (a study, a series of it, one instance). */
  listTombstones(scope: RetrieveScope): Tombstone[];
  /** Is this scope purged: a tombstone for the instance, or any for the series/study? (410 Gone) */
  isPurged(scope: RetrieveScope): boolean;
}
