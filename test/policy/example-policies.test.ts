// policies/examples.cedar: it validates against the schema, and each example decides what its comment says,
// both per study (decide) and as a search condition (studyCondition).
import path from 'node:path';
import t, { type Test } from 'tap';
import { NO_CONTEXT, type RequestContext } from '../../src/policy/access.js';
import type { Action } from '../../src/policy/actions.js';
import { CedarPolicyEngine } from '../../src/policy/policy-engine.js';
import type { StudyAttributes } from '../../src/policy/study-attributes.js';
import { evaluateStudyCondition } from '../../src/policy/study-condition.js';
import type { Principal, PrincipalAttributes } from '../../src/security/principal.js';

const engine = CedarPolicyEngine.fromFile(path.join(import.meta.dirname, '../../policies/examples.cedar'));
const BREAK_GLASS: RequestContext = { breakGlassReason: 'unconscious patient, ED bay 2' };

const who = (roles: string[], attributes: Partial<PrincipalAttributes> = {}): Principal => ({
  kind: 'certificate',
  id: `urn:dicomvault:principal:${roles.join('+') || 'nobody'}`,
  roles,
  attributes: { institution: '', referringPhysician: '', npi: '', sites: [], ...attributes },
});
const study = (s: Partial<StudyAttributes> = {}): StudyAttributes => ({
  studyInstanceUID: '1.2.840.99',
  institution: 'GENERAL',
  referringPhysician: 'SMITH^JOHN',
  modalities: ['CT'],
  accessionNumber: 'A1',
  patientId: 'P1',
  studyDate: 20240131,
  labels: [],
  confidentiality: 'N',
  ...s,
});

/** decide() and studyCondition() must both give `expected`; returns the determining policies. */
function check(t: Test, p: Principal, action: Action, s: StudyAttributes, expected: boolean, name: string, context = NO_CONTEXT): string[] {
  const decision = engine.decide(p, action, { study: s }, context);
  t.equal(decision.allowed, expected, `decide: ${name}`);
  t.equal(evaluateStudyCondition(engine.studyCondition(p, action, context), s), expected, `studyCondition: ${name}`);
  return decision.policies;
}

t.test('the examples validate, each with its @id', async (t) => {
  t.same(engine.validateText(engine.text()), []);
  t.same(
    engine.policies().map((p) => p.id),
    ['gateway-store-ct', 'referring-physician-own-studies', 'radiology-institution', 'radiology-share-institution', 'restricted-admin-only', 'physician-break-glass', 'admin-all'],
  );
});

t.test('(a) a modality gateway stores CT studies of its own institution, nothing else', async (t) => {
  const gw = who(['modality-gateway'], { institution: 'GENERAL' });
  t.same(check(t, gw, 'store', study(), true, 'CT, own institution'), ['gateway-store-ct']);
  check(t, gw, 'store', study({ modalities: ['CT', 'SR'] }), true, 'CT with a structured report');
  check(t, gw, 'store', study({ modalities: ['MR'] }), false, 'MR');
  check(t, gw, 'store', study({ modalities: ['CT', 'MR'] }), false, 'a CT added to an MR study');
  check(t, gw, 'store', study({ institution: 'NORTH' }), false, 'another institution');
  check(t, gw, 'store', study({ institution: '' }), false, 'a study without institution');
  check(t, who(['modality-gateway']), 'store', study({ institution: '' }), false, 'a gateway without institution never matches empty');
  for (const action of ['search', 'read', 'delete', 'share'] as const) check(t, gw, action, study(), false, `gateway ${action}`);
});

t.test('(b) a referring physician searches and reads only the studies referred by them', async (t) => {
  const smith = who([], { referringPhysician: 'SMITH^JOHN' });
  t.same(check(t, smith, 'read', study(), true, 'own study'), ['referring-physician-own-studies']);
  check(t, smith, 'search', study(), true, 'own study, search');
  check(t, smith, 'read', study({ referringPhysician: 'DOE^JANE' }), false, "another physician's study");
  check(t, smith, 'store', study(), false, 'no store');
  check(t, smith, 'share', study(), false, 'no share');
  check(t, who([]), 'read', study({ referringPhysician: '' }), false, 'an empty name does not match studies without a referring physician');
});

