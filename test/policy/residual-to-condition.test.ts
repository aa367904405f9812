// Cedar residual EST -> StudyCondition (policy/residual-to-condition.ts): every supported operator, the
// allow-list, and the fail-closed combination rules. Residual shapes are the ones cedar-wasm 4.13 produces
// (checked against real isAuthorizedPartial output at the end).
import { isAuthorizedPartial, type Expr, type PolicyJson, type ResidualResponse } from '@cedar-policy/cedar-wasm/nodejs';
import t, { type Test } from 'tap';
import { exprToCondition, residualPolicyToCondition, residualsToCondition, UnconvertibleResidualError } from '../../src/policy/residual-to-condition.js';
import type { StudyAttributes } from '../../src/policy/study-attributes.js';
import { evaluateStudyCondition, FALSE, TRUE } from '../../src/policy/study-condition.js';

const R: Expr = { unknown: [{ Value: 'resource' }] } as unknown as Expr;
const attr = (a: string): Expr => ({ '.': { left: R, attr: a } });
const v = (x: unknown): Expr => ({ Value: x }) as Expr;
const bin = (op: string, left: Expr, right: Expr): Expr => ({ [op]: { left, right } }) as unknown as Expr;
const set = (...xs: unknown[]): Expr => ({ Set: xs.map(v) });
const entity = (type: string, id: string) => ({ __entity: { type, id } });

function throwsUnconvertible(t: Test, expr: Expr, pattern: RegExp, name: string): void {
  let thrown: unknown;
  try {
    exprToCondition(expr);
  } catch (e) {
    thrown = e;
  }
  t.ok(thrown instanceof UnconvertibleResidualError, `${name}: unconvertible`);
  t.match((thrown as Error | undefined)?.message, pattern, name);
}

t.test('== and != on scalar attributes, either side; a type mismatch is false', async (t) => {
  t.same(exprToCondition(bin('==', attr('institution'), v('GENERAL'))), { kind: 'eq', attribute: 'institution', value: 'GENERAL' });
  t.same(exprToCondition(bin('==', v('GENERAL'), attr('institution'))), { kind: 'eq', attribute: 'institution', value: 'GENERAL' });
  t.same(exprToCondition(bin('==', attr('studyDate'), v(20240101))), { kind: 'eq', attribute: 'studyDate', value: 20240101 });
  t.same(exprToCondition(bin('!=', attr('patientId'), v(''))), { kind: 'not', item: { kind: 'eq', attribute: 'patientId', value: '' } });
  t.same(exprToCondition(bin('==', attr('studyDate'), v('20240101'))), FALSE, 'Cedar: Long == String is false');
  t.same(exprToCondition(bin('!=', attr('institution'), v(3))), TRUE);
  t.same(exprToCondition(bin('==', v('a'), v('a'))), TRUE);
  t.same(exprToCondition(bin('==', set('a', 'b'), set('b', 'a'))), TRUE, 'literal sets compare as sets');
});

t.test('resource equality and membership with Study entities', async (t) => {
  t.same(exprToCondition(bin('==', R, v(entity('Study', '1.2.3')))), { kind: 'eq', attribute: 'studyInstanceUID', value: '1.2.3' });
  t.same(exprToCondition(bin('==', R, v(entity('Archive', 'archive')))), FALSE);
  t.same(exprToCondition(bin('in', R, v(entity('Study', '1.2.3')))), { kind: 'eq', attribute: 'studyInstanceUID', value: '1.2.3' });
  t.same(exprToCondition(bin('in', R, { Set: [v(entity('Study', '1')), v(entity('Archive', 'a')), v(entity('Study', '2'))] })), { kind: 'in', attribute: 'studyInstanceUID', values: ['1', '2'] });
  t.same(exprToCondition({ is: { left: R, entity_type: 'Study' } }), TRUE);
  t.same(exprToCondition({ is: { left: R, entity_type: 'Archive' } }), FALSE);
  t.same(exprToCondition({ is: { left: R, entity_type: 'Study', in: v(entity('Study', '9')) } }), { kind: 'eq', attribute: 'studyInstanceUID', value: '9' });
});

