// WADO-RS Retrieve Frames (PS3.18 10.4.1.1.4): GET {base}/studies/{s}/series/{x}/instances/{i}/frames/{list},
// one part per requested frame, in the order asked. Also registers the bulk data route (bulk-rs.ts).
//
// Representations (PS3.18 8.7.3.3 / 8.7.3.5, Table 8.7.3-2), always multipart/related, one frame per part:
// - native Pixel Data (Explicit or Implicit VR Little Endian, same pixel bytes; Big Endian swapped and Deflated
//   inflated as in their Explicit VR LE form, services/retrieve-frames.ts): type="application/octet-stream",
//   each part `application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1`;
// - encapsulated Pixel Data: the stored syntax's frame media type (image/jpeg, image/jls, image/jp2,
//   image/dicom-rle, ...) with `transfer-syntax=<stored>` on each part. `type=application/octet-stream;
//   transfer-syntax=*` (what OHIF sends, PROTOCOL.md 2) gets the same: `*` lets the server choose (8.7.3.5.2).
//   Without a transfer-syntax parameter the stored syntax is sent (as for instances: no transcoder yet).
// Any other named transfer syntax, octet-stream without `*` for compressed data: 406. Refusals name levels and reasons, never UIDs.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, transferSyntax } from '../../dicom/transfer-syntax.js';
import { ANY_TRANSFER_SYNTAX, type RetrieveDeps } from '../../services/retrieve-instances.js';
import { findInstance, framesToRetrieve, instanceBytes, type FrameRef } from '../../services/retrieve-frames.js';
import { formatMediaType, MediaType } from '../media-types.js';
import { multipartResponse, type OutgoingPart } from '../multipart-writer.js';
import { negotiate, type Offer } from '../negotiate.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { instanceScope } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';
import { bulkRoute } from './bulk-rs.js';

export interface FramesRouteOptions extends RetrieveDeps {
  urls: UrlSettings;
}

type Params = { study: string; series: string; instance: string; frames: string };

/** What a part is sent as: its media type and transfer syntax. */
interface FrameOffer extends Offer {
  /** Set on the octet-stream offer for compressed data: usable only with `transfer-syntax=*`. */
  onlyWithAny?: boolean;
}

function offersFor(storedSyntax: string): { offers: FrameOffer[]; partType: string; partSyntax: string } {
  const ts = transferSyntax(storedSyntax);
  if (!ts || !ts.encapsulated) {
    // Native: the pixel bytes served are those of 1.2.840.10008.1.2.1 (retrieve-frames.ts swaps or inflates).
    const offer: FrameOffer = {
      mediaType: MediaType.MULTIPART_RELATED,
      type: MediaType.OCTET_STREAM,
      transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN, ANY_TRANSFER_SYNTAX],
      defaultTransferSyntax: EXPLICIT_VR_LITTLE_ENDIAN,
    };
    return { offers: [offer], partType: MediaType.OCTET_STREAM, partSyntax: EXPLICIT_VR_LITTLE_ENDIAN };
  }
  const syntaxes = [storedSyntax, ANY_TRANSFER_SYNTAX];
  return {
    offers: [
      { mediaType: MediaType.MULTIPART_RELATED, type: ts.frameMediaType, transferSyntaxes: syntaxes },
      { mediaType: MediaType.MULTIPART_RELATED, type: MediaType.OCTET_STREAM, transferSyntaxes: [ANY_TRANSFER_SYNTAX], onlyWithAny: true },
    ],
    partType: ts.frameMediaType,
    partSyntax: storedSyntax,
  };
}

function acceptQuery(request: FastifyRequest): string | string[] | undefined {
  return (request.query as Record<string, string | string[] | undefined> | undefined)?.accept;
}

export async function framesRoutes(app: FastifyInstance, options: FramesRouteOptions): Promise<void> {
  app.get('/studies/:study/series/:series/instances/:instance/frames/:frames', async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const { params } = request;
    const scope = instanceScope(params);
    request.audit.event('retrieve');
    const ref = findInstance(options.index, request.access, scope, options);
    auditStudy(request, options.index, scope.studyInstanceUID, [ref.sopClassUID]);
    const frames = framesToRetrieve(options.index, ref, params.frames);

    const { offers, partType, partSyntax } = offersFor(ref.transferSyntaxUID);
    const chosen = negotiate(request.headers.accept, acceptQuery(request), offers);
    if (!chosen || (chosen.offer.onlyWithAny && chosen.transferSyntax !== ANY_TRANSFER_SYNTAX)) {
      const name = transferSyntax(partSyntax)?.name ?? partSyntax;
      throw new AppError(
        'NOT_ACCEPTABLE',
        `frames are available as multipart/related; type="${partType}"; transfer-syntax=${partSyntax} (${name}), or with transfer-syntax=*; transcoding is not available`,
      );
    }

    const instanceUrl = urlsFor(request, options.urls).instance(ref.studyInstanceUID, ref.seriesInstanceUID, ref.sopInstanceUID);
    const contentType = formatMediaType(partType, [['transfer-syntax', partSyntax]]);
    // Part bodies are generators not yet started: each range is read when the writer reaches its part.
    const bytes = instanceBytes(options, ref);
    const parts: OutgoingPart[] = frames.map((f: FrameRef) => ({
      contentType,
      contentLocation: `${instanceUrl}/frames/${f.number}`,
      contentLength: f.length,
      body: bytes.body(f),
    }));
    const response = multipartResponse(partType, parts);
    return reply.type(response.contentType).send(response.stream);
  });
  bulkRoute(app, options);
}
