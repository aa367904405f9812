// Big endian -> little endian for values of Explicit VR Big Endian objects (PS3.5 A.3, retired): what the
// re-encoder to Explicit VR Little Endian (reencode.ts) and the frames/bulk data service need. Which bytes
// swap depends on the VR alone (PS3.5 7.3): numbers swap in units of their size, AT as two 16-bit numbers,
// the "other" VRs in their word size; OB, UN, text and SQ are byte streams and never swap.

import type { ByteSource } from './part10.js';

const UNIT: Readonly<Record<string, number>> = {
  US: 2, SS: 2, OW: 2, AT: 2,
  UL: 4, SL: 4, FL: 4, OF: 4, OL: 4,
  FD: 8, OD: 8, SV: 8, UV: 8, OV: 8,
};

/** The swap unit of a VR in bytes: 1 (no swap), 2, 4 or 8. */
export function swapUnit(vr: string): number {
  return UNIT[vr] ?? 1;
}

/**
 * Bytes to read per piece of a large value: a multiple of 8, so a piece never splits a unit of any VR, and
 * small enough that a 2 GB value streams with flat memory.
 */
export const PIECE = 1024 * 1024;

/**
 * A little-endian copy of `buf` (never swapped in place: a ByteSource may return views of stored bytes).
 * A trailing partial unit (a malformed odd length) is left as it is.
 */
export function toLittleEndian(buf: Buffer, unit: number): Buffer {
  if (unit === 1) return buf;
  const copy = Buffer.from(buf);
  const whole = copy.subarray(0, copy.length - (copy.length % unit));
  if (unit === 2) whole.swap16();
  else if (unit === 4) whole.swap32();
  else whole.swap64();
  return copy;
}

/**
 * Bytes [from, to) of a value at [valueOffset, valueEnd) of `source`, swapped in units of `unit` counted from
 * the value's start (a frame of an 8-bit OW image may start mid-word), in pieces of at most PIECE bytes.
 */
export async function* swappedRange(
  source: ByteSource,
  value: { offset: number; end: number },
  unit: number,
  from: number,
  to: number,
): AsyncGenerator<Buffer> {
  for (let at = from; at < to; ) {
    // Widen the piece to whole units of the value, read, swap, and cut back to what was asked.
    const start = at - ((at - value.offset) % unit);
    const wanted = Math.min(to, start + PIECE);
    const end = Math.min(value.end, wanted + ((unit - ((wanted - value.offset) % unit)) % unit));
    const piece = toLittleEndian(await source.read(start, end - start), unit);
    yield piece.subarray(at - start, wanted - start);
    at = wanted;
  }
}
