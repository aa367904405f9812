// One element's value bytes -> its DICOM JSON Model attribute (PS3.18 F.2), for every VR except SQ.
// Empty element = { vr } only (F.2.5); an empty value inside a multi-valued one = null; PN = an object with
// the non-empty component groups (F.2.2); AT = "GGGGEEEE" (F.2.3.1 Table F.2.3-1); DS/IS = numbers when they
// parse (strings otherwise, so nothing is lost); binary = InlineBinary, base64 of the little-endian value (F.2.7).

import type { TextDecoderFn } from './charset.js';
import type { DicomJsonAttribute, DicomJsonValue, PersonName } from './json-model.js';
import { FIXED_SIZE, SINGLE_VALUE_TEXT_VRS } from './vr.js';

const DS_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const IS_PATTERN = /^[+-]?\d+$/;

function latin1(bytes: Buffer): string {
  return bytes.toString('latin1');
}

/** Trailing padding: spaces (text) and NUL (UI, and some writers everywhere). */
function trimEnd(s: string): string {
  return s.replace(/[ \0]+$/, '');
}

function padding(code: number | undefined): boolean {
  return code === 0x20 || code === 0;
}

function trimBoth(s: string): string {
  // Most values carry no padding: skip the regex for them (this runs once per value of every object).
  if (s.length === 0 || (!padding(s.charCodeAt(0)) && !padding(s.charCodeAt(s.length - 1)))) return s;
  return s.replace(/^[ \0]+|[ \0]+$/g, '');
}

function valueOrNull(s: string): string | null {
  const v = trimBoth(s);
  return v === '' ? null : v;
}

/** Values or, when every value is empty, nothing: { vr } alone. */
function attribute(vr: string, values: DicomJsonValue[]): DicomJsonAttribute {
  return values.some((v) => v !== null) ? { vr, Value: values } : { vr };
}

function personName(value: string): PersonName | null {
  const groups = trimEnd(value).split('=');
  const pn: PersonName = {};
  // Trailing spaces may pad each component group; leading ones are part of the name.
  const [alphabetic, ideographic, phonetic] = groups.map(trimEnd);
  if (alphabetic) pn.Alphabetic = alphabetic;
  if (ideographic) pn.Ideographic = ideographic;
  if (phonetic) pn.Phonetic = phonetic;
  return Object.keys(pn).length > 0 ? pn : null;
}

function numberOrString(s: string, pattern: RegExp): number | string | null {
  const t = trimBoth(s);
  if (t === '') return null;
  if (pattern.test(t)) {
    const n = Number(t);
    if (Number.isFinite(n)) return n;
  }
  return t;
}

/** Text VRs that may use the Specific Character Set (decoded by `decode`). */
export function textAttribute(vr: string, bytes: Buffer, decode: TextDecoderFn): DicomJsonAttribute {
  const s = decode(bytes);
  if (SINGLE_VALUE_TEXT_VRS.has(vr)) {
    // ST/LT/UT: one value, backslash is text; leading spaces are significant (PS3.5 6.2).
    const v = trimEnd(s);
    return v === '' ? { vr } : { vr, Value: [v] };
  }
  const parts = s.split('\\');
  if (vr === 'PN') return attribute(vr, parts.map(personName));
  return attribute(vr, parts.map(valueOrNull));
}

/** Default-repertoire string VRs: AE AS CS DA DT TM UI UR DS IS. */
export function asciiAttribute(vr: string, bytes: Buffer): DicomJsonAttribute {
  const s = latin1(bytes);
  if (vr === 'UR') {
    const v = trimBoth(s);
    return v === '' ? { vr } : { vr, Value: [v] };
  }
  const parts = s.split('\\');
  if (vr === 'DS') return attribute(vr, parts.map((p) => numberOrString(p, DS_PATTERN)));
  if (vr === 'IS') return attribute(vr, parts.map((p) => numberOrString(p, IS_PATTERN)));
  return attribute(vr, parts.map(valueOrNull));
}

function finiteOrName(n: number): number | string {
  // JSON has no NaN/Infinity; PS3.18 F.2.3.1 allows these names as strings for FL/FD.
  if (Number.isFinite(n)) return n;
  return Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity';
}

function bigToJson(n: bigint): number | string {
  // Numbers beyond 2^53 would lose digits in JSON: keep them as strings (F.2.3.1 allows it for SV/UV).
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

/** Fixed-width binary VRs: US SS UL SL FL FD SV UV AT. A trailing partial value is ignored. */
export function numericAttribute(vr: string, bytes: Buffer, bigEndian: boolean): DicomJsonAttribute {
  const size = FIXED_SIZE[vr]!;
  const n = Math.floor(bytes.length / size);
  if (n === 0) return { vr };
  const values: DicomJsonValue[] = new Array(n);
  for (let i = 0, o = 0; i < n; i++, o += size) {
    switch (vr) {
      case 'US':
        values[i] = bigEndian ? bytes.readUInt16BE(o) : bytes.readUInt16LE(o);
        break;
      case 'SS':
        values[i] = bigEndian ? bytes.readInt16BE(o) : bytes.readInt16LE(o);
        break;
      case 'UL':
        values[i] = bigEndian ? bytes.readUInt32BE(o) : bytes.readUInt32LE(o);
        break;
      case 'SL':
        values[i] = bigEndian ? bytes.readInt32BE(o) : bytes.readInt32LE(o);
        break;
      case 'FL':
        values[i] = finiteOrName(bigEndian ? bytes.readFloatBE(o) : bytes.readFloatLE(o));
        break;
      case 'FD':
        values[i] = finiteOrName(bigEndian ? bytes.readDoubleBE(o) : bytes.readDoubleLE(o));
        break;
      case 'SV':
        values[i] = bigToJson(bigEndian ? bytes.readBigInt64BE(o) : bytes.readBigInt64LE(o));
        break;
      case 'UV':
        values[i] = bigToJson(bigEndian ? bytes.readBigUInt64BE(o) : bytes.readBigUInt64LE(o));
        break;
      case 'AT': {
        const group = bigEndian ? bytes.readUInt16BE(o) : bytes.readUInt16LE(o);
        const element = bigEndian ? bytes.readUInt16BE(o + 2) : bytes.readUInt16LE(o + 2);
        values[i] = hex4(group) + hex4(element);
        break;
      }
    }
  }
  return { vr, Value: values };
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/** OB OD OF OL OV OW UN: base64 of the value as little endian (words swapped back for Explicit VR Big Endian). */
export function binaryAttribute(vr: string, bytes: Buffer, bigEndian: boolean): DicomJsonAttribute {
  if (bytes.length === 0) return { vr };
  const word = FIXED_SIZE[vr];
  if (bigEndian && word !== undefined && word > 1 && bytes.length % word === 0) {
    const copy = Buffer.from(bytes);
    if (word === 2) copy.swap16();
    else if (word === 4) copy.swap32();
    else copy.swap64();
    return { vr, InlineBinary: copy.toString('base64') };
  }
  return { vr, InlineBinary: bytes.toString('base64') };
}
