// Which attributes belong to which level of the Study Root information model (PS3.4 C.6.2), which of
// them QIDO-RS can match on (PS3.18 Table 10.6.1-5 plus what OHIF sends), and what each query level
// returns (PS3.18 Tables 10.6.3-3/4/5).
//
// This is deliberately a small local table, not the full data dictionary: src/dicom/tags.ts (another
// module) will own keyword <-> tag for everything; the lead reconciles the two. Only attributes listed
// here can be given by keyword in a QIDO request or returned empty when absent.

import type { QueryLevel } from '../index/query/ast.js';
import type { DicomJsonDataset } from './json-model.js';
import { keywordToTag } from './dictionary.js';

export type EntityLevel = 'patient' | QueryLevel;

export interface AttributeDef {
  /** 8 uppercase hex digits. */
  tag: string;
  keyword: string;
  vr: string;
  level: EntityLevel;
  /** A matching key of this server (the indexes hold a column for it). */
  matching?: boolean;
  /**
   * Matched against every value (any value matches, PS3.4 C.2.2.2). All other matching keys are VM 1
   * and are matched against their first value only, which is what the SQL columns hold.
   */
  multiValued?: boolean;
  /** Computed by the index from the entities below (PS3.4 C.3.4, Additional Query/Retrieve Attributes); never read from an instance. */
  derived?: boolean;
  /** For SQ matching keys: the item attributes that can be matched (PS3.4 C.2.2.2.6). */
  items?: AttributeDef[];
}

const REQUEST_ATTRIBUTE_ITEMS: AttributeDef[] = [
  { tag: '00400009', keyword: 'ScheduledProcedureStepID', vr: 'SH', level: 'series', matching: true },
  { tag: '00401001', keyword: 'RequestedProcedureID', vr: 'SH', level: 'series', matching: true },
];

/**
 * The attributes this server knows by name. Matching keys: the required ones of PS3.18 Table 10.6.1-5,
 * plus StudyDescription (OHIF's study list) and a few that users search by.
 */
