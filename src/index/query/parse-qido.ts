// QIDO-RS query parameters -> QidoQuery (PS3.18 8.3.4 and 10.6.1; matching per PS3.4 C.2.2.2).
// The caller has already percent-decoded the parameters (URLSearchParams does).
//
// Choices where the standard leaves room (also in the report to the lead and CONFORMANCE.md):
// - Parameter names starting with a lower-case letter or '_' are query parameters, not attributes
//   (accept, charset, limit, offset, fuzzymatching, includefield, emptyvaluematching, cache busters
//   like "_=1700000000"): the ones not handled here are ignored, as PS3.18 8.3.4 says unsupported
//   parameters are.
// - Every other name is an attribute ID (PS3.18 8.3.4.1: 8 hex digits or a keyword, dotted for
//   sequences). A malformed one ("0010,0010", "(0010,0010)", "Patient_Name") -> 400.
//   A well-formed one this server does not match on (an unknown keyword, a tag that is not a matching
//   key, a key of a lower level than the query, a nested path deeper than one item) is ignored; with
//   an empty value (universal matching) a known tag is still returned, like an includefield.
// - limit=0 means "the server's default page size" (some clients send 0 for "no limit"); limits
//   above maxLimit are clamped, and the caller's Warning header reports the remaining results.
// - A CS key with several values (CT,MR or CT\MR) matches entities having any of them: PS3.4
//   C.2.2.2.8 Multiple Value Matching (all values) needs multiplevaluematching=true, which is not
//   supported, and without it the meaning is undefined; any-of is what OHIF's modality filter means.
// - Values with wild cards win over fuzzymatching=true (OHIF sends *x* with fuzzymatching).
// - DT values may carry a UTC offset, which is validated and then ignored (see normalize.ts).

import { AppError } from '../../errors.js';
import { isValidUid } from '../../dicom/uid.js';
import { attributeByTag, isAtOrAbove, levelOfTag, tagOfKeyword, type AttributeDef } from '../../dicom/levels.js';
import type { Filter, Matcher, QidoQuery, QueryLevel } from './ast.js';
import {
  dateTimeBounds,
  fuzzyQueryWords,
  parseIntegerString,
  parseQueryDate,
  personNameQueryGroups,
  timeBounds,
  type Bounds,
} from './normalize.js';

export interface QidoPaging {
  /** Page size when the request has none (or limit=0). */
  defaultLimit: number;
  /** Larger limits are clamped to this. */
  maxLimit: number;
}

export type QidoParams = URLSearchParams | Record<string, string | string[] | undefined>;

export interface QidoScope {
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
}

/** VRs on which * and ? are wild cards (PS3.4 C.2.2.2.4). */
const WILDCARD_VRS = new Set(['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UR', 'UT']);

/** Longest value accepted: key values may exceed the VR's length (PS3.4 C.2.2.2), but not without bound. */
const MAX_VALUE_LENGTH = 1024;

const TAG = /^[0-9A-Fa-f]{8}$/;
const KEYWORD = /^[A-Za-z][A-Za-z0-9]*$/;

const invalid = (message: string) => new AppError('INVALID_QUERY', message);

/** "00100010" -> "(0010,0010)", for messages. */
const show = (tag: string) => `(${tag.slice(0, 4)},${tag.slice(4)})`;

function entries(params: QidoParams): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (k: string, v: string) => {
    const list = out.get(k);
    if (list) list.push(v);
    else out.set(k, [v]);
  };
  if (params instanceof URLSearchParams) {
    for (const [k, v] of params) add(k, v);
  } else {
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) add(k, one);
    }
  }
  return out;
}

/** One component of an attribute ID -> tag; undefined for a well-formed keyword we do not know. */
function resolveComponent(component: string, key: string): string | undefined {
  if (TAG.test(component)) return component.toUpperCase();
  if (KEYWORD.test(component)) return tagOfKeyword(component);
  throw invalid(`malformed attribute "${key}": expected 8 hex digits or a keyword (PS3.18 8.3.4.1)`);
}

/** An attribute ID -> tag path; undefined when any component is an unknown keyword. */
function resolvePath(key: string): string[] | undefined {
  const tags = key.split('.').map((c) => resolveComponent(c, key));
  return tags.every((t) => t !== undefined) ? (tags as string[]) : undefined;
}

