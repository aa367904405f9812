// Access conditions compiled to SQL (index/sqlite/compile-access.ts) and evaluated in memory must select exactly
// the studies the reference semantics (policy/study-condition.ts evaluateStudyCondition) selects: random
// archives and random conditions with a fixed seed, so a failure replays. Also: the V4 backfill gives the same
// attributes as commit does, compiled SQL binds every value, and the plan of a typical filtered QIDO.
import path from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import t from 'tap';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import type { IndexStore, InstanceRecord } from '../../src/index/index-store.js';
import { MemoryIndexStore } from '../../src/index/memory/memory-index-store.js';
import type { QueryLevel } from '../../src/index/query/ast.js';
import { parseQido } from '../../src/index/query/parse-qido.js';
import { compileAccess, likeGlob } from '../../src/index/sqlite/compile-access.js';
import { compileSearch } from '../../src/index/sqlite/compile-query.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import type { StudyAttributes, StudyScalarAttribute } from '../../src/policy/study-attributes.js';
import { studyAttributesOf } from '../../src/policy/study-attributes-of.js';
import { evaluateStudyCondition, type LikePart, type StudyCondition } from '../../src/policy/study-condition.js';
import { CT_IMAGE, instanceRecord } from '../contracts/index-store.fixtures.js';
import { mulberry32 } from '../helpers/prng.js';
import { tempDir } from '../helpers/temp-dir.js';
import { undoMigrationV4 } from '../helpers/undo-migration.js';

/** Seeded choices (mulberry32): the same sequence on every run. */
function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const subset = <T>(xs: readonly T[], max = xs.length): T[] => {
    const n = int(max + 1);
    const out = new Set<T>();
    for (let i = 0; i < n; i++) out.add(pick(xs));
    return [...out];
  };
  return { next, int, pick, subset, chance: (p: number) => next() < p };
}

// Overlapping vocabularies: empty values, case variants, prefixes of each other, and every character that means
// something to GLOB (* ? [), LIKE (% _) or a regular expression.
const VOCAB = {
  institution: ['', 'North', 'north', 'North Clinic', 'North*', 'Nor?th', 'Norxth', 'No[r]th', 'Nor', '50%_off', '50x_off', 'a_b', 'axb', 'A%B', 'x*y?z', 'xAyBz', 'Ñorth', '[', ']', '\\', '*'],
  referringPhysician: ['', 'Doe^John', 'doe^jane', 'Doe^Jane^^Dr', 'O*Neil^Pat', 'OBrien^Neil^Pat', 'Smith?^A', 'SmithX^A', '[X]^Y', 'X^Y', 'Nuñez^José', '%^_'],
  accessionNumber: ['', 'ACC-1', 'acc-1', 'ACC-10', 'ACC*', 'A?C', 'ABC', 'A[1]', 'A1', '100%', '42'],
  patientId: ['', 'P1', 'p1', 'P10', 'P%', 'Px', 'P_1', 'P-1', 'P*', '0', '42'],
  studyDate: ['', '20200101', '20200102', '19991231', '20241231', '2020.01.01', 'garbage'],
  confidentiality: ['', 'R', 'V', 'N', 'r', 'R*'],
  modality: ['CT', 'MR', 'PT', 'US', 'C*', 'C?', 'ct'],
  label: ['vip', 'VIP', 'teaching', 'research', '100%', 'a_b', '[x]', '*', ''],
};

const lo = (value: string) => ({ vr: 'LO', Value: [value] });

interface Synthetic {
  records: InstanceRecord[];
  labels: string[];
  confidentiality?: string;
}

