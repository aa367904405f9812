// Top-level editing of an Explicit VR Little Endian Part 10 object (PS3.5 7.1.2, PS3.10 7.1), for the transcoder:
// every top-level element is copied byte for byte (nested sequences included: they are Explicit VR Little Endian
// already), except the few the transcoder replaces, drops or adds. Text values, character sets and private
// elements are never decoded and re-encoded, so nothing but the pixel encoding changes (DESIGN.md: dcmjs rewrites
// SpecificCharacterSet, so it does not write these objects).

import type { ByteSource } from '../dicom/part10.js';
import { TokenKind, unpackVr, type TokenList } from '../dicom/scan-tokens.js';
import { LONG_LENGTH_VRS } from '../dicom/vr.js';

/** One element of the top level of a dataset (or of the File Meta group), as byte ranges of its source. */
export interface TopElement {
  tag: number;
  vr: string;
  /** First byte of the element header. */
  start: number;
  /** First byte after the element (after the sequence delimiter of an undefined-length value). */
  end: number;
  valueOffset: number;
  valueLength: number;
}

/**
 * The top-level elements of a walked dataset. Top-level elements are contiguous (the walk checks it), so each
 * starts where the previous one ended, the first at `datasetOffset`.
 */
export function topLevelElements(tokens: TokenList, datasetOffset: number): TopElement[] {
  const out: TopElement[] = [];
  let depth = 0;
  let at = datasetOffset;
  let open: TopElement | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const kind = tokens.kind[i]!;
    const offset = tokens.offset[i]!;
    switch (kind) {
      case TokenKind.SequenceStart:
        if (depth === 0) open = { tag: tokens.tag[i]!, vr: 'SQ', start: at, end: -1, valueOffset: offset, valueLength: -1 };
        depth++;
        continue;
      case TokenKind.SequenceEnd:
        depth--;
        if (depth === 0 && open) {
          open.end = offset;
          open.valueLength = offset - open.valueOffset;
          out.push(open);
          at = offset;
          open = undefined;
        }
        continue;
      case TokenKind.ItemStart:
      case TokenKind.ItemEnd:
        continue;
    }
    if (depth > 0) continue;
    const length = tokens.valueLength[i]!;
    out.push({ tag: tokens.tag[i]!, vr: unpackVr(tokens.vr[i]!), start: at, end: offset + length, valueOffset: offset, valueLength: length });
    at = offset + length;
  }
  return out;
}

const TEXT_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UR', 'UT']);

/** An Explicit VR Little Endian element with a defined length, its value padded to even length (PS3.5 7.1.2). */
export function encodeElement(tag: number, vr: string, value: Buffer): Buffer {
  const pad = value.length % 2 === 1 ? Buffer.from([TEXT_VRS.has(vr) ? 0x20 : 0x00]) : Buffer.alloc(0);
  const length = value.length + pad.length;
  const long = LONG_LENGTH_VRS.has(vr);
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(tag >>> 16, 0);
  header.writeUInt16LE(tag & 0xffff, 2);
  header.write(vr, 4, 'latin1');
  if (long) header.writeUInt32LE(length, 8);
  else {
    if (length > 0xffff) throw new Error(`value of ${vr} too long for a 16-bit length`);
    header.writeUInt16LE(length, 6);
  }
  return Buffer.concat([header, value, pad]);
}

export const usValue = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n, 0);
  return b;
};

export const textValue = (values: readonly string[]): Buffer => Buffer.from(values.join('\\'), 'latin1');

/**
 * Encapsulated Pixel Data (PS3.5 A.4): OB, undefined length, a Basic Offset Table item with the offset of each
 * frame's first item (counted from the first fragment item's tag), one fragment per frame (padded to even length,
 * as items must be), and the sequence delimiter.
 */
export function encodeEncapsulatedPixelData(frames: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt32LE(0x00107fe0, 0); // (7FE0,0010) as two little-endian 16-bit halves
  header.write('OB', 4, 'latin1');
  header.writeUInt32LE(0xffffffff, 8);
  parts.push(header);
  const table = Buffer.alloc(frames.length * 4);
  let offset = 0;
  const items: Buffer[] = [];
  frames.forEach((frame, k) => {
    table.writeUInt32LE(offset, k * 4);
    const padded = frame.length % 2 === 1 ? Buffer.concat([frame, Buffer.from([0])]) : frame;
    items.push(item(padded.length), padded);
    offset += 8 + padded.length;
  });
  if (offset > 0xffffffff) throw new Error('encapsulated pixel data over 4 GiB');
  parts.push(item(table.length), table, ...items);
  const delimiter = Buffer.alloc(8);
  delimiter.writeUInt32LE(0xe0ddfffe, 0);
  parts.push(delimiter);
  return Buffer.concat(parts);
}

function item(length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(0xe000fffe, 0); // (FFFE,E000)
  b.writeUInt32LE(length, 4);
  return b;
}

/**
 * The elements of `elements` in tag order with `replace` applied: a Buffer (a whole encoded element) replaces or
 * adds the element with that tag, null drops it. Group length elements (gggg,0000) are dropped: their value would
 * be wrong once sizes change, and they are retired in datasets (PS3.5 7.2).
 */
export async function editedElements(source: ByteSource, elements: readonly TopElement[], replace: ReadonlyMap<number, Buffer | null>): Promise<Buffer[]> {
  const out: { tag: number; bytes: Buffer | TopElement }[] = [];
  const seen = new Set<number>();
  for (const el of elements) {
    if ((el.tag & 0xffff) === 0) continue;
    if (replace.has(el.tag)) {
      seen.add(el.tag);
      const r = replace.get(el.tag);
      if (r) out.push({ tag: el.tag, bytes: r });
      continue;
    }
    out.push({ tag: el.tag, bytes: el });
  }
  for (const [tag, r] of replace) if (!seen.has(tag) && r) out.push({ tag, bytes: r });
  // Stable sort: the stored order is kept among equal tags (there are none in a valid dataset).
  out.sort((a, b) => a.tag - b.tag);
  const buffers: Buffer[] = [];
  for (const o of out) buffers.push(Buffer.isBuffer(o.bytes) ? o.bytes : await source.read(o.bytes.start, o.bytes.end - o.bytes.start));
  return buffers;
}

/** (0002,0000) UL: the byte count of the File Meta elements after it (PS3.10 7.1). */
export function metaGroupLength(length: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(length, 0);
  return encodeElement(0x00020000, 'UL', b);
}
