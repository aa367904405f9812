// QidoQuery -> SQL (DESIGN.md "Typed query AST"). Every value is a bound parameter; the SQL text
// depends only on the shape of the query (which keys, which matcher kinds), so statements are cached
// per shape. Matching semantics are those of ../query/match.ts (the contract tests hold the two
// together): text case-sensitive, PN on folded columns, ranges on padded DA/TM/DT strings.

import type { StudyCondition } from '../../policy/study-condition.js';
import type { Filter, Matcher, QidoQuery, QueryLevel } from '../query/ast.js';
import { personNameQueryGroups } from '../query/normalize.js';
import { COLUMNS, aliasOf, type Alias, type ColumnSpec } from './columns.js';
import { compileAccess } from './compile-access.js';
import { globPattern, literalPrefix, prefixUpperBound } from './sql-patterns.js';

export interface CompiledSearch {
  /** SELECT of one page; bind `params`, then limit and offset. */
  pageSql: string;
  /** SELECT COUNT(*) with the same WHERE; bind `params`. */
  countSql: string;
  params: unknown[];
}

const BASE: Record<QueryLevel, Alias> = { study: 's', series: 'se', instance: 'i' };

/** The WHERE under construction: conditions, their parameters, and the tables they reference. */
class Where {
  readonly conditions: string[] = [];
  readonly params: unknown[] = [];
  readonly aliases = new Set<Alias>();

  add(alias: Alias, sql: string): void {
    this.aliases.add(alias);
    this.conditions.push(sql);
  }

  bind(value: unknown): string {
    this.params.push(value);
    return '?';
  }
}

/** Wild card matching on a column: an index range on the literal prefix, then GLOB for the rest. */
function globCondition(w: Where, column: string, pattern: string): string {
  const prefix = literalPrefix(pattern);
  if (prefix === pattern) return `${column} = ${w.bind(pattern)}`;
  const parts: string[] = [];
  if (prefix !== '') {
    parts.push(`${column} >= ${w.bind(prefix)}`);
    const upper = prefixUpperBound(prefix);
    if (upper !== undefined) parts.push(`${column} < ${w.bind(upper)}`);
  }
  parts.push(`${column} GLOB ${w.bind(globPattern(pattern))}`);
  return `(${parts.join(' AND ')})`;
}

/** A text, integer or DA/TM/DT column against a matcher (never PN). */
function valueCondition(w: Where, column: string, kind: string, m: Matcher): string {
  const typed = (v: string) => (kind === 'integer' ? Number(v) : v);
  switch (m.kind) {
    case 'single':
      return `${column} = ${w.bind(typed(m.value))}`;
    case 'uidList':
      return `${column} IN (SELECT value FROM json_each(${w.bind(JSON.stringify(m.values.map(typed)))}))`;
    case 'wildcard':
      return globCondition(w, column, m.pattern);
    case 'range': {
      const parts: string[] = [];
      if (m.from !== undefined) parts.push(`${column} >= ${w.bind(m.from)}`);
      if (m.to !== undefined) parts.push(`${column} <= ${w.bind(m.to)}`);
      return parts.length === 0 ? `${column} IS NOT NULL` : `(${parts.join(' AND ')})`;
    }
    case 'fuzzy':
      throw new Error('fuzzy matching applies to PN only');
  }
}

const isOpenGroup = (g: string) => g === '' || /^\*+$/.test(g);

/**
 * PN matching on the folded group columns: a key without '=' matches any group; a key with groups
 * matches group by group (open groups match anything). Fuzzy: every key word prefixes a name word.
 */
function personNameCondition(w: Where, alias: Alias, spec: ColumnSpec & { kind: 'pn' }, level: string, m: Matcher): string {
  const columns = ['_a', '_i', '_p'].map((suffix) => `${alias}.${spec.column}${suffix}`);
  if (m.kind === 'fuzzy') {
    // Template parts are evaluated left to right, so parameters are bound in placeholder order.
    const wordCondition = (word: string) =>
      `${alias}.pk IN (SELECT owner_pk FROM person_name_words WHERE level = ${w.bind(level)} ` +
      `AND tag = ${w.bind(spec.tag)} AND ${globCondition(w, 'word', `${word}*`)})`;
    return m.words.map(wordCondition).join(' AND ');
  }
  if (m.kind !== 'single' && m.kind !== 'wildcard') throw new Error(`${m.kind} matching does not apply to PN`);
  const groups = personNameQueryGroups(m.kind === 'single' ? m.value : m.pattern);
  const one = (column: string, key: string) =>
    m.kind === 'single' ? `${column} = ${w.bind(key)}` : globCondition(w, column, key);
  if (groups.length === 1) return `(${columns.map((c) => one(c, groups[0]!)).join(' OR ')})`;
  const parts = groups.flatMap((g, i) => (isOpenGroup(g) ? [] : [one(columns[i]!, g)]));
  return parts.length === 0 ? '1' : `(${parts.join(' AND ')})`;
}

function filterCondition(w: Where, f: Filter): void {
  const spec = COLUMNS.get(f.path[0]!);
  if (!spec) throw new Error(`no index column for ${f.path[0]}`);
  const alias = aliasOf(spec.tag);
  switch (spec.kind) {
    case 'pn':
      w.add(alias, personNameCondition(w, alias, spec, f.level, f.matcher));
      return;
    case 'list':
      w.add(alias, `${alias}.pk IN (SELECT ${spec.owner} FROM ${spec.table} WHERE ${valueCondition(w, spec.column, 'text', f.matcher)})`);
      return;
    case 'sequence':
      throw new Error('sequence keys are compiled by sequenceCondition');
    default:
      w.add(alias, valueCondition(w, `${alias}.${spec.column}`, spec.kind, f.matcher));
  }
}

