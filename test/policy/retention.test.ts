// Retention rules (policy/retention.ts): table-driven cases for SECURITY.md 5 semantics, the ISO period and
// DICOM DA/AS parsers, config validation messages, and a fixed-seed randomised property test.
import t from 'tap';
import { z } from 'zod';
import { mulberry32 } from '../helpers/prng.js';
import {
  addPeriod,
  completedYears,
  computeKeepUntil,
  extendOnly,
  type KeepUntil,
  parseDicomDate,
  parseIsoPeriod,
  parsePatientAge,
  patientAgeYears,
  type RetentionConfigInput,
  retentionConfigSchema,
  type RetentionFacts,
} from '../../src/policy/retention.js';

const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const COMPREHENSIVE_SR = '1.2.840.10008.5.1.4.1.1.88.33';
const MAMMO_IMAGE = '1.2.840.10008.5.1.4.1.1.1.2';

/** 2020-03-16 09:00 UTC: the day after the default StudyDate. */
const RECEIVED = new Date('2020-03-16T09:00:00Z');

const facts = (over: Partial<RetentionFacts> = {}): RetentionFacts => ({
  studyDate: '20200315',
  receivedAt: RECEIVED,
  modalities: ['CT'],
  institution: 'General Hospital',
  sopClasses: [CT_IMAGE],
  ...over,
});
const cfg = (input: RetentionConfigInput = {}) => retentionConfigSchema.parse(input);
/** 'YYYY-MM-DD' means midnight UTC; a full ISO string is taken as is. */
const at = (s: string) => new Date(s.length === 10 ? `${s}T00:00:00Z` : s);
const show = (k: KeepUntil) => (k === 'indefinite' ? k : k.toISOString());

type RuleInput = NonNullable<NonNullable<RetentionConfigInput>['rules']>[number];
const PAEDS: RuleInput = { id: 'paeds', when: { patientAgeBelow: 18 }, period: 'P10Y', anchor: 'studyDate' };

interface Case {
  name: string;
  facts?: Partial<RetentionFacts>;
  config?: RetentionConfigInput;
  keepUntil: string;
  rules: string[];
  note?: RegExp;
}