t.test('<, <=, >, >= on studyDate, either side; anything else is unconvertible', async (t) => {
  t.same(exprToCondition(bin('<', attr('studyDate'), v(20200101))), { kind: 'compare', attribute: 'studyDate', op: '<', value: 20200101 });
  t.same(exprToCondition(bin('<=', attr('studyDate'), v(5))), { kind: 'compare', attribute: 'studyDate', op: '<=', value: 5 });
  t.same(exprToCondition(bin('>', v(20200101), attr('studyDate'))), { kind: 'compare', attribute: 'studyDate', op: '<', value: 20200101 });
  t.same(exprToCondition(bin('>=', v(7), attr('studyDate'))), { kind: 'compare', attribute: 'studyDate', op: '<=', value: 7 });
  t.same(exprToCondition(bin('<', v(1), v(2))), TRUE);
  throwsUnconvertible(t, bin('<', attr('institution'), v(3)), /only between resource.studyDate/, 'string attribute');
  throwsUnconvertible(t, bin('<', attr('studyDate'), v(2 ** 60)), /exact JavaScript integers/, 'a Long beyond 2^53');
  throwsUnconvertible(t, bin('<', attr('studyDate'), attr('studyDate')), /studyDate/, 'attribute against attribute');
});

t.test('contains, containsAny, containsAll, isEmpty', async (t) => {
  t.same(exprToCondition(bin('contains', set('A', 'B', 7), attr('institution'))), { kind: 'in', attribute: 'institution', values: ['A', 'B'] }, 'Set.contains(resource.x) is in; other types never equal');
  t.same(exprToCondition(bin('contains', set(20240101), attr('studyDate'))), { kind: 'in', attribute: 'studyDate', values: [20240101] });
  t.same(exprToCondition(bin('contains', attr('labels'), v('vip'))), { kind: 'has', attribute: 'labels', values: ['vip'], mode: 'any' });
  t.same(exprToCondition(bin('contains', attr('labels'), v(1))), FALSE);
  t.same(exprToCondition(bin('containsAny', attr('modalities'), set('CT', 'MR'))), { kind: 'has', attribute: 'modalities', values: ['CT', 'MR'], mode: 'any' });
  t.same(exprToCondition(bin('containsAny', set('CT', 'MR'), attr('modalities'))), { kind: 'has', attribute: 'modalities', values: ['CT', 'MR'], mode: 'any' }, 'containsAny is symmetric');
  t.same(exprToCondition(bin('containsAll', attr('modalities'), set('CT', 'SR'))), { kind: 'has', attribute: 'modalities', values: ['CT', 'SR'], mode: 'all' });
  t.same(exprToCondition(bin('containsAll', attr('modalities'), set())), { kind: 'has', attribute: 'modalities', values: [], mode: 'all' });
  t.same(exprToCondition(bin('containsAll', attr('modalities'), set('CT', 1))), FALSE);
  t.same(exprToCondition({ isEmpty: { arg: attr('labels') } }), { kind: 'empty', attribute: 'labels' });
  t.same(exprToCondition({ isEmpty: { arg: set() } }), TRUE);
  throwsUnconvertible(t, bin('containsAll', set('CT'), attr('modalities')), /containsAll between literal and set/, 'subset test');
  throwsUnconvertible(t, bin('contains', attr('institution'), v('x')), /contains between scalar and literal/, 'contains on a string');
  throwsUnconvertible(t, bin('==', attr('labels'), set('vip')), /== between set and literal/, 'set equality');
});

t.test('like, has, if-then-else, !, && and ||', async (t) => {
  t.same(exprToCondition({ like: { left: attr('patientId'), pattern: [{ Literal: 'P' }, 'Wildcard', { Literal: '*x' }] } }), {
    kind: 'like',
    attribute: 'patientId',
    pattern: [{ literal: 'P' }, 'wildcard', { literal: '*x' }],
  });
  throwsUnconvertible(t, { like: { left: attr('studyDate'), pattern: ['Wildcard'] } }, /string attribute/, 'like on a Long');
  t.same(exprToCondition({ has: { left: R, attr: 'labels' } }), TRUE);
  throwsUnconvertible(t, { has: { left: R, attr: 'secret' } }, /not a Study attribute/, 'has on an unknown attribute');
  const ite = exprToCondition({ 'if-then-else': { if: bin('contains', attr('labels'), v('a')), then: bin('==', attr('institution'), v('X')), else: v(false) } });
  const study = (labels: string[], institution: string): StudyAttributes => ({ studyInstanceUID: '1', institution, referringPhysician: '', modalities: [], accessionNumber: '', patientId: '', studyDate: 0, labels, confidentiality: '' });
  t.equal(evaluateStudyCondition(ite, study(['a'], 'X')), true);
  t.equal(evaluateStudyCondition(ite, study(['a'], 'Y')), false);
  t.equal(evaluateStudyCondition(ite, study([], 'X')), false);
  t.same(exprToCondition(bin('&&', v(true), bin('||', v(false), { '!': { arg: bin('==', attr('confidentiality'), v('V')) } }))), {
    kind: 'not',
    item: { kind: 'eq', attribute: 'confidentiality', value: 'V' },
  });
});

