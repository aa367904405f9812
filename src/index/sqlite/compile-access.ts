// StudyCondition (policy/study-condition.ts) -> a parameterised SQL condition over the studies table, alias `s`
// (SECURITY.md 6). compile-query.ts ANDs it into the WHERE of a search's page and COUNT statements at every
// level, so a principal's QIDO results, totals and paging only ever cover the studies they may see.
//
// The rules that keep the SQL equal to evaluateStudyCondition (the reference; test/index/access-filter.test.ts
// compares the two on random conditions):
// - Attribute -> column through an allow-list (STUDY_COLUMNS); an unknown attribute or kind throws, and the
//   policy engine turns that into deny (fail closed). Nothing from the condition is ever interpolated: the SQL
//   text depends only on the condition's shape (kinds, attributes, operators), every value is bound, so the
//   statement cache keys on shape.
// - Policy columns are NOT NULL (migration V4): no SQL NULL, so NOT and OR keep their two-valued meaning.
// - Types are checked here, not left to SQLite: Cedar's `==` between a string and a number is false, while SQLite
//   would convert one to the other (column affinity: `policy_study_date = '20240101'` is true). A value of the
//   wrong type, or a number that is not finite (a bound NaN becomes NULL), is constant-folded instead.
// - Cedar `like`: `*` is any run of characters, every other character literal and case-sensitive. GLOB is
//   case-sensitive; its metacharacters `*`, `?` and `[` in literal parts become the bracket classes `[*]`, `[?]`,
//   `[[]` (`%` and `_` are LIKE's, literal for GLOB). A literal prefix adds an index range (as QIDO wild cards do).
// - Set attributes (modalities, labels) are child tables keyed by study_pk: `has any` is an EXISTS, `has all` a
//   COUNT of the distinct values found, `empty` a NOT EXISTS. Value lists are one bound JSON array (json_each),
//   so the SQL text does not grow with the number of values.

import { STUDY_SCALAR_ATTRIBUTES, type StudyScalarAttribute, type StudySetAttribute } from '../../policy/study-attributes.js';
import { simplify, type LikePart, type StudyCondition } from '../../policy/study-condition.js';
import { prefixUpperBound } from './sql-patterns.js';

export interface CompiledAccess {
  /** A condition over `studies s`, parenthesised where it needs to be; `1` or `0` for constants. */
  sql: string;
  /** Values for its placeholders, in order. */
  params: unknown[];
}

/** Policy attribute -> column of `studies` (migration V4). The allow-list: nothing else reaches SQL. */
const STUDY_COLUMNS: ReadonlyMap<StudyScalarAttribute, string> = new Map<StudyScalarAttribute, string>([
  ['studyInstanceUID', 's.study_uid'],
  ['institution', 's.institution'],
  ['referringPhysician', 's.referring_physician'],
  ['accessionNumber', 's.policy_accession_number'],
  ['patientId', 's.policy_patient_id'],
  ['studyDate', 's.policy_study_date'],
  ['confidentiality', 's.confidentiality'],
]);

/** Set attribute -> child table and value column. */
const SET_TABLES: ReadonlyMap<StudySetAttribute, { table: string; column: string }> = new Map<
  StudySetAttribute,
  { table: string; column: string }
>([
  ['modalities', { table: 'study_modalities', column: 'modality' }],
  ['labels', { table: 'study_labels', column: 'label' }],
]);

export class AccessCompileError extends Error {
  override readonly name = 'AccessCompileError';
}

function scalarColumn(attribute: unknown): { column: string; type: 'string' | 'number' } {
  const column = typeof attribute === 'string' ? STUDY_COLUMNS.get(attribute as StudyScalarAttribute) : undefined;
  if (column === undefined) throw new AccessCompileError('unknown study attribute in access condition');
  return { column, type: STUDY_SCALAR_ATTRIBUTES[attribute as StudyScalarAttribute] };
}

function setTable(attribute: unknown): { table: string; column: string } {
  const spec = typeof attribute === 'string' ? SET_TABLES.get(attribute as StudySetAttribute) : undefined;
  if (spec === undefined) throw new AccessCompileError('unknown study set attribute in access condition');
  return spec;
}

/** Would Cedar's `==` between a value of this attribute type and `value` ever be true? */
const comparable = (type: 'string' | 'number', value: unknown): value is string | number =>
  type === 'string' ? typeof value === 'string' : typeof value === 'number' && Number.isFinite(value);

