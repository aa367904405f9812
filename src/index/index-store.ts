// The index port (DESIGN.md "ports"): everything the services need from the database, nothing SQL-shaped.
// Implementations: sqlite/ (default) and memory/ (tests); test/contracts/index-store.contract.ts runs
// the same suite against both.

import type { DicomJsonDataset } from '../dicom/json-model.js';
import type { BulkDataLocation, PixelDataLocation } from '../dicom/part10.js';
import type { StudyAttributes } from '../policy/study-attributes.js';
import type { StudyCondition } from '../policy/study-condition.js';
import type { QidoQuery } from './query/ast.js';

/**
 * Where the large values sit inside the stored Part 10 bytes, as the reader found them at STOW time.
 * Kept so frames (PS3.18 10.4.1.1.4) and bulk data (BulkDataURI, PS3.18 F.2.7) can later be served as
 * byte ranges of the blob, without parsing the object again.
 */
export interface InstanceLayout {
  pixelData?: PixelDataLocation;
  bulk?: BulkDataLocation[];
}

/** Everything the index keeps about one stored instance. */
export interface InstanceRecord {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
  transferSyntaxUID: string;
  /** The instance's attributes in the DICOM JSON Model (bulk values omitted), values decoded. */
  dataset: DicomJsonDataset;
  /** Server-assigned blob key of the stored Part 10 bytes. */
  blobKey: string;
  /** Plaintext size and SHA-256 (hex) of the stored Part 10 bytes. */
  size: number;
  sha256: string;
  receivedAt: Date;
  /** Absent when the object has neither Pixel Data nor bulk values (or was stored before migration 2). */
  layout?: InstanceLayout;
}

/** What the index says about an already stored instance with that SOP Instance UID. */
export interface StoredInstanceRef {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID: string;
  transferSyntaxUID: string;
  blobKey: string;
  size: number;
  sha256: string;
  layout?: InstanceLayout;
}

/** One result of IndexStore.listInstanceDatasets(). */
export interface InstanceWithDataset {
  ref: StoredInstanceRef;
  dataset: DicomJsonDataset;
}

/** How commit treats an instance whose SOP Instance UID is already stored with other bytes. */
export type DuplicatePolicy = 'reject' | 'replace';

export type CommitOutcome =
  | { kind: 'stored' }
  /** Same SOP Instance UID and same bytes: nothing changed; the new blob is not needed. */
  | { kind: 'identical' }
  /** Replaced an instance with other bytes (policy 'replace'); the old blob may be deleted. */
  | { kind: 'replaced'; previousBlobKey: string }
  /** Refused: same SOP Instance UID with other bytes (policy 'reject'), or already stored in another study/series. */
  | { kind: 'duplicate'; existing: StoredInstanceRef };

export interface RetrieveScope {
  studyInstanceUID: string;
  seriesInstanceUID?: string;
  sopInstanceUID?: string;
}

export interface SearchResult {
  /** Datasets of the matches in the requested page, in a stable order, with the level's return attributes. */
  matches: DicomJsonDataset[];
  /** Number of all matches, before limit/offset. */
  total: number;
}

/** IndexStore.removeInstances() result. */
export interface RemovedInstances {
  records: InstanceRecord[];
  /** Studies that have no instance left, with what an administrator set on them. */
  removedStudies: { studyInstanceUID: string; labels: string[]; confidentiality: string }[];
}

/** IndexStore.retentionFacts() result: the study's values as stored (first instance for study-level ones). */
export interface StudyRetentionFacts {
  /** StudyDate (0008,0020) `YYYYMMDD`, absent when the study has none. */
  studyDate?: string;
  /** The earliest receivedAt of the study's instances. */
  receivedAt: Date;
  /** PatientBirthDate (0010,0030) of the study's patient. */
  patientBirthDate?: string;
  /** PatientAge (0010,1010) of any instance of the study (the first that has one). */
  patientAge?: string;
  /** PatientID ('' when absent): legal holds on the patient. */
  patientId: string;
  /** Modality of every series (distinct). */
  modalities: string[];
  /** InstitutionName as the policy column holds it ('' when absent). */
  institution: string;
  /** SOP Class UIDs of the study's instances (distinct). */
  sopClasses: string[];
}

export interface IndexStore {
  /**
   * Phase 1 of a write (DESIGN.md): remember that a blob is about to become durable, so a crash
   * between the blob and the commit leaves something for the sweeper to find.
   */
  addPending(blobKey: string, at: Date): void;
  /** Drop a pending mark without committing (the write failed or was refused). */
  removePending(blobKey: string): void;
  /** Pending marks older than `before` (a crash left them): the sweeper deletes their blobs. */
  listPending(before: Date): string[];

