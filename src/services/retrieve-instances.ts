// WADO-RS Retrieve Instances as a use case (PS3.18 10.4.1): which stored objects a study, series or instance
// URL names, whether they may be sent in the transfer syntax the client asked for, and their bytes as
// lazily opened streams. Knows nothing about HTTP; the route negotiates media types and writes the parts.
//
// The bytes sent are the stored Part 10 bytes (DESIGN.md: never a dcmjs re-encoding, which would rewrite
// SpecificCharacterSet), except for objects stored in Implicit VR Little Endian or Explicit VR Big Endian,
// which PS3.18 8.7.3.5.2 forbids on the web: those are re-encoded losslessly, on the way out, as Explicit VR
// Little Endian (dicom/reencode.ts; the stored bytes stay as they are). There is no pixel transcoder, so a
// request for any other transfer syntax than the one sent is refused (406) instead of answered with other bytes.

import { AppError } from '../errors.js';
import type { ScanLimits } from '../dicom/part10.js';
import { reencodeToExplicitLittleEndian } from '../dicom/reencode.js';
import { EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, transferSyntax } from '../dicom/transfer-syntax.js';
import type { IndexStore, RetrieveScope, StoredInstanceRef } from '../index/index-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { blobSource } from './stored-object.js';
import type { Access } from '../policy/access.js';
import { missingScope, type PermittedStudyOptions, permittedStudy, type ReadPurpose } from './permitted-study.js';

/** isPurged: a purged scope answers 410 Gone (issue 6). */
export interface RetrieveDeps extends PermittedStudyOptions {
  index: IndexStore;
  blobs: BlobStore;
  /**
   * Caps for walking stored objects (re-encoding, inflating): the configured `dicom` caps. Every stored object
   * passed the STOW scan under them; here they guard against a corrupted blob.
   */
  limits: ScanLimits;
}

/** `*` (PS3.18 8.7.3.5.2: any, the server chooses), a transfer syntax UID, or undefined when none was named. */
export type RequestedTransferSyntax = string | undefined;

export const ANY_TRANSFER_SYNTAX = '*';

/** The bytes of one instance as sent: their exact size, and the bytes (streamed when pulled). */
export interface InstanceBody {
  size: number;
  chunks(): AsyncIterable<Buffer>;
}

/** One instance of a retrieve response. */
export interface RetrievedInstance {
  ref: StoredInstanceRef;
  /** The transfer syntax of the bytes sent: the stored one, or Explicit VR Little Endian when re-encoded. */
  transferSyntaxUID: string;
  /**
   * Size and bytes. Call it when the part's turn comes: for a re-encoded object it reads the object's headers
   * (a study of thousands of instances must not read them all before the first byte goes out). Stored bytes
   * are opened only when `chunks()` is pulled, one blob at a time.
   */
  open(): Promise<InstanceBody>;
}

/**
 * PS3.18 8.7.3.5.2: Implicit VR Little Endian and Explicit VR Big Endian "shall not be used" on the web.
 * Objects stored in them are sent re-encoded as Explicit VR Little Endian.
 */
export function isWebForbidden(uid: string): boolean {
  return uid === IMPLICIT_VR_LITTLE_ENDIAN || uid === EXPLICIT_VR_BIG_ENDIAN;
}

/** The transfer syntax an object is sent in: as stored, or Explicit VR Little Endian for a web-forbidden one. */
export function sentTransferSyntax(ref: StoredInstanceRef): string {
  return isWebForbidden(ref.transferSyntaxUID) ? EXPLICIT_VR_LITTLE_ENDIAN : ref.transferSyntaxUID;
}

/**
 * The stored instances a retrieve URL names; 404 when there are none (PS3.18 10.4.1.3) or when the principal may
 * not read (view) or download the study, worded the same (permitted-study.ts).
 */
