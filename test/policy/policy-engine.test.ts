// Loading, validating, reloading and replacing the policy file (policy/policy-engine.ts), and the schema
// staying in step with StudyAttributes and Principal.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { checkParseSchema, schemaToJson } from '@cedar-policy/cedar-wasm/nodejs';
import t, { type Test } from 'tap';
import { createLogger } from '../../src/logger.js';
import { Access, NO_CONTEXT } from '../../src/policy/access.js';
import { CEDAR_SCHEMA } from '../../src/policy/cedar-schema.js';
import { studyEntity, userEntity } from '../../src/policy/cedar-entities.js';
import { CedarPolicyEngine, PolicyLoadError } from '../../src/policy/policy-engine.js';
import type { StudyAttributes } from '../../src/policy/study-attributes.js';
import { FALSE } from '../../src/policy/study-condition.js';
import type { Principal } from '../../src/security/principal.js';
import { tempDir } from '../helpers/temp-dir.js';

const admin: Principal = { kind: 'certificate', id: 'urn:dicomvault:principal:root', roles: ['admin'], attributes: { institution: '', referringPhysician: '', npi: '', sites: [] } };
const radiologist: Principal = { kind: 'token', id: 'oidc:r1', roles: ['radiology'], attributes: { institution: 'GENERAL', referringPhysician: '', npi: '', sites: [] } };
const study: StudyAttributes = {
  studyInstanceUID: '1.2.840.1',
  institution: 'GENERAL',
  referringPhysician: 'SMITH^JOHN',
  modalities: ['CT'],
  accessionNumber: 'A1',
  patientId: 'P1',
  studyDate: 20240131,
  labels: [],
  confidentiality: '',
};

const ADMIN_ONLY = '@id("admin-all")\npermit (principal in Role::"admin", action, resource);\n';
const RADIOLOGY = `${ADMIN_ONLY}@id("radiology-read")
permit (principal in Role::"radiology", action == Action::"read", resource is Study)
when { resource.institution == principal.institution };
`;

function policyFile(t: Test, text: string): string {
  const file = path.join(tempDir(t), 'policies.cedar');
  fs.writeFileSync(file, text);
  return file;
}

function logCapture(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger('info', stream);
  return { logger, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function loadError(fn: () => unknown): PolicyLoadError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PolicyLoadError) return e;
    throw e;
  }
  throw new Error('expected a PolicyLoadError');
}

t.test('the schema parses and has exactly the attributes the entity builders produce', async (t) => {
  t.same(checkParseSchema(CEDAR_SCHEMA), { type: 'success' });
  const json = schemaToJson(CEDAR_SCHEMA);
  if (json.type !== 'success') throw new Error('schema does not convert');
  const types = json.json['']!.entityTypes;
  const shape = (name: string) => Object.keys((types[name] as { shape?: { attributes?: Record<string, unknown> } }).shape?.attributes ?? {}).sort();
  t.same(shape('Study'), Object.keys(studyEntity(study).attrs).sort());
  t.same(shape('User'), Object.keys(userEntity(radiologist).attrs).sort());
  t.same(Object.keys(json.json['']!.actions).sort(), ['admin', 'delete', 'read', 'search', 'share', 'store']);
});

t.test('a valid file loads: version 1, its text, its policies with ids and lines', async (t) => {
  const file = policyFile(t, RADIOLOGY);
  const engine = CedarPolicyEngine.fromFile(file);
  t.equal(engine.version, 1);
  t.equal(engine.file, file);
  t.equal(engine.text(), RADIOLOGY);
  t.same(engine.policies(), [
    { id: 'admin-all', effect: 'permit', line: 1 },
    { id: 'radiology-read', effect: 'permit', line: 3 },
  ]);
  t.same(engine.decide(radiologist, 'read', { study }, NO_CONTEXT), { allowed: true, policies: ['radiology-read'] });
  t.same(engine.decide(radiologist, 'read', { study: { ...study, institution: 'OTHER' } }, NO_CONTEXT), { allowed: false, policies: [] });
  t.same(engine.decide(admin, 'admin', 'archive', NO_CONTEXT), { allowed: true, policies: ['admin-all'] });
});

