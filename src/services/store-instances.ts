// STOW-RS as a use case (PS3.18 10.5): take a sequence of parts, keep the acceptable DICOM objects durably,
// and say per instance what happened. Knows nothing about HTTP: parts arrive as async byte streams.
//
// Order of a write (DESIGN.md): pending mark in the index -> stage every part (temp file, hashed) -> scan and
// validate -> blob commit (fsync, rename, fsync dir) -> one index transaction for the request.
// Only after that transaction is an instance reported as stored. The index steps are group-committed (issue 8):
// each is flushed by a log fdatasync shared with the concurrent requests; the marks' flush runs while the part
// is received and is awaited before the first blob commit, the commit's before the answer.

import { FailureReason } from '../dicom/status-codes.js';
import type { ByteSource, InstanceReader, ParsedInstance, ReadResult, ScanLimits } from '../dicom/part10.js';
import { isValidUid } from '../dicom/uid.js';
import { firstNumber, firstString } from '../dicom/json-model.js';
import * as T from '../dicom/tags.js';
import type { DuplicatePolicy, IndexStore, InstanceLayout, InstanceRecord } from '../index/index-store.js';
import type { BlobStore, StagedBlob } from '../storage/blob-store.js';
import { StudyKeyErasedError } from '../storage/keys/study-keyring.js';
import { mapLimited } from './map-limited.js';
import type { InstanceOutcome } from './store-response.js';
import type { Access } from '../policy/access.js';
import type { StudyAttributes } from '../policy/study-attributes.js';
import { studyAttributesOf } from '../policy/study-attributes-of.js';
import { type KeepUntilDeps, recomputeKeepUntil } from './keep-until.js';
import { PreambleGuard } from '../dicom/preamble.js';

export interface IncomingPart {
  /** The part's media type essence (lowercase), if it declared one. */
  contentType?: string;
  body: AsyncIterable<Buffer>;
}