export function findInstancesToRetrieve(
  index: IndexStore,
  access: Access,
  scope: RetrieveScope,
  purpose: ReadPurpose,
  options: PermittedStudyOptions = {},
): StoredInstanceRef[] {
  permittedStudy(index, access, scope, purpose, options);
  const refs = index.listInstances(scope);
  // The message names the level only: UIDs stay out of bodies and logs.
  if (refs.length === 0) throw missingScope(scope, options);
  return refs;
}

/** Transfer syntaxes a client may name to get these instances: the ones they are sent in, distinct. */
export function nameableTransferSyntaxes(refs: readonly StoredInstanceRef[]): string[] {
  return [...new Set(refs.map(sentTransferSyntax))];
}

function describe(uid: string): string {
  const name = transferSyntax(uid)?.name;
  return name ? `${uid} (${name})` : uid;
}

/** A 406 that tells the client what it can ask for instead. */
export function transcodingRefused(storedSyntaxes: readonly string[]): AppError {
  const sent = [...new Set(storedSyntaxes.map((uid) => (isWebForbidden(uid) ? EXPLICIT_VR_LITTLE_ENDIAN : uid)))];
  const stored = [...new Set(storedSyntaxes)].map(describe).join(', ');
  return new AppError(
    'NOT_ACCEPTABLE',
    `stored as ${stored}; transcoding is not available: ask with transfer-syntax=* or ${sent.map((uid) => `transfer-syntax=${uid}`).join(', ')}`,
  );
}

/** The 406 for a client that names Implicit VR LE or Explicit VR BE (whatever the objects are stored in). */
export function webForbiddenRefused(uid: string): AppError {
  return new AppError(
    'NOT_ACCEPTABLE',
    `${describe(uid)} is not allowed in a response (PS3.18 8.7.3.5.2): ask with transfer-syntax=${EXPLICIT_VR_LITTLE_ENDIAN} or transfer-syntax=*`,
  );
}

/**
 * The instances with their bodies, or a 406 when one of them cannot be sent as asked. Absent and `*` mean "as
 * the server has them": stored bytes, re-encoded for the web-forbidden syntaxes (what dcm4chee and Orthanc
 * answer; PS3.18's Explicit VR LE default would need a pixel transcoder for every compressed object). A named
 * syntax must be the one an instance is sent in; naming a web-forbidden syntax is always refused.
 */
export function prepareRetrieve(deps: RetrieveDeps, refs: readonly StoredInstanceRef[], requested: RequestedTransferSyntax): RetrievedInstance[] {
  if (requested !== undefined && requested !== ANY_TRANSFER_SYNTAX) {
    if (isWebForbidden(requested)) throw webForbiddenRefused(requested);
    const refused = refs.filter((r) => sentTransferSyntax(r) !== requested);
    if (refused.length > 0) throw transcodingRefused(refused.map((r) => r.transferSyntaxUID));
  }
  return refs.map((ref) => (isWebForbidden(ref.transferSyntaxUID) ? reencoded(deps, ref) : asStored(deps, ref)));
}

/** An instance sent byte for byte as stored (also WADO-URI's answer when the stored syntax is named). */
export function asStored(deps: Pick<RetrieveDeps, 'blobs'>, ref: StoredInstanceRef): RetrievedInstance {
  return {
    ref,
    transferSyntaxUID: ref.transferSyntaxUID,
    open: async () => ({ size: ref.size, chunks: () => blobBody(deps.blobs, ref.blobKey) }),
  };
}

/** An Implicit VR LE / Explicit VR BE instance sent as Explicit VR Little Endian; planned when opened. */
function reencoded(deps: RetrieveDeps, ref: StoredInstanceRef): RetrievedInstance {
  return {
    ref,
    transferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    open: () => reencodeToExplicitLittleEndian(blobSource(deps.blobs, ref), transferSyntax(ref.transferSyntaxUID)!, deps.limits),
  };
}

/** The blob as an async iterable that opens on first pull and closes when the consumer stops (client gone). */
async function* blobBody(blobs: BlobStore, key: string): AsyncGenerator<Buffer> {
  const stream = await blobs.createReadStream(key);
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } finally {
    stream.destroy();
  }
}
