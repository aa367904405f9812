// Retention: how long a study must be kept (SECURITY.md 5, issue 6 item 1). Pure: no HTTP, no storage, no clock
// except the `now` a caller passes. The lead derives RetentionFacts from the index and stores the result;
// legal holds are separate and override whatever this returns.
//
// Semantics (docs: "Retention"):
// - keepUntil = the latest, over every matching rule, of anchor + period. The baseline rule `default`
//   (StudyDate + defaultPeriod, P7Y unless configured) always matches; configured rules add to it and never
//   replace it, so adding a rule can only make keepUntil later.
// - Anchors: `studyDate` (StudyDate 0008,0020; the receipt when it is missing, unreadable or after the
//   receipt), `receipt` (first receipt), `majority` (PatientBirthDate + majorityAge).
// - Minors: a patient younger than paediatricAge (default majorityAge) at the study is kept at least until
//   majority + the period of every rule that matches (dcm4chee/NHS style max(StudyDate+N, BirthDate+majority+N)).
//   A paediatric study whose birth date is unknown is kept indefinitely: there is no date to count from.
// - An unknown age satisfies every age condition (retention errs on the long side), so a rule with
//   patientAgeBelow that matches a study of unknown age marks it paediatric, hence indefinite.
// - keepUntil is never before the first receipt itself (a study received 10 years after its StudyDate may be
//   deleted on receipt, not before it existed here). It is the first instant at which the study may go:
//   expired when now >= keepUntil.
// - Dates are UTC calendar dates. DICOM DA has no zone: StudyDate 20200315 is 2020-03-15T00:00Z.
// - Leap days: adding years or months clamps to the end of the month (2024-02-29 + P1Y = 2025-02-28), the
//   convention of java.time (dcm4chee, which most sites migrate from), Temporal, date-fns and PostgreSQL
//   interval arithmetic, so a date computed here agrees with theirs. The alternative (overflow to March 1,
//   what JS Date.setUTCFullYear does) would keep one day longer; we prefer agreeing with the other archive.
//
// Reasons carry dates derived from PatientBirthDate (PHI): they are for audit and the admin API, never the
// application log (DESIGN.md "Logs").

import { z } from 'zod';
import { isValidUid } from '../dicom/uid.js';

const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------------------
// ISO 8601 periods

/** A calendar period: years and months are added on the calendar (clamped), weeks and days as days. */
export interface IsoPeriod {
  years: number;
  months: number;
  weeks: number;
  days: number;
}

/** Longer than this is a typo; "indefinite" says forever. Keeps every result inside the range of Date. */
const MAX_PERIOD_YEARS = 1000;

const PERIOD_PATTERN = /^P(?:(\d{1,7})Y)?(?:(\d{1,7})M)?(?:(\d{1,7})W)?(?:(\d{1,7})D)?$/;

/**
 * Parses an ISO 8601 duration made of years, months, weeks and days (`P7Y`, `P10Y6M`, `P30D`, `P2W`, `P0D`),
 * the subset that makes sense for retention. Throws RangeError with a readable message otherwise
 * (time parts `PT…`, fractions, signs, lower case, more than 1000 years).
 */
export function parseIsoPeriod(text: string): IsoPeriod {
  const example = 'an ISO 8601 period such as P7Y, P10Y6M or P30D (years, months, weeks, days)';
  if (typeof text !== 'string') throw new RangeError(`must be ${example}`);
  if (/T/i.test(text) && /^P/i.test(text)) throw new RangeError(`"${text}": time parts (PT…) are not supported; use ${example}`);
  const m = PERIOD_PATTERN.exec(text);
  if (!m || text === 'P') throw new RangeError(`"${text}" is not ${example}`);
  const [years, months, weeks, days] = [m[1], m[2], m[3], m[4]].map((s) => (s === undefined ? 0 : Number(s))) as [number, number, number, number];
  const approxYears = years + months / 12 + (weeks * 7 + days) / 365;
  if (approxYears > MAX_PERIOD_YEARS) throw new RangeError(`"${text}" is longer than ${MAX_PERIOD_YEARS} years; use "indefinite" to keep forever`);
  return { years, months, weeks, days };
}

function daysInMonth(year: number, month0: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month0 + 1, 0);
  return d.getUTCDate();
}