export const ATTRIBUTES: readonly AttributeDef[] = [
  // Patient IE (Patient Module, PS3.3 C.7.1.1)
  { tag: '00100010', keyword: 'PatientName', vr: 'PN', level: 'patient', matching: true },
  { tag: '00100020', keyword: 'PatientID', vr: 'LO', level: 'patient', matching: true },
  { tag: '00100021', keyword: 'IssuerOfPatientID', vr: 'LO', level: 'patient', matching: true },
  { tag: '00100030', keyword: 'PatientBirthDate', vr: 'DA', level: 'patient', matching: true },
  { tag: '00100032', keyword: 'PatientBirthTime', vr: 'TM', level: 'patient' },
  { tag: '00100040', keyword: 'PatientSex', vr: 'CS', level: 'patient', matching: true },
  { tag: '00101000', keyword: 'OtherPatientIDs', vr: 'LO', level: 'patient' },
  { tag: '00101001', keyword: 'OtherPatientNames', vr: 'PN', level: 'patient' },
  { tag: '00102160', keyword: 'EthnicGroup', vr: 'SH', level: 'patient' },
  { tag: '00104000', keyword: 'PatientComments', vr: 'LT', level: 'patient' },

  // Study IE (General Study C.7.2.1, Patient Study C.7.2.2)
  { tag: '00080020', keyword: 'StudyDate', vr: 'DA', level: 'study', matching: true },
  { tag: '00080030', keyword: 'StudyTime', vr: 'TM', level: 'study', matching: true },
  { tag: '00080050', keyword: 'AccessionNumber', vr: 'SH', level: 'study', matching: true },
  { tag: '00080056', keyword: 'InstanceAvailability', vr: 'CS', level: 'study', derived: true },
  { tag: '00080061', keyword: 'ModalitiesInStudy', vr: 'CS', level: 'study', matching: true, multiValued: true, derived: true },
  { tag: '00080062', keyword: 'SOPClassesInStudy', vr: 'UI', level: 'study', matching: true, multiValued: true, derived: true },
  { tag: '00080090', keyword: 'ReferringPhysicianName', vr: 'PN', level: 'study', matching: true },
  // SOP Common, but one offset per study is what every modality writes; kept with the study.
  { tag: '00080201', keyword: 'TimezoneOffsetFromUTC', vr: 'SH', level: 'study' },
  { tag: '00081030', keyword: 'StudyDescription', vr: 'LO', level: 'study', matching: true },
  { tag: '00081032', keyword: 'ProcedureCodeSequence', vr: 'SQ', level: 'study' },
  { tag: '00081060', keyword: 'NameOfPhysiciansReadingStudy', vr: 'PN', level: 'study' },
  { tag: '00101010', keyword: 'PatientAge', vr: 'AS', level: 'study' },
  { tag: '00101020', keyword: 'PatientSize', vr: 'DS', level: 'study' },
  { tag: '00101030', keyword: 'PatientWeight', vr: 'DS', level: 'study' },
  { tag: '0020000D', keyword: 'StudyInstanceUID', vr: 'UI', level: 'study', matching: true },
  { tag: '00200010', keyword: 'StudyID', vr: 'SH', level: 'study', matching: true },
  { tag: '00201206', keyword: 'NumberOfStudyRelatedSeries', vr: 'IS', level: 'study', derived: true },
  { tag: '00201208', keyword: 'NumberOfStudyRelatedInstances', vr: 'IS', level: 'study', derived: true },

  // Series IE (General Series C.7.3.1, General Equipment C.7.5.1, Frame of Reference C.7.4.1)
  { tag: '00080021', keyword: 'SeriesDate', vr: 'DA', level: 'series', matching: true },
  { tag: '00080031', keyword: 'SeriesTime', vr: 'TM', level: 'series', matching: true },
  { tag: '00080060', keyword: 'Modality', vr: 'CS', level: 'series', matching: true },
  { tag: '00080070', keyword: 'Manufacturer', vr: 'LO', level: 'series' },
  { tag: '00080080', keyword: 'InstitutionName', vr: 'LO', level: 'series', matching: true },
  { tag: '00081010', keyword: 'StationName', vr: 'SH', level: 'series' },
  { tag: '0008103E', keyword: 'SeriesDescription', vr: 'LO', level: 'series', matching: true },
  { tag: '00081050', keyword: 'PerformingPhysicianName', vr: 'PN', level: 'series' },
  { tag: '00081090', keyword: 'ManufacturerModelName', vr: 'LO', level: 'series' },
  { tag: '00180015', keyword: 'BodyPartExamined', vr: 'CS', level: 'series', matching: true },
  { tag: '00185100', keyword: 'PatientPosition', vr: 'CS', level: 'series' },
  { tag: '0020000E', keyword: 'SeriesInstanceUID', vr: 'UI', level: 'series', matching: true },
  { tag: '00200011', keyword: 'SeriesNumber', vr: 'IS', level: 'series', matching: true },
  { tag: '00200052', keyword: 'FrameOfReferenceUID', vr: 'UI', level: 'series' },
  { tag: '00200060', keyword: 'Laterality', vr: 'CS', level: 'series', matching: true },
  { tag: '00201209', keyword: 'NumberOfSeriesRelatedInstances', vr: 'IS', level: 'series', derived: true },
  { tag: '00400244', keyword: 'PerformedProcedureStepStartDate', vr: 'DA', level: 'series', matching: true },
  { tag: '00400245', keyword: 'PerformedProcedureStepStartTime', vr: 'TM', level: 'series', matching: true },
  { tag: '00400275', keyword: 'RequestAttributesSequence', vr: 'SQ', level: 'series', matching: true, items: REQUEST_ATTRIBUTE_ITEMS },

  // Instance IE (SOP Common C.12.1, General Image C.7.6.1, Image Pixel C.7.6.3, Multi-frame C.7.6.6)
  { tag: '00080008', keyword: 'ImageType', vr: 'CS', level: 'instance' },
  { tag: '00080016', keyword: 'SOPClassUID', vr: 'UI', level: 'instance', matching: true },
  { tag: '00080018', keyword: 'SOPInstanceUID', vr: 'UI', level: 'instance', matching: true },
  { tag: '00080023', keyword: 'ContentDate', vr: 'DA', level: 'instance', matching: true },
  { tag: '0008002A', keyword: 'AcquisitionDateTime', vr: 'DT', level: 'instance', matching: true },
  { tag: '00080033', keyword: 'ContentTime', vr: 'TM', level: 'instance', matching: true },
  { tag: '00083002', keyword: 'AvailableTransferSyntaxUID', vr: 'UI', level: 'instance', derived: true },
  { tag: '00200013', keyword: 'InstanceNumber', vr: 'IS', level: 'instance', matching: true },
  { tag: '00280008', keyword: 'NumberOfFrames', vr: 'IS', level: 'instance' },
  { tag: '00280010', keyword: 'Rows', vr: 'US', level: 'instance' },
  { tag: '00280011', keyword: 'Columns', vr: 'US', level: 'instance' },
  { tag: '00280100', keyword: 'BitsAllocated', vr: 'US', level: 'instance' },
];

