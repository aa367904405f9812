// Cedar residual policies (isAuthorizedPartial with the principal, action and context known and the study
// unknown) -> a StudyCondition the index compiles to SQL (SECURITY.md 6).
//
// Rules:
// - only `resource.<StudyAttributes key>` may be read (allow-list); only the operators below are understood;
//   anything else throws UnconvertibleResidualError, and the caller fails closed: a permit it cannot convert
//   is dropped (allows nothing), a forbid it cannot convert makes the whole condition FALSE;
// - permits are OR-ed, forbids AND NOT-ed (Cedar: allow iff some permit is satisfied and no forbid is);
// - a policy Cedar reports as errored is one that errors for every study: a permit is dropped (Cedar skips it),
//   a forbid makes the whole condition FALSE (fail closed rather than trust the partial evaluator there);
// - decision 'deny' is FALSE without looking further.
//
// Understood: && || ! == != < <= > >= (studyDate against a Long literal, either side), `[..].contains(resource.x)`
// (-> in), `resource.set.contains(v)`, `.containsAny([..])` (either side), `resource.set.containsAll([..])`,
// `.isEmpty()`, `like`, `if-then-else`, `has` on a Study attribute (always true), `resource is Study`,
// `resource == Study::"uid"` / `resource in Study::"uid"` / `resource in [Study::"a", ..]`, literals (String,
// Long within the exact JavaScript integers, Bool, sets of those). Not understood (so: deny): arithmetic (+ - *
// neg), attribute-to-attribute comparisons, set equality, `[..].containsAll(resource.set)`, records, tags,
// extension functions (ip, decimal, datetime, duration), `principal`/`context` left in a residual.

import type { Expr, PatternElem, PolicyJson, ResidualResponse } from '@cedar-policy/cedar-wasm/nodejs';
import { STUDY_SCALAR_ATTRIBUTES, STUDY_SET_ATTRIBUTES, type StudyScalarAttribute, type StudySetAttribute } from './study-attributes.js';
import { FALSE, TRUE, simplify, type LikePart, type StudyCondition } from './study-condition.js';

/** A residual uses something this compiler does not understand. */
export class UnconvertibleResidualError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnconvertibleResidualError';
  }
}

type Literal = string | number | boolean | LiteralEntity | LiteralSet;
interface LiteralEntity {
  entity: { type: string; id: string };
}
interface LiteralSet {
  set: Literal[];
}

/** What a sub-expression of a residual is, before it becomes a condition. */
type Term =
  | { t: 'literal'; value: Literal }
  | { t: 'resource' }
  | { t: 'scalar'; attribute: StudyScalarAttribute }
  | { t: 'set'; attribute: StudySetAttribute }
  | { t: 'cond'; cond: StudyCondition };

const STUDY_TYPE = 'Study';

function fail(message: string): never {
  throw new UnconvertibleResidualError(message);
}

/** One residual policy (scope and conditions) -> the condition under which it is satisfied. */
export function residualPolicyToCondition(policy: PolicyJson): StudyCondition {
  if (policy.principal.op !== 'All') fail(`principal scope '${policy.principal.op}' left in a residual`);
  if (policy.action.op !== 'All') fail(`action scope '${policy.action.op}' left in a residual`);
  const items: StudyCondition[] = [resourceScope(policy.resource)];
  for (const clause of policy.conditions) {
    const c = toCondition(clause.body);
    items.push(clause.kind === 'when' ? c : { kind: 'not', item: c });
  }
  return simplify({ kind: 'and', items });
}

function resourceScope(scope: PolicyJson['resource']): StudyCondition {
  switch (scope.op) {
    case 'All':
      return TRUE;
    case '==':
    case 'in': {
      // A Study has no parents, so `resource in Study::"x"` is `resource == Study::"x"`.
      if (!('entity' in scope)) fail('template slot in a resource scope');
      return resourceIsEntity(entityLiteral(scope.entity));
    }
    case 'is': {
      if (scope.entity_type !== STUDY_TYPE) return FALSE;
      if (scope.in === undefined) return TRUE;
      if (!('entity' in scope.in)) fail('template slot in a resource scope');
      return resourceIsEntity(entityLiteral(scope.in.entity));
    }
    default:
      return fail('unknown resource scope');
  }
}

function entityLiteral(uid: unknown): LiteralEntity {
  const inner = isObject(uid) && '__entity' in uid ? uid['__entity'] : uid;
  if (isObject(inner) && typeof inner['type'] === 'string' && typeof inner['id'] === 'string') return { entity: { type: inner['type'], id: inner['id'] } };
  return fail('malformed entity reference');
}

