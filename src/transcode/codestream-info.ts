// The image size a compressed frame declares in its own headers, read before anything is decoded: the
// decompression-bomb guard (frame-guard.ts) compares it with the dataset's Image Pixel attributes, so a codec is
// never handed a codestream that would make it allocate more than the dataset (and the limits) allow.
//
//   JPEG, JPEG lossless   ISO 10918-1 B.2.2: the frame header SOFn (P, Y, X, Nf, per component H/V)
//   JPEG-LS               ISO 14495-1 C.2.2: SOF55 (FFF7), same layout
//   JPEG 2000, HTJ2K      ISO 15444-1 A.5.1 SIZ (and A.6.1 COD for the multiple component transform), with or
//                         without the JP2 file format wrapper (I.5, the 'jp2c' box)
//   RLE                   PS3.5 G.3.1: the 64-byte header (segment count, segment offsets)

import { TranscodeError } from './transcode-error.js';

export interface CodestreamInfo {
  columns: number;
  rows: number;
  components: number;
  /** Bits per sample the codestream declares (JPEG P, J2K Ssiz + 1; RLE: bytes per sample * 8). */
  precision: number;
  /** JPEG 2000: the codestream applies the multiple component transform (RCT/ICT): decoded pixels are RGB. */
  mct?: boolean;
  /** JPEG: horizontal/vertical sampling factors of each component. */
  sampling?: { h: number; v: number }[];
  /** JPEG 2000: number of tiles (ISO 15444-1 A.5.1: at most 65535). */
  tiles?: number;
}

const bad = (what: string) => new TranscodeError('undecodable', `the compressed frame is not a valid ${what} codestream`);

const JPEG_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf, 0xf7]);
/** Markers that stand alone, without a length (ISO 10918-1 B.1.1.3). */
const JPEG_NO_LENGTH = (m: number) => m === 0x01 || m === 0xd8 || (m >= 0xd0 && m <= 0xd7);

export function jpegInfo(buf: Uint8Array, what = 'JPEG'): CodestreamInfo {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) throw bad(what);
  let p = 2;
  while (p + 4 <= buf.length) {
    if (buf[p] !== 0xff) throw bad(what);
    const marker = buf[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte (B.1.1.2)
      continue;
    }
    if (JPEG_NO_LENGTH(marker)) {
      p += 2;
      continue;
    }
    const length = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (length < 2 || p + 2 + length > buf.length) throw bad(what);
    if (JPEG_SOF.has(marker)) {
      const s = p + 4;
      if (length < 8) throw bad(what);
      const precision = buf[s]!;
      const rows = (buf[s + 1]! << 8) | buf[s + 2]!;
      const columns = (buf[s + 3]! << 8) | buf[s + 4]!;
      const components = buf[s + 5]!;
      if (length < 8 + 3 * components) throw bad(what);
      const sampling = Array.from({ length: components }, (_, c) => ({ h: buf[s + 7 + 3 * c]! >> 4, v: buf[s + 7 + 3 * c]! & 15 }));
      // Y = 0 defers the height to a DNL marker (B.2.5): the size is not known up front, so it is not decoded.
      if (rows === 0 || columns === 0 || components === 0) throw bad(what);
      return { columns, rows, components, precision, sampling };
    }
    if (marker === 0xda || marker === 0xd9) break; // scan data or end before any frame header
    p += 2 + length;
  }
  throw bad(what);
}

function u32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

/** Start of the codestream: the buffer itself, or the contents of the JP2 'jp2c' box. */
function j2kCodestream(buf: Uint8Array): number {
  if (buf[0] === 0xff && buf[1] === 0x4f) return 0;
  let p = 0;
  while (p + 8 <= buf.length) {
    let length = u32(buf, p);
    const type = String.fromCharCode(buf[p + 4]!, buf[p + 5]!, buf[p + 6]!, buf[p + 7]!);
    let header = 8;
    if (length === 1) {
      if (p + 16 > buf.length || u32(buf, p + 8) !== 0) throw bad('JPEG 2000');
      length = u32(buf, p + 12);
      header = 16;
    } else if (length === 0) length = buf.length - p;
    if (type === 'jp2c') return p + header;
    if (length < header) throw bad('JPEG 2000');
    p += length;
  }
  throw bad('JPEG 2000');
}

export function j2kInfo(buf: Uint8Array): CodestreamInfo {
  const at = j2kCodestream(buf);
  // SOC, then SIZ immediately (A.4.1, A.5.1).
  if (at + 4 + 38 > buf.length || buf[at] !== 0xff || buf[at + 1] !== 0x4f || buf[at + 2] !== 0xff || buf[at + 3] !== 0x51) {
    throw bad('JPEG 2000');
  }
  const s = at + 4;
  const lsiz = (buf[s]! << 8) | buf[s + 1]!;
  const xsiz = u32(buf, s + 4);
  const ysiz = u32(buf, s + 8);
  const xosiz = u32(buf, s + 12);
  const yosiz = u32(buf, s + 16);
  const xtsiz = u32(buf, s + 20);
  const ytsiz = u32(buf, s + 24);
  const xtosiz = u32(buf, s + 28);
  const ytosiz = u32(buf, s + 32);
  const components = (buf[s + 36]! << 8) | buf[s + 37]!;
  if (components === 0 || lsiz !== 38 + 3 * components || s + lsiz > buf.length) throw bad('JPEG 2000');
  if (xsiz <= xosiz || ysiz <= yosiz || xtsiz === 0 || ytsiz === 0 || xtosiz > xosiz || ytosiz > yosiz) throw bad('JPEG 2000');
  const precision = (buf[s + 38]! & 0x7f) + 1;
  const tiles = Math.ceil((xsiz - xtosiz) / xtsiz) * Math.ceil((ysiz - ytosiz) / ytsiz);
  const info: CodestreamInfo = { columns: xsiz - xosiz, rows: ysiz - yosiz, components, precision, tiles };
  // COD follows in the main header (A.6.1): Lcod, Scod, SGcod = progression (1), layers (2), MCT (1).
  let p = s + lsiz;
  while (p + 4 <= buf.length && buf[p] === 0xff && buf[p + 1] !== 0x90 /* SOT: main header over */) {
    const length = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (buf[p + 1] === 0x52 && length >= 12 && p + 2 + length <= buf.length) {
      info.mct = buf[p + 8] === 1;
      break;
    }
    if (length < 2) break;
    p += 2 + length;
  }
  return info;
}

/** PS3.5 G.3.1: number of segments (1..15) and their offsets, the first one 64. */
export function rleInfo(buf: Uint8Array, rows: number, columns: number): CodestreamInfo {
  if (buf.length < 64) throw bad('RLE');
  const le = (p: number) => (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0;
  const segments = le(0);
  if (segments < 1 || segments > 15 || le(4) !== 64) throw bad('RLE');
  for (let i = 1; i < segments; i++) {
    const at = le(4 + 4 * i);
    if (at <= le(4 * i) || at >= buf.length) throw bad('RLE');
  }
  // The segments are one per byte of each sample (G.2): the caller checks the count against the dataset.
  return { columns, rows, components: segments, precision: 8 };
}
