// WADO-RS Retrieve Frames (PS3.18 10.4.1.1.4): GET {base}/studies/{s}/series/{x}/instances/{i}/frames/{list},
// one part per requested frame, in the order asked. Also registers the bulk data route (bulk-rs.ts).
//
// Representations (PS3.18 8.7.3.3 / 8.7.3.5, Table 8.7.3-2), always multipart/related, one frame per part, each part
// `<frame media type>; transfer-syntax=<its syntax>` (the syntax actually sent):
// - the stored form (the default, first offer): native Pixel Data (Explicit or Implicit VR Little Endian, same
//   pixel bytes; Big Endian swapped and Deflated inflated as in their Explicit VR LE form,
//   services/retrieve-frames.ts) as application/octet-stream with 1.2.840.10008.1.2.1; encapsulated Pixel Data as
//   the stored syntax's frame media type (image/jpeg, image/jls, image/jp2, image/dicom-rle, ...). Asking for
//   that frame media type without a transfer-syntax parameter gets the stored syntax (not the table's default:
//   re-encoding baseline JPEG as lossless JPEG helps nobody). `type=application/octet-stream; transfer-syntax=*`
//   (what OHIF sends, PROTOCOL.md 2) also gets the stored form: `*` lets the server choose (8.7.3.5.2).
// - transcoded (transcode/transcoder.ts), for a media type / syntax the transcoder writes: octet-stream without
//   `*` (or naming 1.2.840.10008.1.2.1) gets native frames decoded from compressed ones, its Table 8.7.3-2
//   default; another frame media type gets the named syntax, else that type's default (image/jls -> .80,
//   image/jp2 -> .90, image/jpeg -> .70, image/jphc -> .201, image/dicom-rle -> .5). The pre-standard names
//   image/x-dicom-rle, image/x-jls and image/jhc (dicomweb-client 0.11.3) are read as the registered ones, and
//   the answer uses the registered name.
// Anything else: 406. Refusals name syntaxes and reasons, never UIDs.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  FRAME_MEDIA_TYPE_ALIASES,
  FRAME_MEDIA_TYPE_DEFAULT_SYNTAX,
  frameMediaTypeOf,
  transferSyntax,
} from '../../dicom/transfer-syntax.js';
import { ANY_TRANSFER_SYNTAX, type RetrieveDeps } from '../../services/retrieve-instances.js';
import { findFramedInstance, framesToRetrieve, instanceBytes, requestedFrames, totalLength, transcodedFrames, type FrameRef } from '../../services/retrieve-frames.js';
import { ENCODABLE_TRANSFER_SYNTAXES } from '../../transcode/codec-table.js';
import { formatMediaType, MediaType } from '../media-types.js';
import { multipartBuffer, multipartResponse, type BufferedPart, type OutgoingPart } from '../multipart-writer.js';
import { negotiate, type Offer } from '../negotiate.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { instanceScope } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';
import { bulkRoute } from './bulk-rs.js';

export interface FramesRouteOptions extends RetrieveDeps {
  urls: UrlSettings;
}

type Params = { study: string; series: string; instance: string; frames: string };

/**
 * Frame bytes up to which the answer is assembled in memory and sent in one write (multipart-writer.ts
 * multipartBuffer: a fraction of the TLS cost of a chunked stream); above it, parts stream one after the other.
 * A request holds up to ~4 times this much for a moment (ciphertext, decrypted segments, frame, answer): 2 MiB
 * covers a 1024 x 1024 16-bit frame and keeps many concurrent requests far from the memory a stream would not use.
 */
export const MAX_BUFFERED_FRAME_BYTES = 2 * 1024 * 1024;

/** One way of sending the frames: a (multipart root) frame media type and the syntaxes it may carry. */
interface FrameOffer extends Offer {
  /** What `transfer-syntax=*` stands for with this media type: the stored form, or this type's default. */
  anyMeans: string;
}

/** Frame media types the transcoder can produce, each with the syntaxes it writes for it (codec-table.ts). */
function writableByMediaType(): Map<string, string[]> {
  const byType = new Map<string, string[]>();
  for (const uid of ENCODABLE_TRANSFER_SYNTAXES) {
    const type = frameMediaTypeOf(uid);
    byType.set(type, [...(byType.get(type) ?? []), uid]);
  }
  return byType;
}
const WRITABLE = writableByMediaType();

/**
 * The offers for frames stored in `storedSyntax`, the stored form first (the default for `*\/*` and no Accept).
 * `transcoding`: whether a transcoder is there; without one only the stored form is offered, as before.
 */
