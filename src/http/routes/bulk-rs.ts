// WADO-RS bulk data (PS3.18 10.4.1.1.5, F.2.7): GET {base}/studies/{s}/series/{x}/instances/{i}/bulk/{path}, the
// target of the BulkDataURIs in metadata. `{path}` is `TAG[/ITEM/TAG...]` (8 uppercase hex per tag, 0-based
// item indexes; services/retrieve-frames.ts renderBulkPath), `7FE00010` being the whole Pixel Data value: the
// native bytes, or for encapsulated data the fragments back to back (item headers and offset table left out).
//
// Representations: `application/octet-stream` single part, the default (OHIF asks for bulk data single-part,
// PROTOCOL.md 2), or `multipart/related; type="application/octet-stream"` with one part. HTTP Range (RFC 9110
// 14) applies to the single-part form only: one range gives 206 with Content-Range, an unsatisfiable one 416
// with `Content-Range: bytes */len`; several ranges are answered with the whole value (200). Big Endian values
// come swapped to little endian, Deflated ones inflated (services/retrieve-frames.ts). Unknown path: 404.

import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { bulkValue, findInstance, instanceBytes } from '../../services/retrieve-frames.js';
import type { RetrieveDeps } from '../../services/retrieve-instances.js';
import { decideRange } from '../byte-range.js';
import { MediaType } from '../media-types.js';
import { multipartResponse } from '../multipart-writer.js';
import { negotiate, type Offer } from '../negotiate.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { instanceScope } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';

type Params = { study: string; series: string; instance: string; '*': string };

const OFFERS: Offer[] = [
  { mediaType: MediaType.OCTET_STREAM },
  { mediaType: MediaType.MULTIPART_RELATED, type: MediaType.OCTET_STREAM },
];

export function bulkRoute(app: FastifyInstance, options: RetrieveDeps & { urls: UrlSettings }): void {
  app.get('/studies/:study/series/:series/instances/:instance/bulk/*', async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const { params } = request;
    const scope = instanceScope(params);
    request.audit.event('retrieve');
    const path = params['*'];
    if (!/^[0-9A-Fa-f]{8}(\/\d{1,9}\/[0-9A-Fa-f]{8})*$/.test(path)) throw new AppError('NOT_FOUND', 'no such bulk data');
    const ref = findInstance(options.index, request.access, scope, options);
    auditStudy(request, options.index, scope.studyInstanceUID, [ref.sopClassUID]);
    const value = bulkValue(ref, path);
    const size = value.length;
    const bytes = instanceBytes(options, ref);

    const query = (request.query as Record<string, string | string[] | undefined> | undefined)?.accept;
    const chosen = negotiate(request.headers.accept, query, OFFERS);
    if (!chosen) throw new AppError('NOT_ACCEPTABLE', 'bulk data is available as application/octet-stream or multipart/related; type="application/octet-stream"');

    if (chosen.offer.mediaType === MediaType.MULTIPART_RELATED) {
      const location = `${urlsFor(request, options.urls).instance(ref.studyInstanceUID, ref.seriesInstanceUID, ref.sopInstanceUID)}/bulk/${path}`;
      const parts = [{ contentType: MediaType.OCTET_STREAM, contentLocation: location, contentLength: size, body: bytes.body(value) }];
      const response = multipartResponse(MediaType.OCTET_STREAM, parts);
      return reply.type(response.contentType).send(response.stream);
    }

    reply.header('accept-ranges', 'bytes');
    const range = decideRange(request.headers.range, size);
    if (range.kind === 'unsatisfiable') {
      return reply.code(416).header('content-range', `bytes */${size}`).type('application/json; charset=utf-8').send({
        error: 'RANGE_NOT_SATISFIABLE',
        message: 'the requested range is outside the value',
      });
    }
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size];
    if (range.kind === 'partial') reply.code(206).header('content-range', `bytes ${start}-${end - 1}/${size}`);
    return reply
      .type(MediaType.OCTET_STREAM)
      .header('content-length', end - start)
      .send(Readable.from(bytes.body(value, start, end)));
  });
}
