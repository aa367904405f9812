// QIDO-RS as a use case (PS3.18 10.6): run a parsed query against the index and give each match its
// RetrieveURL (0008,1190), which Tables 10.6.3-3/4/5 require at every level when the entity can be retrieved.

import type { DicomJsonDataset } from '../dicom/json-model.js';
import { firstString } from '../dicom/json-model.js';
import type { IndexStore } from '../index/index-store.js';
import type { QidoQuery } from '../index/query/ast.js';
import type { StudyCondition } from '../policy/study-condition.js';
import type { ResourceUrls } from './resource-urls.js';

const STUDY_UID = '0020000D';
const SERIES_UID = '0020000E';
const SOP_INSTANCE_UID = '00080018';
const RETRIEVE_URL = '00081190';

export interface SearchOutcome {
  matches: DicomJsonDataset[];
  /** Matches beyond this page (offset + returned), for the Warning "additional results" header. */
  remaining: number;
}

/**
 * `access` is part of the query (issue 5): the index counts, pages and derives attributes over the studies the
 * principal may search, so no row, count or Warning tells it about the others. Never filtered afterwards.
 */
export function search(index: IndexStore, query: QidoQuery, urls: ResourceUrls, access: StudyCondition): SearchOutcome {
  const { matches, total } = index.search(query, access);
  const withUrls = matches.map((ds) => {
    const study = firstString(ds, STUDY_UID) ?? query.scope.studyInstanceUID;
    const series = firstString(ds, SERIES_UID) ?? query.scope.seriesInstanceUID;
    const instance = firstString(ds, SOP_INSTANCE_UID);
    let url: string | undefined;
    if (query.level === 'study' && study) url = urls.study(study);
    else if (query.level === 'series' && study && series) url = urls.series(study, series);
    else if (query.level === 'instance' && study && series && instance) url = urls.instance(study, series, instance);
    return url ? { ...ds, [RETRIEVE_URL]: { vr: 'UR', Value: [url] } } : ds;
  });
  return { matches: withUrls, remaining: Math.max(0, total - query.offset - matches.length) };
}
