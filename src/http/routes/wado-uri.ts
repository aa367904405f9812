// WADO-URI (PS3.18 9): GET {base}/wado?requestType=WADO&studyUID=&seriesUID=&objectUID=[&contentType=]
// [&transferSyntax=]. Only the application/dicom representation exists yet: the stored Part 10 bytes (Implicit
// VR LE and Big Endian re-encoded as Explicit VR LE unless named), single part, through the same retrieve service as WADO-RS (services/retrieve-instances.ts). The default
// contentType is image/jpeg (PS3.18 9, "contentType" parameter): rendering is a later issue, so image types are
// 406 with a message saying so.
//
// Unlike the RESTful services there is no transfer-syntax media-type parameter here (PROTOCOL.md §1): the
// syntax is the transferSyntax query parameter, and the Content-Type is plain application/dicom.

import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { isValidUid } from '../../dicom/uid.js';
import { asStored, findInstancesToRetrieve, prepareRetrieve, ANY_TRANSFER_SYNTAX, type RetrieveDeps } from '../../services/retrieve-instances.js';
import { MediaType } from '../media-types.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { uidParam } from '../route-paths.js';

export type WadoUriRouteOptions = RetrieveDeps;

type Query = Record<string, string | string[] | undefined>;

/** Rendered representations PS3.18 9 defines; not produced yet (rendering is a later issue). */
const RENDERED_TYPES = new Set<string>([MediaType.JPEG, MediaType.PNG, MediaType.GIF, MediaType.JP2]);
/** PS3.18 9: contentType absent means image/jpeg for image objects. */
const DEFAULT_CONTENT_TYPE = MediaType.JPEG;

/** One query parameter; PS3.18 9 gives each parameter once, so a repeated one is 400. */
function single(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw new AppError('BAD_REQUEST', `${name} is given more than once`);
  return v;
}

/**
 * The representation to send: the first supported entry of the comma-separated contentType list
 * (media-type parameters and q-values are ignored). Only application/dicom is supported.
 */
export function chooseContentType(contentType: string | undefined): typeof MediaType.DICOM {
  const asked = (contentType ?? DEFAULT_CONTENT_TYPE)
    .split(',')
    .map((t) => t.split(';')[0]!.trim().toLowerCase())
    .filter((t) => t !== '');
  if (asked.includes(MediaType.DICOM)) return MediaType.DICOM;
  if (asked.some((t) => RENDERED_TYPES.has(t))) {
    throw new AppError(
      'NOT_ACCEPTABLE',
      `rendered images (${[...RENDERED_TYPES].join(', ')}) are not available yet; ask with contentType=application/dicom`,
    );
  }
  throw new AppError('NOT_ACCEPTABLE', 'acceptable contentType: application/dicom');
}

export async function wadoUriRoutes(app: FastifyInstance, options: WadoUriRouteOptions): Promise<void> {
  app.get('/wado', async (request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply) => {
    const query = request.query;
    request.audit.event('retrieve');
    // PS3.18 9: requestType is required and WADO is its only value.
    if (single(query, 'requestType') !== 'WADO') throw new AppError('BAD_REQUEST', 'requestType must be WADO');
    // UIDs are checked before any lookup (route-paths.ts): 400, never an index probe.
    const scope = {
      studyInstanceUID: uidParam(single(query, 'studyUID'), 'studyUID'),
      seriesInstanceUID: uidParam(single(query, 'seriesUID'), 'seriesUID'),
      sopInstanceUID: uidParam(single(query, 'objectUID'), 'objectUID'),
    };
    const transferSyntax = single(query, 'transferSyntax');
    if (transferSyntax !== undefined && transferSyntax !== ANY_TRANSFER_SYNTAX && !isValidUid(transferSyntax)) {
      throw new AppError('INVALID_UID', 'transferSyntax is not a valid UID');
    }
    // De-identification is not implemented: refuse rather than send PHI to a client that asked for none.
    if (single(query, 'anonymize') !== undefined) throw new AppError('BAD_REQUEST', 'anonymize is not supported');
    chooseContentType(single(query, 'contentType'));

    const [ref] = findInstancesToRetrieve(options.index, request.access, scope, 'download', options);
    auditStudy(request, options.index, scope.studyInstanceUID, [ref!.sopClassUID]);
    // The stored syntax, named: the stored bytes (the PS3.18 8.7.3.5.2 ban on Implicit VR LE / Big Endian is a
    // rule of the RESTful media types; a WADO-URI client naming one gets it). Otherwise as WADO-RS: absent or `*`
    // gives the stored bytes, re-encoded to Explicit VR LE for those two; another syntax is the service's 406.
    const instance = transferSyntax === ref!.transferSyntaxUID ? asStored(options, ref!) : prepareRetrieve(options, [ref!], transferSyntax)[0]!;
    const body = await instance.open();
    return reply.type(MediaType.DICOM).header('content-length', body.size).send(Readable.from(body.chunks()));
  });
}
