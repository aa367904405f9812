// Where each frame of a stored object sits, as byte ranges of its Part 10 file (WADO-RS Retrieve Frames,
// PS3.18 10.4.1.1.4 / 8.7.3). Pure: the layout the reader recorded at STOW time (PixelDataLocation) plus the
// Image Pixel attributes of the dataset; no I/O and no re-parse.
//
// - Native Pixel Data (PS3.5 8.1.1): frames are consecutive, each rows*columns*samples*bitsAllocated/8 bytes.
//   Bit-packed frames (BitsAllocated 1) need not start on a byte boundary: refused for now.
// - Encapsulated Pixel Data (PS3.5 A.4): with a Basic Offset Table, its entries (offsets of each frame's first
//   item tag, counted from the first fragment item's tag) group the fragments into frames. Without one: one
//   fragment per frame when there are as many fragments as frames (always so for RLE, PS3.5 A.4.2), or every
//   fragment for a single-frame object. Several fragments per frame without a table: grouped by the frame
//   starts found at STOW (Extended Offset Table or codec start markers, frame-starts.ts), else refused.

import { firstNumber, type DicomJsonDataset } from './json-model.js';
import type { PixelDataLocation } from './part10.js';

/** A byte range of the stored file. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** The Image Pixel Module values frames depend on (PS3.3 C.7.6.3, C.7.6.6). */
export interface PixelGeometry {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  numberOfFrames: number;
}

export const ROWS = '00280010';
export const COLUMNS = '00280011';
export const SAMPLES_PER_PIXEL = '00280002';
export const BITS_ALLOCATED = '00280100';
export const NUMBER_OF_FRAMES = '00280008';
export const PIXEL_GEOMETRY_TAGS = [ROWS, COLUMNS, SAMPLES_PER_PIXEL, BITS_ALLOCATED, NUMBER_OF_FRAMES] as const;

const positive = (n: number | undefined): n is number => n !== undefined && Number.isSafeInteger(n) && n > 0;

/**
 * The geometry from a dataset. SamplesPerPixel defaults to 1 and NumberOfFrames to 1 (absent in single-frame
 * IODs); Rows, Columns and BitsAllocated are needed only for native data, so they may be 0 (= unknown).
 */
export function pixelGeometry(ds: DicomJsonDataset): PixelGeometry {
  const orZero = (tag: string) => {
    const n = firstNumber(ds, tag);
    return positive(n) ? n : 0;
  };
  const frames = firstNumber(ds, NUMBER_OF_FRAMES);
  const samples = firstNumber(ds, SAMPLES_PER_PIXEL);
  return {
    rows: orZero(ROWS),
    columns: orZero(COLUMNS),
    samplesPerPixel: positive(samples) ? samples : 1,
    bitsAllocated: orZero(BITS_ALLOCATED),
    numberOfFrames: positive(frames) ? frames : 1,
  };
}

export type FrameLayout =
  /** `frames[k-1]` holds the byte ranges of frame k, in order (one range for native data). */
  | { ok: true; frames: ByteRange[][] }
  /** Why the frames cannot be located; PHI-free, for a 406 message. */
  | { ok: false; reason: string };

/** Every frame's byte ranges, or why they cannot be told apart. */
export function locateFrames(pixel: PixelDataLocation, geometry: PixelGeometry): FrameLayout {
  return pixel.encapsulated ? locateEncapsulated(pixel, geometry.numberOfFrames) : locateNative(pixel, geometry);
}

function locateNative(pixel: PixelDataLocation, g: PixelGeometry): FrameLayout {
  if (g.bitsAllocated === 1) return { ok: false, reason: 'bit-packed (BitsAllocated 1) frames are not supported yet' };
  if (g.rows === 0 || g.columns === 0 || g.bitsAllocated === 0 || g.bitsAllocated % 8 !== 0) {
    return { ok: false, reason: 'the Image Pixel attributes do not describe the frame size' };
  }
  const frameBytes = g.rows * g.columns * g.samplesPerPixel * (g.bitsAllocated / 8);
  if (frameBytes * g.numberOfFrames > pixel.length) {
    return { ok: false, reason: 'Pixel Data is shorter than NumberOfFrames frames' };
  }
  const frames = Array.from({ length: g.numberOfFrames }, (_, k) => [{ offset: pixel.offset + k * frameBytes, length: frameBytes }]);
  return { ok: true, frames };
}

/** Item header (tag + length) in front of each fragment's value (PS3.5 A.4). */
const ITEM_HEADER = 8;

function locateEncapsulated(pixel: PixelDataLocation, numberOfFrames: number): FrameLayout {
  const fragments = pixel.fragments ?? [];
  if (fragments.length === 0) return { ok: false, reason: 'encapsulated Pixel Data without fragments' };
  const bot = pixel.basicOffsetTable ?? [];
  if (bot.length > 0) return groupByOffsetTable(fragments, bot, numberOfFrames);
  if (pixel.frameStarts?.length === numberOfFrames) return groupByStarts(fragments, pixel.frameStarts);
  if (fragments.length === numberOfFrames) return { ok: true, frames: fragments.map((f) => [{ ...f }]) };
  if (numberOfFrames === 1) return { ok: true, frames: [fragments.map((f) => ({ ...f }))] };
  return {
    ok: false,
    reason: `${fragments.length} fragments for ${numberOfFrames} frames and no Basic Offset Table: frame boundaries are unknown`,
  };
}

function groupByOffsetTable(fragments: ByteRange[], bot: number[], numberOfFrames: number): FrameLayout {
  if (bot.length !== numberOfFrames) return { ok: false, reason: 'the Basic Offset Table does not have one entry per frame' };
  // Offset of each fragment's item tag relative to the first fragment's item tag.
  const base = fragments[0]!.offset - ITEM_HEADER;
  const starts = fragments.map((f) => f.offset - ITEM_HEADER - base);
  const frames: ByteRange[][] = [];
  for (let k = 0; k < bot.length; k++) {
    const first = starts.indexOf(bot[k]!);
    const end = k + 1 < bot.length ? starts.indexOf(bot[k + 1]!) : fragments.length;
    if (first < 0 || end < 0 || end <= first) return { ok: false, reason: 'the Basic Offset Table does not match the fragments' };
    frames.push(fragments.slice(first, end).map((f) => ({ ...f })));
  }
  return { ok: true, frames };
}

/** Fragments grouped by the index of each frame's first fragment (found at STOW, frame-starts.ts). */
function groupByStarts(fragments: ByteRange[], starts: number[]): FrameLayout {
  const frames = starts.map((first, k) => fragments.slice(first, starts[k + 1] ?? fragments.length).map((f) => ({ ...f })));
  if (frames.some((f) => f.length === 0)) return { ok: false, reason: 'the recorded frame starts do not match the fragments' };
  return { ok: true, frames };
}

/** The whole Pixel Data value as served for a BulkDataURI: native bytes, or the fragments back to back. */
export function pixelDataRanges(pixel: PixelDataLocation): ByteRange[] {
  if (!pixel.encapsulated) return [{ offset: pixel.offset, length: pixel.length }];
  return (pixel.fragments ?? []).map((f) => ({ ...f }));
}