  /**
   * Phase 2: commit instances in one transaction, updating patient/study/series rows and the derived
   * attributes (ModalitiesInStudy, SOPClassesInStudy, NumberOfStudyRelated*, NumberOfSeriesRelatedInstances).
   * Each stored instance's pending mark is removed in the same transaction. A blob the commit leaves
   * unreferenced keeps its mark instead (the record's own blob, for `identical` and `duplicate`) or gets one
   * (the previous blob of `replaced`, at the record's receivedAt), until the caller has deleted it and removed
   * the mark. So a crash between the commit and that delete leaves the blob to the sweeper, not an orphan.
   * Outcomes are in input order.
   */
  commit(records: InstanceRecord[], policy: DuplicatePolicy): CommitOutcome[];

  /**
   * Group commit (issue 8): runs `writes` (calls of the methods above) as one transaction that returns without
   * waiting for the disk. Nothing of it may be relied on (a pending mark before its blob, an instance reported
   * stored) before sync() resolves; a power cut may lose it meanwhile, and a crash of the process does not.
   */
  writeUnsynced<T>(writes: () => T): T;
  /**
   * Resolves once every write made so far survives a power cut: one flush of the log serves every caller that
   * waits at the same time (concurrent STOW requests). A rejection means it may not survive.
   */
  sync(): Promise<void>;

  findInstance(sopInstanceUID: string): StoredInstanceRef | undefined;

  /**
   * Every stored instance in a retrieve scope (PS3.18 10.4.1: a study, a series of it, or one instance of
   * that series), ordered by series (SeriesNumber, then insertion), then InstanceNumber, then insertion,
   * so the same request yields the same order. Empty when nothing matches, including a series or an
   * instance that exists but under another study/series.
   */
  listInstances(scope: RetrieveScope): StoredInstanceRef[];

  /**
   * listInstances() with each instance's stored dataset (the InstanceRecord's, bulk values omitted, UIDs as
   * the record names them): what WADO-RS Retrieve Metadata (PS3.18 10.4.1) sends. Same scope and order.
   */
  listInstanceDatasets(scope: RetrieveScope): InstanceWithDataset[];

  /**
   * One page of every stored instance of the archive, in SOP Instance UID order, starting after `after`
   * (exclusive): what an integrity check (`dicomvault verify`) walks. Pages, not one array or a cursor, so an
   * archive of millions neither sits in memory nor holds a read transaction open while blobs are read.
   */
  listAllInstances(page: { after?: string; limit: number }): StoredInstanceRef[];

  /**
   * QIDO-RS search (PS3.18 10.6). Throws nothing for valid queries; an empty result has total 0.
   * `access` (issue 5): only matches in studies that satisfy it exist for this search: it is part of the WHERE,
   * so total, limit/offset and every derived attribute are computed over what the principal may see. Absent:
   * no restriction (internal callers only; routes always pass one).
   */
  search(query: QidoQuery, access?: StudyCondition): SearchResult;

  /**
   * The policy attributes of a stored study (policy/study-attributes.ts), or undefined when there is none.
   * One indexed lookup: every WADO request asks it before anything else.
   */
  studyAttributes(studyInstanceUID: string): StudyAttributes | undefined;

  /** Replaces the study's labels (sorted, deduplicated); false when there is no such study. */
  setStudyLabels(studyInstanceUID: string, labels: string[]): boolean;

  /** Replaces the study's confidentiality value; false when there is no such study. */
  setStudyConfidentiality(studyInstanceUID: string, confidentiality: string): boolean;

  /**
   * Removes the scope's instances from the live index in one transaction (issue 6: DELETE and rejection): their
   * rows, the derived attributes of their series and study, and series, studies and patients left empty
   * (a removed study's labels with it). Returns what commit() takes to put them back, and the administrator's
   * settings of each study removed entirely (restore re-applies them: a restored confidential study stays
   * confidential). Nothing matches: empty lists.
   */
  removeInstances(scope: RetrieveScope): RemovedInstances;

  /** What retention (policy/retention.ts) needs to know of a stored study, or undefined when there is none. */
  retentionFacts(studyInstanceUID: string): StudyRetentionFacts | undefined;

  /** Totals for health checks and tests. */
  counts(): { patients: number; studies: number; series: number; instances: number };

  close(): void;
}