function only(key: string, values: string[]): string {
  if (values.length !== 1) throw invalid(`parameter "${key}" given more than once`);
  return values[0]!;
}

function nonNegativeInteger(key: string, value: string): number {
  if (!/^\d+$/.test(value)) throw invalid(`${key} must be a non-negative integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw invalid(`${key} is too large`);
  return n;
}

function parseLimit(values: string[] | undefined, paging: QidoPaging): number {
  if (values === undefined) return paging.defaultLimit;
  const n = nonNegativeInteger('limit', only('limit', values));
  if (n === 0) return paging.defaultLimit;
  return Math.min(n, paging.maxLimit);
}

function parseOffset(values: string[] | undefined): number {
  return values === undefined ? 0 : nonNegativeInteger('offset', only('offset', values));
}

function parseFuzzy(values: string[] | undefined): boolean {
  if (values === undefined) return false;
  const v = only('fuzzymatching', values).toLowerCase();
  if (v !== 'true' && v !== 'false') throw invalid('fuzzymatching must be true or false (PS3.18 8.3.4)');
  return v === 'true';
}

/** Range matching on DA / TM / DT (PS3.4 C.2.2.2.5): "a-b", "-b", "a-", or a single value. */
function temporalMatcher(def: AttributeDef, value: string): Matcher {
  const bounds = (v: string): Bounds | undefined => {
    if (def.vr === 'DA') {
      const d = parseQueryDate(v);
      return d === undefined ? undefined : { lower: d, upper: d };
    }
    return def.vr === 'TM' ? timeBounds(v) : dateTimeBounds(v);
  };
  const bad = () => invalid(`invalid ${def.vr} value or range for ${def.keyword} ${show(def.tag)}`);

  // A DT may contain '-' in its UTC offset, so a whole value that parses is a single value, and a
  // range is split at the first '-' that leaves two valid (or empty) ends.
  const single = bounds(value);
  if (single) return { kind: 'range', from: single.lower, to: single.upper };
  for (let i = value.indexOf('-'); i !== -1; i = value.indexOf('-', i + 1)) {
    const left = value.slice(0, i);
    const right = value.slice(i + 1);
    if (left === '' && right === '') break;
    const from = left === '' ? undefined : bounds(left);
    const to = right === '' ? undefined : bounds(right);
    if ((left !== '' && !from) || (right !== '' && !to)) continue;
    if (from && to && from.lower > to.upper) {
      // Also how TM ranges that would cross midnight end up (PS3.4 C.2.2.2.5 forbids them).
      throw invalid(`range start after range end for ${def.keyword} ${show(def.tag)}`);
    }
    const m: Matcher = { kind: 'range' };
    if (from) m.from = from.lower;
    if (to) m.to = to.upper;
    return m;
  }
  throw bad();
}

function uidMatcher(def: AttributeDef, value: string): Matcher {
  // UID list matching (PS3.4 C.2.2.2.2): comma-separated in PS3.18; OHIF joins StudyInstanceUIDs
  // with a backslash, the DIMSE multi-value delimiter, so both are accepted.
  const uids = value.split(/[,\\]/).map((u) => u.trim());
  if (!uids.every(isValidUid)) throw invalid(`invalid UID in ${def.keyword} ${show(def.tag)}`);
  return uids.length === 1 ? { kind: 'single', value: uids[0]! } : { kind: 'uidList', values: uids };
}

const isUniversal = (value: string) => value === '' || /^\*+$/.test(value);

/** The matcher for one key, or undefined for universal matching (PS3.4 C.2.2.2.3). */
function matcherFor(def: AttributeDef, raw: string, fuzzy: boolean): Matcher | undefined {
  if (raw.length > MAX_VALUE_LENGTH) throw invalid(`value of ${def.keyword} ${show(def.tag)} is too long`);
  if (raw === '') return undefined;
  switch (def.vr) {
    case 'UI':
      return uidMatcher(def, raw);
    case 'DA':
    case 'TM':
    case 'DT':
      return temporalMatcher(def, raw.trim());
    case 'IS': {
      const n = parseIntegerString(raw);
      if (n === undefined) throw invalid(`${def.keyword} ${show(def.tag)} must be an integer`);
      return { kind: 'single', value: String(n) };
    }
    case 'PN': {
      if (isUniversal(raw.trim()) || personNameQueryGroups(raw).every((g) => g === '' || /^\*+$/.test(g))) {
        return undefined;
      }
      if (/[*?]/.test(raw)) return { kind: 'wildcard', pattern: raw };
      if (fuzzy) {
        const words = fuzzyQueryWords(raw);
        return words.length === 0 ? undefined : { kind: 'fuzzy', words };
      }
      return { kind: 'single', value: raw };
    }
    default: {
      if (!WILDCARD_VRS.has(def.vr)) return undefined;
      const value = raw.replace(/^ +| +$/g, '');
      if (isUniversal(value)) return undefined;
      if (/[*?]/.test(value)) return { kind: 'wildcard', pattern: value };
      if (def.vr === 'CS' && /[,\\]/.test(value)) {
        const values = value.split(/[,\\]/).map((v) => v.trim()).filter((v) => v !== '');
        if (values.length === 0) return undefined;
        return values.length === 1 ? { kind: 'single', value: values[0]! } : { kind: 'uidList', values };
      }
      return { kind: 'single', value };
    }
  }
}

const RESERVED = new Set(['limit', 'offset', 'fuzzymatching', 'includefield']);

export function parseQido(level: QueryLevel, scope: QidoScope, params: QidoParams, paging: QidoPaging): QidoQuery {
  if (scope.studyInstanceUID !== undefined && !isValidUid(scope.studyInstanceUID)) {
    throw new AppError('INVALID_UID', 'invalid Study Instance UID in the path');
  }
  if (scope.seriesInstanceUID !== undefined && !isValidUid(scope.seriesInstanceUID)) {
    throw new AppError('INVALID_UID', 'invalid Series Instance UID in the path');
  }

  const all = entries(params);
  const fuzzyMatching = parseFuzzy(all.get('fuzzymatching'));
  const limit = parseLimit(all.get('limit'), paging);
  const offset = parseOffset(all.get('offset'));

  const include = new Set<string>();
  let includeAll = false;
  for (const item of (all.get('includefield') ?? []).flatMap((v) => v.split(','))) {
    const field = item.trim();
    if (field === '') continue;
    if (field === 'all') {
      includeAll = true;
      continue;
    }
    // A dotted includefield names an item attribute; the whole sequence is returned.
    const path = resolvePath(field);
    if (path && isAtOrAbove(levelOfTag(path[0]!), level)) include.add(path[0]!);
  }

  const filters: Filter[] = [];
  const seen = new Set<string>();
  for (const [key, values] of all) {
    if (RESERVED.has(key) || /^[a-z_]/.test(key)) continue;
    const path = resolvePath(key);
    if (!path) continue; // an unknown keyword: not a matching key of this server
    const canonical = path.join('.');
    if (seen.has(canonical) || values.length > 1) {
      throw invalid(`attribute ${key} given more than once (PS3.18 8.3.4.1)`);
    }
    seen.add(canonical);
    const value = values[0]!;
    const top = attributeByTag(path[0]!);
    if (!isAtOrAbove(top?.level ?? levelOfTag(path[0]!), level)) continue; // lower level: ignored

    if (path.length === 1) {
      if (top?.vr === 'SQ' && value !== '') throw invalid(`${top.keyword} is a sequence: match on its item attributes`);
      const matcher = top?.matching ? matcherFor(top, value, fuzzyMatching) : undefined;
      if (matcher) filters.push({ path, vr: top!.vr, level: top!.level, matcher });
      else if (value === '' || top?.matching) include.add(path[0]!); // universal matching returns the attribute
      continue;
    }

    if (top !== undefined && top.vr !== 'SQ') throw invalid(`${key}: ${top.keyword} is not a sequence`);
    const item = path.length === 2 ? top?.items?.find((a) => a.tag === path[1]) : undefined;
    if (!top || !item) {
      if (value === '' && top) include.add(top.tag);
      continue;
    }
    const matcher = matcherFor(item, value, fuzzyMatching);
    if (matcher) filters.push({ path, vr: item.vr, level: top.level, matcher });
    include.add(top.tag);
  }

  return {
    level,
    scope: { ...scope },
    filters,
    includeFields: includeAll ? 'all' : [...include].sort(),
    fuzzyMatching,
    limit,
    offset,
  };
}
