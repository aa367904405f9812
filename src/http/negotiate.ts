// Content negotiation: Accept header (RFC 9110 12.5.1, PS3.18 8.7.7) and accept query parameter (PS3.18 8.3.3.1),
// selecting one of the representations a route can produce (PS3.18 8.7.8).
//
// Rules, and the client quirks behind them (PROTOCOL.md sections 2 and 3):
// - Entries that are not valid, or carry unsupported parameters, are ignored, not refused (PS3.18 8.7.7):
//   OHIF asks for metadata with `application/dicom+json` plus a multipart entry, and must get JSON, never 406.
// - `type=` inside `multipart/related` may be quoted or not (media-types.ts); a range without `type`
//   accepts any root type; `multipart/*` and `*/*` match as RFC 9110 says (`multipart/*` on QIDO -> XML).
// - `transfer-syntax=` (PS3.18 8.7.3.5.2) quoted or not; `*` means "any, the server chooses". Unlike other
//   parameters it is never ignored on an offer that has transfer syntaxes: asking for one the server cannot
//   produce does not match, so the route answers 406 rather than send something else.
// - q=0 excludes; a more specific range decides an offer's q over a less specific one (RFC 9110 12.5.1);
//   among offers: highest q, then the more specific range (so `*/*, application/dicom+json` picks JSON),
//   then the client's order, then the server's (offers are listed by server preference, the default first).
// - The accept query parameter is tried first; only if none of its types is supported does the header count
//   (PS3.18 8.7.8.1 steps 2-3). It has no wildcards (8.3.3.1), so wildcard entries there are ignored.
// - No Accept header (or an empty one): the default offer. PS3.18 2019 said 406; dicomweb-client's STOW sends
//   no Accept at all and every server answers it, so the default is the useful reading (PROTOCOL.md 1).

import { MediaTypeSyntaxError, scanMediaType, type ParsedMediaType } from './media-types.js';

/** A representation a route can produce, in the route's order of preference. */
export interface Offer {
  /** Lowercase essence: `application/dicom+json`, `multipart/related`, `image/jpeg`, ... */
  mediaType: string;
  /** Root type of a `multipart/related` offer (RFC 2387 3.1), lowercase essence: `application/dicom`. */
  type?: string;
  /**
   * Values the `transfer-syntax` parameter may take for this offer, by server preference. `*` stands for
   * "as stored". Leave undefined for representations without a transfer syntax (JSON, XML, rendered).
   */
  transferSyntaxes?: readonly string[];
  /** What to send when the client names no transfer syntax (PS3.18 8.7.3.5.2 defaults, e.g. 1.2.840.10008.1.2.1). */
  defaultTransferSyntax?: string;
}

export interface Negotiated<O extends Offer = Offer> {
  offer: O;
  /** Position of `offer` in the offers list. */
  index: number;
  /** The transfer syntax to produce: the client's (possibly `*`), else the offer's default; undefined if none. */
  transferSyntax: string | undefined;
  /** Where the decision came from. */
  source: 'query' | 'header' | 'default';
}

export interface MediaRange extends ParsedMediaType {
  /** Weight 0..1 (RFC 9110 12.4.2); removed from `params`. */
  q: number;
}

const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * Parses an Accept-style list (`#( media-range [ weight ] )`). Invalid entries are dropped (PS3.18 8.7.7);
 * the result keeps the client's order.
 */
export function parseAccept(value: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  let i = 0;
  for (;;) {
    // skip empty list elements: RFC 9110 5.6.1 lets a recipient accept "a, , b"
    while (i < value.length && (value[i] === ',' || value[i] === ' ' || value[i] === '\t')) i++;
    if (i >= value.length) break;
    try {
      const { mediaType, end } = scanMediaType(value, i, { range: true, stopAtComma: true });
      i = end;
      const q = mediaType.params.get('q');
      mediaType.params.delete('q');
      if (q === undefined) ranges.push({ ...mediaType, q: 1 });
      else if (QVALUE.test(q)) ranges.push({ ...mediaType, q: Number(q) });
      // an invalid weight invalidates the entry
    } catch (e) {
      /* c8 ignore next */
      if (!(e instanceof MediaTypeSyntaxError)) throw e; // not reached: the scanner throws MediaTypeSyntaxError only
      i = nextElement(value, i);
    }
  }
  return ranges;
}

/** Index just after the next "," that is outside a quoted-string (or the end). */
function nextElement(s: string, i: number): number {
  let quoted = false;
  for (; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') return i + 1;
  }
  return s.length;
}

/** 0 for `*\/*`, 1 for `type/*`, 2 for `type/subtype`. */
function level(range: ParsedMediaType): number {
  if (range.type === '*') return 0;
  return range.subtype === '*' ? 1 : 2;
}

