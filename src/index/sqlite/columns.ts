// Where each matching key of src/dicom/levels.ts lives in the SQLite schema (migrations.ts), and how
// a stored value becomes a column value. test/index/sqlite-schema.test.ts checks that every matching
// key has a column here and that every column exists in the migrated database.

import type { DicomJsonDataset } from '../../dicom/json-model.js';
import { attributeByTag, ATTRIBUTES, type EntityLevel } from '../../dicom/levels.js';
import {
  normalizeText,
  parseIntegerString,
  personNameGroups,
  personNameWords,
  storedTemporal,
} from '../query/normalize.js';

export type Alias = 'p' | 's' | 'se' | 'i';

export const TABLE: Record<Alias, string> = { p: 'patients', s: 'studies', se: 'series', i: 'instances' };
export const ALIAS: Record<EntityLevel, Alias> = { patient: 'p', study: 's', series: 'se', instance: 'i' };

export type ColumnSpec =
  /** A VM 1 value in a column of the level's table: text (case-sensitive), IS as integer, DA/TM/DT padded. */
  | { tag: string; kind: 'text' | 'integer' | 'temporal'; column: string }
  /** A PN: three folded columns `${column}_a|_i|_p` (component groups) plus words in person_name_words. */
  | { tag: string; kind: 'pn'; column: string }
  /** A multi-valued derived key kept in a child table (owner, value). */
  | { tag: string; kind: 'list'; table: string; owner: string; column: string }
  /** A sequence whose items are rows of a child table (owner, item, one column per item key). */
  | { tag: string; kind: 'sequence'; table: string; owner: string; items: Record<string, string> };

const SPECS: ColumnSpec[] = [
  { tag: '00100010', kind: 'pn', column: 'patient_name' },
  { tag: '00100020', kind: 'text', column: 'patient_id' },
  { tag: '00100021', kind: 'text', column: 'issuer_of_patient_id' },
  { tag: '00100030', kind: 'temporal', column: 'patient_birth_date' },
  { tag: '00100040', kind: 'text', column: 'patient_sex' },

  { tag: '00080020', kind: 'temporal', column: 'study_date' },
  { tag: '00080030', kind: 'temporal', column: 'study_time' },
  { tag: '00080050', kind: 'text', column: 'accession_number' },
  { tag: '00080061', kind: 'list', table: 'study_modalities', owner: 'study_pk', column: 'modality' },
  { tag: '00080062', kind: 'list', table: 'study_sop_classes', owner: 'study_pk', column: 'sop_class_uid' },
  { tag: '00080090', kind: 'pn', column: 'referring_physician_name' },
  { tag: '00081030', kind: 'text', column: 'study_description' },
  { tag: '0020000D', kind: 'text', column: 'study_uid' },
  { tag: '00200010', kind: 'text', column: 'study_id' },

  { tag: '00080021', kind: 'temporal', column: 'series_date' },
  { tag: '00080031', kind: 'temporal', column: 'series_time' },
  { tag: '00080060', kind: 'text', column: 'modality' },
  { tag: '00080080', kind: 'text', column: 'institution_name' },
  { tag: '0008103E', kind: 'text', column: 'series_description' },
  { tag: '00180015', kind: 'text', column: 'body_part_examined' },
  { tag: '0020000E', kind: 'text', column: 'series_uid' },
  { tag: '00200011', kind: 'integer', column: 'series_number' },
  { tag: '00200060', kind: 'text', column: 'laterality' },
  { tag: '00400244', kind: 'temporal', column: 'pps_start_date' },
  { tag: '00400245', kind: 'temporal', column: 'pps_start_time' },
  {
    tag: '00400275',
    kind: 'sequence',
    table: 'series_request_attributes',
    owner: 'series_pk',
    items: { '00400009': 'scheduled_procedure_step_id', '00401001': 'requested_procedure_id' },
  },

  { tag: '00080016', kind: 'text', column: 'sop_class_uid' },
  { tag: '00080018', kind: 'text', column: 'sop_uid' },
  { tag: '00080023', kind: 'temporal', column: 'content_date' },
  { tag: '0008002A', kind: 'temporal', column: 'acquisition_datetime' },
  { tag: '00080033', kind: 'temporal', column: 'content_time' },
  { tag: '00200013', kind: 'integer', column: 'instance_number' },
];

export const COLUMNS: ReadonlyMap<string, ColumnSpec> = new Map(SPECS.map((s) => [s.tag, s]));

/** The level table alias of an attribute (a matching key of levels.ts). */
export function aliasOf(tag: string): Alias {
  return ALIAS[attributeByTag(tag)!.level];
}

/** Column specs that are plain columns of the given level's table (the ones written with the row). */
export function rowColumns(level: EntityLevel): ColumnSpec[] {
  return SPECS.filter((s) => s.kind !== 'list' && s.kind !== 'sequence' && attributeByTag(s.tag)!.level === level);
}

/** Column names of a row-column spec, in the order rowValues() returns their values. */
export function columnNames(spec: ColumnSpec): string[] {
  if (spec.kind === 'pn') return [`${spec.column}_a`, `${spec.column}_i`, `${spec.column}_p`];
  if (spec.kind === 'list' || spec.kind === 'sequence') return [];
  return [spec.column];
}

/** A first value as its column value (normalize.ts decides equality for both stores). */
export function columnValue(vr: string, kind: 'text' | 'integer' | 'temporal', value: unknown): string | number | null {
  if (kind === 'integer') return parseIntegerString(value) ?? null;
  if (kind === 'temporal') return storedTemporal(vr, value) ?? null;
  return normalizeText(value) ?? null;
}

/** The column values of a level's row, in rowColumns() x columnNames() order. */
export function rowValues(level: EntityLevel, doc: DicomJsonDataset): (string | number | null)[] {
  const out: (string | number | null)[] = [];
  for (const spec of rowColumns(level)) {
    const first = doc[spec.tag]?.Value?.[0];
    if (spec.kind === 'pn') {
      const [a, i, p] = personNameGroups(first);
      out.push(a ?? null, i ?? null, p ?? null);
    } else if (spec.kind !== 'list' && spec.kind !== 'sequence') {
      out.push(columnValue(attributeByTag(spec.tag)!.vr, spec.kind, first));
    }
  }
  return out;
}

/** The fuzzy-matching words of the level's PN columns: [tag, word] pairs. */
export function nameWords(level: EntityLevel, doc: DicomJsonDataset): [string, string][] {
  const out: [string, string][] = [];
  for (const spec of rowColumns(level)) {
    if (spec.kind !== 'pn') continue;
    for (const w of personNameWords(personNameGroups(doc[spec.tag]?.Value?.[0]))) out.push([spec.tag, w]);
  }
  return out;
}

/** Every matching key of levels.ts, for the schema test. */
export const MATCHING_TAGS = ATTRIBUTES.filter((a) => a.matching).map((a) => a.tag);
