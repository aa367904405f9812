// Evaluates a QidoQuery's filters against datasets in plain JS (PS3.4 C.2.2.2). The memory index
// store uses it; it is the reference the SQL compiler is tested against (test/contracts), so it
// favours being obviously right over being fast.

import type { DicomJsonAttribute, DicomJsonDataset, DicomJsonValue } from '../../dicom/json-model.js';
import { attributeByTag, type EntityLevel } from '../../dicom/levels.js';
import type { Filter, Matcher } from './ast.js';
import {
  normalizeText,
  parseIntegerString,
  personNameGroups,
  personNameQueryGroups,
  personNameWords,
  storedTemporal,
  type PersonNameGroups,
} from './normalize.js';

/** A wild card pattern (* any run, ? one character; PS3.4 C.2.2.2.4) as an anchored regular expression. */
export function wildcardRegExp(pattern: string): RegExp {
  let source = '';
  for (const ch of pattern) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su');
}

const isOpenGroup = (q: string) => q === '' || /^\*+$/.test(q);

/**
 * A PN key against a stored name. A key without '=' is tried against each group of the name (a
 * match on any group counts); a key with groups is matched group by group, open groups ('' or *)
 * matching anything (PS3.5 6.2.1 component groups).
 */
function personNameMatches(key: string, name: PersonNameGroups, test: (key: string, group: string) => boolean): boolean {
  const keyGroups = personNameQueryGroups(key);
  if (keyGroups.length === 1) {
    const k = keyGroups[0]!;
    return name.some((g) => g !== undefined && test(k, g));
  }
  return keyGroups.every((k, i) => isOpenGroup(k) || (name[i] !== undefined && test(k, name[i]!)));
}

/** One stored value of an attribute of VR `vr` against a matcher. */
export function matchValue(vr: string, matcher: Matcher, value: DicomJsonValue): boolean {
  if (value === null) return false;

  if (vr === 'PN') {
    const groups = personNameGroups(value);
    switch (matcher.kind) {
      case 'single':
        return personNameMatches(matcher.value, groups, (k, g) => k === g);
      case 'wildcard':
        return personNameMatches(matcher.pattern, groups, (k, g) => wildcardRegExp(k).test(g));
      case 'fuzzy': {
        // Each key word is the start of some word of the name (any group).
        const words = personNameWords(groups);
        return matcher.words.every((w) => words.some((nw) => nw.startsWith(w)));
      }
      default:
        return false;
    }
  }

  if (vr === 'DA' || vr === 'TM' || vr === 'DT') {
    const stored = storedTemporal(vr, value);
    if (stored === undefined) return false;
    if (matcher.kind === 'range') {
      return (matcher.from === undefined || stored >= matcher.from) && (matcher.to === undefined || stored <= matcher.to);
    }
    return matcher.kind === 'single' && stored === matcher.value;
  }

  if (vr === 'IS') {
    const n = parseIntegerString(value);
    if (n === undefined) return false;
    if (matcher.kind === 'single') return n === Number(matcher.value);
    return matcher.kind === 'uidList' && matcher.values.some((v) => Number(v) === n);
  }

  const text = normalizeText(value);
  if (text === undefined) return false;
  switch (matcher.kind) {
    case 'single':
      return text === matcher.value; // case-sensitive (PS3.4 C.2.2.2.1)
    case 'uidList':
      return matcher.values.includes(text);
    case 'wildcard':
      return wildcardRegExp(matcher.pattern).test(text);
    default:
      return false;
  }
}

/**
 * The values a key is matched against: every value of a multi-valued matching key (ModalitiesInStudy),
 * the first value otherwise, which is what the SQL index keeps in its column.
 */
function candidateValues(attr: DicomJsonAttribute | undefined, multiValued: boolean): DicomJsonValue[] {
  const values = attr?.Value ?? [];
  return multiValued ? values : values.slice(0, 1);
}

export function matchAttribute(filter: Filter, attr: DicomJsonAttribute | undefined): boolean {
  const multiValued = attributeByTag(filter.path[0]!)?.multiValued === true;
  return candidateValues(attr, multiValued).some((v) => matchValue(filter.vr, filter.matcher, v));
}

/** Sequence matching (PS3.4 C.2.2.2.6): some item matches every item key. */
export function matchSequence(itemFilters: Filter[], attr: DicomJsonAttribute | undefined): boolean {
  return (attr?.Value ?? []).some((item) => {
    if (item === null || typeof item !== 'object' || 'Alphabetic' in item) return false;
    const ds = item as DicomJsonDataset;
    return itemFilters.every((f) => candidateValues(ds[f.path[1]!], false).some((v) => matchValue(f.vr, f.matcher, v)));
  });
}

/** Whether an entity matches every filter; `datasetOf` gives the dataset of each level the filters name. */
export function matchesFilters(filters: Filter[], datasetOf: (level: EntityLevel) => DicomJsonDataset): boolean {
  const sequences = new Map<string, Filter[]>();
  for (const f of filters) {
    if (f.path.length > 1) {
      const key = `${f.level}:${f.path[0]}`;
      sequences.set(key, [...(sequences.get(key) ?? []), f]);
    } else if (!matchAttribute(f, datasetOf(f.level)[f.path[0]!])) {
      return false;
    }
  }
  for (const group of sequences.values()) {
    const first = group[0]!;
    if (!matchSequence(group, datasetOf(first.level)[first.path[0]!])) return false;
  }
  return true;
}
