// WADO-URI (PS3.18 9): GET {base}/wado?requestType=WADO&studyUID=&seriesUID=&objectUID=[&contentType=]
// [&transferSyntax=][&frameNumber=][&rows=][&columns=][&region=][&windowCenter=&windowWidth=][&imageQuality=].
// Two kinds of answer, through the same services as WADO-RS:
// - application/dicom: the stored Part 10 bytes (Implicit VR LE and Big Endian re-encoded as Explicit VR LE unless
//   named), single part (services/retrieve-instances.ts). transferSyntax naming another syntax the transcoder
//   writes gets the object transcoded (PS3.18 9: the server may convert); one it cannot produce is 406.
// - image/jpeg, image/png, image/gif (and application/pdf for an Encapsulated PDF): rendered
//   (services/render-instances.ts, docs/rendering.md). frameNumber picks the frame (default: the first; image/gif
//   of a multi-frame object without frameNumber: every frame, animated). rows / columns are the largest output
//   size, aspect ratio kept (either alone scales to it); region=xmin,ymin,xmax,ymax (0..1, of the image) the part
//   shown; windowCenter + windowWidth a LINEAR window; imageQuality 1..100 for JPEG. These parameters apply to the
//   image types only: with application/dicom they are 400 (PS3.18 9: they "shall not be present" then).
// contentType absent: image/jpeg for an object with Pixel Data (PS3.18 9, the contentType default), the PDF for an
// Encapsulated PDF, application/dicom for other objects (SR, ...), which have no image to show.
//
// Unlike the RESTful services there is no transfer-syntax media-type parameter here (PROTOCOL.md §1): the
// syntax is the transferSyntax query parameter, and the Content-Type is plain application/dicom.

import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { isValidUid } from '../../dicom/uid.js';
import { ENCAPSULATED_PDF_SOP_CLASS, type RenderOptions } from '../../render/renderer.js';
import { parseQuality, parseWindow } from '../../render/render-params.js';
import { hasPixelData, renderFailure, renderFrame, renderInstance, type RenderDeps } from '../../services/render-instances.js';
import { geometryOf } from '../../services/retrieve-frames.js';
import { asStored, findInstancesToRetrieve, prepareRetrieve, ANY_TRANSFER_SYNTAX } from '../../services/retrieve-instances.js';
import { MediaType } from '../media-types.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { uidParam } from '../route-paths.js';

export type WadoUriRouteOptions = RenderDeps;

type Query = Record<string, string | string[] | undefined>;

/** Representations produced: the object, or a rendering of it. */
const IMAGE_TYPES = new Set<string>([MediaType.JPEG, MediaType.PNG, MediaType.GIF]);
const SUPPORTED = new Set<string>([MediaType.DICOM, MediaType.PDF, ...IMAGE_TYPES]);
/** Parameters of a rendering (PS3.18 9): refused with application/dicom. */
const RENDER_PARAMETERS = ['frameNumber', 'rows', 'columns', 'region', 'windowCenter', 'windowWidth', 'imageQuality'] as const;

/** One query parameter; PS3.18 9 gives each parameter once, so a repeated one is 400. */
function single(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw new AppError('BAD_REQUEST', `${name} is given more than once`);
  return v;
}

/**
 * The representation to send: the first supported entry of the comma-separated contentType list (media-type
 * parameters and q-values are ignored), or undefined when contentType is absent (the object decides, see above).
 */
export function chooseContentType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const asked = contentType
    .split(',')
    .map((t) => t.split(';')[0]!.trim().toLowerCase())
    .filter((t) => t !== '');
  const chosen = asked.find((t) => SUPPORTED.has(t));
  if (chosen) return chosen;
  throw new AppError('NOT_ACCEPTABLE', `acceptable contentType: ${[...SUPPORTED].join(', ')}`);
}

const positive = (name: string, value: string): number => {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1) throw new AppError('BAD_REQUEST', `${name} must be a positive integer`);
  return Number(value);
};