function archive(seed: number, studies: number): Synthetic[] {
  const r = rng(seed);
  const out: Synthetic[] = [];
  for (let n = 0; n < studies; n++) {
    const study = `2.25.9${String(n).padStart(4, '0')}`;
    const text = (tag: string, vr: string, value: string): DicomJsonDataset => (value === '' && r.chance(0.5) ? {} : { [tag]: { vr, Value: [value] } });
    const base: DicomJsonDataset = {
      '0020000D': { vr: 'UI', Value: [study] },
      ...text('00080080', 'LO', r.pick(VOCAB.institution)),
      ...text('00080050', 'SH', r.pick(VOCAB.accessionNumber)),
      ...text('00100020', 'LO', r.pick(VOCAB.patientId)),
      ...text('00080020', 'DA', r.pick(VOCAB.studyDate)),
      ...text('00401008', 'LO', r.pick(VOCAB.confidentiality)),
      ...(r.chance(0.2) ? {} : { '00080090': { vr: 'PN', Value: [{ Alphabetic: r.pick(VOCAB.referringPhysician) }] } }),
    };
    const records: InstanceRecord[] = [];
    const series = r.int(4); // 0..3 series: a study may have no modality at all (one series without Modality)
    for (let s = 0; s <= series; s++) {
      const modality: DicomJsonDataset = s === 0 && r.chance(0.2) ? {} : { '00080060': { vr: 'CS', Value: [r.pick(VOCAB.modality)] } };
      // Later series carry other institution/confidentiality values: the first instance's must win.
      const noise: DicomJsonDataset = s === 0 ? {} : { '00080080': lo(r.pick(VOCAB.institution)), '00401008': lo(r.pick(VOCAB.confidentiality)) };
      const seriesUid = `${study}.${s + 1}`;
      records.push(instanceRecord([base, noise, modality, { '0020000E': { vr: 'UI', Value: [seriesUid] } }], `${seriesUid}.1`, CT_IMAGE));
    }
    out.push({
      records,
      labels: r.chance(0.4) ? [] : r.subset(VOCAB.label, 3),
      ...(r.chance(0.2) ? { confidentiality: r.pick(VOCAB.confidentiality) } : {}),
    });
  }
  return out;
}

/** The batches load() commits, in order: every other instance first, so series of a study arrive in several commits. */
function batches(studies: Synthetic[]): InstanceRecord[][] {
  const all = studies.flatMap((s) => s.records);
  return [all.filter((_, i) => i % 2 === 0), all.filter((_, i) => i % 2 === 1)];
}

/** The attributes of a study after its records were committed in that order, by studyAttributesOf (as STOW sees them). */
function attributesInCommitOrder(s: Synthetic, order: InstanceRecord[]): StudyAttributes {
  let attributes: StudyAttributes | undefined;
  for (const record of order) if (s.records.includes(record)) attributes = studyAttributesOf(record.dataset, attributes);
  return attributes!;
}

/** The attributes the reference expects: commit order, then the setters. */
function expectedAttributes(s: Synthetic, order: InstanceRecord[]): StudyAttributes {
  const attributes = attributesInCommitOrder(s, order);
  return {
    ...attributes!,
    labels: [...new Set(s.labels)].sort(),
    ...(s.confidentiality === undefined ? {} : { confidentiality: s.confidentiality }),
  };
}

function load(store: IndexStore, studies: Synthetic[]): void {
  for (const batch of batches(studies)) store.commit(batch, 'reject');
  for (const s of studies) {
    const uid = s.records[0]!.studyInstanceUID;
    if (s.labels.length > 0) store.setStudyLabels(uid, s.labels);
    if (s.confidentiality !== undefined) store.setStudyConfidentiality(uid, s.confidentiality);
  }
}

const SCALARS: StudyScalarAttribute[] = [
  'studyInstanceUID',
  'institution',
  'referringPhysician',
  'accessionNumber',
  'patientId',
  'studyDate',
  'confidentiality',
];

