// WADO-RS Retrieve Frames and bulk data as use cases (PS3.18 10.4.1.1.4 frames, 10.4.1.1.5 / F.2.7 bulk data):
// which byte ranges of the stored Part 10 blob a frame list or a BulkDataURI names, and those bytes as lazily
// opened streams. Knows nothing about HTTP media types; the routes negotiate and write the parts.
//
// Nothing is re-parsed: the ranges come from the layout the reader recorded at STOW (StoredInstanceRef.layout)
// and the frame geometry (Rows, Columns, SamplesPerPixel, BitsAllocated, NumberOfFrames) from the index's
// stored dataset, read through the existing QIDO port (`index.search` at instance level with those tags as
// includefields), so the index needs no new method.

import { AppError } from '../errors.js';
import {
  locateFrames,
  pixelDataRanges,
  pixelGeometry,
  PIXEL_GEOMETRY_TAGS,
  type ByteRange,
  type PixelGeometry,
} from '../dicom/frames.js';
import { DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN } from '../dicom/transfer-syntax.js';
import type { IndexStore, RetrieveScope, StoredInstanceRef } from '../index/index-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { RetrieveDeps } from './retrieve-instances.js';

/** Most frame numbers accepted in one request; a longer list is a 400 (ask in several requests). */
export const MAX_FRAMES_PER_REQUEST = 1000;

/** The tag path of the top-level Pixel Data, as it appears in BulkDataURIs. */
export const PIXEL_DATA_PATH = '7FE00010';

/** The one stored instance a frames or bulk URL names; 404 without echoing UIDs (PS3.18 10.4.1.3). */
export function findInstance(index: IndexStore, scope: Required<RetrieveScope>): StoredInstanceRef {
  const [ref] = index.listInstances(scope);
  if (!ref) throw new AppError('NOT_FOUND', 'no such instance');
  return ref;
}

/**
 * Byte ranges of the blob are the bytes on the wire only when the stored dataset is neither deflated (the
 * layout counts inflated bytes) nor big endian (octet-stream bulk data is little endian, PS3.18 8.7.3.3.2).
 * Both are refused (406) until a transcoder exists.
 */
export function requireServableBytes(ref: StoredInstanceRef): void {
  if (ref.transferSyntaxUID === DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) {
    throw new AppError('NOT_ACCEPTABLE', 'stored as Deflated Explicit VR Little Endian: frames and bulk data of it are not available yet');
  }
  if (ref.transferSyntaxUID === EXPLICIT_VR_BIG_ENDIAN) {
    throw new AppError('NOT_ACCEPTABLE', 'stored as Explicit VR Big Endian: frames and bulk data of it are not available without a transcoder');
  }
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

/** One requested frame: its number and where its bytes are. */
export interface FrameRef {
  number: number;
  ranges: ByteRange[];
  length: number;
}

/**
 * The requested frames of an instance. 404 when the instance has no Pixel Data (there is no frame resource);
 * 406 when its frames cannot be located (bit-packed, or several fragments per frame with no offset table).
 */
export function framesToRetrieve(index: IndexStore, ref: StoredInstanceRef, frameList: string): FrameRef[] {
  const pixel = ref.layout?.pixelData;
  if (!pixel) throw new AppError('NOT_FOUND', 'the instance has no Pixel Data');
  requireServableBytes(ref);
  const geometry = geometryOf(index, ref);
  const numbers = parseFrameList(frameList, geometry.numberOfFrames);
  const layout = locateFrames(pixel, geometry);
  if (!layout.ok) throw new AppError('NOT_ACCEPTABLE', `frames cannot be served: ${layout.reason}`);
  return numbers.map((number) => {
    const ranges = layout.frames[number - 1]!;
    return { number, ranges, length: totalLength(ranges) };
  });
}

/** `TAG[/ITEM/TAG...]`: 8 uppercase hex digits per tag, 0-based item indexes (what BulkDataURIs carry). */
export function renderBulkPath(path: readonly (string | number)[]): string {
  return path.map((p) => (typeof p === 'number' ? String(p) : p.toUpperCase())).join('/');
}

/** The byte ranges of a bulk value (PS3.18 F.2.7); 404 for a path the instance does not have. */
export function bulkRanges(ref: StoredInstanceRef, path: string): ByteRange[] {
  const wanted = path.toUpperCase();
  let ranges: ByteRange[] | undefined;
  if (wanted === PIXEL_DATA_PATH && ref.layout?.pixelData) ranges = pixelDataRanges(ref.layout.pixelData);
  else {
    const found = ref.layout?.bulk?.find((b) => renderBulkPath(b.path) === wanted);
    if (found) ranges = [{ offset: found.offset, length: found.length }];
  }
  if (!ranges) throw new AppError('NOT_FOUND', 'no such bulk data');
  requireServableBytes(ref);
  return ranges;
}

export const totalLength = (ranges: readonly ByteRange[]): number => ranges.reduce((n, r) => n + r.length, 0);

/**
 * Bytes [start, end) of the concatenation of `ranges`, streamed from the blob one range at a time; nothing is
 * opened until the first pull, and an abandoned read closes its stream.
 */
export async function* rangeBody(deps: Pick<RetrieveDeps, 'blobs'>, key: string, ranges: readonly ByteRange[], start = 0, end = totalLength(ranges)): AsyncGenerator<Buffer> {
  let at = 0;
  for (const r of ranges) {
    const from = Math.max(start, at);
    const to = Math.min(end, at + r.length);
    at += r.length;
    if (from >= to) continue;
    yield* streamRange(deps.blobs, key, r.offset + (from - (at - r.length)), to - from);
  }
}

async function* streamRange(blobs: BlobStore, key: string, offset: number, length: number): AsyncGenerator<Buffer> {
  const stream = await blobs.createReadStream(key, { start: offset, end: offset + length });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } finally {
    stream.destroy();
  }
}