function resourceIsEntity(e: LiteralEntity): StudyCondition {
  return e.entity.type === STUDY_TYPE ? { kind: 'eq', attribute: 'studyInstanceUID', value: e.entity.id } : FALSE;
}

/** A boolean residual expression -> condition. */
export function exprToCondition(expr: Expr): StudyCondition {
  return simplify(toCondition(expr));
}

function toCondition(expr: Expr): StudyCondition {
  const term = toTerm(expr);
  if (term.t === 'cond') return term.cond;
  if (term.t === 'literal' && typeof term.value === 'boolean') return term.value ? TRUE : FALSE;
  return fail(`a non-boolean ${term.t} where a condition is expected`);
}

function cond(c: StudyCondition): Term {
  return { t: 'cond', cond: c };
}

function toTerm(expr: Expr): Term {
  if (!isObject(expr)) return fail('malformed expression');
  const keys = Object.keys(expr);
  if (keys.length !== 1) return fail('malformed expression');
  const op = keys[0]!;
  const body = (expr as Record<string, unknown>)[op];
  switch (op) {
    case 'Value':
      return { t: 'literal', value: jsonLiteral(body) };
    case 'Set': {
      if (!Array.isArray(body)) return fail('malformed set');
      return { t: 'literal', value: { set: body.map((e) => literalOf(toTerm(e as Expr))) } };
    }
    case 'unknown': {
      const args = body as unknown[];
      if (Array.isArray(args) && args.length === 1 && isObject(args[0]) && args[0]['Value'] === 'resource') return { t: 'resource' };
      return fail('an unknown other than the resource');
    }
    case '.': {
      const { left, attr } = body as { left: Expr; attr: string };
      if (toTerm(left).t !== 'resource') return fail('attribute of something other than the resource');
      return attributeTerm(attr);
    }
    case 'has': {
      const { left, attr } = body as { left: Expr; attr: string | string[] };
      if (toTerm(left).t !== 'resource') return fail('`has` on something other than the resource');
      // Every Study attribute is always present (cedar-entities.ts).
      if (typeof attr === 'string' && isStudyAttribute(attr)) return cond(TRUE);
      return fail('`has` on an attribute that is not a Study attribute');
    }
    case '!':
      return cond({ kind: 'not', item: toCondition((body as { arg: Expr }).arg) });
    case '&&':
    case '||': {
      const { left, right } = body as { left: Expr; right: Expr };
      return cond({ kind: op === '&&' ? 'and' : 'or', items: [toCondition(left), toCondition(right)] });
    }
    case 'if-then-else': {
      const b = body as { if: Expr; then: Expr; else: Expr };
      const c = toCondition(b.if);
      return cond({
        kind: 'or',
        items: [
          { kind: 'and', items: [c, toCondition(b.then)] },
          { kind: 'and', items: [{ kind: 'not', item: c }, toCondition(b.else)] },
        ],
      });
    }
    case '==':
    case '!=': {
      const { left, right } = body as { left: Expr; right: Expr };
      const eq = equality(toTerm(left), toTerm(right));
      return cond(op === '==' ? eq : { kind: 'not', item: eq });
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const { left, right } = body as { left: Expr; right: Expr };
      return cond(comparison(op, toTerm(left), toTerm(right)));
    }
    case 'in': {
      const { left, right } = body as { left: Expr; right: Expr };
      return cond(entityIn(toTerm(left), toTerm(right)));
    }
    case 'is': {
      const b = body as { left: Expr; entity_type: string; in?: Expr };
      if (toTerm(b.left).t !== 'resource') return fail('`is` on something other than the resource');
      if (b.entity_type !== STUDY_TYPE) return cond(FALSE);
      return cond(b.in === undefined ? TRUE : entityIn({ t: 'resource' }, toTerm(b.in)));
    }
    case 'contains': {
      const { left, right } = body as { left: Expr; right: Expr };
      return cond(contains(toTerm(left), toTerm(right)));
    }
    case 'containsAny':
    case 'containsAll': {
      const { left, right } = body as { left: Expr; right: Expr };
      return cond(containsSet(op === 'containsAny' ? 'any' : 'all', toTerm(left), toTerm(right)));
    }
    case 'isEmpty': {
      const arg = toTerm((body as { arg: Expr }).arg);
      if (arg.t === 'set') return cond({ kind: 'empty', attribute: arg.attribute });
      if (arg.t === 'literal' && isSet(arg.value)) return cond(arg.value.set.length === 0 ? TRUE : FALSE);
      return fail('`isEmpty` on something other than a set');
    }
    case 'like': {
      const { left, pattern } = body as { left: Expr; pattern: PatternElem[] };
      const l = toTerm(left);
      if (l.t !== 'scalar' || STUDY_SCALAR_ATTRIBUTES[l.attribute] !== 'string') return fail('`like` on something other than a string attribute of the study');
      return cond({ kind: 'like', attribute: l.attribute, pattern: likePattern(pattern) });
    }
    default:
      return fail(`operator '${op}' is not supported`);
  }
}

