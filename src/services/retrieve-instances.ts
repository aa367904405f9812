// WADO-RS Retrieve Instances as a use case (PS3.18 10.4.1): which stored objects a study, series or instance
// URL names, whether they may be sent in the transfer syntax the client asked for, and their bytes as
// lazily opened streams. Knows nothing about HTTP; the route negotiates media types and writes the parts.
//
// The bytes sent are the stored Part 10 bytes (DESIGN.md: never a dcmjs re-encoding, which would rewrite
// SpecificCharacterSet), except:
// - objects stored in Implicit VR Little Endian or Explicit VR Big Endian, which PS3.18 8.7.3.5.2 forbids on the
//   web: re-encoded losslessly, on the way out, as Explicit VR Little Endian (dicom/reencode.ts);
// - objects asked for in another transfer syntax that the transcoder writes (PS3.18 8.7.3.5: the origin server
//   may convert): decoded and re-encoded by transcode/transcoder.ts, one object at a time, when its part's turn
//   comes (the stored bytes stay as they are). A lossy result carries Lossy Image Compression 01 (the transcoder
//   sets it). A refusal (unsupported conversion, decompression bomb) is a 406 naming the reason, a codec that
//   timed out or ran out of memory a 503 (transcodeFailure below).
// Without a transfer-syntax parameter the objects go as the server has them (see prepareRetrieve).