/** Moves `date` by whole months (clamping the day to the month's end), then by days; keeps the time of day. */
function shift(date: Date, months: number, days: number): Date {
  const total = date.getUTCMonth() + months;
  const year = date.getUTCFullYear() + Math.floor(total / 12);
  const month0 = ((total % 12) + 12) % 12;
  const day = Math.min(date.getUTCDate(), daysInMonth(year, month0));
  const out = new Date(date.getTime());
  out.setUTCFullYear(year, month0, day);
  return new Date(out.getTime() + days * DAY_MS);
}

/**
 * `date` + `period` in UTC calendar arithmetic: years and months first, as one number of months, with the day
 * clamped to the end of the target month (2024-02-29 + P1Y = 2025-02-28, 2023-01-31 + P1M = 2023-02-28);
 * then weeks and days. The time of day is kept. Same order as java.time Period.addTo and Temporal.
 */
export function addPeriod(date: Date, period: IsoPeriod | string): Date {
  const p = typeof period === 'string' ? parseIsoPeriod(period) : period;
  return shift(date, p.years * 12 + p.months, p.weeks * 7 + p.days);
}

// ---------------------------------------------------------------------------------------------------------
// DICOM DA and AS

/**
 * A DICOM date (DA, PS3.5 6.2: YYYYMMDD; the ACR-NEMA form YYYY.MM.DD is accepted too) as UTC midnight;
 * undefined when absent or not a real calendar date (00000000, 20230230 — placeholders modalities send).
 */
export function parseDicomDate(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo - 1)) return undefined;
  const out = new Date(0);
  out.setUTCFullYear(y, mo - 1, d);
  return out;
}

export interface PatientAge {
  value: number;
  unit: 'D' | 'W' | 'M' | 'Y';
}

/** PatientAge (0010,1010), VR AS (PS3.5 6.2: nnnD, nnnW, nnnM, nnnY); lenient on padding and missing zeros. */
export function parsePatientAge(text: string | undefined): PatientAge | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{1,3})\s*([DWMY])$/i.exec(text.trim());
  if (!m) return undefined;
  return { value: Number(m[1]), unit: m[2]!.toUpperCase() as PatientAge['unit'] };
}

/** Completed years between a birth date and a date, with the same leap-day convention as addPeriod. */
export function completedYears(birth: Date, at: Date): number {
  let years = at.getUTCFullYear() - birth.getUTCFullYear();
  if (shift(birth, years * 12, 0).getTime() > at.getTime()) years -= 1;
  return years;
}