const BY_TAG = new Map(ATTRIBUTES.map((a) => [a.tag, a]));
const BY_KEYWORD = new Map(ATTRIBUTES.map((a) => [a.keyword, a]));

export function attributeByTag(tag: string): AttributeDef | undefined {
  return BY_TAG.get(tag);
}

export function attributeByKeyword(keyword: string): AttributeDef | undefined {
  return BY_KEYWORD.get(keyword);
}

// Item attributes of matchable sequences, by keyword: only to resolve dotted paths
// (RequestAttributesSequence.RequestedProcedureID); at the top level they are not matching keys.
const ITEM_TAG_BY_KEYWORD = new Map(ATTRIBUTES.flatMap((a) => a.items ?? []).map((i) => [i.keyword, i.tag]));

/** Tag of a keyword known to this table, top-level or sequence item. */
export function tagOfKeyword(keyword: string): string | undefined {
  // Our table first (it knows the sequence item keys), then the full PS3.6 dictionary, so that
  // includefield=<any keyword> works as PS3.18 8.3.4.1 allows.
  return BY_KEYWORD.get(keyword)?.tag ?? ITEM_TAG_BY_KEYWORD.get(keyword) ?? keywordToTag(keyword);
}

// Attributes not in ATTRIBUTES are still split by level when an instance is stored, so that
// includefield=<any study attribute> works at the study level. Study IE: General Study (C.7.2.1) and
// Patient Study (C.7.2.2); Series IE: General Series (C.7.3.1), General Equipment (C.7.5.1) and
// Frame of Reference (C.7.4.1); Patient: group 0010 except the Patient Study ones below.
const STUDY_TAGS = new Set([
  '00080051', '00080096', '0008009C', '00081048', '00081049', '00081062', '00081080', '00081084',
  '00101021', '00101022', '00101023', '00101024', '00102000', '00102110', '00102180', '001021A0',
  '001021B0', '001021C0', '001021D0', '00102203', '00321032', '00321033', '00321034', '00321060',
  '00321064', '00380010', '00380014', '00380060', '00380062', '00380064', '00380300', '00380500',
  '00401012',
]);
const SERIES_TAGS = new Set([
  '00080064', '00081040', '00081041', '00081052', '00081070', '00081072', '00081111', '00081250',
  '00181000', '00181002', '00181004', '00181008', '00181020', '00181050', '00181200', '00181201',
  '00181030', '00185101', '00200200', '00201040', '00280108', '00280109', '00400250', '00400251',
  '00400253', '00400254', '00400260', '00400280', '0040A372', '0040A390', '00102210',
]);

/** The level whose entity holds an attribute; anything unknown (private tags included) is instance-level. */
export function levelOfTag(tag: string): EntityLevel {
  const known = BY_TAG.get(tag);
  if (known) return known.level;
  if (STUDY_TAGS.has(tag)) return 'study';
  if (SERIES_TAGS.has(tag)) return 'series';
  if (tag.startsWith('0010')) return 'patient';
  return 'instance';
}

/** Patient and Study are one query level in the Study Root model (PS3.4 C.6.2.1). */
export const LEVEL_RANK: Record<EntityLevel, number> = { patient: 0, study: 0, series: 1, instance: 2 };