import { AppError } from '../errors.js';
import type { ByteSource, ScanLimits } from '../dicom/part10.js';
import { reencodeToExplicitLittleEndian } from '../dicom/reencode.js';
import { EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, transferSyntax } from '../dicom/transfer-syntax.js';
import type { IndexStore, RetrieveScope, StoredInstanceRef } from '../index/index-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { blobSource } from './stored-object.js';
import { isTranscodeError } from '../transcode/transcode-error.js';
import { Transcoder } from '../transcode/transcoder.js';
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
  /**
   * Decodes and re-encodes pixel data for a client that names another transfer syntax (compose.ts builds one,
   * shared by both listeners; app.ts builds its own when none is given). Absent (service-level tests): a named
   * syntax other than the one sent is refused with 406, as before transcoding existed.
   */
  transcoder?: Transcoder;
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
  /**
   * Stored bytes only (asStored): their size, known without reading, and the whole object in one Buffer, read in
   * one ranged read instead of a stream of 64 KiB chunks (for small answers sent in one write, http/routes/wado-rs.ts).
   */
  stored?: { size: number; read(): Promise<Buffer> };
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
export function transcodingRefused(storedSyntaxes: readonly string[], transcoding = false): AppError {
  const sent = [...new Set(storedSyntaxes.map((uid) => (isWebForbidden(uid) ? EXPLICIT_VR_LITTLE_ENDIAN : uid)))];
  const stored = [...new Set(storedSyntaxes)].map(describe).join(', ');
  const why = transcoding ? 'the requested transfer syntax is not one this server writes' : 'transcoding is not available';
  return new AppError(
    'NOT_ACCEPTABLE',
    `stored as ${stored}; ${why}: ask with transfer-syntax=* or ${sent.map((uid) => `transfer-syntax=${uid}`).join(', ')}`,
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
 * A transcoder failure as the error table says (docs/transcoding.md "Wiring"); anything else unchanged.
 * - A conversion this object does not allow, a source it cannot decode, a decompression bomb (too-large) or a
 *   corrupt codestream: 406 Not Acceptable. The representation asked for cannot be produced for this object
 *   (PS3.18 8.7.8: nothing acceptable), and the stored syntax stays available. The transcoder's messages name
 *   syntaxes, sizes and codecs only, never attribute values, so they go to the client.
 * - A codec past its time or memory limit, or no codec worker: 503, the server's state, not the request's.
 * - A frame number outside the object: 400, as the frames route answers it (services/retrieve-frames.ts).
 */
export function transcodeFailure(e: unknown): unknown {
  if (!isTranscodeError(e)) return e;
  switch (e.failure) {
    case 'timeout':
    case 'memory':
    case 'unavailable':
      return new AppError('SERVICE_UNAVAILABLE', `transcoding failed (${e.failure}): ${e.message}`, { cause: e });
    case 'no-such-frame':
      return new AppError('BAD_REQUEST', e.message, { cause: e });
    default:
      return new AppError('NOT_ACCEPTABLE', `cannot transcode (${e.failure}): ${e.message}; ask with transfer-syntax=* for the stored bytes`, { cause: e });
  }
}

/** Whether the stored object has Pixel Data (per the layout recorded at STOW; unknown counts as yes). */
const hasPixelData = (ref: StoredInstanceRef): boolean => ref.layout === undefined || ref.layout.pixelData !== undefined;

/**
 * The instances with their bodies, or a 406 when they cannot be sent as asked. Absent and `*` mean "as the
 * server has them": stored bytes, re-encoded for the web-forbidden syntaxes. PS3.18 8.7.3.5.2 makes Explicit VR
 * LE the default of application/dicom; we keep the stored syntax, as dcm4chee and Orthanc do, because decoding
 * every object of a study nobody asked to decode costs seconds of codec time and up to ten times the bytes (and
 * drops nothing a client cannot ask for by naming the syntax). A named syntax: each object already sent in it
 * goes as is, each other one is transcoded (a transcoder is needed, and the syntax must be one it writes);
 * objects without Pixel Data go as they are, since a pixel encoding does not apply to them, and their parts say
 * their actual transfer syntax. Naming a web-forbidden syntax is always refused.
 */
export function prepareRetrieve(deps: RetrieveDeps, refs: readonly StoredInstanceRef[], requested: RequestedTransferSyntax): RetrievedInstance[] {
  if (requested === undefined || requested === ANY_TRANSFER_SYNTAX) return refs.map((ref) => asSent(deps, ref));
  if (isWebForbidden(requested)) throw webForbiddenRefused(requested);
  const transcoder = deps.transcoder;
  const others = refs.filter((r) => sentTransferSyntax(r) !== requested);
  if (others.length === 0) return refs.map((ref) => asSent(deps, ref));
  if (!transcoder) throw transcodingRefused(others.map((r) => r.transferSyntaxUID));
  if (!Transcoder.canWrite(requested)) throw transcodingRefused(others.map((r) => r.transferSyntaxUID), true);
  return refs.map((ref) =>
    sentTransferSyntax(ref) === requested || !hasPixelData(ref) ? asSent(deps, ref) : transcoded(deps, transcoder, ref, requested),
  );
}

/** As the server has it: stored bytes, or the Explicit VR LE re-encoding of a web-forbidden syntax. */
function asSent(deps: RetrieveDeps, ref: StoredInstanceRef): RetrievedInstance {
  return isWebForbidden(ref.transferSyntaxUID) ? reencoded(deps, ref) : asStored(deps, ref);
}

/** Bytes per cached block of a transcoding's reads: the encrypted store's default segment size (256 KiB). */
const READ_BLOCK = 256 * 1024;
/** Blocks kept per transcoding: the header's neighbourhood and the frame being read, 2 MiB at most. */
const READ_BLOCKS = 8;

/**
 * A stored blob for the transcoder, which reads the dataset element by element (many small reads): each
 * read of the encrypted store decrypts a whole segment, so small reads are served from a few cached blocks
 * instead (measured: a 128x128 CT as Explicit VR LE went from ~300 ms to the codec's own time). Large reads
 * go straight through.
 */
export function transcoderSource(deps: Pick<RetrieveDeps, 'blobs'>, ref: StoredInstanceRef): ByteSource {
  const source = blobSource(deps.blobs, ref);
  const blocks = new Map<number, Promise<Buffer>>();
  const block = (index: number): Promise<Buffer> => {
    let b = blocks.get(index);
    if (b) {
      // Most recently used last: Map keeps insertion order.
      blocks.delete(index);
    } else {
      const start = index * READ_BLOCK;
      b = source.read(start, Math.min(READ_BLOCK, source.size - start));
      // A failed read is not kept: the next one tries again (and fails the same way, or not).
      b.catch(() => blocks.delete(index));
    }
    blocks.set(index, b);
    if (blocks.size > READ_BLOCKS) blocks.delete(blocks.keys().next().value!);
    return b;
  };
  return {
    size: source.size,
    async read(offset, length) {
      if (length >= READ_BLOCK) return source.read(offset, length);
      const first = Math.floor(offset / READ_BLOCK);
      const last = Math.floor((offset + length - 1) / READ_BLOCK);
      const pieces: Buffer[] = [];
      for (let i = first; i <= last && length > 0; i++) {
        const data = await block(i);
        const from = Math.max(offset - i * READ_BLOCK, 0);
        const to = Math.min(offset + length - i * READ_BLOCK, data.length);
        pieces.push(data.subarray(from, to));
      }
      // A copy: the caller may keep or transfer it, the cached block stays intact.
      return Buffer.concat(pieces, length);
    },
  };
}

/**
 * An instance decoded and re-encoded in `target` when its part's turn comes: one object in memory at a time (its
 * size is bounded by the transcoder's per-object limit), released once written.
 */
export function transcoded(deps: Pick<RetrieveDeps, 'blobs'>, transcoder: Transcoder, ref: StoredInstanceRef, target: string): RetrievedInstance {
  return {
    ref,
    transferSyntaxUID: target,
    open: async () => {
      let bytes: Buffer;
      try {
        ({ bytes } = await transcoder.transcodeInstance(transcoderSource(deps, ref), target));
      } catch (e) {
        throw transcodeFailure(e);
      }
      return {
        size: bytes.length,
        async *chunks() {
          yield bytes;
        },
      };
    },
  };
}

/** An instance sent byte for byte as stored (also WADO-URI's answer when the stored syntax is named). */
export function asStored(deps: Pick<RetrieveDeps, 'blobs'>, ref: StoredInstanceRef): RetrievedInstance {
  return {
    ref,
    transferSyntaxUID: ref.transferSyntaxUID,
    open: async () => ({ size: ref.size, chunks: () => blobBody(deps.blobs, ref.blobKey) }),
    stored: { size: ref.size, read: () => readRange(deps.blobs, ref.blobKey, 0, ref.size) },
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

/**
 * Bytes [offset, offset + length) of a blob in one Buffer, with one ranged read. A blob shorter than the index says
 * (a truncated file) is read once more as a stream, which reports why as the streamed answers do (an encrypted
 * blob's cut last segment fails its check: a BlobIntegrityError, a security event); short either way, it is an error.
 */
export async function readRange(blobs: BlobStore, key: string, offset: number, length: number): Promise<Buffer> {
  try {
    return await blobs.read(key, offset, length);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  const stream = await blobs.createReadStream(key, { start: offset, end: offset + length });
  let got = 0;
  try {
    for await (const chunk of stream) got += (chunk as Buffer).length;
  } finally {
    stream.destroy();
  }
  throw new Error(`stored object holds ${got} of the ${length} bytes its index entry names`);
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
