// A condition over studies: what a Cedar residual policy (partial evaluation with the study unknown) becomes
// once the principal, action and context are substituted (policy/residual-to-condition.ts). The index compiles
// it to a parameterised SQL WHERE (index/sqlite/compile-access.ts) or evaluates it (memory index); both must
// agree with evaluateStudyCondition below, which is the reference semantics (SECURITY.md 6).
//
// Deliberately small: an operator or attribute the compiler does not know is a compile error, which the
// policy engine turns into "deny" (fail closed), never into "ignore this part".

import type { StudyAttributes, StudyScalarAttribute, StudySetAttribute } from './study-attributes.js';

/** One element of a Cedar `like` pattern: literal text or `*` (any run of characters, possibly empty). */
export type LikePart = { literal: string } | 'wildcard';

export type StudyCondition =
  | { kind: 'const'; value: boolean }
  | { kind: 'and'; items: StudyCondition[] }
  | { kind: 'or'; items: StudyCondition[] }
  | { kind: 'not'; item: StudyCondition }
  /** attribute == value (Cedar `==`, case-sensitive, exact). */
  | { kind: 'eq'; attribute: StudyScalarAttribute; value: string | number }
  /** attribute is one of values (Cedar `[..].contains(resource.x)`). */
  | { kind: 'in'; attribute: StudyScalarAttribute; values: (string | number)[] }
  /** studyDate compared with a number (Cedar `<`, `<=`, `>`, `>=` on Long). */
  | { kind: 'compare'; attribute: 'studyDate'; op: '<' | '<=' | '>' | '>='; value: number }
  /** Cedar `like`: `*` matches any run of characters; everything else literally, case-sensitive. */
  | { kind: 'like'; attribute: StudyScalarAttribute; pattern: LikePart[] }
  /**
   * Set membership on a set attribute: 'any' = at least one of values is in the set (containsAny, contains with
   * one value); 'all' = every value is in it (containsAll). With no values: 'any' is false, 'all' is true.
   */
  | { kind: 'has'; attribute: StudySetAttribute; values: string[]; mode: 'any' | 'all' }
  /** The set attribute is empty (Cedar `isEmpty()`). */
  | { kind: 'empty'; attribute: StudySetAttribute };

export const TRUE: StudyCondition = { kind: 'const', value: true };
export const FALSE: StudyCondition = { kind: 'const', value: false };

/** The reference semantics: does this study satisfy the condition? */
export function evaluateStudyCondition(c: StudyCondition, study: StudyAttributes): boolean {
  switch (c.kind) {
    case 'const':
      return c.value;
    case 'and':
      return c.items.every((item) => evaluateStudyCondition(item, study));
    case 'or':
      return c.items.some((item) => evaluateStudyCondition(item, study));
    case 'not':
      return !evaluateStudyCondition(c.item, study);
    case 'eq':
      return study[c.attribute] === c.value;
    case 'in':
      return c.values.includes(study[c.attribute]);
    case 'compare': {
      const v = study[c.attribute];
      if (c.op === '<') return v < c.value;
      if (c.op === '<=') return v <= c.value;
      if (c.op === '>') return v > c.value;
      return v >= c.value;
    }
    case 'like':
      return likeMatches(c.pattern, String(study[c.attribute]));
    case 'has': {
      const set = new Set(study[c.attribute]);
      return c.mode === 'any' ? c.values.some((v) => set.has(v)) : c.values.every((v) => set.has(v));
    }
    case 'empty':
      return study[c.attribute].length === 0;
  }
}

/** Cedar `like` on a whole string (no partial match), `*` greedy over any characters. */
export function likeMatches(pattern: LikePart[], value: string): boolean {
  const source = pattern.map((p) => (p === 'wildcard' ? '[\\s\\S]*' : p.literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`, 'u').test(value);
}

/** Constant-folds and flattens: and/or of constants, nested and/or of the same kind, double negation. */
export function simplify(c: StudyCondition): StudyCondition {
  switch (c.kind) {
    case 'and':
    case 'or': {
      const unit = c.kind === 'and';
      const items: StudyCondition[] = [];
      for (const raw of c.items) {
        const item = simplify(raw);
        if (item.kind === 'const') {
          if (item.value !== unit) return { kind: 'const', value: !unit };
          continue;
        }
        if (item.kind === c.kind) items.push(...item.items);
        else items.push(item);
      }
      if (items.length === 0) return { kind: 'const', value: unit };
      if (items.length === 1) return items[0]!;
      return { kind: c.kind, items };
    }
    case 'not': {
      const item = simplify(c.item);
      if (item.kind === 'const') return { kind: 'const', value: !item.value };
      if (item.kind === 'not') return item.item;
      return { kind: 'not', item };
    }
    default:
      return c;
  }
}