const CASES: Case[] = [
  // Baseline
  { name: 'default: 7 years after StudyDate', keepUntil: '2027-03-15', rules: ['default'] },
  { name: 'defaultPeriod configurable (P10Y6M)', config: { defaultPeriod: 'P10Y6M' }, keepUntil: '2030-09-15', rules: ['default'] },
  { name: 'defaultPeriod indefinite', config: { defaultPeriod: 'indefinite' }, keepUntil: 'indefinite', rules: ['default'] },
  // StudyDate missing, wrong, late
  { name: 'missing StudyDate: counted from receipt', facts: { studyDate: undefined }, keepUntil: '2027-03-16T09:00:00.000Z', rules: ['default'], note: /StudyDate missing/ },
  { name: 'empty StudyDate: counted from receipt', facts: { studyDate: '' }, keepUntil: '2027-03-16T09:00:00.000Z', rules: ['default'], note: /StudyDate missing/ },
  { name: 'unreadable StudyDate (month 13): receipt', facts: { studyDate: '20201340' }, keepUntil: '2027-03-16T09:00:00.000Z', rules: ['default'], note: /unreadable/ },
  { name: 'StudyDate in the future (after receipt): receipt', facts: { studyDate: '20300101' }, keepUntil: '2027-03-16T09:00:00.000Z', rules: ['default'], note: /after receipt/ },
  { name: 'StudyDate one day after UTC receipt (time zone): StudyDate kept', facts: { studyDate: '20200317' }, keepUntil: '2027-03-17', rules: ['default'] },
  { name: 'StudyDate two days after receipt: receipt', facts: { studyDate: '20200318' }, keepUntil: '2027-03-16T09:00:00.000Z', rules: ['default'], note: /after receipt/ },
  {
    name: 'received 10 years after StudyDate: kept at least until receipt',
    facts: { studyDate: '20100101', receivedAt: at('2020-06-01T12:00:00Z') },
    keepUntil: '2020-06-01T12:00:00.000Z',
    rules: ['receipt-floor'],
  },
  { name: 'defaultPeriod P0D: the receipt floor', config: { defaultPeriod: 'P0D' }, keepUntil: '2020-03-16T09:00:00.000Z', rules: ['receipt-floor'] },
  {
    name: 'receipt anchor on a late-received study',
    facts: { studyDate: '20100101', receivedAt: at('2020-06-01T12:00:00Z') },
    config: { rules: [{ id: 'recv', period: 'P7Y', anchor: 'receipt' }] },
    keepUntil: '2027-06-01T12:00:00.000Z',
    rules: ['recv'],
  },
  // Minors with a known birth date
  { name: 'adult: baseline', facts: { patientBirthDate: '19800101' }, keepUntil: '2027-03-15', rules: ['default'] },
  { name: 'minor (4 y): majority 2033-06-01 + P7Y', facts: { patientBirthDate: '20150601' }, keepUntil: '2040-06-01', rules: ['default'] },
  { name: '18th birthday on the study day: adult', facts: { patientBirthDate: '20020315' }, keepUntil: '2027-03-15', rules: ['default'] },
  { name: 'one day short of 18: minor', facts: { patientBirthDate: '20020316' }, keepUntil: '2027-03-16', rules: ['default'] },
  { name: 'majorityAge 21', facts: { patientBirthDate: '20000101' }, config: { majorityAge: 21 }, keepUntil: '2028-01-01', rules: ['default'] },
  {
    name: 'paediatricAge 18 < majorityAge 25: a 20-year-old is not a minor',
    facts: { patientBirthDate: '20000101' },
    config: { majorityAge: 25, paediatricAge: 18 },
    keepUntil: '2027-03-15',
    rules: ['default'],
  },
  {
    name: 'paediatricAge 18 < majorityAge 25: a 16-year-old is kept until 25 + P7Y',
    facts: { patientBirthDate: '20040101' },
    config: { majorityAge: 25, paediatricAge: 18 },
    keepUntil: '2036-01-01',
    rules: ['default'],
  },
  { name: 'birth date after the study: ignored (adult by default)', facts: { patientBirthDate: '20210101' }, keepUntil: '2027-03-15', rules: ['default'], note: /after the study/ },
  { name: 'unreadable birth date: ignored', facts: { patientBirthDate: '00000000' }, keepUntil: '2027-03-15', rules: ['default'], note: /unreadable/ },
  { name: 'leap-day birth, study the day before the 18th birthday (2026-02-28)', facts: { studyDate: '20260227', receivedAt: at('2026-03-01'), patientBirthDate: '20080229' }, keepUntil: '2033-02-28', rules: ['default'] },
  { name: 'leap-day birth, study on 2026-02-28: 18, adult', facts: { studyDate: '20260228', receivedAt: at('2026-03-01'), patientBirthDate: '20080229' }, keepUntil: '2033-02-28', rules: ['default'] },
  { name: 'minor, StudyDate missing: age at receipt', facts: { studyDate: undefined, patientBirthDate: '20150601' }, keepUntil: '2040-06-01', rules: ['default'], note: /StudyDate missing/ },
  // PatientAge fallback
  { name: 'no birth date, PatientAge 014Y: paediatric, indefinite', facts: { patientAge: '014Y' }, keepUntil: 'indefinite', rules: ['default'] },
  { name: 'no birth date, PatientAge 006M: indefinite', facts: { patientAge: '006M' }, keepUntil: 'indefinite', rules: ['default'] },
  { name: 'no birth date, PatientAge 215M (17 y): indefinite', facts: { patientAge: '215M' }, keepUntil: 'indefinite', rules: ['default'] },
  { name: 'no birth date, PatientAge 216M (18 y): adult', facts: { patientAge: '216M' }, keepUntil: '2027-03-15', rules: ['default'] },
  { name: 'no birth date, PatientAge 045Y: adult', facts: { patientAge: '045Y' }, keepUntil: '2027-03-15', rules: ['default'] },
  { name: 'birth date wins over PatientAge', facts: { patientBirthDate: '19800101', patientAge: '010Y' }, keepUntil: '2027-03-15', rules: ['default'] },
  { name: 'unreadable PatientAge: age unknown, adult baseline', facts: { patientAge: 'old' }, keepUntil: '2027-03-15', rules: ['default'] },
  // A rule marking paediatric studies
  { name: 'paediatric rule, age unknown: indefinite', config: { rules: [PAEDS] }, keepUntil: 'indefinite', rules: ['paeds'] },
  { name: 'paediatric rule, adult: no match', facts: { patientBirthDate: '19800101' }, config: { rules: [PAEDS] }, keepUntil: '2027-03-15', rules: ['default'] },
  { name: 'paediatric rule, child with birth date: majority + P10Y', facts: { patientBirthDate: '20150601' }, config: { rules: [PAEDS] }, keepUntil: '2043-06-01', rules: ['paeds'] },
  { name: 'paediatric rule, child by PatientAge: indefinite', facts: { patientAge: '005Y' }, config: { rules: [PAEDS] }, keepUntil: 'indefinite', rules: ['default', 'paeds'] },
  {
    name: 'age-at-least rule, age unknown: matches (errs long)',
    config: { rules: [{ id: 'geri', when: { patientAgeAtLeast: 65 }, period: 'P10Y', anchor: 'studyDate' }] },
    keepUntil: '2030-03-15',
    rules: ['geri'],
  },
  {
    name: 'age-at-least rule, 30-year-old: no match',
    facts: { patientAge: '030Y' },
    config: { rules: [{ id: 'geri', when: { patientAgeAtLeast: 65 }, period: 'P10Y', anchor: 'studyDate' }] },
    keepUntil: '2027-03-15',
    rules: ['default'],
  },
  // Anchor majority
  { name: 'majority anchor, adult: baseline later', facts: { patientBirthDate: '19800101' }, config: { rules: [{ id: 'maj', period: 'P3Y', anchor: 'majority' }] }, keepUntil: '2027-03-15', rules: ['default'] },
  { name: 'majority anchor, child: later than the minors baseline', facts: { patientBirthDate: '20150601' }, config: { rules: [{ id: 'maj', period: 'P10Y', anchor: 'majority' }] }, keepUntil: '2043-06-01', rules: ['maj'] },
  {
    name: 'majority anchor, no birth date, PatientAge 030Y: latest possible birth (1990-03-15) + 18 + P25Y',
    facts: { patientAge: '030Y' },
    config: { rules: [{ id: 'maj', period: 'P25Y', anchor: 'majority' }] },
    keepUntil: '2033-03-15',
    rules: ['maj'],
  },
  { name: 'majority anchor, nothing known about the age: indefinite', config: { rules: [{ id: 'maj', period: 'P1Y', anchor: 'majority' }] }, keepUntil: 'indefinite', rules: ['maj'] },
  // Conditions
  ...(() => {
    const mammo: RuleInput = { id: 'mammo', when: { modalities: ['mg'] }, period: 'P10Y', anchor: 'studyDate' };
    const site: RuleInput = { id: 'site', when: { institutions: ['St. Mary  Hospital'] }, period: 'P15Y', anchor: 'studyDate' };
    const sr: RuleInput = { id: 'reports', when: { sopClasses: [COMPREHENSIVE_SR] }, period: 'P30Y', anchor: 'studyDate' };
    const both: RuleInput = { id: 'mg-at-mary', when: { modalities: ['MG'], institutions: ['st. mary hospital'] }, period: 'P20Y', anchor: 'studyDate' };
    return [
      { name: 'modality matches (case-insensitive, any series)', facts: { modalities: ['SR', 'MG'] }, config: { rules: [mammo] }, keepUntil: '2030-03-15', rules: ['mammo'] },
      { name: 'modality does not match', config: { rules: [mammo] }, keepUntil: '2027-03-15', rules: ['default'] },
      { name: 'institution matches (case, spaces folded)', facts: { institution: ' ST. MARY hospital ' }, config: { rules: [site] }, keepUntil: '2035-03-15', rules: ['site'] },
      { name: 'institution does not match', config: { rules: [site] }, keepUntil: '2027-03-15', rules: ['default'] },
      { name: 'empty institution never matches', facts: { institution: '' }, config: { rules: [site] }, keepUntil: '2027-03-15', rules: ['default'] },
      { name: 'SOP class matches', facts: { sopClasses: [CT_IMAGE, COMPREHENSIVE_SR] }, config: { rules: [sr] }, keepUntil: '2050-03-15', rules: ['reports'] },
      { name: 'SOP class does not match', config: { rules: [sr] }, keepUntil: '2027-03-15', rules: ['default'] },
      { name: 'conditions AND-ed: both hold', facts: { modalities: ['MG'], institution: 'St. Mary Hospital', sopClasses: [MAMMO_IMAGE] }, config: { rules: [both] }, keepUntil: '2040-03-15', rules: ['mg-at-mary'] },
      { name: 'conditions AND-ed: one fails', facts: { modalities: ['MG'], sopClasses: [MAMMO_IMAGE] }, config: { rules: [both] }, keepUntil: '2027-03-15', rules: ['default'] },
    ] satisfies Case[];
  })(),
  // Several rules
  {
    name: 'several rules: the latest wins',
    facts: { modalities: ['MG'] },
    config: { rules: [{ id: 'a', period: 'P10Y', anchor: 'studyDate' }, { id: 'b', when: { modalities: ['MG'] }, period: 'P12Y', anchor: 'studyDate' }, { id: 'c', period: 'P11Y', anchor: 'receipt' }] },
    keepUntil: '2032-03-15',
    rules: ['b'],
  },
  {
    name: 'a tie reports every rule',
    config: { defaultPeriod: 'P10Y', rules: [{ id: 'a', period: 'P10Y', anchor: 'studyDate' }, { id: 'b', period: 'P120M', anchor: 'studyDate' }] },
    keepUntil: '2030-03-15',
    rules: ['default', 'a', 'b'],
  },
  { name: "a matching 'indefinite' rule wins", config: { rules: [{ id: 'forever', when: { modalities: ['CT'] }, period: 'indefinite', anchor: 'studyDate' }, { id: 'long', period: 'P900Y', anchor: 'studyDate' }] }, keepUntil: 'indefinite', rules: ['forever'] },
  { name: "a non-matching 'indefinite' rule does nothing", config: { rules: [{ id: 'forever', when: { modalities: ['MR'] }, period: 'indefinite', anchor: 'studyDate' }] }, keepUntil: '2027-03-15', rules: ['default'] },
  {
    name: 'two indefinite rules: both reported',
    config: { rules: [{ id: 'x', period: 'indefinite', anchor: 'receipt' }, { id: 'y', period: 'indefinite', anchor: 'majority' }] },
    keepUntil: 'indefinite',
    rules: ['x', 'y'],
  },
  { name: 'rule shorter than the baseline cannot shorten it', config: { rules: [{ id: 'short', period: 'P1Y', anchor: 'studyDate' }] }, keepUntil: '2027-03-15', rules: ['default'] },
];

