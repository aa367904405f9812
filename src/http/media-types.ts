// Media types (RFC 9110 8.3.1, RFC 2045 5.1) and the ones DICOMweb uses (PS3.18 8.7).
//
//   media-type = type "/" subtype parameters
//   parameters = *( OWS ";" OWS [ parameter ] )
//   parameter  = parameter-name "=" ( token / quoted-string )
//
// The parser is strict on purpose. Fastify CVE-2025-32442 and CVE-2026-25223 let a body reach the wrong parser
// because "application/json\tx" or "APPLICATION/JSON;charset=x;..." were matched by prefix or loosely. Here a
// header either parses completely into one (type, subtype, parameters) or is refused:
//   - whitespace is allowed only where RFC 9110 has OWS: around ";" (and at the ends of the field value);
//     never inside or after a token without a ";", never around "/" or "=";
//   - a parameter without "=", an empty token, an unterminated quoted-string, a control character -> refused;
//   - the same parameter twice (names compare case-insensitively) with different values -> refused, since
//     two readers could pick different ones; the same value twice is harmless and accepted.
// One documented leniency: an unquoted value may contain "/" ("type=application/dicom"), which RFC 9110 does
// not allow ("/" is not a tchar) but OHIF (omitQuotationForMultipartRequest) and other DICOMweb clients send
// (PROTOCOL.md section 3 item 2). "/" has no separating role inside a parameter value, so this is unambiguous.
//
// Errors: a header that is not a syntactically valid media type throws AppError UNSUPPORTED_MEDIA_TYPE (415):
// the server cannot know what the content is, which is what 415 says (RFC 9110 15.5.16; PS3.18 10.5.3 lists
// 415 for an unsupported Content-Type). Accept values are parsed by negotiate.ts, which ignores invalid
// entries instead (PS3.18 8.7.7).

import { AppError } from '../errors.js';

/** PS3.18 8.7 media types, as lowercase essences. */
export const MediaType = {
  DICOM: 'application/dicom',
  DICOM_JSON: 'application/dicom+json',
  DICOM_XML: 'application/dicom+xml',
  OCTET_STREAM: 'application/octet-stream',
  JSON: 'application/json',
  MULTIPART_RELATED: 'multipart/related',
  ZIP: 'application/zip',
  PDF: 'application/pdf',
  /** Capabilities (PS3.18 8.9). */
  WADL: 'application/vnd.sun.wadl+xml',
  JPEG: 'image/jpeg',
  PNG: 'image/png',
  GIF: 'image/gif',
  JLS: 'image/jls',
  JP2: 'image/jp2',
  JPX: 'image/jpx',
  DICOM_RLE: 'image/dicom-rle',
  MPEG2: 'video/mpeg2',
  MP4: 'video/mp4',
  HTML: 'text/html',
  PLAIN: 'text/plain',
} as const;

export type KnownMediaType = (typeof MediaType)[keyof typeof MediaType];

export interface ParsedMediaType {
  /** Lowercased. */
  type: string;
  /** Lowercased. */
  subtype: string;
  /** `type/subtype`, lowercased. */
  essence: string;
  /** Lowercased names; values unquoted and unescaped, case kept (a boundary is case-sensitive). */
  params: Map<string, string>;
}

// tchar (RFC 9110 5.6.2): "!" "#" "$" "%" "&" "'" "*" "+" "-" "." "^" "_" "`" "|" "~" DIGIT ALPHA
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

const SLASH = 0x2f;

export const isTchar = (code: number): boolean => code < 128 && TCHAR[code] === 1;

/** True when `s` is a non-empty RFC 9110 token. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTchar(s.charCodeAt(i))) return false;
  return true;
}

/** Thrown by the scanner; callers turn it into the error that fits their header. */
export class MediaTypeSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MediaTypeSyntaxError';
  }
}

const isOws = (code: number): boolean => code === 0x20 || code === 0x09;

function skipOws(s: string, i: number): number {
  while (i < s.length && isOws(s.charCodeAt(i))) i++;
  return i;
}

function scanToken(s: string, i: number, extra = -1): number {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (!isTchar(c) && c !== extra) break;
    i++;
  }
  return i;
}

/** Reads a quoted-string starting at the opening DQUOTE; returns the unescaped value and the index after it. */
function scanQuoted(s: string, start: number): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return { value, end: i + 1 };
    if (c === 0x5c) {
      // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
      const n = i + 1 < s.length ? s.charCodeAt(i + 1) : -1;
      if (!(n === 0x09 || (n >= 0x20 && n <= 0x7e) || (n >= 0x80 && n <= 0xff))) {
        throw new MediaTypeSyntaxError('invalid escape in quoted-string');
      }
      value += s[i + 1];
      i += 2;
      continue;
    }
    // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    if (!(c === 0x09 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff))) {
      throw new MediaTypeSyntaxError('control character in quoted-string');
    }
    value += s[i];
    i++;
  }
  throw new MediaTypeSyntaxError('unterminated quoted-string');
}