/** Sequence matching (PS3.4 C.2.2.2.6): one item must match every item key of the sequence. */
function sequenceCondition(w: Where, itemFilters: Filter[]): void {
  const spec = COLUMNS.get(itemFilters[0]!.path[0]!);
  if (!spec || spec.kind !== 'sequence') throw new Error(`no index table for ${itemFilters[0]!.path[0]}`);
  const alias = aliasOf(spec.tag);
  const parts = itemFilters.map((f) => {
    const column = spec.items[f.path[1]!];
    if (column === undefined) throw new Error(`no index column for ${f.path.join('.')}`);
    return valueCondition(w, column, 'text', f.matcher);
  });
  w.add(alias, `${alias}.pk IN (SELECT ${spec.owner} FROM ${spec.table} WHERE ${parts.join(' AND ')})`);
}

/** The URL scope (/studies/{s}/series, /studies/{s}/series/{x}/instances ...). */
function scopeConditions(w: Where, query: QidoQuery): void {
  const { studyInstanceUID: study, seriesInstanceUID: series } = query.scope;
  const base = BASE[query.level];
  if (query.level === 'study') {
    if (study !== undefined) w.add('s', `s.study_uid = ${w.bind(study)}`);
    return;
  }
  if (query.level === 'instance' && series !== undefined) {
    // Series UIDs are unique per study (UNIQUE (study_pk, series_uid)): with the study, one series pk.
    if (study !== undefined) {
      w.add(
        'i',
        `i.series_pk = (SELECT pk FROM series WHERE study_pk = (SELECT pk FROM studies WHERE study_uid = ${w.bind(study)}) ` +
          `AND series_uid = ${w.bind(series)})`,
      );
    } else {
      w.add('i', `i.series_pk IN (SELECT pk FROM series WHERE series_uid = ${w.bind(series)})`);
    }
    return;
  }
  if (study !== undefined) w.add(base, `${base}.study_pk = (SELECT pk FROM studies WHERE study_uid = ${w.bind(study)})`);
  if (query.level === 'series' && series !== undefined) w.add('se', `se.series_uid = ${w.bind(series)}`);
}

/** FROM clause: the level's table and the parent tables `needed` (inner joins on non-null FKs, so joining never filters). */
function fromClause(level: QueryLevel, needed: Set<Alias>): string {
  const p = needed.has('p');
  const s = p || needed.has('s');
  if (level === 'study') return `studies s${p ? ' JOIN patients p ON p.pk = s.patient_pk' : ''}`;
  const patients = p ? ' JOIN patients p ON p.pk = s.patient_pk' : '';
  if (level === 'series') return `series se${s ? ' JOIN studies s ON s.pk = se.study_pk' : ''}${patients}`;
  return (
    'instances i' +
    (needed.has('se') ? ' JOIN series se ON se.pk = i.series_pk' : '') +
    (s ? ' JOIN studies s ON s.pk = i.study_pk' : '') +
    patients
  );
}

const SELECT: Record<QueryLevel, string> = {
  study: 's.pk, p.doc AS patient_doc, s.doc AS study_doc, s.modalities, s.sop_classes, s.series_count, s.instance_count',
  series:
    'se.pk, p.doc AS patient_doc, s.doc AS study_doc, s.modalities, s.sop_classes, s.series_count, s.instance_count, ' +
    'se.doc AS series_doc, se.instance_count AS series_instance_count',
  instance:
    'i.pk, p.doc AS patient_doc, s.doc AS study_doc, s.modalities, s.sop_classes, s.series_count, s.instance_count, ' +
    'se.doc AS series_doc, se.instance_count AS series_instance_count, i.dataset, i.transfer_syntax_uid',
};

const ALL_PARENTS = new Set<Alias>(['p', 's', 'se']);

/**
 * `access` (issue 5, IndexStore.search): the studies the principal may see, ANDed into the WHERE of the page and
 * of the COUNT at every level (series and instance searches join studies for it), so totals and paging never
 * reveal a match in another study. Absent or constant true: no condition.
 */
export function compileSearch(query: QidoQuery, access?: StudyCondition): CompiledSearch {
  const w = new Where();
  scopeConditions(w, query);
  const sequences = new Map<string, Filter[]>();
  for (const f of query.filters) {
    if (f.path.length > 1) sequences.set(f.path[0]!, [...(sequences.get(f.path[0]!) ?? []), f]);
    else filterCondition(w, f);
  }
  for (const group of sequences.values()) sequenceCondition(w, group);
  if (access !== undefined) {
    // The URL scope and the query keys select; the policy filters what they select (compile-access.ts).
    const compiled = compileAccess(access, { filterOnly: w.conditions.length > 0 });
    if (compiled.sql !== '1') {
      w.add('s', compiled.sql);
      w.params.push(...compiled.params);
    }
  }

  const base = BASE[query.level];
  const where = w.conditions.length > 0 ? ` WHERE ${w.conditions.join(' AND ')}` : '';
  return {
    pageSql: `SELECT ${SELECT[query.level]} FROM ${fromClause(query.level, ALL_PARENTS)}${where} ORDER BY ${base}.pk LIMIT ? OFFSET ?`,
    countSql: `SELECT COUNT(*) FROM ${fromClause(query.level, w.aliases)}${where}`,
    params: w.params,
  };
}

