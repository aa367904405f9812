// Builders of small and hostile Part 10 objects for the reader tests (Explicit/Implicit VR Little Endian).

import { deflateRawSync } from 'node:zlib';
import type { ScanLimits } from '../../src/dicom/part10.js';

export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const DEFLATED = '1.2.840.10008.1.2.1.99';
export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
export const EXPLICIT_BE = '1.2.840.10008.1.2.2';

/** Caps used by the tests: small enough that every pathological input below crosses one. */
export const TEST_LIMITS: ScanLimits = {
  maxSequenceDepth: 64,
  maxElements: 100_000,
  maxInflatedBytes: 16 * 1024 * 1024,
  maxHeaderBytes: 64 * 1024 * 1024,
};

const LONG = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
export const UNDEFINED = 0xffffffff;

/** Even-padded text value (UI pads with NUL, the rest with space: PS3.5 6.2). */
export function str(s: string, vr = 'LO'): Buffer {
  const b = Buffer.from(s, 'latin1');
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([vr === 'UI' ? 0 : 0x20])]);
}

export function u16(...values: number[]): Buffer {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  return b;
}

/** Explicit VR Little Endian element header (+ value), with an optional length override. */
export function el(tag: number, vr: string, value: Buffer = Buffer.alloc(0), length = value.length): Buffer {
  const long = LONG.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(length >>> 0, 8);
  else h.writeUInt16LE(length, 6);
  return Buffer.concat([h, value]);
}

/** Explicit VR Big Endian element (PS3.5 A.3, retired): tag and length big endian, the value as given. */
export function elBE(tag: number, vr: string, value: Buffer = Buffer.alloc(0)): Buffer {
  const long = LONG.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16BE(tag >>> 16, 0);
  h.writeUInt16BE(tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32BE(value.length, 8);
  else h.writeUInt16BE(value.length, 6);
  return Buffer.concat([h, value]);
}

/** Implicit VR Little Endian element. */
export function iel(tag: number, value: Buffer = Buffer.alloc(0), length = value.length): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.writeUInt32LE(length >>> 0, 4);
  return Buffer.concat([h, value]);
}

/** Item, item delimiter, sequence delimiter: tag + 32-bit length, no VR (PS3.5 7.5). */
export function item(content: Buffer, length = content.length): Buffer {
  return Buffer.concat([iel(0xfffee000, Buffer.alloc(0), length), content]);
}
export const ITEM_DELIMITER = iel(0xfffee00d);
export const SEQUENCE_DELIMITER = iel(0xfffee0dd);

/** Undefined-length sequence of undefined-length items. */
export function seq(tag: number, ...items: Buffer[]): Buffer {
  return Buffer.concat([
    el(tag, 'SQ', Buffer.alloc(0), UNDEFINED),
    ...items.map((i) => Buffer.concat([item(Buffer.alloc(0), UNDEFINED), i, ITEM_DELIMITER])),
    SEQUENCE_DELIMITER,
  ]);
}

export const SOP_CLASS = '1.2.840.10008.5.1.4.1.1.7';
export const SOP_INSTANCE = '2.25.100';
export const STUDY = '2.25.200';
export const SERIES = '2.25.300';

/** The identifying elements every synthetic object starts with (ascending tag order). */
export function ids(): Buffer {
  return Buffer.concat([
    el(0x00080016, 'UI', str(SOP_CLASS, 'UI')),
    el(0x00080018, 'UI', str(SOP_INSTANCE, 'UI')),
  ]);
}
export function studySeries(): Buffer {
  return Buffer.concat([el(0x0020000d, 'UI', str(STUDY, 'UI')), el(0x0020000e, 'UI', str(SERIES, 'UI'))]);
}

/** Preamble + DICM + File Meta group (with a correct group length) + dataset bytes as given. */
export function part10(transferSyntax: string, dataset: Buffer, preamble: Buffer = Buffer.alloc(128)): Buffer {
  const metaBody = Buffer.concat([
    el(0x00020001, 'OB', Buffer.from([0, 1])),
    el(0x00020002, 'UI', str(SOP_CLASS, 'UI')),
    el(0x00020003, 'UI', str(SOP_INSTANCE, 'UI')),
    el(0x00020010, 'UI', str(transferSyntax, 'UI')),
  ]);
  const groupLength = el(0x00020000, 'UL', Buffer.from(new Uint32Array([metaBody.length]).buffer));
  return Buffer.concat([preamble, Buffer.from('DICM'), groupLength, metaBody, dataset]);
}

/** Sequences nested `depth` deep (each level one undefined-length item), properly closed. */
export function nestedSequences(depth: number): Buffer {
  const open = Buffer.concat([el(0x00400275, 'SQ', Buffer.alloc(0), UNDEFINED), item(Buffer.alloc(0), UNDEFINED)]);
  const close = Buffer.concat([ITEM_DELIMITER, SEQUENCE_DELIMITER]);
  return Buffer.concat([ids(), ...Array<Buffer>(depth).fill(open), ...Array<Buffer>(depth).fill(close)]);
}

/** `count` empty private LO elements (8 bytes each). */
export function manyElements(count: number): Buffer {
  const one = el(0x00111010, 'LO');
  const b = Buffer.alloc(one.length * count);
  for (let i = 0; i < count; i++) one.copy(b, i * one.length);
  return Buffer.concat([ids(), el(0x00110010, 'LO', str('CREATOR')), b]);
}

/** Encapsulated Pixel Data with an empty Basic Offset Table and `count` 2-byte fragments. */
export function manyFragments(count: number): Buffer {
  const frag = item(Buffer.from([0xff, 0xd9]));
  const frags = Buffer.alloc(frag.length * count);
  for (let i = 0; i < count; i++) frag.copy(frags, i * frag.length);
  return Buffer.concat([ids(), el(0x7fe00010, 'OB', Buffer.alloc(0), UNDEFINED), item(Buffer.alloc(0)), frags, SEQUENCE_DELIMITER]);
}

/** A deflated dataset that inflates to `inflatedBytes` (almost all of it one huge private OB value). */
export function deflateBomb(inflatedBytes: number): Buffer {
  const body = Buffer.concat([ids(), el(0x00091010, 'OB', Buffer.alloc(0), inflatedBytes)]);
  const zeros = Buffer.alloc(inflatedBytes);
  return part10(DEFLATED, deflateRawSync(Buffer.concat([body, zeros]), { level: 9 }));
}