/** PHI-free log of what happened (the application log never sees DICOM values). */
export interface StoreLog {
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface StoreDeps {
  index: IndexStore;
  blobs: BlobStore;
  readInstance: InstanceReader;
  limits: ScanLimits;
  duplicatePolicy: DuplicatePolicy;
  log: StoreLog;
  now?: () => Date;
  /**
   * Retention (issue 6 item 1): each study a request committed to gets its keep-until date recomputed (only ever
   * extended). Absent: not computed here (a deletion computes it when it finds none).
   */
  retention?: Omit<KeepUntilDeps, 'index'>;
}

export interface StoreRequest {
  /** From POST /studies/{study}: every instance must belong to it (PS3.18 10.5.1). */
  studyInstanceUID?: string;
  parts: AsyncIterable<IncomingPart>;
  /** Who stores: each instance needs `store` on its study as it would be after the store (issue 5). */
  access: Access;
}

interface Accepted extends Staged {
  record: InstanceRecord;
  /** What the preamble held when it was stored as zeros. */
  preambleZeroed?: PreambleGuard['zeroed'];
}

/** A parsed instance whose identifying UIDs are present and valid. */
export type ValidInstance = ParsedInstance & { sopClassUID: string; sopInstanceUID: string; studyInstanceUID: string; seriesInstanceUID: string };
type Failed = Extract<InstanceOutcome, { status: 'failed' }>;
type Checked = { ok: true; instance: ValidInstance } | { ok: false; outcome: Failed };

const REQUIRED_UIDS = [
  ['sopClassUID', '(0008,0016) SOPClassUID'],
  ['sopInstanceUID', '(0008,0018) SOPInstanceUID'],
  ['studyInstanceUID', '(0020,000D) StudyInstanceUID'],
  ['seriesInstanceUID', '(0020,000E) SeriesInstanceUID'],
] as const;

/** PS3.18 10.5.1 / PS3.4 B.2.3: the attributes every stored instance needs, and what the URL demands. */
export function checkInstance(instance: ParsedInstance, requestStudy: string | undefined): Checked {
  const fail = (reason: Failed['reason'], detail: string): Checked => ({
    ok: false,
    outcome: { status: 'failed', reason, detail, sopClassUID: instance.sopClassUID, sopInstanceUID: instance.sopInstanceUID },
  });
  for (const [key, name] of REQUIRED_UIDS) {
    const value = instance[key];
    if (!value) return fail(FailureReason.CANNOT_UNDERSTAND, `${name} is missing or empty`);
    if (!isValidUid(value)) return fail(FailureReason.CANNOT_UNDERSTAND, `${name} is not a valid UID (PS3.5 9.1)`);
  }
  // PS3.10 7.1 wants (0002,0003)/(0002,0002) equal to the dataset's UIDs, but real planning systems and
  // older modalities write stale meta headers (pydicom's rtdose/rtplan, Orthanc stores them). The dataset
  // is the authority: the instance is filed under (0008,0018) and (0008,0016), and the stored bytes stay
  // as sent. broken/EXPECTED.tsv allows either choice; this one is documented in the README.
  const pixels = nativePixelDataProblem(instance);
  if (pixels) return fail(FailureReason.CANNOT_UNDERSTAND, pixels);
  if (requestStudy && instance.studyInstanceUID !== requestStudy) {
    // PS3.18 10.5.3: an instance that does not belong to the study in the URL fails; A900 as the
    // "does not match" family (Microsoft uses A901, dcm4chee C409: there is no standard code).
    return fail(FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS, 'StudyInstanceUID differs from the study in the request URL');
  }
  return { ok: true, instance: instance as ValidInstance };
}

/**
 * Native (uncompressed) Pixel Data must hold what the Image Pixel Module declares (PS3.5 8.1.1, PS3.3
 * C.7.6.3): Rows x Columns x SamplesPerPixel x BitsAllocated x NumberOfFrames. An object that declares more
 * than it carries (a 65535 x 65535 image with 8 KiB of pixels) would make every frame read wrong or
 * out of bounds later, so it is refused now. Extra bytes (padding to even length) are fine.
 */
export function nativePixelDataProblem(instance: ParsedInstance): string | undefined {
  const px = instance.pixelData;
  if (!px || px.encapsulated) return undefined;
  const ds = instance.dataset;
  const rows = firstNumber(ds, T.Rows);
  const columns = firstNumber(ds, T.Columns);
  const bits = firstNumber(ds, T.BitsAllocated);
  if (rows === undefined || columns === undefined || bits === undefined) {
    return 'Pixel Data without (0028,0010) Rows, (0028,0011) Columns and (0028,0100) BitsAllocated';
  }
  // YBR_FULL_422 is stored subsampled: two luminance samples share one Cb and one Cr (PS3.3 C.7.6.3.1.2),
  // so a pixel takes two samples' worth of bytes, not three.
  const photometric = firstString(ds, T.PhotometricInterpretation)?.trim();
  const samples = photometric === 'YBR_FULL_422' ? 2 : (firstNumber(ds, T.SamplesPerPixel) ?? 1);
  const frames = firstNumber(ds, T.NumberOfFrames) ?? 1;
  const values = [rows, columns, bits, samples, frames];
  if (values.some((v) => !Number.isInteger(v) || v < 0)) return 'Image Pixel Module values are not non-negative integers';
  const expectedBits = BigInt(rows) * BigInt(columns) * BigInt(samples) * BigInt(bits) * BigInt(frames);
  const expected = (expectedBits + 7n) / 8n;
  if (BigInt(px.length) < expected) {
    return `Pixel Data (7FE0,0010) holds ${px.length} bytes; the Image Pixel Module declares ${expected}`;
  }
  return undefined;
}

/** Where the large values are, for frames and bulk data retrieval; nothing when there are none. */
export function layoutOf(instance: ParsedInstance): { layout?: InstanceLayout } {
  const layout: InstanceLayout = {};
  if (instance.pixelData) layout.pixelData = instance.pixelData;
  if (instance.bulk && instance.bulk.length > 0) layout.bulk = instance.bulk;
  return Object.keys(layout).length > 0 ? { layout } : {};
}

function stagedSource(staged: StagedBlob, size: number): ByteSource {
  return { size, read: (offset, length) => staged.read(offset, length) };
}

interface Staged {
  staged: StagedBlob;
  /** The log flush that makes the blob's pending mark durable (awaited before any blob is committed). */
  marked: Promise<void>;
}

/**
 * The pending mark (phase 1, DESIGN.md) goes in as soon as the blob has its key, unsynced: its log flush, shared
 * with concurrent requests, then runs while the part is received and scanned instead of after (issue 8).
 */
function markPending(deps: StoreDeps, blobKey: string): Promise<void> {
  deps.index.writeUnsynced(() => deps.index.addPending(blobKey, (deps.now ?? (() => new Date()))()));
  const marked = deps.index.sync();
  marked.catch(() => undefined); // awaited in commitAccepted; a part that fails earlier never awaits it
  return marked;
}

/** A staged blob that will not be committed: its file goes, and so does its mark (unsynced: the sweeper copes). */
async function discardStaged(deps: StoreDeps, staged: StagedBlob): Promise<void> {
  await staged.discard();
  deps.index.writeUnsynced(() => deps.index.removePending(staged.key));
}

/**
 * Streams a part into a staged blob. A preamble that starts with a program header (PS3.10 7.5, CVE-2019-11687;
 * SECURITY.md 8 case 26) is stored as zeros (dicom/preamble.ts): the stored bytes, their hash and a re-STOW's
 * comparison are those of the cleaned object; `preambleZeroed` says what was removed, for the Security Alert.
 */
async function stagePart(deps: StoreDeps, part: IncomingPart): Promise<Staged & { size: number; sha256: string; preambleZeroed: PreambleGuard['zeroed'] }> {
  const staged = await deps.blobs.stage();
  try {
    const marked = markPending(deps, staged.key);
    const preamble = new PreambleGuard();
    for await (const chunk of part.body) for (const piece of preamble.pass(chunk)) await staged.write(piece);
    for (const piece of preamble.end()) await staged.write(piece);
    const { size, sha256 } = await staged.finish();
    return { staged, marked, size, sha256, preambleZeroed: preamble.zeroed };
  } catch (e) {
    await discardStaged(deps, staged);
    throw e;
  }
}

const NOT_AUTHORIZED_DETAIL = 'the principal may not store this instance in this study';

/**
 * The policy decides on the study as it would be once this instance is in it (policy/study-attributes-of.ts: the
 * same derivation the index uses at commit), so "only CT of our own institution" holds for what gets stored.
 * PS3.18 10.5.3 / PS3.4 B.2.3: a refused instance is a per-instance failure 0124; the others proceed.
 */
function mayStore(index: IndexStore, access: Access, i: ValidInstance, prospective: Map<string, StudyAttributes>): boolean {
  const before = prospective.get(i.studyInstanceUID) ?? index.studyAttributes(i.studyInstanceUID);
  const after = studyAttributesOf(i.dataset, before);
  if (!access.allows('store', after)) return false;
  prospective.set(i.studyInstanceUID, after);
  return true;
}

/** Parts that are not DICOM objects fail one by one; only multipart-level errors end the whole request. */
const ACCEPTED_PART_TYPES = new Set(['application/dicom']);

export async function storeInstances(deps: StoreDeps, request: StoreRequest): Promise<InstanceOutcome[]> {
  const descriptors = { keptOpen: 0 };
  try {
    return await receiveAndCommit(deps, request, descriptors);
  } finally {
    // Every staged blob of the request is committed or discarded by now: the descriptors it kept are closed.
    keptOpenInAll -= descriptors.keptOpen;
  }
}

async function receiveAndCommit(deps: StoreDeps, request: StoreRequest, descriptors: { keptOpen: number }): Promise<InstanceOutcome[]> {
  const now = deps.now ?? (() => new Date());
  const outcomes: (InstanceOutcome | Accepted)[] = [];
  // Studies as this request leaves them so far: the index commits once at the end, so a second instance of a
  // new study is judged with the first one's attributes (and its modality) already in.
  const prospective = new Map<string, StudyAttributes>();
  try {
    for await (const part of request.parts) {
      if (part.contentType !== undefined && !ACCEPTED_PART_TYPES.has(part.contentType)) {
        for await (const _ of part.body); // drain: the next part starts after this one
        outcomes.push({ status: 'failed', reason: FailureReason.CANNOT_UNDERSTAND, detail: `part media type ${part.contentType} is not application/dicom` });
        continue;
      }
      const { staged, marked, size, sha256, preambleZeroed } = await stagePart(deps, part);
      const read = await deps.readInstance(stagedSource(staged, size), deps.limits).catch((e: unknown): ReadResult => {
        deps.log.error({ err: e }, 'DICOM reader failed unexpectedly');
        return { ok: false, failure: { reason: FailureReason.PROCESSING_FAILURE, detail: 'the object could not be processed' } };
      });
      if (!read.ok) {
        await discardStaged(deps, staged);
        const { reason, detail, sopClassUID, sopInstanceUID } = read.failure;
        outcomes.push({ status: 'failed', reason, detail, sopClassUID, sopInstanceUID });
        continue;
      }
      const checked = checkInstance(read.instance, request.studyInstanceUID);
      if (!checked.ok) {
        await discardStaged(deps, staged);
        outcomes.push(checked.outcome);
        continue;
      }
      const i = checked.instance;
      if (!mayStore(deps.index, request.access, i, prospective)) {
        await discardStaged(deps, staged);
        outcomes.push({ status: 'failed', reason: FailureReason.NOT_AUTHORIZED, detail: NOT_AUTHORIZED_DETAIL, sopClassUID: i.sopClassUID, sopInstanceUID: i.sopInstanceUID });
        continue;
      }
      // The first parts keep their descriptor for the commit (an open and a close fewer each), within budgets: a
      // request of thousands of parts, or hundreds of requests at once, must not hold one per part.
      const keepOpen = descriptors.keptOpen < KEEP_OPEN && keptOpenInAll < KEEP_OPEN_IN_ALL;
      if (keepOpen) {
        descriptors.keptOpen++;
        keptOpenInAll++;
      }
      await staged.release({ keepOpen });
      outcomes.push({
        staged,
        marked,
        ...(preambleZeroed ? { preambleZeroed } : {}),
        record: {
          studyInstanceUID: i.studyInstanceUID,
          seriesInstanceUID: i.seriesInstanceUID,
          sopInstanceUID: i.sopInstanceUID,
          sopClassUID: i.sopClassUID,
          transferSyntaxUID: i.transferSyntaxUID,
          dataset: i.dataset,
          blobKey: staged.key,
          size,
          sha256,
          receivedAt: now(),
          ...layoutOf(i),
        },
      });
    }
  } catch (e) {
    // The request itself is unreadable (truncated multipart, a cap exceeded): nothing of it is kept.
    await mapLimited(outcomes, FILE_CONCURRENCY, async (o) => ('staged' in o ? discardStaged(deps, o.staged) : undefined));
    throw e;
  }
  return commitAccepted(deps, outcomes);
}

/** Files opened at once while committing or cleaning up one request (descriptors, not throughput, bound it). */
const FILE_CONCURRENCY = 16;
/**
 * Accepted parts of a request whose staged file stays open until the commit (a typical batch: issue 8 measured
 * batches of 20), and of all requests together; `keptOpenInAll` counts those held now.
 */
const KEEP_OPEN = 32;
const KEEP_OPEN_IN_ALL = 256;
let keptOpenInAll = 0;

type CommitFailure = Pick<Failed, 'reason' | 'detail'>;
const NOT_WRITTEN: CommitFailure = { reason: FailureReason.OUT_OF_RESOURCES, detail: 'the instance could not be written to storage' };
/**
 * An erased study (services/erase-study.ts) takes no new instances: the keyring makes no new key for it. PS3.4
 * has no "erased" status; 0124 Refused: not authorized, as for any study the archive will not take.
 */
const STUDY_ERASED: CommitFailure = { reason: FailureReason.NOT_AUTHORIZED, detail: 'the study was erased: it takes no new instances' };

/** Make accepted parts durable, then commit them to the index in one transaction. */
async function commitAccepted(deps: StoreDeps, outcomes: (InstanceOutcome | Accepted)[]): Promise<InstanceOutcome[]> {
  const accepted = outcomes.filter((o): o is Accepted => 'staged' in o);
  const failedCommit = new Map<Accepted, CommitFailure>();
  try {
    // The marks must be durable before any blob is (a crash in between leaves the sweeper something to find). Their
    // flushes started when the parts did (markPending), so by now they have usually completed.
    await Promise.all(accepted.map((a) => a.marked));
  } catch (e) {
    // Staging files would go at the next start; the marks name blobs that never were.
    await mapLimited(accepted, FILE_CONCURRENCY, (a) => discardStaged(deps, a.staged));
    throw e;
  }
  await mapLimited(
    accepted,
    FILE_CONCURRENCY,
    async (a) => {
      try {
        await a.staged.commit({ studyInstanceUID: a.record.studyInstanceUID, sopInstanceUID: a.record.sopInstanceUID });
      } catch (err) {
        if (err instanceof StudyKeyErasedError) {
          deps.log.warn({ blobKey: a.staged.key }, 'instance of an erased study refused');
          failedCommit.set(a, STUDY_ERASED);
        } else {
          deps.log.error({ err, blobKey: a.staged.key }, 'blob commit failed');
          failedCommit.set(a, NOT_WRITTEN);
        }
        await a.staged.discard();
        deps.index.removePending(a.staged.key);
      }
    },
  );
  // Keep request order for the index transaction and the response.
  const ordered = accepted.filter((a) => !failedCommit.has(a));
  let results: ReturnType<IndexStore['commit']> = [];
  try {
    results = deps.index.writeUnsynced(() =>
      deps.index.commit(
        ordered.map((a) => a.record),
        deps.duplicatePolicy,
      ),
    );
  } catch (err) {
    deps.log.error({ err }, 'index commit failed');
    await mapLimited(ordered, FILE_CONCURRENCY, (a) => deps.blobs.delete(a.staged.key));
    for (const a of ordered) deps.index.removePending(a.staged.key);
    for (const a of ordered) failedCommit.set(a, NOT_WRITTEN);
  }
  const resultOf = new Map(ordered.map((a, i) => [a, results[i]]));
  recomputeRetention(deps, ordered.filter((a) => resultOf.get(a)?.kind === 'stored' || resultOf.get(a)?.kind === 'replaced').map((a) => a.record.studyInstanceUID));
  // Nothing is reported stored before the log holding the commit is flushed (one flush for the concurrent requests).
  // A failed flush fails the request (500): the instances may or may not survive a power cut, and a retry of them
  // is answered "already stored" when they did.
  if (ordered.length > 0) await deps.index.sync();
  const cleanup: Promise<void>[] = [];
  const final = outcomes.map((o): InstanceOutcome => {
    if (!('staged' in o)) return o;
    const { record } = o;
    const ids = { sopClassUID: record.sopClassUID, sopInstanceUID: record.sopInstanceUID };
    const result = resultOf.get(o);
    const failure = failedCommit.get(o);
    if (failure || !result) return { status: 'failed', ...ids, ...(failure ?? NOT_WRITTEN) };
    const stored = {
      status: 'stored' as const,
      ...ids,
      studyInstanceUID: record.studyInstanceUID,
      seriesInstanceUID: record.seriesInstanceUID,
      ...(o.preambleZeroed ? { preambleZeroed: o.preambleZeroed } : {}),
    };
    switch (result.kind) {
      case 'stored':
        return { ...stored, alreadyStored: false };
      case 'identical':
        cleanup.push(discardUnreferenced(deps, record.blobKey));
        return { ...stored, alreadyStored: true };
      case 'replaced':
        cleanup.push(discardUnreferenced(deps, result.previousBlobKey));
        return { ...stored, alreadyStored: false, replaced: true };
      case 'duplicate': {
        cleanup.push(discardUnreferenced(deps, record.blobKey));
        const where =
          result.existing.studyInstanceUID !== record.studyInstanceUID || result.existing.seriesInstanceUID !== record.seriesInstanceUID
            ? 'in another study or series'
            : 'with different content';
        return { status: 'failed', ...ids, reason: FailureReason.DUPLICATE_SOP_INSTANCE, detail: `an instance with this SOPInstanceUID is already stored ${where}` };
      }
    }
  });
  await Promise.all(cleanup);
  return final;
}

/** A blob the commit left unreferenced (still pending: IndexStore.commit): deleted, then its mark removed. */
async function discardUnreferenced(deps: StoreDeps, blobKey: string): Promise<void> {
  try {
    await deps.blobs.delete(blobKey);
    // Unsynced: a mark that a power cut brings back only makes the sweeper delete a blob that is gone already.
    deps.index.writeUnsynced(() => deps.index.removePending(blobKey));
  } catch (err) {
    // The instances are committed; the mark stays, so the start-up sweeper deletes the blob later.
    deps.log.warn({ err, blobKey }, 'could not delete an unreferenced blob; it stays pending for the sweeper');
  }
}

/**
 * After the commit, never before (and before the log flush that makes both durable): the instances are stored
 * whatever happens here. A failure is logged (no UIDs) and not reported to the client, whose instances are safe:
 * the next STOW of the study, any deletion of it (remove-instances.ts recomputes before it decides) and the admin
 * API recompute it, so a missed recomputation can never let a study go early.
 */
function recomputeRetention(deps: StoreDeps, studies: string[]): void {
  if (!deps.retention || studies.length === 0) return;
  const now = (deps.now ?? (() => new Date()))();
  const failed = (err: unknown) =>
    deps.log.error({ err }, 'keep-until recomputation failed after a store; the next store or deletion of the study recomputes it');
  try {
    // Unsynced: the store's own log flush, which comes next, covers it (issue 8 group commit).
    deps.index.writeUnsynced(() => {
      for (const study of new Set(studies)) {
        try {
          recomputeKeepUntil({ ...deps.retention!, index: deps.index }, study, now);
        } catch (err) {
          failed(err);
        }
      }
    });
  } catch (err) {
    failed(err);
  }
}