function attributeTerm(attr: string): Term {
  if (Object.hasOwn(STUDY_SCALAR_ATTRIBUTES, attr)) return { t: 'scalar', attribute: attr as StudyScalarAttribute };
  if ((STUDY_SET_ATTRIBUTES as readonly string[]).includes(attr)) return { t: 'set', attribute: attr as StudySetAttribute };
  return fail(`resource.${attr} is not a Study attribute`);
}

function isStudyAttribute(attr: string): boolean {
  return Object.hasOwn(STUDY_SCALAR_ATTRIBUTES, attr) || (STUDY_SET_ATTRIBUTES as readonly string[]).includes(attr);
}

function equality(a: Term, b: Term): StudyCondition {
  if (a.t === 'literal' && b.t === 'literal') return literalEquals(a.value, b.value) ? TRUE : FALSE;
  if (b.t === 'scalar' || b.t === 'resource') [a, b] = [b, a];
  if (a.t === 'scalar' && b.t === 'literal') {
    // Cedar's == across types is false, not an error.
    return sameScalarType(a.attribute, b.value) ? { kind: 'eq', attribute: a.attribute, value: b.value as string | number } : FALSE;
  }
  if (a.t === 'resource' && b.t === 'literal') {
    return isEntity(b.value) ? resourceIsEntity(b.value) : FALSE;
  }
  return fail(`== between ${a.t} and ${b.t} is not supported`);
}

const FLIPPED = { '<': '>', '<=': '>=', '>': '<', '>=': '<=' } as const;

function comparison(op: '<' | '<=' | '>' | '>=', a: Term, b: Term): StudyCondition {
  if (a.t === 'literal' && b.t === 'literal') {
    if (typeof a.value !== 'number' || typeof b.value !== 'number') return fail(`${op} on non-Long literals`);
    const [x, y] = [a.value, b.value];
    return (op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y) ? TRUE : FALSE;
  }
  if (a.t === 'literal' && b.t === 'scalar') return comparison(FLIPPED[op], b, a);
  if (a.t === 'scalar' && a.attribute === 'studyDate' && b.t === 'literal' && typeof b.value === 'number') {
    return { kind: 'compare', attribute: 'studyDate', op, value: b.value };
  }
  return fail(`${op} is supported only between resource.studyDate and a Long`);
}

/** `resource in E` / `resource in [E, ..]`: a Study has no parents, so this is equality with one of them. */
function entityIn(a: Term, b: Term): StudyCondition {
  if (a.t !== 'resource' || b.t !== 'literal') return fail('`in` is supported only as resource in <entity literal(s)>');
  if (isEntity(b.value)) return resourceIsEntity(b.value);
  if (isSet(b.value)) {
    const uids: string[] = [];
    for (const e of b.value.set) {
      if (!isEntity(e)) return fail('`in` on a set that is not of entities');
      if (e.entity.type === STUDY_TYPE) uids.push(e.entity.id);
    }
    return { kind: 'in', attribute: 'studyInstanceUID', values: uids };
  }
  return fail('`in` on something other than entities');
}

function contains(a: Term, b: Term): StudyCondition {
  // [literals].contains(resource.x)  ->  x in literals
  if (a.t === 'literal' && isSet(a.value) && b.t === 'scalar') {
    const values = a.value.set.filter((v) => sameScalarType(b.attribute, v)) as (string | number)[];
    return { kind: 'in', attribute: b.attribute, values: [...new Set(values)] };
  }
  // resource.set.contains("v")
  if (a.t === 'set' && b.t === 'literal') {
    return typeof b.value === 'string' ? { kind: 'has', attribute: a.attribute, values: [b.value], mode: 'any' } : FALSE;
  }
  if (a.t === 'literal' && isSet(a.value) && b.t === 'literal') return a.value.set.some((v) => literalEquals(v, b.value)) ? TRUE : FALSE;
  return fail(`contains between ${a.t} and ${b.t} is not supported`);
}