t.test('computeKeepUntil', async (t) => {
  for (const c of CASES) {
    const d = computeKeepUntil(facts(c.facts), cfg(c.config), at('2025-01-01'));
    const want = c.keepUntil === 'indefinite' ? 'indefinite' : at(c.keepUntil).toISOString();
    t.equal(show(d.keepUntil), want, `${c.name}: keepUntil`);
    t.same(d.rules, c.rules, `${c.name}: rules`);
    if (c.note) t.match(d.notes.join('\n'), c.note, `${c.name}: note`);
    else t.same(d.notes, [], `${c.name}: no notes`);
    for (const id of d.rules) t.ok(d.reasons.some((r) => r.rule === id && show(r.keepUntil) === want), `${c.name}: a reason for ${id}`);
  }
});

t.test('reasons and expiry', async (t) => {
  const d = computeKeepUntil(facts({ patientBirthDate: '20150601', modalities: ['MG'] }), cfg({ rules: [{ id: 'mammo', when: { modalities: ['MG'] }, period: 'P10Y', anchor: 'studyDate' }, { id: 'mr', when: { modalities: ['MR'] }, period: 'P99Y', anchor: 'studyDate' }] }), at('2025-01-01'));
  t.same(d.reasons.map((r) => r.rule), ['default', 'mammo'], 'one reason per matching rule, in order; non-matching rules absent');
  t.match(d.reasons[1]!.explanation, /minor.*majority \(2033-06-01\) \+ P10Y/);
  t.equal(d.expired, false);

  const base = facts();
  t.equal(computeKeepUntil(base, cfg(), at('2027-03-14T23:59:59Z')).expired, false, 'the instant before keepUntil');
  t.equal(computeKeepUntil(base, cfg(), at('2027-03-15')).expired, true, 'expired at keepUntil');
  t.equal(computeKeepUntil(base, cfg({ defaultPeriod: 'indefinite' }), at('3000-01-01')).expired, false, 'indefinite never expires');
  t.match(computeKeepUntil(facts({ studyDate: '20100101', receivedAt: at('2020-06-01') }), cfg()).reasons.at(-1), { rule: 'receipt-floor' });
  t.throws(() => computeKeepUntil(facts({ receivedAt: new Date(Number.NaN) }), cfg()), TypeError, 'an invalid receipt date is a programming error');
});