/** A random condition over the archive's values (mostly values that occur, sometimes not, sometimes wrong types). */
function conditionGenerator(seed: number, attributes: StudyAttributes[]) {
  const r = rng(seed);
  const valuesOf = (a: StudyScalarAttribute) => [...new Set(attributes.map((x) => x[a]))];
  const scalarValue = (a: StudyScalarAttribute): string | number => {
    // Wrong type: never equal in Cedar, though SQLite's affinity would convert '20200101' or 42 to the column's type.
    if (r.chance(0.1)) return a === 'studyDate' ? String(r.pick(valuesOf(a))) : r.pick([0, 42]);
    if (r.chance(0.1)) return a === 'studyDate' ? r.pick([0, 20200101.5, 99999999, -1]) : r.pick(['', 'nothing', '*', '%']);
    return r.pick(valuesOf(a));
  };
  const likePattern = (a: StudyScalarAttribute): LikePart[] => {
    const source = r.chance(0.2) ? r.pick(['', '*', '%', '_', '?', '[', 'N', '2020']) : String(r.pick(valuesOf(a)));
    const parts: LikePart[] = [];
    let literal = '';
    for (const ch of source) {
      if (r.chance(0.25)) {
        if (literal !== '') parts.push({ literal });
        literal = '';
        parts.push('wildcard'); // replaces the character: a wildcard where the value had one
      } else literal += ch;
      if (r.chance(0.05)) {
        if (literal !== '') parts.push({ literal });
        literal = '';
        parts.push('wildcard'); // an extra wildcard (empty run)
      }
    }
    if (literal !== '') parts.push({ literal });
    if (r.chance(0.2)) parts.unshift('wildcard');
    if (r.chance(0.2)) parts.push('wildcard');
    return parts;
  };
  const setValues = (attribute: 'modalities' | 'labels') =>
    r.subset([...(attribute === 'modalities' ? VOCAB.modality : VOCAB.label), 'absent'], 3);

  const leaf = (): StudyCondition => {
    const kind = r.pick(['eq', 'eq', 'in', 'compare', 'like', 'like', 'has', 'has', 'empty', 'const'] as const);
    const a = r.pick(SCALARS);
    switch (kind) {
      case 'eq':
        return { kind, attribute: a, value: scalarValue(a) };
      case 'in':
        return { kind, attribute: a, values: Array.from({ length: r.int(4) }, () => scalarValue(a)) };
      case 'compare':
        return {
          kind,
          attribute: 'studyDate',
          op: r.pick(['<', '<=', '>', '>='] as const),
          value: r.chance(0.1) ? r.pick([0, Infinity, -Infinity, NaN, 20200101.5]) : r.pick(valuesOf('studyDate') as number[]),
        };
      case 'like':
        return { kind, attribute: a, pattern: likePattern(a) };
      case 'has': {
        const attribute = r.pick(['modalities', 'labels'] as const);
        return { kind, attribute, values: setValues(attribute), mode: r.pick(['any', 'all'] as const) };
      }
      case 'empty':
        return { kind, attribute: r.pick(['modalities', 'labels'] as const) };
      case 'const':
        return { kind, value: r.chance(0.5) };
    }
  };
  const condition = (depth: number): StudyCondition => {
    if (depth === 0 || r.chance(0.3)) return leaf();
    const kind = r.pick(['and', 'or', 'not'] as const);
    if (kind === 'not') return { kind, item: condition(depth - 1) };
    return { kind, items: Array.from({ length: r.int(4) }, () => condition(depth - 1)) };
  };
  return () => condition(4);
}

const PAGING = { defaultLimit: 1000, maxLimit: 1000 };
const UID_OF: Record<QueryLevel, string> = { study: '0020000D', series: '0020000E', instance: '00080018' };
const found = (store: IndexStore, level: QueryLevel, access: StudyCondition, params = '') => {
  const result = store.search(parseQido(level, {}, new URLSearchParams(params), PAGING), access);
  return { uids: result.matches.map((m) => String(m[UID_OF[level]]!.Value![0])), total: result.total };
};

const SEED = 0x5eed_0005;
const GENERATED = archive(SEED, 60);
const COMMIT_ORDER = batches(GENERATED).flat();
// Studies in insertion order (a study is created by its first committed instance): the order of search results.
const firstCommitted = (s: Synthetic) => Math.min(...s.records.map((r) => COMMIT_ORDER.indexOf(r)));
const STUDIES = [...GENERATED].sort((a, b) => firstCommitted(a) - firstCommitted(b));
const EXPECTED = STUDIES.map((s) => expectedAttributes(s, COMMIT_ORDER));
const UIDS = STUDIES.map((s) => s.records[0]!.studyInstanceUID);

