// WADO-RS Retrieve Frames and bulk data as use cases (PS3.18 10.4.1.1.4 frames, 10.4.1.1.5 / F.2.7 bulk data):
// which byte ranges of the stored Part 10 blob a frame list or a BulkDataURI names, and those bytes as lazily
// opened streams. Knows nothing about HTTP media types; the routes negotiate and write the parts.
//
// The bytes served are those of the object as WADO-RS sends it (PS3.18 8.7.3.5.2, services/retrieve-instances.ts):
// stored bytes, except that Explicit VR Big Endian values are swapped to little endian by their VR, as in the
// Explicit VR Little Endian re-encoding (octet-stream bulk data is little endian, PS3.18 8.7.3.3.2), and that
// a Deflated object's dataset is inflated (per request: the layout counts inflated bytes).
//
// Nothing else is re-parsed: the ranges come from the layout the reader recorded at STOW (StoredInstanceRef.layout)
// and the frame geometry (Rows, Columns, SamplesPerPixel, BitsAllocated, NumberOfFrames) from the index's
// stored dataset: read with the instance itself for the frames route (findFramedInstance, one query), or through
// the QIDO port (`index.search` at instance level with those tags as includefields, geometryOf) by WADO-URI.

import { AppError } from '../errors.js';
import {
  locateFrames,
  pixelDataRanges,
  pixelGeometry,
  PIXEL_GEOMETRY_TAGS,
  type ByteRange,
  type PixelGeometry,
} from '../dicom/frames.js';
import { PIECE, swappedRange, swapUnit } from '../dicom/byte-swap.js';
import { inflateDataset } from '../dicom/deflated-dataset.js';
import type { ByteSource } from '../dicom/part10.js';
import { readMeta } from '../dicom/part10-meta.js';
import { DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN } from '../dicom/transfer-syntax.js';
import type { IndexStore, RetrieveScope, StoredInstanceRef } from '../index/index-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { readRange, transcodeFailure, transcoderSource, type RetrieveDeps } from './retrieve-instances.js';
import type { Transcoder } from '../transcode/transcoder.js';
import { blobSource } from './stored-object.js';
import type { Access } from '../policy/access.js';
import { missingScope, type PermittedStudyOptions, permittedStudy } from './permitted-study.js';

/** Most frame numbers accepted in one request; a longer list is a 400 (ask in several requests). */
export const MAX_FRAMES_PER_REQUEST = 1000;

/** The tag path of the top-level Pixel Data, as it appears in BulkDataURIs. */
export const PIXEL_DATA_PATH = '7FE00010';

/**
 * The one stored instance a frames or bulk URL names; 404 without echoing UIDs (PS3.18 10.4.1.3), also when the
 * principal may not read the study (permitted-study.ts). Frames and bulk data are viewing, not downloading.
 */
export function findInstance(index: IndexStore, access: Access, scope: Required<RetrieveScope>, options: PermittedStudyOptions = {}): StoredInstanceRef {
  permittedStudy(index, access, scope, 'view', options);
  const [ref] = index.listInstances(scope);
  if (!ref) throw missingScope(scope, options);
  return ref;
}

/**
 * findInstance and the frame geometry in one index read: the instance's stored dataset (the one metadata serves)
 * holds the Image Pixel attributes, so the frames route needs no QIDO search (geometryOf) on top.
 */
export function findFramedInstance(
  index: IndexStore,
  access: Access,
  scope: Required<RetrieveScope>,
  options: PermittedStudyOptions = {},
): { ref: StoredInstanceRef; geometry: PixelGeometry } {
  permittedStudy(index, access, scope, 'view', options);
  const [found] = index.listInstanceDatasets(scope);
  if (!found) throw missingScope(scope, options);
  return { ref: found.ref, geometry: pixelGeometry(found.dataset) };
}

/** The frame geometry from the index's copy of the dataset (the QIDO port, instance level). */
export function geometryOf(index: IndexStore, ref: StoredInstanceRef): PixelGeometry {
  const { matches } = index.search({
    level: 'instance',
    scope: { studyInstanceUID: ref.studyInstanceUID, seriesInstanceUID: ref.seriesInstanceUID },
    filters: [{ path: ['00080018'], vr: 'UI', level: 'instance', matcher: { kind: 'uidList', values: [ref.sopInstanceUID] } }],
    includeFields: [...PIXEL_GEOMETRY_TAGS],
    fuzzyMatching: false,
    limit: 1,
    offset: 0,
  });
  /* c8 ignore next */
  if (!matches[0]) throw new AppError('NOT_FOUND', 'no such instance'); // removed between the two reads
  return pixelGeometry(matches[0]);
}

/**
 * `{frameList}` of PS3.18 10.4.1.1.4: comma-separated 1-based frame numbers. Kept in the given order,
 * duplicates included (PS3.18 asks for ascending lists; a client that sends another order gets what it
 * asked for). 400 for a malformed list, 0, a number past NumberOfFrames, or more than the limit.
 */
