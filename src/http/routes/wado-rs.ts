// WADO-RS Retrieve Instances (PS3.18 10.4.1): GET {base}/studies/{s}, .../series/{x}, .../instances/{i}
// as the stored Part 10 objects. Metadata, frames, bulk data and rendered resources are separate routes.
//
// Representations (PS3.18 8.7.3.5, Table 8.7.3-5 / 10.4.1-1):
// - multipart/related; type="application/dicom" at every level, the default (missing Accept, */*);
// - single-part application/dicom at the instance level only (one object, nothing to separate).
// Each part: Content-Type application/dicom with the transfer-syntax of its bytes (8.7.3.5.2), Content-Location
// the instance's URL (8.6.1.2). Blobs stream one after another, so a 2 GB study costs what one read buffer does;
// only a single instance of stored bytes up to MAX_BUFFERED_INSTANCE_BYTES is read whole and sent in one write.
// Objects stored in Implicit VR LE or Explicit VR BE go re-encoded as Explicit VR LE (services/retrieve-instances.ts);
// each one's size is planned only when the writer reaches its part.
// transfer-syntax= may name any syntax the transcoder writes (transcode/codec-table.ts): objects in another one
// are transcoded one at a time as their parts come. The first object is made before the status line goes out,
// so a refusal of a single instance (406, 503) is a real status; a later object's failure cuts the stream (no
// closing boundary), the only signal left once 200 is sent.

import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN } from '../../dicom/transfer-syntax.js';
import { ENCODABLE_TRANSFER_SYNTAXES } from '../../transcode/codec-table.js';
import {
  findInstancesToRetrieve,
  nameableTransferSyntaxes,
  prepareRetrieve,
  transcodingRefused,
  webForbiddenRefused,
  ANY_TRANSFER_SYNTAX,
  type RetrieveDeps,
  type RetrievedInstance,
} from '../../services/retrieve-instances.js';
import type { ResourceUrls } from '../../services/resource-urls.js';
import { formatMediaType, MediaType } from '../media-types.js';
import { multipartBuffer, multipartResponse, type OutgoingPart } from '../multipart-writer.js';
import { negotiate, type Offer } from '../negotiate.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { retrieveScope } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';

export interface WadoRouteOptions extends RetrieveDeps {
  urls: UrlSettings;
}

type Params = { study: string; series?: string; instance?: string };

const WEB_FORBIDDEN = [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN];

/**
 * Stored bytes up to which a single instance is read whole and sent in one write; above it, and for series and
 * studies, objects stream one at a time (a 2 GB study needs one read buffer). A request holds up to ~4 times this
 * much for a moment (ciphertext, decrypted segments, object, answer), as for frames (frames-rs.ts).
 */
export const MAX_BUFFERED_INSTANCE_BYTES = 2 * 1024 * 1024;

/**
 * The offers of one resource. `transfer-syntax` may name a syntax the scope's objects are sent in (stored, or
 * Explicit VR LE for re-encoded ones), one the transcoder writes, or `*`; anything else does not match, so
 * negotiation fails and the answer is 406. No default syntax: without the parameter the objects go as the server
 * has them (services/retrieve-instances.ts prepareRetrieve says why).
 */
function offersFor(transferSyntaxes: readonly string[], singlePart: boolean): Offer[] {
  const syntaxes = [...new Set([...transferSyntaxes, ANY_TRANSFER_SYNTAX])];
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
    // Audit: 110104 R when it ends; a whole study or series also 110102 when it starts.
    request.audit.event('retrieve', { bulk: scope.sopInstanceUID === undefined });

    const refs = findInstancesToRetrieve(options.index, request.access, scope, 'download', options);
    auditStudy(request, options.index, scope.studyInstanceUID, refs.map((r) => r.sopClassUID));
    const singlePartAllowed = scope.sopInstanceUID !== undefined;
    const writable = options.transcoder ? ENCODABLE_TRANSFER_SYNTAXES : [];
    const offers = offersFor([...nameableTransferSyntaxes(refs), ...writable], singlePartAllowed);
    const chosen = negotiate(request.headers.accept, acceptQuery(request), offers);
    if (!chosen) {
      // A client naming Implicit VR LE or Big Endian is told why those are never sent (PS3.18 8.7.3.5.2).
      const forbidden = negotiate(request.headers.accept, acceptQuery(request), offersFor(WEB_FORBIDDEN, singlePartAllowed));
      if (forbidden && forbidden.transferSyntax !== ANY_TRANSFER_SYNTAX && forbidden.transferSyntax !== undefined) {
        throw webForbiddenRefused(forbidden.transferSyntax);
      }
      const types = singlePartAllowed ? 'multipart/related; type="application/dicom" or application/dicom' : 'multipart/related; type="application/dicom"';
      const why = transcodingRefused(refs.map((r) => r.transferSyntaxUID), options.transcoder !== undefined).message;
      throw new AppError('NOT_ACCEPTABLE', `acceptable: ${types}; ${why}`);
    }
    const instances = prepareRetrieve(options, refs, chosen.transferSyntax);
    const urls = urlsFor(request, options.urls);

    // One instance of stored bytes up to MAX_BUFFERED_INSTANCE_BYTES is read whole before the status line goes out
    // (so any failed read is a status) and sent in one write: a fraction of the TLS cost of a chunked stream
    // (multipart-writer.ts multipartBuffer). Series and studies stream, whatever their size.
    const one = instances.length === 1 ? instances[0]! : undefined;
    if (one?.stored && one.stored.size <= MAX_BUFFERED_INSTANCE_BYTES) {
      const bytes = await one.stored.read();
      if (chosen.offer.mediaType === MediaType.DICOM) {
        return reply.header('content-location', locationOf(urls, one)).type(partContentType(one)).send(bytes);
      }
      const part = { contentType: partContentType(one), contentLocation: locationOf(urls, one), contentLength: one.stored.size, body: bytes };
      const answer = multipartBuffer(MediaType.DICOM, [part]);
      return reply.type(answer.contentType).send(answer.body);
    }

    if (chosen.offer.mediaType === MediaType.DICOM) {
      const [only] = instances as [RetrievedInstance];
      const body = await only.open();
      return reply
        .type(partContentType(only))
        .header('content-length', body.size)
        .header('content-location', locationOf(urls, only))
        .send(Readable.from(body.chunks()));
    }
    // Parts are made when the writer asks for them: a re-encoded object's size is planned (its headers read),
    // a transcoded one made, only then, and each blob is opened when its body is pulled. The first one now, so
    // that its failure is still a status code.
    const firstBody = await instances[0]!.open();
    async function* parts(): AsyncGenerator<OutgoingPart> {
      for (const [k, i] of instances.entries()) {
        const body = k === 0 ? firstBody : await i.open();
        yield { contentType: partContentType(i), contentLocation: locationOf(urls, i), contentLength: body.size, body: body.chunks() };
      }
    }
    const { contentType, stream } = multipartResponse(MediaType.DICOM, parts());
    return reply.type(contentType).send(stream);
  };
  app.get('/studies/:study', handler);
  app.get('/studies/:study/series/:series', handler);
  app.get('/studies/:study/series/:series/instances/:instance', handler);
}