t.test('stores keep exactly the attributes studyAttributesOf and the setters give', (t) => {
  const sqlite = new SqliteIndexStore(path.join(tempDir(t), 'index.sqlite'));
  t.teardown(() => sqlite.close());
  const memory = new MemoryIndexStore();
  for (const store of [sqlite, memory]) load(store, GENERATED);
  t.ok(new Set(EXPECTED.map((a) => a.institution)).size > 5, 'the archive mixes institutions');
  t.ok(EXPECTED.some((a) => a.modalities.length === 0) && EXPECTED.some((a) => a.modalities.length > 2), 'and modality sets');
  UIDS.forEach((uid, i) => {
    t.strictSame(sqlite.studyAttributes(uid), EXPECTED[i], `sqlite ${uid}`);
    t.strictSame(memory.studyAttributes(uid), EXPECTED[i], `memory ${uid}`);
  });
  t.end();
});

t.test('random conditions: SQL filter == memory filter == evaluateStudyCondition', (t) => {
  const sqlite = new SqliteIndexStore(path.join(tempDir(t), 'index.sqlite'));
  t.teardown(() => sqlite.close());
  const memory = new MemoryIndexStore();
  for (const store of [sqlite, memory]) load(store, GENERATED);
  const next = conditionGenerator(SEED + 1, EXPECTED);
  const ROUNDS = 600;
  let failures = 0;
  let nonTrivial = 0;
  for (let round = 0; round < ROUNDS && failures < 5; round++) {
    const condition = next();
    const expected = UIDS.filter((_, i) => evaluateStudyCondition(condition, EXPECTED[i]!));
    if (expected.length > 0 && expected.length < UIDS.length) nonTrivial++;
    for (const [name, store] of [['sqlite', sqlite], ['memory', memory]] as const) {
      const got = found(store, 'study', condition);
      if (JSON.stringify(got) !== JSON.stringify({ uids: expected, total: expected.length })) {
        failures++;
        t.fail(`${name} round ${round}`, { condition: JSON.stringify(condition), expected, got: got.uids });
      }
      // Every 10th condition also at the series and instance levels, paged (so the COUNT statement runs).
      if (round % 10 === 0) {
        // Series and instances in insertion order: the commit order (one instance per series).
        const permitted = new Set(expected);
        const series = COMMIT_ORDER.filter((r) => permitted.has(r.studyInstanceUID)).map((r) => r.seriesInstanceUID);
        const paged = store.search(parseQido('series', {}, new URLSearchParams('limit=3&offset=1'), PAGING), condition);
        const instances = found(store, 'instance', condition);
        if (
          paged.total !== series.length ||
          JSON.stringify(paged.matches.map((m) => m['0020000E']!.Value![0])) !== JSON.stringify(series.slice(1, 4)) ||
          JSON.stringify(instances.uids) !== JSON.stringify(series.map((s) => `${s}.1`))
        ) {
          failures++;
          t.fail(`${name} round ${round}, series/instance level`, { condition: JSON.stringify(condition) });
        }
      }
    }
  }
  t.equal(failures, 0, `${ROUNDS} conditions agree on ${UIDS.length} studies`);
  t.ok(nonTrivial > ROUNDS / 3, `most conditions select some but not all studies (${nonTrivial})`);
  t.end();
});

t.test('migration V4 backfills the policy columns of existing studies as commit writes them', (t) => {
  const file = path.join(tempDir(t), 'index.sqlite');
  const store = new SqliteIndexStore(file);
  load(store, GENERATED);
  store.close();
  // Back to what version 3 left: no V4 tables, indexes or columns.
  const db = new Database(file);
  undoMigrationV4(db);
  db.pragma('user_version = 3');
  db.close();
  const upgraded = new SqliteIndexStore(file);
  t.teardown(() => upgraded.close());
  UIDS.forEach((uid, i) => {
    // Before V4 there were no labels, and confidentiality was the first instance's.
    t.strictSame(upgraded.studyAttributes(uid), attributesInCommitOrder(STUDIES[i]!, COMMIT_ORDER), uid);
  });
  t.end();
});