t.test('the shipped default policy file: admin may do everything, nobody else anything', async (t) => {
  const engine = CedarPolicyEngine.fromFile(path.join(import.meta.dirname, '../../policies/default.cedar'));
  t.same(engine.policies().map((p) => p.id), ['admin-all']);
  for (const action of ['search', 'read', 'store', 'delete', 'share'] as const) {
    t.equal(engine.decide(admin, action, { study }, NO_CONTEXT).allowed, true, `admin ${action}`);
    t.equal(engine.decide(radiologist, action, { study }, NO_CONTEXT).allowed, false, `radiologist ${action}`);
  }
  t.equal(engine.decide(admin, 'admin', 'archive', NO_CONTEXT).allowed, true);
  t.equal(engine.decide(radiologist, 'admin', 'archive', NO_CONTEXT).allowed, false);
});

t.test('policies without @id get Cedar positional ids, counted from 0 in file order, past 10', async (t) => {
  const text = Array.from({ length: 12 }, (_, i) => (i === 11 ? '' : `@id("p${i}")\n`) + `permit (principal, action == Action::"read", resource) when { resource.studyDate == ${i} };\n`).join('');
  const engine = CedarPolicyEngine.fromFile(policyFile(t, text));
  t.same(engine.policies().map((p) => p.id), ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9', 'p10', 'policy11']);
  for (let i = 0; i < 12; i++) {
    t.same(engine.decide(radiologist, 'read', { study: { ...study, studyDate: i } }, NO_CONTEXT).policies, [i === 11 ? 'policy11' : `p${i}`]);
  }
});

t.test('a syntax error is a PolicyLoadError naming the file, line and column', async (t) => {
  const file = policyFile(t, `${ADMIN_ONLY}// Ünïcödé comment: offsets are bytes\npermit (principal, action, resource) when { resource.institution == };\n`);
  const err = loadError(() => CedarPolicyEngine.fromFile(file));
  t.equal(err.file, file);
  t.equal(err.errors.length, 1);
  t.match(err.errors[0], `${file}:4:69: unexpected token \`}\``);
  t.match(err.message, `policy file ${file} is not valid`);
});

t.test('a policy that does not validate against the schema names the policy id and its line', async (t) => {
  const file = policyFile(t, `${ADMIN_ONLY}\n@id("typo")\npermit (principal, action == Action::"read", resource)\nwhen { resource.institutoin == "X" };\n`);
  const err = loadError(() => CedarPolicyEngine.fromFile(file));
  t.equal(err.errors.length, 1);
  t.match(err.errors[0], `${file}:6:8: policy 'typo': attribute \`institutoin\` on entity type \`Study\` not found`);

  const wrongType = policyFile(t, 'permit (principal, action == Action::"read", resource) when { resource.studyDate == "2024" };\npermit (principal, action == Action::"admin", resource) when { resource.institution == "X" };\n');
  const err2 = loadError(() => CedarPolicyEngine.fromFile(wrongType));
  t.equal(err2.errors.length, 2);
  t.match(err2.errors[0], /:1:\d+: policy 'policy0': /);
  t.match(err2.errors[1], /:2:\d+: policy 'policy1': attribute `institution` on entity type `Archive` not found/);
});

t.test('duplicate @ids, templates, an unknown action and a missing file are load errors', async (t) => {
  const dup = loadError(() => CedarPolicyEngine.fromFile(policyFile(t, `${ADMIN_ONLY}@id("admin-all")\nforbid (principal, action, resource);\n`)));
  t.match(dup.errors, [/:3: policy 'admin-all': the id is already used by the policy on line 1/]);

  const template = loadError(() => CedarPolicyEngine.fromFile(policyFile(t, 'permit (principal == ?principal, action, resource);\n')));
  t.match(template.errors, [/template/]);

  const action = loadError(() => CedarPolicyEngine.fromFile(policyFile(t, '@id("x")\npermit (principal, action == Action::"frobnicate", resource);\n')));
  t.match(action.errors, [/:2:\d+: policy 'x': unrecognized action/]);

  const missing = path.join(tempDir(t), 'nope.cedar');
  t.match(loadError(() => CedarPolicyEngine.fromFile(missing)).errors, [`${missing}: cannot be read (ENOENT)`]);
});

t.test('an empty file is valid and denies everything', async (t) => {
  const engine = CedarPolicyEngine.fromFile(policyFile(t, '// nothing yet\n'));
  t.same(engine.decide(admin, 'admin', 'archive', NO_CONTEXT), { allowed: false, policies: [] });
  t.same(engine.studyCondition(admin, 'search', NO_CONTEXT), FALSE);
});

t.test('reload: a good file becomes the next version, a bad one keeps the old decisions and is reported', async (t) => {
  const file = policyFile(t, ADMIN_ONLY);
  const { logger, lines } = logCapture();
  const engine = CedarPolicyEngine.fromFile(file, logger);
  t.equal(engine.decide(radiologist, 'read', { study }, NO_CONTEXT).allowed, false);
  t.same(engine.studyCondition(radiologist, 'read', NO_CONTEXT), FALSE);

  fs.writeFileSync(file, RADIOLOGY);
  t.same(engine.reload(), { ok: true, version: 2, warnings: [] });
  t.equal(engine.decide(radiologist, 'read', { study }, NO_CONTEXT).allowed, true);
  t.same(engine.studyCondition(radiologist, 'read', NO_CONTEXT), { kind: 'eq', attribute: 'institution', value: 'GENERAL' }, 'the cached condition of version 1 is not used');

  fs.writeFileSync(file, `${RADIOLOGY}permit (principal, action, resource) when { resource.patientId == "SECRET-PATIENT" && };\n`);
  const result = engine.reload();
  t.equal(result.ok, false);
  t.match(result, { errors: [new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+: `)] });
  t.equal(engine.version, 2);
  t.equal(engine.text(), RADIOLOGY);
  t.equal(engine.decide(radiologist, 'read', { study }, NO_CONTEXT).allowed, true, 'old policies still in force');

  fs.rmSync(file);
  t.match(engine.reload(), { ok: false, errors: [/cannot be read \(ENOENT\)/] });
  t.equal(engine.version, 2);

  const logged = lines();
  t.match(logged, [{ msg: 'policies loaded', policyVersion: 1 }, { msg: 'policies loaded', policyVersion: 2 }, { level: 50, msg: /reload rejected/, policyVersion: 2, errorCount: 1 }, { level: 50, msg: /reload rejected/ }]);
  t.notMatch(JSON.stringify(logged), 'SECRET-PATIENT', 'no policy literal in the log');
});

t.test('replace: validated, written atomically, activated; an invalid text changes nothing', async (t) => {
  const file = policyFile(t, ADMIN_ONLY);
  const engine = CedarPolicyEngine.fromFile(file);
  const dir = path.dirname(file);

  const bad = engine.replace('permit (principal, action, resource) when { resource.nope };');
  t.match(bad, { ok: false, errors: [/attribute `nope`/] });
  t.equal(fs.readFileSync(file, 'utf8'), ADMIN_ONLY, 'file untouched');
  t.equal(engine.version, 1);

  t.same(engine.replace(RADIOLOGY), { ok: true, version: 2, warnings: [] });
  t.equal(fs.readFileSync(file, 'utf8'), RADIOLOGY);
  t.same(fs.readdirSync(dir), ['policies.cedar'], 'no temporary file left behind');
  t.equal(engine.text(), RADIOLOGY);
  t.equal(engine.decide(radiologist, 'read', { study }, NO_CONTEXT).allowed, true);

  // A folder where the file should be: the write fails, the old policies stay.
  const blocked = path.join(dir, 'blocked');
  fs.mkdirSync(path.join(blocked, 'policies.cedar'), { recursive: true });
  fs.writeFileSync(path.join(blocked, 'x.cedar'), ADMIN_ONLY);
  const other = CedarPolicyEngine.fromFile(path.join(blocked, 'x.cedar'));
  fs.rmSync(path.join(blocked, 'x.cedar'));
  fs.mkdirSync(path.join(blocked, 'x.cedar'));
  t.match(other.replace(RADIOLOGY), { ok: false, errors: [/cannot be written/] });
  t.equal(other.version, 1);
  t.equal(other.text(), ADMIN_ONLY);
});

t.test('validateText and warnings', async (t) => {
  const engine = CedarPolicyEngine.fromFile(policyFile(t, ADMIN_ONLY));
  t.same(engine.validateText(RADIOLOGY), []);
  t.match(engine.validateText('permit (principal, action, resource) when { resource.x == 1 };'), [/attribute `x`/]);
  t.equal(engine.version, 1, 'validation activates nothing');
  const impossible = engine.replace('@id("never")\npermit (principal, action == Action::"read", resource) when { resource has nothing };\n');
  t.match(impossible, { ok: true, version: 2, warnings: [/policy 'never': policy is impossible/] });
});

t.test('Cedar failures deny: an action on the wrong resource type, a share principal', async (t) => {
  const engine = CedarPolicyEngine.fromFile(policyFile(t, ADMIN_ONLY));
  t.same(engine.decide(admin, 'admin', { study }, NO_CONTEXT), { allowed: false, policies: [] }, 'admin applies to the archive only');
  t.same(engine.decide(admin, 'read', 'archive', NO_CONTEXT), { allowed: false, policies: [] }, 'read applies to studies only');
  t.same(engine.studyCondition(admin, 'admin', NO_CONTEXT), FALSE);
  const share: Principal = { ...admin, kind: 'share', id: 'share:1' };
  t.same(engine.decide(share, 'read', { study }, NO_CONTEXT), { allowed: false, policies: [] });
  t.same(engine.studyCondition(share, 'read', NO_CONTEXT), FALSE);
});

t.test('studyCondition is cached per principal, action and context, bounded', async (t) => {
  const engine = CedarPolicyEngine.fromFile(policyFile(t, RADIOLOGY));
  const a = engine.studyCondition(radiologist, 'read', NO_CONTEXT);
  t.equal(engine.studyCondition(radiologist, 'read', NO_CONTEXT), a, 'same object from the cache');
  const other = { ...radiologist, attributes: { ...radiologist.attributes, institution: 'NORTH' } };
  t.same(engine.studyCondition(other, 'read', NO_CONTEXT), { kind: 'eq', attribute: 'institution', value: 'NORTH' }, 'attributes are part of the key');
  t.same(engine.studyCondition({ ...radiologist, roles: [] }, 'read', NO_CONTEXT), FALSE, 'roles are part of the key');
  t.same(engine.studyCondition(radiologist, 'search', NO_CONTEXT), FALSE, 'the action is part of the key');
  for (let i = 0; i < 1100; i++) engine.studyCondition({ ...radiologist, id: `oidc:${i}` }, 'read', NO_CONTEXT);
  const cache = (engine as unknown as { conditions: Map<string, unknown> }).conditions;
  t.equal(cache.size, 1000);
});

// The decision cache (issue 8): a STOW of many instances into one study asks Cedar the same question per instance.
const STORE = `@id("gateway-store")
permit (principal in Role::"gateway", action == Action::"store", resource is Study)
when { resource.modalities.contains("CT") && principal.sites.contains(resource.institution) };
@id("no-vip")
forbid (principal, action, resource is Study) when { resource.labels.contains("vip") && !context.breakGlass };
`;
const gateway: Principal = { kind: 'certificate', id: 'urn:dicomvault:principal:gw', roles: ['gateway'], attributes: { institution: '', referringPhysician: '', npi: '', sites: ['GENERAL'] } };

t.test('decisions are cached: the same question gives the same answer, Cedar asked once', async (t) => {
  const engine = CedarPolicyEngine.fromFile(policyFile(t, STORE));
  const first = engine.decide(gateway, 'store', { study }, NO_CONTEXT);
  t.same(first, { allowed: true, policies: ['gateway-store'] });
  t.equal(engine.cachedDecisions, 1);
  first.policies.push('tampered');
  const again = engine.decide(gateway, 'store', { study: { ...study, modalities: ['CT'] } }, NO_CONTEXT);
  t.same(again, { allowed: true, policies: ['gateway-store'] }, 'an equal study (another object) hits; a caller changing its copy changes nothing');
  t.equal(engine.cachedDecisions, 1);

  const vip = { ...study, labels: ['vip'] };
  t.same(engine.decide(gateway, 'store', { study: vip }, NO_CONTEXT), { allowed: false, policies: ['no-vip'] });
  t.same(engine.decide(gateway, 'store', { study: vip }, NO_CONTEXT), { allowed: false, policies: ['no-vip'] }, 'a deny is cached the same way');
  t.equal(engine.cachedDecisions, 2);
  t.same(engine.decide(gateway, 'store', { study: vip }, { breakGlassReason: 'ER' }), { allowed: true, policies: ['gateway-store'] }, 'the context is part of the key');
});

t.test('the decision cache key holds every attribute Cedar sees: none of them shares an entry', async (t) => {
  const engine = CedarPolicyEngine.fromFile(policyFile(t, STORE));
  const fresh = (p: Principal, s: StudyAttributes) => CedarPolicyEngine.fromFile(policyFile(t, STORE)).decide(p, 'store', { study: s }, NO_CONTEXT);
  t.equal(engine.decide(gateway, 'store', { study }, NO_CONTEXT).allowed, true);
  const variants: [string, Principal, StudyAttributes][] = [
    ['principal sites', { ...gateway, attributes: { ...gateway.attributes, sites: ['NORTH'] } }, study],
    ['principal roles', { ...gateway, roles: ['radiology'] }, study],
    ['principal id', { ...gateway, id: 'urn:dicomvault:principal:other' }, study],
    ['principal kind', { ...gateway, kind: 'token' }, study],
    ['study institution', gateway, { ...study, institution: 'NORTH' }],
    ['study modalities', gateway, { ...study, modalities: ['MR'] }],
    ['study labels', gateway, { ...study, labels: ['vip'] }],
    ['study uid', gateway, { ...study, studyInstanceUID: '1.2.840.2' }],
    ['study date', gateway, { ...study, studyDate: 20240201 }],
  ];
  for (const [what, p, s] of variants) {
    const before = engine.cachedDecisions;
    t.same(engine.decide(p, 'store', { study: s }, NO_CONTEXT), fresh(p, s), `${what}: as a fresh engine decides`);
    t.equal(engine.cachedDecisions, before + 1, `${what}: an entry of its own`);
  }
  t.equal(engine.decide(gateway, 'read', { study }, NO_CONTEXT).allowed, false, 'the action is part of the key');
  const odd = { ...study, studyDate: Number.NaN };
  const before = engine.cachedDecisions;
  engine.decide(gateway, 'store', { study: odd }, NO_CONTEXT);
  t.equal(engine.cachedDecisions, before, 'a study whose date is not an integer is never cached (JSON would write null)');
});

t.test('the decision cache: a reload or replace empties it, a cached answer never outlives its policies', async (t) => {
  const file = policyFile(t, STORE);
  const engine = CedarPolicyEngine.fromFile(file);
  t.equal(engine.decide(gateway, 'store', { study }, NO_CONTEXT).allowed, true);
  t.equal(engine.cachedDecisions, 1);
  fs.writeFileSync(file, ADMIN_ONLY);
  t.equal(engine.reload().ok, true);
  t.equal(engine.cachedDecisions, 0);
  t.same(engine.decide(gateway, 'store', { study }, NO_CONTEXT), { allowed: false, policies: [] }, 'version 2 denies');
  t.same(engine.decide(gateway, 'store', { study }, NO_CONTEXT), CedarPolicyEngine.fromFile(file).decide(gateway, 'store', { study }, NO_CONTEXT), 'cached equals fresh');
  t.equal(engine.replace(STORE).ok, true);
  t.same(engine.decide(gateway, 'store', { study }, NO_CONTEXT), { allowed: true, policies: ['gateway-store'] }, 'version 3 allows again');
  fs.writeFileSync(file, 'permit (principal, action, resource) when {');
  t.equal(engine.reload().ok, false);
  t.equal(engine.cachedDecisions, 1, 'a rejected reload keeps the policies, and their decisions');
});

t.test('the decision cache is bounded; Cedar failures and errored policies are not cached', async (t) => {
  const engine = CedarPolicyEngine.fromFile(policyFile(t, STORE));
  for (let i = 0; i < 4200; i++) engine.decide(gateway, 'store', { study: { ...study, studyInstanceUID: `1.2.${i}` } }, NO_CONTEXT);
  t.equal(engine.cachedDecisions, 4096);
  const small = CedarPolicyEngine.fromFile(policyFile(t, `${STORE}@id("bad-long")\npermit (principal, action == Action::"read", resource is Study) when { resource.studyDate * resource.studyDate * resource.studyDate > 0 };\n`));
  t.equal(small.decide(admin, 'admin', { study }, NO_CONTEXT).allowed, false);
  t.equal(small.cachedDecisions, 0, 'a request Cedar rejects (wrong resource type) is asked again each time');
  t.equal(small.decide(gateway, 'read', { study }, NO_CONTEXT).allowed, false);
  t.equal(small.cachedDecisions, 0, 'an answer with a policy that failed to evaluate (overflow) is not cached: it is logged each time');
});

t.test('cached decisions reach the callers as fresh ones do: every break-glass use is still reported', async (t) => {
  const engine = CedarPolicyEngine.fromFile(policyFile(t, STORE));
  const uses: unknown[] = [];
  const access = new Access(engine, gateway, { breakGlassReason: 'ER' }, (e) => uses.push({ study: e.studyInstanceUID, policies: e.policies }));
  const vip = { ...study, labels: ['vip'] };
  t.equal(access.allows('store', vip), true);
  t.equal(access.allows('store', vip), true);
  t.equal(engine.cachedDecisions, 1, 'the second answer came from the cache');
  t.same(uses, [{ study: study.studyInstanceUID, policies: ['gateway-store'] }, { study: study.studyInstanceUID, policies: ['gateway-store'] }]);
  const plain = new Access(engine, gateway);
  t.equal(plain.allows('store', vip), false);
  t.equal(plain.allows('store', vip), false, 'a cached deny is a deny');
});

t.test('a Long literal beyond 2^53 loads, reloads and decides exactly (Cedar gets the policy text, not its JSON)', async (t) => {
  const big = `@id("big-date")
permit (principal in Role::"gateway", action == Action::"store", resource is Study)
when { resource.studyDate < 9223372036854775807 && resource.studyDate != 9007199254740993 };
`;
  const file = policyFile(t, ADMIN_ONLY);
  const engine = CedarPolicyEngine.fromFile(file);
  fs.writeFileSync(file, big);
  t.same(engine.reload(), { ok: true, version: 2, warnings: [] }, 'a reload, not an exception out of reload()');
  t.same(engine.decide(gateway, 'store', { study }, NO_CONTEXT), { allowed: true, policies: ['big-date'] });
  // 9007199254740993 is 2^53 + 1: as a JS number it would be 2^53, and this study would be allowed.
  t.same(engine.decide(gateway, 'store', { study: { ...study, studyDate: 9007199254740992 } }, NO_CONTEXT).allowed, true);
  t.same(engine.studyCondition(gateway, 'store', NO_CONTEXT), FALSE, 'a search condition cannot hold such a Long exactly: no studies (fail closed)');
});