t.test('outside the allow-list or the operator list: unconvertible', async (t) => {
  throwsUnconvertible(t, bin('==', attr('password'), v('x')), /resource.password is not a Study attribute/, 'unknown attribute');
  throwsUnconvertible(t, bin('>', bin('+', attr('studyDate'), v(1)), v(5)), /operator '\+'/, 'arithmetic');
  throwsUnconvertible(t, bin('==', { '.': { left: { Var: 'principal' }, attr: 'npi' } }, v('1')), /operator 'Var'/, 'a variable left in the residual');
  throwsUnconvertible(t, bin('==', { '.': { left: { unknown: [{ Value: 'principal' }] } as unknown as Expr, attr: 'npi' } }, v('1')), /unknown other than the resource/, 'another unknown');
  throwsUnconvertible(t, { ip: [v('10.0.0.1')] } as unknown as Expr, /operator 'ip'/, 'extension function');
  throwsUnconvertible(t, bin('hasTag', R, v('x')), /operator 'hasTag'/, 'tags');
  throwsUnconvertible(t, bin('==', attr('institution'), { Record: {} }), /operator 'Record'/, 'records');
  throwsUnconvertible(t, v('just a string'), /non-boolean literal/, 'a non-boolean condition');
});

const policy = (effect: 'permit' | 'forbid', when: Expr, extra: Partial<PolicyJson> = {}): PolicyJson => ({
  effect,
  principal: { op: 'All' },
  action: { op: 'All' },
  resource: { op: 'All' },
  conditions: [{ kind: 'when', body: when }],
  ...extra,
});

t.test('policy scope and when/unless clauses', async (t) => {
  const p = policy('permit', bin('==', attr('institution'), v('A')), { conditions: [{ kind: 'when', body: bin('==', attr('institution'), v('A')) }, { kind: 'unless', body: bin('contains', attr('labels'), v('vip')) }] });
  t.same(residualPolicyToCondition(p), {
    kind: 'and',
    items: [
      { kind: 'eq', attribute: 'institution', value: 'A' },
      { kind: 'not', item: { kind: 'has', attribute: 'labels', values: ['vip'], mode: 'any' } },
    ],
  });
  t.same(residualPolicyToCondition(policy('permit', v(true), { resource: { op: '==', entity: { type: 'Study', id: '7' } } })), { kind: 'eq', attribute: 'studyInstanceUID', value: '7' });
  t.same(residualPolicyToCondition(policy('permit', v(true), { resource: { op: 'is', entity_type: 'Archive' } })), FALSE);
  t.same(residualPolicyToCondition(policy('permit', v(true), { resource: { op: 'is', entity_type: 'Study' } })), TRUE);
  t.throws(() => residualPolicyToCondition(policy('permit', v(true), { principal: { op: '==', entity: { type: 'User', id: 'x' } } })), /principal scope/);
  t.throws(() => residualPolicyToCondition(policy('permit', v(true), { action: { op: '==', entity: { type: 'Action', id: 'read' } } })), /action scope/);
});

const response = (residuals: Record<string, PolicyJson>, extra: Partial<ResidualResponse> = {}): ResidualResponse => ({
  decision: null,
  satisfied: [],
  errored: [],
  mayBeDetermining: [],
  mustBeDetermining: [],
  nontrivialResiduals: [],
  residuals,
  ...extra,
});