function containsSet(mode: 'any' | 'all', a: Term, b: Term): StudyCondition {
  // containsAny is symmetric; containsAll is not ([..].containsAll(resource.set) is a subset test: no condition for it).
  if (mode === 'any' && a.t === 'literal' && b.t === 'set') [a, b] = [b, a];
  if (a.t === 'set' && b.t === 'literal' && isSet(b.value)) {
    const strings = b.value.set.filter((v): v is string => typeof v === 'string');
    // A non-string can never be in a Set<String>: containsAll with one is false, containsAny ignores it.
    if (mode === 'all' && strings.length !== b.value.set.length) return FALSE;
    return { kind: 'has', attribute: a.attribute, values: [...new Set(strings)], mode };
  }
  if (a.t === 'literal' && b.t === 'literal' && isSet(a.value) && isSet(b.value)) {
    const [x, y] = [a.value.set, b.value.set];
    const holds = mode === 'any' ? y.some((v) => x.some((w) => literalEquals(v, w))) : y.every((v) => x.some((w) => literalEquals(v, w)));
    return holds ? TRUE : FALSE;
  }
  return fail(`${mode === 'any' ? 'containsAny' : 'containsAll'} between ${a.t} and ${b.t} is not supported`);
}

function likePattern(pattern: PatternElem[]): LikePart[] {
  if (!Array.isArray(pattern)) return fail('malformed like pattern');
  return pattern.map((p) => {
    if (p === 'Wildcard') return 'wildcard';
    if (isObject(p) && typeof p['Literal'] === 'string') return { literal: p['Literal'] };
    return fail('malformed like pattern');
  });
}

function literalOf(term: Term): Literal {
  if (term.t !== 'literal') return fail('a set with a non-literal element');
  return term.value;
}

/** A JSON `Value` -> literal. Entities `{__entity}`; sets as arrays; Longs must be exact in JavaScript. */
function jsonLiteral(v: unknown): Literal {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    // JSON.parse has already rounded a Long beyond 2^53; comparing with it would be wrong.
    if (!Number.isSafeInteger(v)) return fail('a Long outside the exact JavaScript integers');
    return v;
  }
  if (Array.isArray(v)) return { set: v.map(jsonLiteral) };
  if (isObject(v) && '__entity' in v) return entityLiteral(v);
  return fail('a record or extension value is not supported');
}

function sameScalarType(attribute: StudyScalarAttribute, v: Literal): boolean {
  return typeof v === STUDY_SCALAR_ATTRIBUTES[attribute];
}

function literalEquals(a: Literal, b: Literal): boolean {
  if (typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (isEntity(a) && isEntity(b)) return a.entity.type === b.entity.type && a.entity.id === b.entity.id;
  if (isSet(a) && isSet(b)) return a.set.every((x) => b.set.some((y) => literalEquals(x, y))) && b.set.every((y) => a.set.some((x) => literalEquals(x, y)));
  return false;
}

function isEntity(v: Literal): v is LiteralEntity {
  return typeof v === 'object' && 'entity' in v;
}

function isSet(v: Literal): v is LiteralSet {
  return typeof v === 'object' && 'set' in v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How a residual response became a condition: which policies could not be used. */
export interface ResidualConversion {
  condition: StudyCondition;
  /** Permits that were dropped (unconvertible or errored). */
  droppedPermits: { id: string; reason: string }[];
  /** The forbid that made the condition FALSE (unconvertible or errored), if any. */
  failedForbid?: { id: string; reason: string };
}

/** A whole partial-evaluation response -> the condition (permits OR-ed, forbids AND NOT-ed, fail closed). */
export function residualsToCondition(response: ResidualResponse): ResidualConversion {
  const droppedPermits: { id: string; reason: string }[] = [];
  if (response.decision === 'deny') return { condition: FALSE, droppedPermits };
  const errored = new Set(response.errored);
  const permits: StudyCondition[] = [];
  const forbids: StudyCondition[] = [];
  for (const [id, policy] of Object.entries(response.residuals)) {
    let c: StudyCondition;
    try {
      if (errored.has(id)) fail('the policy errors for every study');
      c = residualPolicyToCondition(policy);
    } catch (e) {
      if (!(e instanceof UnconvertibleResidualError)) throw e;
      if (policy.effect === 'forbid') return { condition: FALSE, droppedPermits, failedForbid: { id, reason: e.message } };
      droppedPermits.push({ id, reason: e.message });
      continue;
    }
    (policy.effect === 'permit' ? permits : forbids).push(c);
  }
  const condition = simplify({
    kind: 'and',
    items: [{ kind: 'or', items: permits }, ...forbids.map((f): StudyCondition => ({ kind: 'not', item: f }))],
  });
  return { condition, droppedPermits };
}