t.test('addPeriod: UTC calendar arithmetic, end-of-month clamping', async (t) => {
  const table: [string, string, string][] = [
    ['2024-02-29', 'P1Y', '2025-02-28'],
    ['2024-02-29', 'P4Y', '2028-02-29'],
    ['2024-02-29', 'P1Y1D', '2025-03-01'],
    ['2024-02-29', 'P12M', '2025-02-28'],
    ['2023-01-31', 'P1M', '2023-02-28'],
    ['2024-01-31', 'P1M', '2024-02-29'],
    ['2024-03-31', 'P1M', '2024-04-30'],
    ['2020-03-15', 'P10Y6M', '2030-09-15'],
    ['2020-11-15', 'P2M', '2021-01-15'],
    ['2020-03-15', 'P2W', '2020-03-29'],
    ['2020-12-25', 'P30D', '2021-01-24'],
    ['2020-03-15', 'P0D', '2020-03-15'],
    ['2020-03-15T13:45:10.123Z', 'P7Y', '2027-03-15T13:45:10.123Z'],
    ['0050-06-01', 'P1Y', '0051-06-01'],
  ];
  for (const [from, period, want] of table) t.equal(addPeriod(at(from), period).toISOString(), at(want).toISOString(), `${from} + ${period}`);
  t.same(addPeriod(at('2020-01-01'), parseIsoPeriod('P1Y2M3W4D')), at('2021-03-26'), 'accepts a parsed period');
});

