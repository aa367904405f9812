// WADO-RS Retrieve Instances (PS3.18 10.4.1): GET {base}/studies/{s}, .../series/{x}, .../instances/{i}
// as the stored Part 10 objects. Metadata, frames, bulk data and rendered resources are separate routes.
//
// Representations (PS3.18 8.7.3.5, Table 8.7.3-5 / 10.4.1-1):
// - multipart/related; type="application/dicom" at every level, the default (missing Accept, */*);
// - single-part application/dicom at the instance level only (one object, nothing to separate).
// Each part: Content-Type application/dicom with the transfer-syntax of its bytes (8.7.3.5.2), Content-Location
// the instance's URL (8.6.1.2). Blobs stream one after another; nothing is buffered, so a 2 GB study costs
// what one read buffer does.

import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import {
  findInstancesToRetrieve,
  nameableTransferSyntaxes,
  prepareRetrieve,
  transcodingRefused,
  ANY_TRANSFER_SYNTAX,
  type RetrieveDeps,
  type RetrievedInstance,
} from '../../services/retrieve-instances.js';
import type { ResourceUrls } from '../../services/resource-urls.js';
import { formatMediaType, MediaType } from '../media-types.js';
import { multipartResponse, type OutgoingPart } from '../multipart-writer.js';
import { negotiate, type Offer } from '../negotiate.js';
import { retrieveScope } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';

export interface WadoRouteOptions extends RetrieveDeps {
  urls: UrlSettings;
}

type Params = { study: string; series?: string; instance?: string };

/**
 * The offers of one resource. `transfer-syntax` may name a stored syntax of the scope or `*`; anything else
 * does not match, so negotiation fails and the answer is 406 (no transcoder yet). No default syntax: without
 * the parameter the objects go as stored (services/retrieve-instances.ts).
 */
function offersFor(transferSyntaxes: string[], singlePart: boolean): Offer[] {
  const syntaxes = [...transferSyntaxes, ANY_TRANSFER_SYNTAX];
  const offers: Offer[] = [{ mediaType: MediaType.MULTIPART_RELATED, type: MediaType.DICOM, transferSyntaxes: syntaxes }];
  if (singlePart) offers.push({ mediaType: MediaType.DICOM, transferSyntaxes: syntaxes });
  return offers;
}

function acceptQuery(request: FastifyRequest): string | string[] | undefined {
  return (request.query as Record<string, string | string[] | undefined> | undefined)?.accept;
}

const partContentType = (i: RetrievedInstance) => formatMediaType(MediaType.DICOM, [['transfer-syntax', i.transferSyntaxUID]]);
const locationOf = (urls: ResourceUrls, i: RetrievedInstance) =>
  urls.instance(i.ref.studyInstanceUID, i.ref.seriesInstanceUID, i.ref.sopInstanceUID);

export async function wadoRoutes(app: FastifyInstance, options: WadoRouteOptions): Promise<void> {
  const handler = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const { params } = request;
    // Path UIDs are checked before any lookup (route-paths.ts): 400, never an index probe.
    const scope = retrieveScope(params);

    const refs = findInstancesToRetrieve(options.index, scope);
    const singlePartAllowed = scope.sopInstanceUID !== undefined;
    const offers = offersFor(nameableTransferSyntaxes(refs), singlePartAllowed);
    const chosen = negotiate(request.headers.accept, acceptQuery(request), offers);
    if (!chosen) {
      const types = singlePartAllowed ? 'multipart/related; type="application/dicom" or application/dicom' : 'multipart/related; type="application/dicom"';
      const why = transcodingRefused(refs.map((r) => r.transferSyntaxUID)).message;
      throw new AppError('NOT_ACCEPTABLE', `acceptable: ${types}; ${why}`);
    }
    const instances = prepareRetrieve(options, refs, chosen.transferSyntax);
    const urls = urlsFor(request, options.urls);

    if (chosen.offer.mediaType === MediaType.DICOM) {
      const [only] = instances as [RetrievedInstance];
      return reply
        .type(partContentType(only))
        .header('content-length', only.size)
        .header('content-location', locationOf(urls, only))
        .send(Readable.from(only.body()));
    }
    // Part bodies are generators not yet started: each blob is opened when the writer reaches its part.
    const parts: OutgoingPart[] = instances.map((i) => ({
      contentType: partContentType(i),
      contentLocation: locationOf(urls, i),
      contentLength: i.size,
      body: i.body(),
    }));
    const { contentType, stream } = multipartResponse(MediaType.DICOM, parts);
    return reply.type(contentType).send(stream);
  };
  app.get('/studies/:study', handler);
  app.get('/studies/:study/series/:series', handler);
  app.get('/studies/:study/series/:series/instances/:instance', handler);
}