export function frameOffers(storedSyntax: string, transcoding: boolean): FrameOffer[] {
  const ts = transferSyntax(storedSyntax);
  // Native objects are served as 1.2.840.10008.1.2.1 (retrieve-frames.ts swaps or inflates).
  const sent = ts && ts.encapsulated ? storedSyntax : EXPLICIT_VR_LITTLE_ENDIAN;
  const storedType = frameMediaTypeOf(sent);
  const writable = (type: string) => (transcoding ? (WRITABLE.get(type) ?? []) : []);
  const offers: FrameOffer[] = [
    {
      mediaType: MediaType.MULTIPART_RELATED,
      type: storedType,
      transferSyntaxes: [...new Set([sent, ...writable(storedType), ANY_TRANSFER_SYNTAX])],
      defaultTransferSyntax: sent,
      anyMeans: sent,
    },
  ];
  if (storedType !== MediaType.OCTET_STREAM) {
    // transfer-syntax=* on octet-stream: the stored form (OHIF); without it: native, which needs decoding.
    offers.push({
      mediaType: MediaType.MULTIPART_RELATED,
      type: MediaType.OCTET_STREAM,
      transferSyntaxes: [...writable(MediaType.OCTET_STREAM), ANY_TRANSFER_SYNTAX],
      ...(transcoding ? { defaultTransferSyntax: EXPLICIT_VR_LITTLE_ENDIAN } : {}),
      anyMeans: sent,
    });
  }
  for (const [type, syntaxes] of WRITABLE) {
    if (!transcoding || type === storedType || type === MediaType.OCTET_STREAM) continue;
    const fallback = FRAME_MEDIA_TYPE_DEFAULT_SYNTAX[type];
    const dflt = fallback !== undefined && syntaxes.includes(fallback) ? fallback : syntaxes[0]!;
    offers.push({ mediaType: MediaType.MULTIPART_RELATED, type, transferSyntaxes: [...syntaxes, ANY_TRANSFER_SYNTAX], defaultTransferSyntax: dflt, anyMeans: dflt });
  }
  // The pre-standard names, offered exactly as the registered ones they stand for.
  for (const [alias, type] of Object.entries(FRAME_MEDIA_TYPE_ALIASES)) {
    for (const offer of offers.filter((o) => o.type === type)) offers.push({ ...offer, type: alias });
  }
  return offers;
}

function acceptQuery(request: FastifyRequest): string | string[] | undefined {
  return (request.query as Record<string, string | string[] | undefined> | undefined)?.accept;
}

export async function framesRoutes(app: FastifyInstance, options: FramesRouteOptions): Promise<void> {
  app.get('/studies/:study/series/:series/instances/:instance/frames/:frames', async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const { params } = request;
    const scope = instanceScope(params);
    request.audit.event('retrieve');
    const { ref, geometry } = findFramedInstance(options.index, request.access, scope, options);
    auditStudy(request, options.index, scope.studyInstanceUID, [ref.sopClassUID]);
    // The list and the instance's geometry first: a bad frame list is 400 (and no Pixel Data 404) whatever the Accept.
    const requested = requestedFrames(options.index, ref, params.frames, geometry);
    const transcoder = options.transcoder;
    const offers = frameOffers(ref.transferSyntaxUID, transcoder !== undefined);
    const stored = offers[0]!;
    const chosen = negotiate(request.headers.accept, acceptQuery(request), offers);
    const asked = chosen?.transferSyntax === ANY_TRANSFER_SYNTAX ? chosen.offer.anyMeans : chosen?.transferSyntax;
    if (!chosen || asked === undefined) {
      const partSyntax = stored.anyMeans;
      const name = transferSyntax(partSyntax)?.name ?? partSyntax;
      const others = transcoder ? `, or a syntax this server transcodes to (${ENCODABLE_TRANSFER_SYNTAXES.join(', ')})` : '; transcoding is not available';
      throw new AppError(
        'NOT_ACCEPTABLE',
        `frames are available as multipart/related; type="${stored.type}"; transfer-syntax=${partSyntax} (${name}), or with transfer-syntax=*${others}`,
      );
    }

    const instanceUrl = urlsFor(request, options.urls).instance(ref.studyInstanceUID, ref.seriesInstanceUID, ref.sopInstanceUID);
    const partType = frameMediaTypeOf(asked);
    const contentType = formatMediaType(partType, [['transfer-syntax', asked]]);
    let parts: OutgoingPart[];
    if (asked === stored.anyMeans) {
      const frames = framesToRetrieve(options.index, ref, params.frames, requested);
      if (totalLength(frames) <= MAX_BUFFERED_FRAME_BYTES) {
        // Read before the status line goes out, so a failed read is a status (500, 410, 503), then sent in one write.
        const bytes = instanceBytes(options, ref);
        const read = new Map<number, Buffer>(); // a frame listed twice is read once
        const buffered: BufferedPart[] = [];
        for (const f of frames) {
          let body = read.get(f.number);
          if (!body) read.set(f.number, (body = await bytes.buffer(f)));
          buffered.push({ contentType, contentLocation: `${instanceUrl}/frames/${f.number}`, contentLength: f.length, body });
        }
        const answer = multipartBuffer(partType, buffered);
        return reply.type(answer.contentType).send(answer.body);
      }
      // Part bodies are generators not yet started: each range is read when the writer reaches its part.
      const bytes = instanceBytes(options, ref);
      parts = frames.map((f: FrameRef) => ({
        contentType,
        contentLocation: `${instanceUrl}/frames/${f.number}`,
        contentLength: f.length,
        body: bytes.body(f),
      }));
    } else {
      // Transcoded before the status line goes out: a refusal (406) or an overloaded codec (503) is a status.
      const { numbers } = requested;
      const frames = await transcodedFrames(options, transcoder!, ref, numbers, asked);
      const buffered = frames.map((body, k) => ({ contentType, contentLocation: `${instanceUrl}/frames/${numbers[k]}`, contentLength: body.length, body }));
      // Already in memory: one more copy into the answer while small, streamed as they are when large.
      if (totalLength(frames) <= MAX_BUFFERED_FRAME_BYTES) {
        const answer = multipartBuffer(partType, buffered);
        return reply.type(answer.contentType).send(answer.body);
      }
      parts = buffered;
    }
    const response = multipartResponse(partType, parts);
    return reply.type(response.contentType).send(response.stream);
  });
  bulkRoute(app, options);
}