export function parseFrameList(text: string, numberOfFrames: number): number[] {
  if (!/^[0-9]+(,[0-9]+)*$/.test(text)) throw new AppError('BAD_REQUEST', 'frame list must be comma-separated frame numbers');
  const parts = text.split(',');
  if (parts.length > MAX_FRAMES_PER_REQUEST) {
    throw new AppError('BAD_REQUEST', `at most ${MAX_FRAMES_PER_REQUEST} frames per request`);
  }
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isSafeInteger(n) || n < 1 || n > numberOfFrames) {
      throw new AppError('BAD_REQUEST', `frame numbers run from 1 to ${numberOfFrames}`);
    }
    return n;
  });
}

/** Bytes of one element value to serve: ranges of the stored object (inflated for Deflated), in order. */
export interface ServedValue {
  ranges: ByteRange[];
  length: number;
  /** The whole value the ranges lie in: Big Endian swap units count from its start. */
  value: ByteRange;
  /** Its VR; undefined for the top-level Pixel Data (OB or OW: read from the stored header when it matters). */
  vr?: string;
}

/** One requested frame: its number and where its bytes are. */
export interface FrameRef extends ServedValue {
  number: number;
}

/**
 * The requested frames of an instance. 404 when the instance has no Pixel Data (there is no frame resource);
 * 406 when its frames cannot be located (bit-packed, or several fragments per frame with no offset table).
 */
export function framesToRetrieve(
  index: IndexStore,
  ref: StoredInstanceRef,
  frameList: string,
  requested: RequestedFrames = requestedFrames(index, ref, frameList),
): FrameRef[] {
  const { pixel, geometry, numbers } = requested;
  const layout = locateFrames(pixel, geometry);
  if (!layout.ok) throw new AppError('NOT_ACCEPTABLE', `frames cannot be served: ${layout.reason}`);
  return numbers.map((number) => {
    const ranges = layout.frames[number - 1]!;
    return { number, ranges, length: totalLength(ranges), value: { offset: pixel.offset, length: pixel.length } };
  });
}

export interface RequestedFrames {
  pixel: NonNullable<NonNullable<StoredInstanceRef['layout']>['pixelData']>;
  geometry: PixelGeometry;
  numbers: number[];
}

/**
 * The frame numbers a frame list names, checked against the instance: 404 without Pixel Data, 400 for a bad list
 * (parseFrameList). Nothing is read from the blob. `known`: the geometry if the caller has it (findFramedInstance).
 */
export function requestedFrames(index: IndexStore, ref: StoredInstanceRef, frameList: string, known?: PixelGeometry): RequestedFrames {
  const pixel = ref.layout?.pixelData;
  if (!pixel) throw new AppError('NOT_FOUND', 'the instance has no Pixel Data');
  const geometry = known ?? geometryOf(index, ref);
  return { pixel, geometry, numbers: parseFrameList(frameList, geometry.numberOfFrames) };
}

/**
 * Frames `numbers` decoded and re-encoded in `target` (PS3.18 8.7.3.5.2: the server may convert): native
 * little-endian bytes for Explicit VR Little Endian, one codestream per frame otherwise. One call for the
 * request: the transcoder reads the object's header once and spreads the frames over its workers; what it may
 * hold is bounded by its per-object decoded-size limit and MAX_FRAMES_PER_REQUEST. Failures as the error table
 * says (retrieve-instances.ts transcodeFailure).
 */
export async function transcodedFrames(
  deps: Pick<RetrieveDeps, 'blobs'>,
  transcoder: Transcoder,
  ref: StoredInstanceRef,
  numbers: readonly number[],
  target: string,
): Promise<Buffer[]> {
  try {
    return (await transcoder.transcodeFrames(transcoderSource(deps, ref), numbers, target)).frames;
  } catch (e) {
    throw transcodeFailure(e);
  }
}

/** `TAG[/ITEM/TAG...]`: 8 uppercase hex digits per tag, 0-based item indexes (what BulkDataURIs carry). */
export function renderBulkPath(path: readonly (string | number)[]): string {
  return path.map((p) => (typeof p === 'number' ? String(p) : p.toUpperCase())).join('/');
}

/** A bulk value (PS3.18 F.2.7) to serve; 404 for a path the instance does not have. */
export function bulkValue(ref: StoredInstanceRef, path: string): ServedValue {
  const wanted = path.toUpperCase();
  const pixel = ref.layout?.pixelData;
  if (wanted === PIXEL_DATA_PATH && pixel) {
    const ranges = pixelDataRanges(pixel);
    return { ranges, length: totalLength(ranges), value: { offset: pixel.offset, length: pixel.length } };
  }
  const found = ref.layout?.bulk?.find((b) => renderBulkPath(b.path) === wanted);
  if (!found) throw new AppError('NOT_FOUND', 'no such bulk data');
  const value = { offset: found.offset, length: found.length };
  return { ranges: [value], length: found.length, value, vr: found.vr };
}