export interface ScanOptions {
  /** Accept media ranges: `*` as the subtype, or as both type and subtype (RFC 9110 12.5.1). */
  range?: boolean;
  /** Stop at a "," outside a quoted-string instead of failing on it (Accept lists). */
  stopAtComma?: boolean;
}

/**
 * Scans one media type (or media range) starting at `start`. Returns it with the index where scanning stopped
 * (the end of `s`, or a "," when `stopAtComma`). Throws MediaTypeSyntaxError.
 */
export function scanMediaType(s: string, start: number, options: ScanOptions = {}): { mediaType: ParsedMediaType; end: number } {
  let i = skipOws(s, start);
  const typeEnd = scanToken(s, i);
  if (typeEnd === i) throw new MediaTypeSyntaxError('missing type');
  const type = s.slice(i, typeEnd).toLowerCase();
  if (s.charCodeAt(typeEnd) !== SLASH) throw new MediaTypeSyntaxError('missing "/" after the type');
  i = typeEnd + 1;
  const subEnd = scanToken(s, i);
  if (subEnd === i) throw new MediaTypeSyntaxError('missing subtype');
  const subtype = s.slice(i, subEnd).toLowerCase();
  i = subEnd;

  if (options.range) {
    if (type === '*' && subtype !== '*') throw new MediaTypeSyntaxError('"*" type needs a "*" subtype');
  } else if (type === '*' || subtype === '*') {
    throw new MediaTypeSyntaxError('a wildcard is not a media type');
  }

  const params = new Map<string, string>();
  for (;;) {
    i = skipOws(s, i);
    if (i >= s.length) break;
    const c = s.charCodeAt(i);
    if (c === 0x2c && options.stopAtComma) break;
    if (c !== 0x3b) throw new MediaTypeSyntaxError('unexpected character where ";" or the end was expected');
    i = skipOws(s, i + 1);
    // RFC 9110 allows empty parameters: "a/b;;c=d" and a trailing ";".
    if (i >= s.length || s.charCodeAt(i) === 0x3b || (options.stopAtComma && s.charCodeAt(i) === 0x2c)) continue;
    const nameEnd = scanToken(s, i);
    if (nameEnd === i) throw new MediaTypeSyntaxError('invalid parameter name');
    const name = s.slice(i, nameEnd).toLowerCase();
    if (s.charCodeAt(nameEnd) !== 0x3d) throw new MediaTypeSyntaxError(`parameter "${name}" has no "=" value`);
    i = nameEnd + 1;
    let value: string;
    if (s.charCodeAt(i) === 0x22) {
      const q = scanQuoted(s, i);
      value = q.value;
      i = q.end;
    } else {
      const valueEnd = scanToken(s, i, SLASH);
      if (valueEnd === i) throw new MediaTypeSyntaxError(`parameter "${name}" has an empty value`);
      value = s.slice(i, valueEnd);
      i = valueEnd;
    }
    const previous = params.get(name);
    if (previous !== undefined && previous !== value) {
      throw new MediaTypeSyntaxError(`parameter "${name}" appears twice with different values`);
    }
    params.set(name, value);
  }
  return { mediaType: { type, subtype, essence: `${type}/${subtype}`, params }, end: i };
}

/**
 * Parses a Content-Type style header value (RFC 9110 8.3.1). Throws AppError UNSUPPORTED_MEDIA_TYPE when the
 * value is not exactly one well-formed media type.
 */
export function parseMediaType(header: string): ParsedMediaType {
  try {
    return scanMediaType(header, 0).mediaType;
  } catch (e) {
    if (e instanceof MediaTypeSyntaxError) throw new AppError('UNSUPPORTED_MEDIA_TYPE', `malformed media type: ${e.message}`);
    /* c8 ignore start */
    throw e; // not reached: the scanner throws MediaTypeSyntaxError only
  }
  /* c8 ignore stop */
}

/** Serializes a parameter value: as a token when it is one, else as a quoted-string. */
export function formatParameterValue(value: string): string {
  if (isToken(value)) return value;
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Builds a header value such as `multipart/related; type="application/dicom"; boundary=abc`.
 * Values are quoted when they are not tokens ("type" always is: "/" is not a tchar).
 */
export function formatMediaType(essence: string, params: Iterable<readonly [string, string]> | Record<string, string> = []): string {
  const entries = Symbol.iterator in params ? [...(params as Iterable<readonly [string, string]>)] : Object.entries(params);
  let out = essence;
  for (const [name, value] of entries) {
    if (!isToken(name)) throw new TypeError(`invalid media type parameter name: ${JSON.stringify(name)}`);
    if (/[\0-\x08\x0a-\x1f\x7f]/.test(value)) throw new TypeError(`control character in media type parameter ${name}`);
    out += `; ${name}=${formatParameterValue(value)}`;
  }
  return out;
}
