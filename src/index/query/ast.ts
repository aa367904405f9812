// The typed QIDO-RS query (PS3.18 10.6.1, matching per PS3.4 C.2.2.2), built from URL parameters by
// parse-qido.ts and compiled by each IndexStore (sqlite: bound SQL; memory: match.ts).

export type QueryLevel = 'study' | 'series' | 'instance';

/** One matching key. `tag` is the 8-hex attribute (for sequence matching, the item attribute in `path`). */
export type Matcher =
  /** Single value matching; `caseInsensitive` for PN (PS3.4 C.2.2.2.1). */
  | { kind: 'single'; value: string }
  /**
   * List matching: any of the values, exactly. UID list matching (PS3.4 C.2.2.2.2; comma- or
   * backslash-separated in the URL), and the same any-of semantics for a CS key given several values
   * (e.g. ModalitiesInStudy=CT,MR from OHIF's modality filter; see parse-qido.ts).
   */
  | { kind: 'uidList'; values: string[] }
  /** Wildcard matching with * and ? (only for AE CS LO LT PN SH ST UC UR UT). */
  | { kind: 'wildcard'; pattern: string }
  /** Range matching on DA / TM / DT; either bound may be missing, both inclusive, values normalised. */
  | { kind: 'range'; from?: string; to?: string }
  /** PN fuzzy matching (fuzzymatching=true): each query word must prefix some word of the name. */
  | { kind: 'fuzzy'; words: string[] };

export interface Filter {
  /** Path of tags from the level's dataset; length 2 for sequence matching (e.g. 00400275 > 00400009). */
  path: string[];
  vr: string;
  /** Level the attribute belongs to; decides which table/columns a store uses. */
  level: 'patient' | QueryLevel;
  matcher: Matcher;
}

export interface QidoQuery {
  /** Level of the returned entities. */
  level: QueryLevel;
  /** From the URL path: /studies/{study}/series, /studies/{study}/series/{series}/instances ... */
  scope: { studyInstanceUID?: string; seriesInstanceUID?: string };
  filters: Filter[];
  /** Extra attributes to return (8-hex tags), or 'all'. Required return attributes are always included. */
  includeFields: string[] | 'all';
  fuzzyMatching: boolean;
  limit: number;
  offset: number;
}