t.test('combination: permits OR-ed, forbids AND NOT-ed, fail closed', async (t) => {
  const a = bin('==', attr('institution'), v('A'));
  const b = bin('==', attr('institution'), v('B'));
  const vip = bin('contains', attr('labels'), v('vip'));
  const unconvertible = bin('>', bin('+', attr('studyDate'), v(1)), v(5));

  t.same(residualsToCondition(response({ p1: policy('permit', a), p2: policy('permit', b), f: policy('forbid', vip) })).condition, {
    kind: 'and',
    items: [
      { kind: 'or', items: [{ kind: 'eq', attribute: 'institution', value: 'A' }, { kind: 'eq', attribute: 'institution', value: 'B' }] },
      { kind: 'not', item: { kind: 'has', attribute: 'labels', values: ['vip'], mode: 'any' } },
    ],
  });
  t.same(residualsToCondition(response({ f: policy('forbid', vip) })).condition, FALSE, 'no permit: nothing');
  t.same(residualsToCondition(response({ p: policy('permit', v(true)) })).condition, TRUE);

  const dropped = residualsToCondition(response({ p1: policy('permit', a), bad: policy('permit', unconvertible) }));
  t.same(dropped.condition, { kind: 'eq', attribute: 'institution', value: 'A' }, 'an unconvertible permit allows nothing');
  t.match(dropped.droppedPermits, [{ id: 'bad', reason: /operator '\+'/ }]);

  const failed = residualsToCondition(response({ p1: policy('permit', v(true)), bad: policy('forbid', unconvertible) }));
  t.same(failed.condition, FALSE, 'an unconvertible forbid hides everything');
  t.match(failed.failedForbid, { id: 'bad' });

  t.same(residualsToCondition(response({ p: policy('permit', v(true)) }, { decision: 'deny' })).condition, FALSE, 'decision deny');
  t.same(residualsToCondition(response({ p: policy('permit', v(true)), e: policy('permit', v(false)) }, { errored: ['e'] })).condition, TRUE, 'an errored permit is dropped');
  t.same(residualsToCondition(response({ p: policy('permit', v(true)), e: policy('forbid', v(false)) }, { errored: ['e'] })).condition, FALSE, 'an errored forbid fails closed');
});

t.test('real cedar-wasm residuals convert (shape check against the pinned version)', async (t) => {
  const answer = isAuthorizedPartial({
    principal: { type: 'User', id: 'u' },
    action: { type: 'Action', id: 'read' },
    resource: null,
    context: { breakGlass: false, breakGlassReason: '' },
    policies: {
      staticPolicies: {
        inst: 'permit (principal, action == Action::"read", resource is Study) when { resource.institution == principal.institution && resource.studyDate >= 20200101 };',
        vip: 'forbid (principal, action, resource) when { resource.labels.contains("vip") } unless { principal in Role::"admin" };',
        sites: 'permit (principal, action, resource) when { principal.sites.contains(resource.accessionNumber) };',
        other: 'permit (principal, action == Action::"store", resource);',
      },
    },
    entities: [{ uid: { type: 'User', id: 'u' }, attrs: { institution: 'GENERAL', referringPhysician: '', npi: '', sites: ['A1'], kind: 'token' }, parents: [] }],
  });
  if (answer.type !== 'residuals') throw new Error(JSON.stringify(answer));
  const { condition, droppedPermits, failedForbid } = residualsToCondition(answer.response);
  t.same(droppedPermits, []);
  t.equal(failedForbid, undefined);
  // Residuals come in Cedar's map order: compare meaning, on studies that tell the parts apart.
  const base: StudyAttributes = { studyInstanceUID: '1', institution: 'GENERAL', referringPhysician: '', modalities: [], accessionNumber: '', patientId: '', studyDate: 20200101, labels: [], confidentiality: '' };
  const cases: [Partial<StudyAttributes>, boolean][] = [
    [{}, true],
    [{ studyDate: 20191231 }, false],
    [{ institution: 'OTHER' }, false],
    [{ institution: 'OTHER', accessionNumber: 'A1' }, true],
    [{ labels: ['vip'] }, false],
    [{ institution: 'OTHER', accessionNumber: 'A1', labels: ['vip', 'x'] }, false],
  ];
  for (const [change, expected] of cases) t.equal(evaluateStudyCondition(condition, { ...base, ...change }), expected, JSON.stringify(change));
  t.match(JSON.stringify(condition), /"kind":"compare","attribute":"studyDate","op":"<","value":20200101/);
});