/** Completed years an AS value stands for (014Y -> 14, 215M -> 17, 100W -> 1). */
export function patientAgeYears(age: PatientAge): number {
  switch (age.unit) {
    case 'Y':
      return age.value;
    case 'M':
      return Math.floor(age.value / 12);
    case 'W':
      return Math.floor((age.value * 7) / 365.25);
    case 'D':
      return Math.floor(age.value / 365.25);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Configuration

const years = z.number().int('must be a whole number of years').min(0, 'must be 0 or more').max(150, 'must be at most 150');

const isoPeriodText = z.string().superRefine((s, ctx) => {
  try {
    parseIsoPeriod(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const periodText = z.union([z.literal('indefinite'), isoPeriodText], {
  error: 'must be "indefinite" or an ISO 8601 period such as P7Y, P10Y6M or P30D',
});

/** Ids the engine itself reports: the baseline rule and the receipt floor. */
export const BASELINE_RULE_ID = 'default';
export const RECEIPT_FLOOR_ID = 'receipt-floor';
const RESERVED_IDS = new Set([BASELINE_RULE_ID, RECEIPT_FLOOR_ID]);

const ruleSchema = z.strictObject({
  /** Reported in decisions and the audit trail. Letters, digits, . _ -. */
  id: z
    .string()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .regex(/^(?:[A-Za-z0-9][A-Za-z0-9._-]*)?$/, 'must start with a letter or digit and contain only letters, digits, ".", "_" and "-"')
    .refine((id) => !RESERVED_IDS.has(id), { message: `"${BASELINE_RULE_ID}" and "${RECEIPT_FLOOR_ID}" are reserved (set defaultPeriod to change the baseline)` }),
  /** Every listed condition must hold; a list holds when the study has any of its values. Absent: every study. */
  when: z
    .strictObject({
      /** Modality (0008,0060) of any series, e.g. ["MG"]; compared case-insensitively. */
      modalities: z.array(z.string().trim().min(1, 'must not be empty')).min(1, 'must list at least one modality (omit it to match every modality)').optional(),
      /** InstitutionName (0008,0080); compared ignoring case and surrounding/repeated spaces. */
      institutions: z.array(z.string().trim().min(1, 'must not be empty')).min(1, 'must list at least one institution (omit it to match every institution)').optional(),
      /** SOP Class UIDs of any instance, e.g. ["1.2.840.10008.5.1.4.1.1.88.22"]. */
      sopClasses: z
        .array(z.string().refine(isValidUid, { message: 'must be a UID (digits and dots, at most 64 characters)' }))
        .min(1, 'must list at least one SOP class (omit it to match every SOP class)')
        .optional(),
      /** Patient younger than this many years at the study. An unknown age matches (and, unknown DOB, is indefinite). */
      patientAgeBelow: years.optional(),
      /** Patient at least this many years old at the study. An unknown age matches. */
      patientAgeAtLeast: years.optional(),
    })
    .refine((w) => w.patientAgeBelow === undefined || w.patientAgeAtLeast === undefined || w.patientAgeAtLeast < w.patientAgeBelow, {
      message: 'patientAgeAtLeast must be less than patientAgeBelow (otherwise the rule matches no one)',
      path: ['patientAgeAtLeast'],
    })
    .optional(),
  /** ISO 8601 period (P7Y, P10Y6M, P30D) or "indefinite". */
  period: periodText,
  /** What the period counts from. */
  anchor: z.enum(['studyDate', 'receipt', 'majority'], { error: 'must be one of "studyDate", "receipt", "majority"' }),
});

export type RetentionRule = z.output<typeof ruleSchema>;

/** Rules added to the baseline when none are configured: none (the baseline and the minors rule are built in). */
export const DEFAULT_RETENTION_RULES: readonly RetentionRule[] = Object.freeze([]);

/** Put under the config key `retention`; `{}` (or absent, thanks to prefault) gives every default. */
export const retentionConfigSchema = z
  .strictObject({
    /** Extra rules; the baseline `default` rule (StudyDate + defaultPeriod) always applies as well. */
    rules: z
      .array(ruleSchema)
      .superRefine((rules, ctx) => {
        const seen = new Map<string, number>();
        rules.forEach((r, i) => {
          const first = seen.get(r.id);
          if (first !== undefined) ctx.addIssue({ code: 'custom', message: `duplicate rule id "${r.id}" (also rules[${first}])`, path: [i, 'id'] });
          else seen.set(r.id, i);
        });
      })
      .default(() => [...DEFAULT_RETENTION_RULES]),
    /** Age of majority in years: anchor `majority` and the minors rule count from birth date + this. */
    majorityAge: years.default(18),
    /** Period of the baseline rule, counted from StudyDate. */
    defaultPeriod: periodText.default('P7Y'),
    /** A patient younger than this at the study is a minor for the minors rule; default majorityAge. */
    paediatricAge: years.optional(),
    /** How long a deleted or rejected instance stays restorable in the bin before the purge removes it for good. */
    gracePeriod: isoPeriodText.default('P30D'),
    /** How often the server runs the purge (retention sweep); 0: never (run `dicomvault retention sweep` instead). */
    sweepIntervalMs: z.number().int().min(0).default(60 * 60 * 1000),
    /** Instances the purge handles per transaction. */
    sweepBatchSize: z.number().int().min(1).max(10_000).default(200),
  })
  .refine((c) => c.paediatricAge === undefined || c.paediatricAge <= c.majorityAge, {
    message: 'paediatricAge must not exceed majorityAge',
    path: ['paediatricAge'],
  })
  .prefault({});

export type RetentionConfig = z.output<typeof retentionConfigSchema>;
export type RetentionConfigInput = z.input<typeof retentionConfigSchema>;

// ---------------------------------------------------------------------------------------------------------
// Decision

/** What the archive knows about a study (derived from the index by the caller). */
export interface RetentionFacts {
  /** StudyDate (0008,0020), DICOM DA `YYYYMMDD`. */
  studyDate?: string;
  /** When the archive first received an instance of the study. */
  receivedAt: Date;
  /** PatientBirthDate (0010,0030), DICOM DA. */
  patientBirthDate?: string;
  /** PatientAge (0010,1010), DICOM AS (`014Y`, `006M`): used only when the birth date is absent or unusable. */
  patientAge?: string;
  /** Modality of every series. */
  modalities: string[];
  /** InstitutionName; '' when absent. */
  institution: string;
  /** SOP Class UID of every instance. */
  sopClasses: string[];
}

export type KeepUntil = Date | 'indefinite';

export interface RetentionReason {
  /** A configured rule id, `default` (baseline) or `receipt-floor`. */
  rule: string;
  keepUntil: KeepUntil;
  /** Human-readable; may carry dates derived from the birth date (PHI): audit and admin API only. */
  explanation: string;
}

export interface RetentionDecision {
  keepUntil: KeepUntil;
  /** Ids of the rules that determined keepUntil (several on a tie); `receipt-floor` when the receipt did. */
  rules: string[];
  /** One entry per matching rule (and the floor when it applied), in rule order; notes about unusable data. */
  reasons: RetentionReason[];
  /** Data the computation could not use (e.g. "StudyDate after receipt: counted from receipt"). */
  notes: string[];
  /** now >= keepUntil. */
  expired: boolean;
}

const iso = (d: Date) => d.toISOString().slice(0, 10);
const later = (a: KeepUntil, b: KeepUntil): KeepUntil => (a === 'indefinite' || b === 'indefinite' ? 'indefinite' : a.getTime() >= b.getTime() ? a : b);
const sameKeep = (a: KeepUntil, b: KeepUntil) => (a === 'indefinite' ? b === 'indefinite' : b !== 'indefinite' && a.getTime() === b.getTime());
const foldText = (s: string) => s.trim().replace(/\s+/g, ' ').toUpperCase();

interface AgeAtStudy {
  years: number;
  source: 'birthDate' | 'patientAge';
}

function matches(rule: RetentionRule, facts: RetentionFacts, age: AgeAtStudy | undefined): boolean {
  const w = rule.when;
  if (!w) return true;
  const anyOf = (wanted: string[] | undefined, have: string[], fold: (s: string) => string) => {
    if (wanted === undefined) return true;
    const set = new Set(have.map(fold));
    return wanted.some((v) => set.has(fold(v)));
  };
  if (!anyOf(w.modalities, facts.modalities, foldText)) return false;
  if (!anyOf(w.institutions, facts.institution === '' ? [] : [facts.institution], foldText)) return false;
  if (!anyOf(w.sopClasses, facts.sopClasses, (s) => s.trim())) return false;
  if (age !== undefined) {
    if (w.patientAgeBelow !== undefined && !(age.years < w.patientAgeBelow)) return false;
    if (w.patientAgeAtLeast !== undefined && !(age.years >= w.patientAgeAtLeast)) return false;
  }
  return true;
}

/**
 * The date until which a study must be kept (SECURITY.md 5; semantics at the top of this file).
 * `config` is the parsed `retention` configuration (retentionConfigSchema.parse output).
 */
export function computeKeepUntil(facts: RetentionFacts, config: RetentionConfig, now: Date = new Date()): RetentionDecision {
  const receivedAt = facts.receivedAt;
  if (!(receivedAt instanceof Date) || Number.isNaN(receivedAt.getTime())) throw new TypeError('RetentionFacts.receivedAt must be a valid Date');
  const notes: string[] = [];
  const paediatricAge = config.paediatricAge ?? config.majorityAge;

  // The StudyDate anchor. DA has no zone: a StudyDate up to one day after the UTC receipt is a zone difference;
  // later than that, the study cannot have happened after we received it, so the date is wrong: use the receipt.
  const studyDate = parseDicomDate(facts.studyDate);
  let studyAnchor: Date;
  if (studyDate === undefined) {
    studyAnchor = receivedAt;
    notes.push(facts.studyDate === undefined || facts.studyDate.trim() === '' ? 'StudyDate missing: counted from receipt' : 'StudyDate unreadable: counted from receipt');
  } else if (studyDate.getTime() > receivedAt.getTime() + DAY_MS) {
    studyAnchor = receivedAt;
    notes.push('StudyDate after receipt: counted from receipt');
  } else {
    studyAnchor = studyDate;
  }

  // Age at the study: from the birth date, else from PatientAge.
  let birth = parseDicomDate(facts.patientBirthDate);
  if (facts.patientBirthDate !== undefined && facts.patientBirthDate.trim() !== '' && birth === undefined) notes.push('PatientBirthDate unreadable: ignored');
  if (birth !== undefined && birth.getTime() > studyAnchor.getTime() + DAY_MS) {
    notes.push('PatientBirthDate after the study: ignored');
    birth = undefined;
  }
  const asValue = parsePatientAge(facts.patientAge);
  let age: AgeAtStudy | undefined;
  if (birth !== undefined) age = { years: Math.max(0, completedYears(birth, studyAnchor)), source: 'birthDate' };
  else if (asValue !== undefined) age = { years: patientAgeYears(asValue), source: 'patientAge' };
  const majority = birth !== undefined ? addPeriod(birth, { years: config.majorityAge, months: 0, weeks: 0, days: 0 }) : undefined;
  // Without a birth date but with an adult's PatientAge, majority is bounded by the latest birth date the age allows.
  const majorityBound = (): Date | undefined => {
    if (majority) return majority;
    if (!asValue) return undefined;
    const back = asValue.unit === 'Y' ? [-12 * asValue.value, 0] : asValue.unit === 'M' ? [-asValue.value, 0] : [0, asValue.unit === 'W' ? -7 * asValue.value : -asValue.value];
    return addPeriod(shift(studyAnchor, back[0]!, back[1]!), { years: config.majorityAge, months: 0, weeks: 0, days: 0 });
  };

  const baseline: RetentionRule = { id: BASELINE_RULE_ID, period: config.defaultPeriod, anchor: 'studyDate' };
  const reasons: RetentionReason[] = [];
  for (const rule of [baseline, ...config.rules]) {
    if (!matches(rule, facts, age)) continue;
    const possiblyPaediatric = age !== undefined ? age.years < paediatricAge : rule.when?.patientAgeBelow !== undefined;
    if (rule.period === 'indefinite') {
      reasons.push({ rule: rule.id, keepUntil: 'indefinite', explanation: 'period is indefinite' });
      continue;
    }
    const period = parseIsoPeriod(rule.period);
    let keep: KeepUntil;
    let explanation: string;
    if (rule.anchor === 'majority' || possiblyPaediatric) {
      const m = possiblyPaediatric ? majority : majorityBound();
      if (m === undefined) {
        keep = 'indefinite';
        explanation = possiblyPaediatric
          ? age === undefined
            ? `patient age unknown and the rule applies to patients under ${rule.when?.patientAgeBelow}: birth date unknown on a paediatric study, kept indefinitely`
            : `patient a minor at the study (age ${age.years}) and birth date unknown: kept indefinitely`
          : 'anchor majority needs the birth date or the patient age: kept indefinitely';
      } else {
        const fromMajority = addPeriod(m, period);
        if (rule.anchor === 'majority') {
          keep = fromMajority;
          explanation = `majority (${iso(m)}${birth ? '' : ', latest possible from PatientAge'}) + ${rule.period}`;
        } else {
          const base = addPeriod(rule.anchor === 'receipt' ? receivedAt : studyAnchor, period);
          keep = later(base, fromMajority);
          explanation = `patient a minor at the study: later of ${rule.anchor} + ${rule.period} (${iso(base)}) and majority (${iso(m)}) + ${rule.period}`;
        }
      }
    } else {
      keep = addPeriod(rule.anchor === 'receipt' ? receivedAt : studyAnchor, period);
      explanation = `${rule.anchor === 'receipt' || studyAnchor === receivedAt ? 'receipt' : 'StudyDate'} + ${rule.period}`;
    }
    reasons.push({ rule: rule.id, keepUntil: keep, explanation });
  }

  let keepUntil = reasons.map((r) => r.keepUntil).reduce(later);
  let rules = reasons.filter((r) => sameKeep(r.keepUntil, keepUntil)).map((r) => r.rule);
  if (keepUntil !== 'indefinite' && keepUntil.getTime() < receivedAt.getTime()) {
    keepUntil = receivedAt;
    rules = [RECEIPT_FLOOR_ID];
    reasons.push({ rule: RECEIPT_FLOOR_ID, keepUntil, explanation: 'every rule ends before the first receipt: never before receipt' });
  }
  const expired = keepUntil !== 'indefinite' && now.getTime() >= keepUntil.getTime();
  return { keepUntil, rules, reasons, notes, expired };
}

/**
 * The later of a stored keep-until date and a recomputed one: automatic recomputation (new instances, updated
 * attributes) only extends (SECURITY.md 5); shortening is a privileged, audited, separate operation.
 * `previous` undefined (never computed) gives `next`.
 */
export function extendOnly(previous: KeepUntil | undefined, next: KeepUntil): KeepUntil {
  return previous === undefined ? next : later(previous, next);
}