t.test('compiled access SQL: values bound, text by shape, like escaped for GLOB', (t) => {
  const hostile = "x' OR 1=1; DROP TABLE studies; --";
  const a = compileAccess({ kind: 'or', items: [{ kind: 'eq', attribute: 'institution', value: hostile }, { kind: 'has', attribute: 'labels', values: [hostile], mode: 'all' }] });
  const b = compileAccess({ kind: 'or', items: [{ kind: 'eq', attribute: 'institution', value: 'A' }, { kind: 'has', attribute: 'labels', values: ['b', 'c', 'd'], mode: 'all' }] });
  t.equal(a.sql, b.sql, 'same shape, same SQL (one cached statement)');
  t.notMatch(a.sql, /OR 1=1|DROP/);
  t.same(a.params, [hostile, JSON.stringify([hostile]), 1]);
  t.equal(likeGlob([{ literal: 'a*b?c[d]%_' }, 'wildcard']), 'a[*]b[?]c[[]d]%_*');
  t.throws(() => compileAccess({ kind: 'eq', attribute: 'doc' as StudyScalarAttribute, value: 'x' }), /unknown study attribute/);
  t.throws(() => compileAccess({ kind: 'eq', attribute: '__proto__' as StudyScalarAttribute, value: 'x' }), /unknown study attribute/);
  t.throws(() => compileAccess({ kind: 'bogus' } as unknown as StudyCondition), /unknown access condition kind/);
  t.throws(() => compileAccess({ kind: 'empty', attribute: 'studies' as 'labels' }), /unknown study set attribute/);
  const query = parseQido('series', {}, new URLSearchParams('Modality=CT'), PAGING);
  const compiled = compileSearch(query, { kind: 'eq', attribute: 'institution', value: 'A' });
  t.match(compiled.countSql, /FROM series se JOIN studies s ON s\.pk = se\.study_pk WHERE .*s\.institution = \?/, 'COUNT joins studies');
  t.same(compiled.params, ['CT', 'A']);
  t.end();
});

t.test('plan of a study-level QIDO with a typical policy: nothing worse than a scan of studies', (t) => {
  const store = new SqliteIndexStore(path.join(tempDir(t), 'index.sqlite'));
  t.teardown(() => store.close());
  load(store, GENERATED);
  const policy: StudyCondition = {
    kind: 'or',
    items: [
      { kind: 'eq', attribute: 'institution', value: 'North' },
      { kind: 'eq', attribute: 'referringPhysician', value: 'DOE^JOHN' },
    ],
  };
  for (const params of ['', 'PatientName=DOE*', 'StudyDate=20200101-', 'limit=10&offset=10']) {
    const query = parseQido('study', {}, new URLSearchParams(params), PAGING);
    for (const count of [false, true]) {
      const plan = store.explain(query, policy, count);
      t.comment(`study?${params} ${count ? 'COUNT' : 'page'}: ${plan.join('; ')}`);
      const scans = plan.filter((step) => /^SCAN /.test(step));
      t.ok(scans.every((step) => /^SCAN s\b/.test(step)), `only studies may be scanned: ${plan.join('; ')}`);
    }
  }
  // A search with keys of its own is driven by them; the policy only filters (compile-access.ts filterOnly).
  const plan = (params: string) => store.explain(parseQido('study', {}, new URLSearchParams(params), PAGING), policy).join('; ');
  t.match(plan('PatientName=DOE*'), /SEARCH p USING INDEX patients_name_a/, 'a name search starts from the name index');
  t.notMatch(plan('PatientName=DOE*'), /studies_institution|studies_referring_physician/, 'not from the policy columns');
  t.match(plan('StudyDate=20200101-20201231'), /SEARCH s USING INDEX studies_date/, 'a date range search starts from the date index');
  t.match(plan(''), /studies_institution/, 'without keys of its own, the policy drives the search');
  const series = store.explain(parseQido('series', {}, new URLSearchParams(''), PAGING), policy);
  t.comment(`series: ${series.join('; ')}`);
  const instances = store.explain(parseQido('instance', {}, new URLSearchParams(''), PAGING), policy);
  t.comment(`instance: ${instances.join('; ')}`);
  t.end();
});