/** Whether an attribute of `attributeLevel` may be matched or returned by a query at `queryLevel`. */
export function isAtOrAbove(attributeLevel: EntityLevel, queryLevel: QueryLevel): boolean {
  return LEVEL_RANK[attributeLevel] <= LEVEL_RANK[queryLevel];
}

export interface ReturnKey {
  tag: string;
  /** "if known" in PS3.18 Tables 10.6.3-3/4/5: omitted when the entity has no value. */
  ifKnown?: boolean;
}

/**
 * Required return attributes (PS3.18 Tables 10.6.3-3, -4, -5). RetrieveURL (0008,1190) is added by
 * the service layer, which knows the base URL. The unique keys of the levels above (Study / Series
 * Instance UID) are added to series and instance results, as a hierarchical C-FIND response carries
 * them (PS3.4 C.4.1.2): OHIF needs 0020000D on series results.
 */
export const REQUIRED_RETURN: Record<QueryLevel, readonly ReturnKey[]> = {
  study: [
    { tag: '00080020' },
    { tag: '00080030' },
    { tag: '00080050' },
    { tag: '00080056', ifKnown: true },
    { tag: '00080061' },
    { tag: '00080090' },
    { tag: '00080201', ifKnown: true },
    { tag: '00100010' },
    { tag: '00100020' },
    { tag: '00100030' },
    { tag: '00100040' },
    { tag: '0020000D' },
    { tag: '00200010' },
    { tag: '00201206' },
    { tag: '00201208' },
  ],
  series: [
    { tag: '00080056', ifKnown: true },
    { tag: '00080060' },
    { tag: '00080201', ifKnown: true },
    { tag: '0008103E', ifKnown: true },
    { tag: '0020000D' },
    { tag: '0020000E' },
    { tag: '00200011' },
    { tag: '00201209' },
    { tag: '00400244', ifKnown: true },
    { tag: '00400245', ifKnown: true },
    { tag: '00400275', ifKnown: true },
  ],
  instance: [
    { tag: '00080016' },
    { tag: '00080018' },
    { tag: '00080056', ifKnown: true },
    { tag: '00080201', ifKnown: true },
    { tag: '00083002', ifKnown: true },
    { tag: '0020000D' },
    { tag: '0020000E' },
    { tag: '00200013' },
    { tag: '00280008', ifKnown: true },
    { tag: '00280010', ifKnown: true },
    { tag: '00280011', ifKnown: true },
    { tag: '00280100', ifKnown: true },
  ],
};

/**
 * The entity levels whose attributes a query returns (PS3.18 Table 10.6.3-2 / 10.6.1-2): All Studies
 * -> Study (with its Patient); Study's Series -> Series; All Series -> Study + Series; Study's
 * Instances -> Series + Instance; Series' Instances -> Instance; All Instances -> all.
 */
export function returnedLevels(
  level: QueryLevel,
  scope: { studyInstanceUID?: string; seriesInstanceUID?: string },
): EntityLevel[] {
  const withStudy = scope.studyInstanceUID === undefined;
  if (level === 'study') return ['patient', 'study'];
  if (level === 'series') return withStudy ? ['patient', 'study', 'series'] : ['series'];
  const out: EntityLevel[] = withStudy ? ['patient', 'study'] : [];
  if (scope.seriesInstanceUID === undefined) out.push('series');
  out.push('instance');
  return out;
}

/** Instance Availability (0008,0056) of everything the index lists: the blobs are on local storage. */
export const INSTANCE_AVAILABILITY = 'ONLINE';

export interface LevelDatasets {
  patient: DicomJsonDataset;
  study: DicomJsonDataset;
  series: DicomJsonDataset;
}

/**
 * The patient, study and series attributes of an instance, each level's own document in the index.
 * Derived attributes are left out: the index computes them (a dataset that carries, say,
 * NumberOfStudyRelatedInstances from somewhere else must not override the real count).
 */
export function splitByLevel(dataset: DicomJsonDataset): LevelDatasets {
  const out: LevelDatasets = { patient: {}, study: {}, series: {} };
  for (const [tag, attr] of Object.entries(dataset)) {
    if (BY_TAG.get(tag)?.derived) continue;
    const level = levelOfTag(tag);
    if (level !== 'instance') out[level][tag] = attr;
  }
  return out;
}
