// QIDO-RS (PS3.18 10.6): the six search resources of Table 10.6.1-1.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { firstString } from '../../dicom/json-model.js';
import type { IndexStore } from '../../index/index-store.js';
import type { QueryLevel } from '../../index/query/ast.js';
import { parseQido } from '../../index/query/parse-qido.js';
import { search } from '../../services/search.js';
import { negotiateDatasetResponse, sendDatasets } from '../dataset-response.js';
import { uidParam } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';

export interface QidoRouteOptions {
  index: IndexStore;
  defaultLimit: number;
  maxLimit: number;
  urls: UrlSettings;
}

type Params = { study?: string; series?: string };

/** The audit record's query object names the QIDO resource (PS3.15 A.5.3.2 allows it for non-DIMSE queries). */
const RESOURCE: Record<QueryLevel, string> = { study: 'SearchForStudies', series: 'SearchForSeries', instance: 'SearchForInstances' };

export async function qidoRoutes(app: FastifyInstance, options: QidoRouteOptions): Promise<void> {
  const handler = (level: QueryLevel) => async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    // The audit record keeps the query as sent (base64): QIDO values are PHI, so it goes nowhere else.
    const at = request.url.indexOf('?');
    request.audit.event('query', { query: at === -1 ? '' : request.url.slice(at + 1), resource: RESOURCE[level] });
    const scope = {
      studyInstanceUID: request.params.study === undefined ? undefined : uidParam(request.params.study, 'StudyInstanceUID'),
      seriesInstanceUID: request.params.series === undefined ? undefined : uidParam(request.params.series, 'SeriesInstanceUID'),
    };
    const representation = negotiateDatasetResponse(request);
    // URLSearchParams keeps repeated keys (includefield may repeat) and percent-decodes once.
    const params = new URL(request.url, 'https://localhost').searchParams;
    const query = parseQido(level, scope, params, { defaultLimit: options.defaultLimit, maxLimit: options.maxLimit });
    const urls = urlsFor(request, options.urls);
    const { matches, remaining } = search(options.index, query, urls, request.access.studyCondition('search'));
    // PS3.18 10.6.3: 204 when nothing matches; a Warning 299 when more results remain than this page holds.
    if (remaining > 0) {
      reply.header('warning', `299 ${urls.base}: There are ${remaining} additional results that can be requested`);
    }
    // The studies (and patients, when the page carries PatientID) the answer shows.
    for (const ds of matches) {
      const study = firstString(ds, '0020000D') ?? scope.studyInstanceUID;
      if (study) request.audit.study({ studyInstanceUID: study, patientId: firstString(ds, '00100020') ?? '' });
    }
    if (matches.length === 0) return reply.code(204).send();
    return sendDatasets(reply, representation, matches);
  };
  app.get('/studies', handler('study'));
  app.get('/studies/:study/series', handler('series'));
  app.get('/studies/:study/instances', handler('instance'));
  app.get('/series', handler('series'));
  app.get('/studies/:study/series/:series/instances', handler('instance'));
  app.get('/instances', handler('instance'));
}