t.test('parseIsoPeriod', async (t) => {
  t.same(parseIsoPeriod('P7Y'), { years: 7, months: 0, weeks: 0, days: 0 });
  t.same(parseIsoPeriod('P10Y6M'), { years: 10, months: 6, weeks: 0, days: 0 });
  t.same(parseIsoPeriod('P30D'), { years: 0, months: 0, weeks: 0, days: 30 });
  t.same(parseIsoPeriod('P1Y2M3W4D'), { years: 1, months: 2, weeks: 3, days: 4 });
  t.same(parseIsoPeriod('P1000Y'), { years: 1000, months: 0, weeks: 0, days: 0 });
  const bad: [string, RegExp][] = [
    ['', /is not an ISO 8601 period/],
    ['P', /is not an ISO 8601 period/],
    ['7Y', /is not an ISO 8601 period/],
    ['p7y', /is not an ISO 8601 period/],
    ['P1.5Y', /is not an ISO 8601 period/],
    ['P-1Y', /is not an ISO 8601 period/],
    ['P6M1Y', /is not an ISO 8601 period/],
    ['PT12H', /time parts/],
    ['P1DT1H', /time parts/],
    ['P1001Y', /longer than 1000 years/],
    ['P99999999D', /is not an ISO 8601 period/],
    ['indefinite', /is not an ISO 8601 period/],
  ];
  for (const [text, message] of bad) t.throws(() => parseIsoPeriod(text), { name: 'RangeError', message }, JSON.stringify(text));
});