/** The rendering options of PS3.18 9's parameters, for an image of `columns` x `rows`. */
export function uriRenderOptions(query: Query, image: { rows: number; columns: number }): { frame?: number; options: RenderOptions } {
  const get = (name: string) => single(query, name);
  const frameNumber = get('frameNumber');
  const rowsText = get('rows');
  const columnsText = get('columns');
  const region = get('region');
  const center = get('windowCenter');
  const width = get('windowWidth');
  const quality = get('imageQuality');
  const options: RenderOptions = {};
  try {
    if (quality !== undefined) options.quality = parseQuality(quality);
    if ((center === undefined) !== (width === undefined)) throw new AppError('BAD_REQUEST', 'windowCenter and windowWidth go together');
    if (center !== undefined && width !== undefined) options.window = parseWindow(`${center},${width},linear`);
  } catch (e) {
    throw renderFailure(e);
  }
  // region=xmin,ymin,xmax,ymax, normalised to the image (0,0 top left; 1,1 bottom right).
  let sx = 0;
  let sy = 0;
  let sw = image.columns;
  let sh = image.rows;
  if (region !== undefined) {
    const parts = region.split(',').map((p) => p.trim());
    const nums = parts.map(Number);
    if (parts.length !== 4 || parts.some((p) => !/^(0|1|0?\.\d+|1\.0*)$/.test(p))) throw new AppError('BAD_REQUEST', 'region is xmin,ymin,xmax,ymax, each 0..1');
    const [x0, y0, x1, y1] = nums as [number, number, number, number];
    if (!(x0 < x1 && y0 < y1)) throw new AppError('BAD_REQUEST', 'region: xmin < xmax and ymin < ymax');
    sx = Math.floor(x0 * image.columns);
    sy = Math.floor(y0 * image.rows);
    sw = Math.max(1, Math.round((x1 - x0) * image.columns));
    sh = Math.max(1, Math.round((y1 - y0) * image.rows));
  }
  const rows = rowsText === undefined ? undefined : positive('rows', rowsText);
  const columns = columnsText === undefined ? undefined : positive('columns', columnsText);
  if (region !== undefined || rows !== undefined || columns !== undefined) {
    // Either size alone fixes the other by the region's aspect ratio; neither: the region at its own size.
    const vw = columns ?? (rows !== undefined ? Math.max(1, Math.round((rows * sw) / sh)) : sw);
    const vh = rows ?? (columns !== undefined ? Math.max(1, Math.round((columns * sh) / sw)) : sh);
    options.viewport = { vw, vh, ...(region !== undefined ? { sx, sy, sw, sh } : {}) };
  }
  return { ...(frameNumber !== undefined ? { frame: positive('frameNumber', frameNumber) } : {}), options };
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
    // Presentation states are not applied: refuse rather than show the image otherwise than asked.
    if (single(query, 'presentationUID') !== undefined || single(query, 'presentationSeriesUID') !== undefined) {
      throw new AppError('BAD_REQUEST', 'presentationUID / presentationSeriesUID are not supported');
    }
    const asked = chooseContentType(single(query, 'contentType'));
    if (asked === MediaType.DICOM) {
      const extra = RENDER_PARAMETERS.find((p) => query[p] !== undefined);
      if (extra) throw new AppError('BAD_REQUEST', `${extra} applies to image content types, not application/dicom`);
    } else if (transferSyntax !== undefined) {
      throw new AppError('BAD_REQUEST', 'transferSyntax applies to contentType=application/dicom only');
    }

    // Whole objects are a download; a rendering is viewing (docs/access.md), as on the RESTful routes.
    const purpose = asked === MediaType.DICOM ? 'download' : 'view';
    const [ref] = findInstancesToRetrieve(options.index, request.access, scope, purpose, options);
    auditStudy(request, options.index, scope.studyInstanceUID, [ref!.sopClassUID]);
    const contentType = asked ?? (ref!.sopClassUID === ENCAPSULATED_PDF_SOP_CLASS ? MediaType.PDF : hasPixelData(ref!) ? MediaType.JPEG : MediaType.DICOM);
    if (contentType === MediaType.DICOM) {
      // Absent contentType on an object without pixels: download rights are needed as for a named application/dicom.
      if (asked === undefined) findInstancesToRetrieve(options.index, request.access, scope, 'download', options);
      // The stored syntax, named: the stored bytes (the PS3.18 8.7.3.5.2 ban on Implicit VR LE / Big Endian is a
      // rule of the RESTful media types; a WADO-URI client naming one gets it). Otherwise as WADO-RS: absent or `*`
      // gives the stored bytes, re-encoded to Explicit VR LE for those two; another syntax is transcoded, or the
      // service's 406 when it cannot be produced. The object is made before the status line, so a refusal is a status.
      const instance = transferSyntax === ref!.transferSyntaxUID ? asStored(options, ref!) : prepareRetrieve(options, [ref!], transferSyntax)[0]!;
      const body = await instance.open();
      return reply.type(MediaType.DICOM).header('content-length', body.size).send(Readable.from(body.chunks()));
    }
    if (contentType === MediaType.PDF) {
      const extra = RENDER_PARAMETERS.find((p) => query[p] !== undefined);
      if (extra) throw new AppError('BAD_REQUEST', `${extra} applies to images, not to an Encapsulated PDF`);
      const pdf = await renderInstance(options, ref!, { mediaType: MediaType.PDF });
      return reply.type(pdf.mediaType).header('content-length', pdf.bytes.length).send(pdf.bytes);
    }
    // The image size for region / rows / columns, from the index's copy of the dataset (no blob read).
    const needsSize = query.region !== undefined || query.rows !== undefined || query.columns !== undefined;
    const image = needsSize && hasPixelData(ref!) ? geometryOf(options.index, ref!) : { rows: 1, columns: 1 };
    const { frame, options: render } = uriRenderOptions(query, image);
    const asImage = { ...render, mediaType: contentType };
    const rendered = frame === undefined ? await renderInstance(options, ref!, asImage) : await renderFrame(options, ref!, frame, asImage);
    return reply.type(rendered.mediaType).header('content-length', rendered.bytes.length).send(rendered.bytes);
  });
}
