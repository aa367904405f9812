// WADO-RS Retrieve Instances as a use case (PS3.18 10.4.1): which stored objects a study, series or instance
// URL names, whether they may be sent in the transfer syntax the client asked for, and their bytes as
// lazily opened streams. Knows nothing about HTTP; the route negotiates media types and writes the parts.
//
// The bytes sent are always the stored Part 10 bytes (DESIGN.md: never a dcmjs re-encoding, which would
// rewrite SpecificCharacterSet). There is no transcoder yet, so a request for any other transfer syntax is
// refused (406) instead of silently answered with different bytes.

import { AppError } from '../errors.js';
import { EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, transferSyntax } from '../dicom/transfer-syntax.js';
import type { IndexStore, RetrieveScope, StoredInstanceRef } from '../index/index-store.js';
import type { BlobStore } from '../storage/blob-store.js';

export interface RetrieveDeps {
  index: IndexStore;
  blobs: BlobStore;
}

/** `*` (PS3.18 8.7.3.5.2: any, the server chooses), a transfer syntax UID, or undefined when none was named. */
export type RequestedTransferSyntax = string | undefined;

export const ANY_TRANSFER_SYNTAX = '*';

/** One instance of a retrieve response. */
export interface RetrievedInstance {
  ref: StoredInstanceRef;
  /** The transfer syntax of the bytes `body()` yields (today always the stored one). */
  transferSyntaxUID: string;
  /** Size of those bytes. */
  size: number;
  /** Opens the blob only when pulled, so a study of thousands of instances holds one file at a time. */
  body(): AsyncIterable<Buffer>;
}

/**
 * PS3.18 8.7.3.5.2: Implicit VR Little Endian and Explicit VR Big Endian "shall not be used" on the web.
 * Interim rule until a lossless re-encoder to Explicit VR Little Endian exists (follow-up issue): objects
 * stored in them are sent as stored only when the client asked for `transfer-syntax=*` explicitly, which
 * says it takes whatever the server has; any other request for them is 406.
 */
export function isWebForbidden(uid: string): boolean {
  return uid === IMPLICIT_VR_LITTLE_ENDIAN || uid === EXPLICIT_VR_BIG_ENDIAN;
}

const LEVEL_OF_SCOPE = (scope: RetrieveScope) =>
  scope.sopInstanceUID !== undefined ? 'instance' : scope.seriesInstanceUID !== undefined ? 'series' : 'study';

/** The stored instances a retrieve URL names; 404 when there are none (PS3.18 10.4.1.3). */
export function findInstancesToRetrieve(index: IndexStore, scope: RetrieveScope): StoredInstanceRef[] {
  const refs = index.listInstances(scope);
  // The message names the level only: UIDs stay out of bodies and logs.
  if (refs.length === 0) throw new AppError('NOT_FOUND', `no such ${LEVEL_OF_SCOPE(scope)}`);
  return refs;
}

/** Transfer syntaxes a client may name to get these instances as stored: theirs, minus the forbidden ones. */
export function nameableTransferSyntaxes(refs: readonly StoredInstanceRef[]): string[] {
  return [...new Set(refs.map((r) => r.transferSyntaxUID))].filter((uid) => !isWebForbidden(uid));
}

function describe(uid: string): string {
  const name = transferSyntax(uid)?.name;
  return name ? `${uid} (${name})` : uid;
}

/** A 406 that tells the client what it can ask for instead. */
export function transcodingRefused(storedSyntaxes: readonly string[]): AppError {
  const stored = [...new Set(storedSyntaxes)].map(describe).join(', ');
  return new AppError(
    'NOT_ACCEPTABLE',
    `stored as ${stored}; transcoding is not available: ask with transfer-syntax=* or the stored transfer syntax`,
  );
}

/**
 * The instances with their bytes, or a 406 when one of them cannot be sent as asked: a named transfer syntax
 * other than the stored one (no transcoding), or a web-forbidden stored syntax without an explicit `*`.
 * Absent means "as stored": what dcm4chee and Orthanc answer; PS3.18's Explicit VR LE default would need
 * the transcoder for every compressed object.
 */
export function prepareRetrieve(deps: RetrieveDeps, refs: readonly StoredInstanceRef[], requested: RequestedTransferSyntax): RetrievedInstance[] {
  if (requested !== ANY_TRANSFER_SYNTAX) {
    const refused =
      requested === undefined
        ? refs.filter((r) => isWebForbidden(r.transferSyntaxUID))
        : refs.filter((r) => r.transferSyntaxUID !== requested || isWebForbidden(r.transferSyntaxUID));
    if (refused.length > 0) {
      throw requested === undefined ? webForbidden(refused) : transcodingRefused(refused.map((r) => r.transferSyntaxUID));
    }
  }
  return refs.map((ref) => ({
    ref,
    transferSyntaxUID: ref.transferSyntaxUID,
    size: ref.size,
    body: () => blobBody(deps.blobs, ref.blobKey),
  }));
}

function webForbidden(refs: readonly StoredInstanceRef[]): AppError {
  const stored = [...new Set(refs.map((r) => r.transferSyntaxUID))].map(describe).join(', ');
  return new AppError(
    'NOT_ACCEPTABLE',
    `stored as ${stored}, which PS3.18 8.7.3 does not allow in a response unless the client accepts any transfer syntax: ask with transfer-syntax=*`,
  );
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