t.test('DICOM DA and AS', async (t) => {
  const dates: [string | undefined, string | undefined][] = [
    ['20200315', '2020-03-15'],
    ['2020.03.15', '2020-03-15'],
    [' 20200315 ', '2020-03-15'],
    ['20240229', '2024-02-29'],
    ['20230229', undefined],
    ['00000000', undefined],
    ['20201301', undefined],
    ['2020315', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [text, want] of dates) t.equal(parseDicomDate(text)?.toISOString(), want === undefined ? undefined : at(want).toISOString(), `DA ${JSON.stringify(text)}`);

  const ages: [string | undefined, unknown, number | undefined][] = [
    ['014Y', { value: 14, unit: 'Y' }, 14],
    ['006M', { value: 6, unit: 'M' }, 0],
    ['215M', { value: 215, unit: 'M' }, 17],
    ['216M', { value: 216, unit: 'M' }, 18],
    ['100W', { value: 100, unit: 'W' }, 1],
    ['400D', { value: 400, unit: 'D' }, 1],
    ['14Y', { value: 14, unit: 'Y' }, 14],
    ['014y ', { value: 14, unit: 'Y' }, 14],
    ['0140Y', undefined, undefined],
    ['Y', undefined, undefined],
    ['', undefined, undefined],
    [undefined, undefined, undefined],
  ];
  for (const [text, parsed, years] of ages) {
    const age = parsePatientAge(text);
    t.same(age, parsed, `AS ${JSON.stringify(text)}`);
    if (age) t.equal(patientAgeYears(age), years, `AS ${text} in years`);
  }

  t.equal(completedYears(at('2008-02-29'), at('2026-02-27')), 17);
  t.equal(completedYears(at('2008-02-29'), at('2026-02-28')), 18, 'leaplings come of age on Feb 28 in common years (same convention as addPeriod)');
  t.equal(completedYears(at('2000-03-15'), at('2020-03-14')), 19);
  t.equal(completedYears(at('2000-03-15'), at('2020-03-15')), 20);
});

t.test('extendOnly: automatic recomputation never shortens', async (t) => {
  const a = at('2027-03-15');
  const b = at('2030-01-01');
  const table: [KeepUntil | undefined, KeepUntil, KeepUntil][] = [
    [undefined, a, a],
    [undefined, 'indefinite', 'indefinite'],
    [a, b, b],
    [b, a, b],
    [a, a, a],
    ['indefinite', a, 'indefinite'],
    [a, 'indefinite', 'indefinite'],
    ['indefinite', 'indefinite', 'indefinite'],
  ];
  for (const [prev, next, want] of table) t.equal(show(extendOnly(prev, next)), show(want), `${prev === undefined ? 'none' : show(prev)} then ${show(next)}`);
});

t.test('config: defaults and readable validation errors', async (t) => {
  const defaults = { rules: [], majorityAge: 18, defaultPeriod: 'P7Y', gracePeriod: 'P30D', sweepIntervalMs: 3_600_000, sweepBatchSize: 200 };
  t.same(retentionConfigSchema.parse(undefined), defaults, 'absent: every default');
  t.same(retentionConfigSchema.parse({}), defaults, '{}: every default');
  t.throws(() => retentionConfigSchema.parse({ gracePeriod: 'PT1H' }), /time parts/, 'a grace period in hours is refused');
  t.throws(() => retentionConfigSchema.parse({ sweepBatchSize: 0 }), 'a batch of 0 is refused');
  const ok = { id: 'a', period: 'P7Y', anchor: 'studyDate' } as const;
  const bad: [string, unknown, string, RegExp][] = [
    ['empty id', { rules: [{ ...ok, id: '' }] }, 'rules.0.id', /^must not be empty$/],
    ['id with spaces', { rules: [{ ...ok, id: 'my rule' }] }, 'rules.0.id', /letters, digits/],
    ['reserved id', { rules: [{ ...ok, id: 'default' }] }, 'rules.0.id', /reserved/],
    ['duplicate id', { rules: [ok, { ...ok, period: 'P8Y' }] }, 'rules.1.id', /duplicate rule id "a" \(also rules\[0\]\)/],
    ['bad duration', { rules: [{ ...ok, period: 'P7' }] }, 'rules.0.period', /"P7" is not an ISO 8601 period such as P7Y/],
    ['time duration', { rules: [{ ...ok, period: 'PT1H' }] }, 'rules.0.period', /time parts/],
    ['number period', { rules: [{ ...ok, period: 7 }] }, 'rules.0.period', /must be "indefinite" or an ISO 8601 period/],
    ['bad anchor', { rules: [{ ...ok, anchor: 'birth' }] }, 'rules.0.anchor', /must be one of "studyDate", "receipt", "majority"/],
    ['missing period', { rules: [{ id: 'a', anchor: 'receipt' }] }, 'rules.0.period', /./],
    ['unknown rule key', { rules: [{ ...ok, priority: 1 }] }, 'rules.0', /priority/],
    ['unknown condition', { rules: [{ ...ok, when: { modality: ['CT'] } }] }, 'rules.0.when', /modality/],
    ['empty modality list', { rules: [{ ...ok, when: { modalities: [] } }] }, 'rules.0.when.modalities', /at least one modality/],
    ['bad SOP class', { rules: [{ ...ok, when: { sopClasses: ['CT Image'] } }] }, 'rules.0.when.sopClasses.0', /must be a UID/],
    ['age range empty', { rules: [{ ...ok, when: { patientAgeBelow: 10, patientAgeAtLeast: 10 } }] }, 'rules.0.when.patientAgeAtLeast', /less than patientAgeBelow/],
    ['fractional age', { rules: [{ ...ok, when: { patientAgeBelow: 1.5 } }] }, 'rules.0.when.patientAgeBelow', /whole number of years/],
    ['negative majority', { majorityAge: -1 }, 'majorityAge', /0 or more/],
    ['bad defaultPeriod', { defaultPeriod: 'seven years' }, 'defaultPeriod', /not an ISO 8601 period/],
    ['paediatricAge above majority', { majorityAge: 18, paediatricAge: 21 }, 'paediatricAge', /must not exceed majorityAge/],
    ['unknown top-level key', { retentionPeriod: 'P7Y' }, '', /retentionPeriod/],
  ];
  for (const [name, input, path, message] of bad) {
    const r = retentionConfigSchema.safeParse(input);
    if (r.success) {
      t.fail(`${name}: accepted`);
      continue;
    }
    const issue = r.error.issues.find((i) => i.path.join('.') === path);
    t.ok(issue, `${name}: an issue at "${path}" (got ${r.error.issues.map((i) => i.path.join('.')).join(', ')})`);
    t.match(issue?.message, message, `${name}: message`);
    t.match(z.prettifyError(r.error), path === '' ? /✖/ : `at ${path.replace(/\.(\d+)/g, '[$1]')}`, `${name}: prettified with its path`);
  }
  t.ok(retentionConfigSchema.safeParse({ rules: [{ ...ok, period: 'indefinite' }, { id: 'b', period: 'P10Y6M', anchor: 'majority', when: { modalities: ['MG'], institutions: ['X'], sopClasses: [MAMMO_IMAGE], patientAgeBelow: 18, patientAgeAtLeast: 0 } }] }).success, 'a full valid config');
});

const prng = mulberry32;

t.test('property: never before receipt; adding a rule never makes keepUntil earlier (seed 20240601)', async (t) => {
  const rnd = prng(20240601);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const some = <T>(xs: readonly T[]): T[] => xs.filter(() => rnd() < 0.4);
  const da = (y0: number, y1: number) => `${int(y0, y1)}${String(int(1, 12)).padStart(2, '0')}${String(int(1, 29)).padStart(2, '0')}`;
  const MODS = ['CT', 'MR', 'MG', 'SR', 'US'] as const;
  const INSTS = ['A', 'B', 'St. Mary'] as const;
  const SOPS = [CT_IMAGE, COMPREHENSIVE_SR, MAMMO_IMAGE] as const;
  const PERIODS = ['P0D', 'P30D', 'P1Y', 'P7Y', 'P10Y6M', 'P25Y', 'P2W', 'indefinite'] as const;
  const ANCHORS = ['studyDate', 'receipt', 'majority'] as const;
  const rule = (id: string) => {
    const when: Record<string, unknown> = {};
    if (rnd() < 0.3) when.modalities = [pick(MODS)];
    if (rnd() < 0.2) when.institutions = [pick(INSTS)];
    if (rnd() < 0.2) when.sopClasses = [pick(SOPS)];
    if (rnd() < 0.2) when.patientAgeBelow = int(1, 25);
    if (rnd() < 0.15 && when.patientAgeBelow === undefined) when.patientAgeAtLeast = int(0, 80);
    return { id, period: pick(PERIODS), anchor: pick(ANCHORS), ...(Object.keys(when).length ? { when } : {}) };
  };
  const later = (a: KeepUntil, b: KeepUntil) => a === 'indefinite' || (b !== 'indefinite' && a.getTime() >= b.getTime());
  let indefinite = 0;
  let floor = 0;
  const N = 3000;
  for (let i = 0; i < N; i++) {
    const f: RetentionFacts = {
      receivedAt: new Date(Date.UTC(int(2000, 2030), int(0, 11), int(1, 28), int(0, 23), int(0, 59))),
      modalities: some(MODS),
      institution: rnd() < 0.2 ? '' : pick(INSTS),
      sopClasses: some(SOPS),
    };
    const sd = rnd();
    if (sd < 0.7) f.studyDate = da(1950, 2035);
    else if (sd < 0.8) f.studyDate = pick(['', '00000000', 'junk']);
    if (rnd() < 0.6) f.patientBirthDate = da(1920, 2030);
    if (rnd() < 0.4) f.patientAge = `${String(int(0, 120)).padStart(3, '0')}${pick(['D', 'W', 'M', 'Y'])}`;
    const majorityAge = int(16, 25);
    const base = {
      majorityAge,
      defaultPeriod: pick(PERIODS),
      ...(rnd() < 0.3 ? { paediatricAge: int(0, majorityAge) } : {}),
      rules: Array.from({ length: int(0, 3) }, (_, k) => rule(`r${k}`)),
    };
    const before = computeKeepUntil(f, cfg(base));
    const label = `#${i} ${JSON.stringify({ f, base })}`;
    if (before.keepUntil === 'indefinite') indefinite++;
    else if (before.rules[0] === 'receipt-floor') floor++;
    if (before.keepUntil !== 'indefinite' && before.keepUntil.getTime() < f.receivedAt.getTime()) t.fail(`before receipt: ${label}`);
    if (before.rules.length === 0) t.fail(`no rule reported: ${label}`);
    const after = computeKeepUntil(f, cfg({ ...base, rules: [...base.rules, rule('extra')] }));
    if (!later(after.keepUntil, before.keepUntil)) t.fail(`adding a rule made it earlier: ${label} ${show(before.keepUntil)} -> ${show(after.keepUntil)}`);
    const merged = extendOnly(before.keepUntil, after.keepUntil);
    if (!later(merged, before.keepUntil) || !later(merged, after.keepUntil)) t.fail(`extendOnly shortened: ${label}`);
  }
  t.pass(`${N} random studies and configurations`);
  // The generator must actually reach the interesting branches, or the property proves little.
  t.ok(indefinite > N / 20, `indefinite outcomes exercised (${indefinite})`);
  t.ok(floor > N / 50, `receipt-floor outcomes exercised (${floor})`);
});