/** GLOB pattern of a Cedar like pattern: literal parts with GLOB's metacharacters put in brackets. */
export function likeGlob(pattern: LikePart[]): string {
  return pattern.map((part) => (part === 'wildcard' ? '*' : part.literal.replace(/[*?[]/g, (c) => `[${c}]`))).join('');
}

class Compiler {
  readonly params: unknown[] = [];

  constructor(private readonly filterOnly: boolean) {}

  /** A scalar attribute's column, as an operand; `+column` (SQLite's way to keep a term off the indexes) when filtering only. */
  private column(attribute: unknown): { column: string; type: 'string' | 'number' } {
    const spec = scalarColumn(attribute);
    return this.filterOnly ? { column: `+${spec.column}`, type: spec.type } : spec;
  }

  bind(value: unknown): string {
    this.params.push(value);
    return '?';
  }

  compile(c: StudyCondition): string {
    switch (c.kind) {
      case 'const':
        return c.value ? '1' : '0';
      case 'and':
      case 'or': {
        if (c.items.length === 0) return c.kind === 'and' ? '1' : '0';
        const items = c.items.map((item) => this.compile(item));
        return items.length === 1 ? items[0]! : `(${items.join(c.kind === 'and' ? ' AND ' : ' OR ')})`;
      }
      case 'not':
        return `NOT (${this.compile(c.item)})`;
      case 'eq': {
        const { column, type } = this.column(c.attribute);
        return comparable(type, c.value) ? `${column} = ${this.bind(c.value)}` : '0';
      }
      case 'in': {
        const { column, type } = this.column(c.attribute);
        const values = [...new Set(c.values.filter((v) => comparable(type, v)))];
        if (values.length === 0) return '0';
        return `${column} IN (SELECT value FROM json_each(${this.bind(JSON.stringify(values))}))`;
      }
      case 'compare':
        return this.compare(c.attribute, c.op, c.value);
      case 'like':
        return this.like(c.attribute, c.pattern);
      case 'has': {
        const { table, column } = setTable(c.attribute);
        const values = [...new Set(c.values)];
        if (values.some((v) => typeof v !== 'string')) throw new AccessCompileError('set values must be strings');
        if (values.length === 0) return c.mode === 'any' ? '0' : '1';
        const inValues = `${column} IN (SELECT value FROM json_each(${this.bind(JSON.stringify(values))}))`;
        if (c.mode === 'any') return `EXISTS (SELECT 1 FROM ${table} WHERE study_pk = s.pk AND ${inValues})`;
        if (c.mode !== 'all') throw new AccessCompileError('unknown set mode in access condition');
        // (study_pk, value) is the child table's key: the count is of distinct values found.
        return `(SELECT COUNT(*) FROM ${table} WHERE study_pk = s.pk AND ${inValues}) = ${this.bind(values.length)}`;
      }
      case 'empty': {
        const { table } = setTable(c.attribute);
        return `NOT EXISTS (SELECT 1 FROM ${table} WHERE study_pk = s.pk)`;
      }
      default:
        throw new AccessCompileError(`unknown access condition kind`);
    }
  }

  private compare(attribute: unknown, op: unknown, value: unknown): string {
    const { column, type } = this.column(attribute);
    if (type !== 'number') throw new AccessCompileError('only numbers are compared');
    if (op !== '<' && op !== '<=' && op !== '>' && op !== '>=') throw new AccessCompileError('unknown comparison');
    if (typeof value !== 'number' || Number.isNaN(value)) return '0';
    if (value === Infinity) return op === '<' || op === '<=' ? '1' : '0';
    if (value === -Infinity) return op === '>' || op === '>=' ? '1' : '0';
    return `${column} ${op} ${this.bind(value)}`;
  }

  private like(attribute: unknown, pattern: LikePart[]): string {
    const { column: raw, type } = this.column(attribute);
    if (!Array.isArray(pattern)) throw new AccessCompileError('like pattern must be a list');
    for (const part of pattern) {
      if (part !== 'wildcard' && (typeof part !== 'object' || part === null || typeof part.literal !== 'string')) {
        throw new AccessCompileError('unknown like pattern part');
      }
    }
    // Cedar compares the study date's decimal text (String(20240101)); CAST gives the same for integers.
    const column = type === 'number' ? `CAST(${raw} AS TEXT)` : raw;
    const first = pattern[0];
    const prefix = first !== undefined && first !== 'wildcard' ? first.literal : '';
    if (!pattern.includes('wildcard')) {
      const literal = pattern.map((p) => (p as { literal: string }).literal).join('');
      return `${column} = ${this.bind(literal)}`;
    }
    const parts: string[] = [];
    // An index range on the literal prefix (text columns only: the CAST of the date is not indexed).
    if (prefix !== '' && type === 'string') {
      parts.push(`${column} >= ${this.bind(prefix)}`);
      const upper = prefixUpperBound(prefix);
      if (upper !== undefined) parts.push(`${column} < ${this.bind(upper)}`);
    }
    parts.push(`${column} GLOB ${this.bind(likeGlob(pattern))}`);
    return parts.length === 1 ? parts[0]! : `(${parts.join(' AND ')})`;
  }
}

export interface CompileAccessOptions {
  /**
   * Keep the condition off the indexes (`+column`): for a search with keys of its own. SQLite has no statistics
   * here, so it would otherwise drive a `PatientName=SMI*` search from the policy's institution index (every
   * study of the permitted institutions, then a sort) instead of the name index: measured 30-40 % slower QIDO
   * (bench/policy-qido.sh). Without keys of its own, a search is best driven by the policy (a referring
   * physician's few studies among millions).
   */
  filterOnly?: boolean;
}

/** The SQL of an access condition over `studies s`. Throws AccessCompileError for what it does not know. */
export function compileAccess(condition: StudyCondition, options: CompileAccessOptions = {}): CompiledAccess {
  const compiler = new Compiler(options.filterOnly === true);
  const sql = compiler.compile(simplify(condition));
  return { sql, params: compiler.params };
}
