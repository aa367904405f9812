// How values are normalised before they are compared, for stored values and query values alike.
// Both index stores use these functions (the memory store at match time, SQLite when it fills its
// columns), so the two cannot disagree on what "equal" means.

import type { PersonName } from '../../dicom/json-model.js';

// ---------------------------------------------------------------------------------------------------
// Person names (PS3.5 6.2 PN; PS3.4 C.2.2.2.1: PN matching "may be insensitive to case, accent ...").

/**
 * One PN component group, case- and accent-folded: canonical decomposition, Latin combining
 * diacritics (U+0300-U+036F) removed, recomposed, upper-cased. Only that block is stripped so that
 * Japanese voiced kana (だ = た + U+3099) stay distinct from unvoiced ones. Trailing empty components
 * ("DOE^JOHN^^^") and padding spaces are insignificant (PS3.5 6.2.1).
 */
export function foldPersonName(group: string): string {
  return group
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .normalize('NFC')
    .toUpperCase()
    .replace(/^ +/, '')
    .replace(/[\^ ]+$/, '');
}

export type PersonNameGroups = [alphabetic?: string, ideographic?: string, phonetic?: string];

/** The folded Alphabetic, Ideographic and Phonetic groups of a stored PN value (absent or empty -> undefined). */
export function personNameGroups(value: unknown): PersonNameGroups {
  let raw: (string | undefined)[];
  if (typeof value === 'string') raw = value.split('=');
  else if (value !== null && typeof value === 'object') {
    const pn = value as PersonName;
    raw = [pn.Alphabetic, pn.Ideographic, pn.Phonetic];
  } else return [];
  const out: PersonNameGroups = [];
  for (let i = 0; i < 3; i++) {
    const g = raw[i];
    const folded = typeof g === 'string' ? foldPersonName(g) : '';
    out[i] = folded === '' ? undefined : folded;
  }
  return out;
}

/** Word separators for fuzzy matching: component (^), group (=) and the usual in-name punctuation. */
const WORD_SEPARATORS = /[\^ ,\-=]+/;

/** The distinct folded words of a PN (all groups), for fuzzy matching. */
export function personNameWords(groups: PersonNameGroups): string[] {
  const words = new Set<string>();
  for (const g of groups) {
    if (g === undefined) continue;
    for (const w of g.split(WORD_SEPARATORS)) if (w !== '') words.add(w);
  }
  return [...words];
}

/** The folded words of a fuzzy query value. */
export function fuzzyQueryWords(value: string): string[] {
  return [...new Set(foldPersonName(value).split(WORD_SEPARATORS).filter((w) => w !== ''))];
}

/**
 * A PN query value split into its groups, each folded; '' for a group the query leaves open.
 * "Yamada^Tarou" -> one group (matched against every group of the stored name);
 * "Yamada^Tarou=山田^太郎" -> two groups, each matched against the stored group in its position.
 */
export function personNameQueryGroups(value: string): string[] {
  return value.split('=').slice(0, 3).map(foldPersonName);
}

// ---------------------------------------------------------------------------------------------------
// Text VRs (AE CS LO LT SH ST UC UR UT UI).

/** Leading and trailing spaces are padding, not part of the value, for the matching keys we index (PS3.5 6.2). */
export function normalizeText(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string') return undefined;
  const t = value.replace(/^ +| +$/g, '');
  return t === '' ? undefined : t;
}

/** IS values as integers ("+7", "007" and 7 all equal 7: PS3.4 C.2.2.2.1.1 leaves IS matching to us). */
export function parseIntegerString(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value !== 'string' || !/^ *[+-]?\d+ *$/.test(value)) return undefined;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

// ---------------------------------------------------------------------------------------------------
// Dates and times (PS3.5 6.2 DA TM DT). Range bounds are padded to full precision so that plain
// string comparison orders them: DA -> YYYYMMDD, TM -> HHMMSS.FFFFFF, DT -> YYYYMMDDHHMMSS.FFFFFF.

export interface Bounds {
  lower: string;
  upper: string;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function validDate(y: string, m: string, d: string): boolean {
  const month = Number(m);
  const day = Number(d);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(Number(y), month);
}

/** A query DA value: exactly YYYYMMDD and a real calendar day. */
export function parseQueryDate(value: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(value);
  return m && validDate(m[1]!, m[2]!, m[3]!) ? value : undefined;
}

const TIME = /^(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?$/;

/** A TM value (HH, HHMM, HHMMSS, HHMMSS.F{1-6}) as the first and last instant it denotes. */
export function timeBounds(value: string): Bounds | undefined {
  const m = TIME.exec(value);
  if (!m) return undefined;
  const [, hh, mm, ss, frac] = m;
  if (Number(hh) > 23 || (mm !== undefined && Number(mm) > 59) || (ss !== undefined && Number(ss) > 60)) {
    return undefined;
  }
  const lower = `${hh}${mm ?? '00'}${ss ?? '00'}.${(frac ?? '').padEnd(6, '0')}`;
  const upper = `${hh}${mm ?? '59'}${ss ?? '59'}.${(frac ?? '').padEnd(6, '9')}`;
  return { lower, upper };
}

const DATETIME = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?([+-]\d{4})?$/;

/**
 * A DT value as the first and last instant it denotes, in its own local time. A UTC offset suffix
 * (&ZZXX) is validated and then dropped, on stored and query values alike: values are compared as
 * local date-times (PS3.4 C.2.2.2.5 wants offsets honoured; documented as a limitation).
 */
export function dateTimeBounds(value: string): Bounds | undefined {
  const m = DATETIME.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, offset] = m;
  if (mo !== undefined && (Number(mo) < 1 || Number(mo) > 12)) return undefined;
  if (d !== undefined && !validDate(y!, mo!, d)) return undefined;
  if (h !== undefined && Number(h) > 23) return undefined;
  if (mi !== undefined && Number(mi) > 59) return undefined;
  if (s !== undefined && Number(s) > 60) return undefined;
  if (offset !== undefined && (Number(offset.slice(1, 3)) > 14 || Number(offset.slice(3)) > 59)) return undefined;
  const lastDay = mo === undefined ? '31' : String(daysInMonth(Number(y), Number(mo))).padStart(2, '0');
  const lower = `${y}${mo ?? '01'}${d ?? '01'}${h ?? '00'}${mi ?? '00'}${s ?? '00'}.${(frac ?? '').padEnd(6, '0')}`;
  const upper = `${y}${mo ?? '12'}${d ?? lastDay}${h ?? '23'}${mi ?? '59'}${s ?? '59'}.${(frac ?? '').padEnd(6, '9')}`;
  return { lower, upper };
}

/** A stored DA value in comparable form; the ACR-NEMA "YYYY.MM.DD" form is accepted too. */
export function storedDate(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  return parseQueryDate(/^\d{4}\.\d{2}\.\d{2}$/.test(v) ? v.replaceAll('.', '') : v);
}

/** A stored TM value in comparable form (its first instant); the ACR-NEMA "HH:MM:SS" form is accepted too. */
export function storedTime(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return timeBounds(value.trim().replaceAll(':', ''))?.lower;
}

/** A stored DT value in comparable form (its first instant, offset dropped). */
export function storedDateTime(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return dateTimeBounds(value.trim())?.lower;
}

/** The stored-value normaliser of a range-matchable VR. */
export function storedTemporal(vr: string, value: unknown): string | undefined {
  if (vr === 'DA') return storedDate(value);
  if (vr === 'TM') return storedTime(value);
  if (vr === 'DT') return storedDateTime(value);
  return undefined;
}