/** The summed length of ranges, frames or buffers. */
export const totalLength = (pieces: readonly { length: number }[]): number => pieces.reduce((n, r) => n + r.length, 0);

/** Reads the served bytes of one stored instance; made once per request, so a Deflated dataset inflates once. */
export interface InstanceBytes {
  /**
   * Bytes [start, end) of the value's ranges back to back, streamed one range at a time; nothing is read until
   * the first pull, and an abandoned read closes its stream.
   */
  body(value: ServedValue, start?: number, end?: number): AsyncGenerator<Buffer>;
  /**
   * The same bytes as body(value), in one Buffer (for answers assembled in memory, http/multipart-writer.ts
   * multipartBuffer). Stored bytes are read with one ranged read of the span the value's ranges lie in (the blob
   * store decrypts only the segments covering it) instead of a stream of small chunks.
   */
  buffer(value: ServedValue): Promise<Buffer>;
}

/**
 * Ranges read as one span when what lies between them is at most this: fragment item headers (8 bytes each)
 * between the fragments of one encapsulated frame. Ranges further apart are read one by one.
 */
const SPAN_SLACK = 64 * 1024;

export function instanceBytes(deps: RetrieveDeps, ref: StoredInstanceRef): InstanceBytes {
  const limits = deps.limits;
  let inflated: Promise<ByteSource> | undefined;
  const inflatedSource = () =>
    (inflated ??= (async () => {
      const source = blobSource(deps.blobs, ref);
      return inflateDataset(source, (await readMeta(source, limits)).datasetOffset, limits);
    })());

  async function* rangeBytes(value: ServedValue, r: ByteRange, from: number, to: number): AsyncGenerator<Buffer> {
    if (ref.transferSyntaxUID === DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) {
      // The inflated dataset is in memory already: views of it, in pieces.
      const source = await inflatedSource();
      for (let at = from; at < to; at += PIECE) yield await source.read(r.offset + at, Math.min(PIECE, to - at));
      return;
    }
    const unit = ref.transferSyntaxUID === EXPLICIT_VR_BIG_ENDIAN ? swapUnit(value.vr ?? (await pixelDataVr(deps.blobs, ref, value))) : 1;
    if (unit === 1) yield* streamRange(deps.blobs, ref.blobKey, r.offset + from, to - from);
    else yield* swappedRange(blobSource(deps.blobs, ref), { offset: value.value.offset, end: value.value.offset + value.value.length }, unit, r.offset + from, r.offset + to);
  }

  async function* body(value: ServedValue, start = 0, end = value.length): AsyncGenerator<Buffer> {
    let at = 0;
    for (const r of value.ranges) {
      const from = Math.max(start, at);
      const to = Math.min(end, at + r.length);
      at += r.length;
      if (from < to) yield* rangeBytes(value, r, from - (at - r.length), to - (at - r.length));
    }
  }

  async function buffer(value: ServedValue): Promise<Buffer> {
    const ranges = value.ranges.filter((r) => r.length > 0);
    if (ranges.length === 0) return Buffer.alloc(0);
    if (ref.transferSyntaxUID === DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN || ref.transferSyntaxUID === EXPLICIT_VR_BIG_ENDIAN) {
      const chunks: Buffer[] = [];
      let got = 0;
      for await (const chunk of body(value)) {
        chunks.push(chunk);
        got += chunk.length;
      }
      if (got !== value.length) throw new Error(`stored object holds ${got} of the ${value.length} bytes its layout names`);
      return Buffer.concat(chunks, got);
    }
    const pieces: Buffer[] = [];
    for (let k = 0; k < ranges.length; ) {
      // The ranges from k on that lie close together (in order, little between them) are read as one span.
      const from = ranges[k]!.offset;
      let to = from + ranges[k]!.length;
      let next = k + 1;
      for (; next < ranges.length; next++) {
        const r = ranges[next]!;
        if (r.offset < to || r.offset - to > SPAN_SLACK) break;
        to = r.offset + r.length;
      }
      const span = await readRange(deps.blobs, ref.blobKey, from, to - from);
      for (; k < next; k++) pieces.push(span.subarray(ranges[k]!.offset - from, ranges[k]!.offset - from + ranges[k]!.length));
    }
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, value.length);
  }

  return { body, buffer };
}

/** The VR of native Pixel Data in an Explicit VR object: bytes 4-5 of its 12-byte header (PS3.5 7.1.2). */
async function pixelDataVr(blobs: BlobStore, ref: StoredInstanceRef, value: ServedValue): Promise<string> {
  return (await blobs.read(ref.blobKey, value.value.offset - 8, 2)).toString('latin1');
}

async function* streamRange(blobs: BlobStore, key: string, offset: number, length: number): AsyncGenerator<Buffer> {
  const stream = await blobs.createReadStream(key, { start: offset, end: offset + length });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } finally {
    stream.destroy();
  }
}