t.test('(c, d) radiology searches, reads and shares the studies of its institution', async (t) => {
  const rad = who(['radiology'], { institution: 'GENERAL' });
  t.same(check(t, rad, 'search', study(), true, 'search'), ['radiology-institution']);
  check(t, rad, 'read', study(), true, 'read');
  t.same(check(t, rad, 'share', study(), true, 'share'), ['radiology-share-institution']);
  check(t, rad, 'read', study({ institution: 'NORTH' }), false, 'another institution');
  check(t, rad, 'share', study({ institution: 'NORTH' }), false, 'share, another institution');
  check(t, rad, 'delete', study(), false, 'no delete');
  check(t, rad, 'store', study(), false, 'no store');
  check(t, who(['radiology']), 'read', study({ institution: '' }), false, 'no institution on either side');
});

t.test('(e) very restricted and vip studies: admins only, over every permit', async (t) => {
  const rad = who(['radiology'], { institution: 'GENERAL' });
  const smith = who(['physician'], { referringPhysician: 'SMITH^JOHN' });
  const admin = who(['admin']);
  for (const restricted of [study({ confidentiality: 'V' }), study({ labels: ['research', 'vip'] })]) {
    t.same(check(t, rad, 'read', restricted, false, 'radiology'), ['restricted-admin-only'], 'the forbid is named');
    check(t, smith, 'read', restricted, false, 'referring physician');
    check(t, smith, 'read', restricted, false, 'break-glass', BREAK_GLASS);
    check(t, rad, 'share', restricted, false, 'share');
    check(t, admin, 'read', restricted, true, 'admin');
    check(t, admin, 'delete', restricted, true, 'admin delete');
  }
  check(t, rad, 'read', study({ confidentiality: 'R', labels: ['VIP'] }), true, 'R and "VIP" (case-sensitive) are not restricted');
});

t.test('(f) break-glass: a physician reads and searches anything, only with a reason', async (t) => {
  const doc = who(['physician'], { institution: 'NORTH' });
  check(t, doc, 'read', study(), false, 'no reason');
  t.same(check(t, doc, 'read', study(), true, 'with a reason', BREAK_GLASS), ['physician-break-glass']);
  check(t, doc, 'search', study({ institution: '' }), true, 'search with a reason', BREAK_GLASS);
  check(t, doc, 'share', study(), false, 'no share even with a reason', BREAK_GLASS);
  check(t, doc, 'delete', study(), false, 'no delete even with a reason', BREAK_GLASS);
  check(t, who(['radiology'], { institution: 'NORTH' }), 'read', study(), false, 'other roles get nothing from a reason', BREAK_GLASS);
});

t.test('admin: every action, and the archive', async (t) => {
  const admin = who(['admin']);
  for (const action of ['search', 'read', 'store', 'delete', 'share'] as const) check(t, admin, action, study({ institution: '' }), true, action);
  t.same(engine.decide(admin, 'admin', 'archive', NO_CONTEXT), { allowed: true, policies: ['admin-all'] });
  t.same(engine.decide(who(['radiology'], { institution: 'GENERAL' }), 'admin', 'archive', NO_CONTEXT), { allowed: false, policies: [] });
});

t.test('the search conditions are what the SQL compiler gets', async (t) => {
  t.same(engine.studyCondition(who(['radiology'], { institution: 'GENERAL' }), 'search', NO_CONTEXT), {
    kind: 'and',
    items: [
      { kind: 'eq', attribute: 'institution', value: 'GENERAL' },
      { kind: 'not', item: { kind: 'or', items: [{ kind: 'eq', attribute: 'confidentiality', value: 'V' }, { kind: 'has', attribute: 'labels', values: ['vip'], mode: 'any' }] } },
    ],
  });
  t.same(engine.studyCondition(who(['admin']), 'search', NO_CONTEXT), { kind: 'const', value: true });
  t.same(engine.studyCondition(who(['clerk']), 'search', NO_CONTEXT), { kind: 'const', value: false });
});