function essenceMatches(range: ParsedMediaType, essence: string): boolean {
  if (range.type === '*') return true;
  const slash = essence.indexOf('/');
  if (range.type !== essence.slice(0, slash)) return false;
  return range.subtype === '*' || range.subtype === essence.slice(slash + 1);
}

interface RangeMatch {
  /** Orders the ranges that match one offer: level first, then the parameters that took part. */
  specificity: number;
  transferSyntax: string | undefined;
}

function matchRange(range: MediaRange, offer: Offer): RangeMatch | undefined {
  if (!essenceMatches(range, offer.mediaType)) return undefined;
  let specificity = level(range) * 10;

  const type = range.params.get('type');
  if (type !== undefined && offer.type !== undefined) {
    let root: ParsedMediaType;
    try {
      root = scanMediaType(type, 0, { range: true }).mediaType;
    } catch (e) {
      if (e instanceof MediaTypeSyntaxError) return undefined;
      /* c8 ignore start */
      throw e; // not reached: the scanner throws MediaTypeSyntaxError only
    }
    /* c8 ignore stop */
    if (!essenceMatches(root, offer.type)) return undefined;
    specificity += 1;
  }

  let transferSyntax = offer.defaultTransferSyntax;
  const ts = range.params.get('transfer-syntax')?.trim();
  if (ts !== undefined && offer.transferSyntaxes !== undefined) {
    const supported = offer.transferSyntaxes;
    if (ts === '*') transferSyntax = supported.includes('*') ? '*' : supported[0];
    else if (supported.includes(ts)) transferSyntax = ts;
    else return undefined;
    if (transferSyntax === undefined) return undefined;
    specificity += 1;
  }
  return { specificity, transferSyntax };
}

interface Candidate {
  index: number;
  q: number;
  level: number;
  clientIndex: number;
  transferSyntax: string | undefined;
}

function better(a: Candidate, b: Candidate): boolean {
  if (a.q !== b.q) return a.q > b.q;
  if (a.level !== b.level) return a.level > b.level;
  if (a.clientIndex !== b.clientIndex) return a.clientIndex < b.clientIndex;
  return a.index < b.index;
}

/** The best offer for a list of ranges, or undefined when none is acceptable. */
export function selectOffer<O extends Offer>(ranges: readonly MediaRange[], offers: readonly O[]): Omit<Negotiated<O>, 'source'> | undefined {
  let best: Candidate | undefined;
  for (let index = 0; index < offers.length; index++) {
    const offer = offers[index] as O;
    // the most specific matching range decides this offer's weight; among equals, the higher q, then the first
    let chosen: { match: RangeMatch; range: MediaRange; clientIndex: number } | undefined;
    for (let clientIndex = 0; clientIndex < ranges.length; clientIndex++) {
      const range = ranges[clientIndex] as MediaRange;
      const match = matchRange(range, offer);
      if (!match) continue;
      if (
        !chosen ||
        match.specificity > chosen.match.specificity ||
        (match.specificity === chosen.match.specificity && range.q > chosen.range.q)
      ) {
        chosen = { match, range, clientIndex };
      }
    }
    if (!chosen || chosen.range.q === 0) continue;
    const candidate: Candidate = {
      index,
      q: chosen.range.q,
      level: level(chosen.range),
      clientIndex: chosen.clientIndex,
      transferSyntax: chosen.match.transferSyntax,
    };
    if (!best || better(candidate, best)) best = candidate;
  }
  if (!best) return undefined;
  return { offer: offers[best.index] as O, index: best.index, transferSyntax: best.transferSyntax };
}

function queryValue(acceptQuery: string | readonly string[] | undefined): string | undefined {
  if (acceptQuery === undefined) return undefined;
  // ?accept=a&accept=b arrives as an array; ?accept=a,b as one comma list: the same thing (PS3.18 8.3.3.1)
  return typeof acceptQuery === 'string' ? acceptQuery : acceptQuery.join(',');
}

/**
 * Chooses the representation for a response (PS3.18 8.7.8.1). `offers` are in server preference order, the
 * default first. Returns undefined when nothing is acceptable: the route answers 406.
 */
export function negotiate<O extends Offer>(
  acceptHeader: string | undefined,
  acceptQuery: string | readonly string[] | undefined,
  offers: readonly O[],
): Negotiated<O> | undefined {
  if (offers.length === 0) return undefined;
  const query = queryValue(acceptQuery);
  if (query !== undefined) {
    const ranges = parseAccept(query).filter((r) => r.type !== '*' && r.subtype !== '*');
    const picked = selectOffer(ranges, offers);
    if (picked) return { ...picked, source: 'query' };
  }
  if (acceptHeader === undefined || acceptHeader.trim() === '') {
    const offer = offers[0] as O;
    return { offer, index: 0, transferSyntax: offer.defaultTransferSyntax, source: 'default' };
  }
  const picked = selectOffer(parseAccept(acceptHeader), offers);
  return picked ? { ...picked, source: 'header' } : undefined;
}
