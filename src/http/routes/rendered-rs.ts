// WADO-RS rendered and thumbnail resources (PS3.18 10.4, Table 10.4.1-1; rendered media types 8.7.4; query
// parameters 8.3.5.1 / 10.4.1.1: quality, viewport, window; thumbnails: Supplement 203, PS3.18 10.4 and 8.7.4):
//   GET {base}/studies/{s}[/series/{x}[/instances/{i}[/frames/{f}]]]/rendered
//   GET {base}/studies/{s}[/series/{x}[/instances/{i}[/frames/{f}]]]/thumbnail
// The use cases are services/render-instances.ts; the pixels render/renderer.ts (docs/rendering.md).
//
// Representations:
// - instance and frames rendered: one image, image/jpeg (the default), image/png or image/gif; an Encapsulated PDF
//   instance is application/pdf (its default, and its only type). A multi-frame instance as image/gif is every
//   frame as an animation, as image/jpeg or image/png its first frame.
// - study and series rendered: multipart/related; type="image/..." with one part per instance that has pixels,
//   each that instance rendered as for the instance resource (its Content-Location the instance's rendered URL);
//   the parts are rendered one at a time as the writer reaches them. Accept image/jpeg and multipart/related;
//   type="image/jpeg" both get it. Instances without pixels (SR, PDF) are left out.
// - thumbnails: image/jpeg only (a small JPEG; no text is drawn, so no PHI burned in). For a study or series the
//   representative instance (render/representative.ts), for an instance its frame 1, for frames the frame asked.
//   `viewport=vw,vh` sets the box (default 128 x 128); a source region is 400.
// - `{frames}` of a rendered or thumbnail frames resource is one frame number (PS3.18 10.4.1.1.4 allows a list;
//   rendering several frames into one image has no defined meaning, so a list is 400 asking for one frame).
// `annotation` and `iccprofile` are ignored: nothing is ever drawn on an image, and no ICC profile is embedded.
// Cache-Control stays no-store (plugins/security-headers.ts): a rendered image is PHI as much as the object is.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import type { StoredInstanceRef } from '../../index/index-store.js';
import { ENCAPSULATED_PDF_SOP_CLASS, type RenderOptions, type Rendered } from '../../render/renderer.js';
import { parseQuality, parseViewport, parseWindow, RENDER_MEDIA_TYPES, PDF_MEDIA_TYPE, type Viewport } from '../../render/render-params.js';
import {
  findRenderable,
  renderableInstances,
  renderFailure,
  renderFrame,
  renderInstance,
  representativeOf,
  thumbnail,
  type RenderDeps,
} from '../../services/render-instances.js';
import { MediaType } from '../media-types.js';
import { multipartResponse, type OutgoingPart } from '../multipart-writer.js';
import { negotiate, type Offer } from '../negotiate.js';
import { auditStudy } from '../plugins/audit-trail.js';
import { instanceScope, retrieveScope } from '../route-paths.js';
import { urlsFor, type UrlSettings } from '../request-urls.js';

export interface RenderedRouteOptions extends RenderDeps {
  urls: UrlSettings;
}

type Params = { study: string; series?: string; instance?: string; frames?: string };
type Query = Record<string, string | string[] | undefined>;

const IMAGE_OFFERS: Offer[] = RENDER_MEDIA_TYPES.map((mediaType) => ({ mediaType }));
const PDF_OFFERS: Offer[] = [{ mediaType: PDF_MEDIA_TYPE }];
/** Study and series: the parts' type, asked as itself or as the multipart root type. */
const MULTIPART_OFFERS: (Offer & { part: string })[] = RENDER_MEDIA_TYPES.flatMap((t) => [
  { mediaType: t, part: t },
  { mediaType: MediaType.MULTIPART_RELATED, type: t, part: t },
]);
const THUMBNAIL_OFFERS: Offer[] = [{ mediaType: MediaType.JPEG }];

/** One query parameter; each is given once (PS3.18 8.3.5.1), so a repeated one is 400. */
function single(query: Query | undefined, name: string): string | undefined {
  const v = query?.[name];
  if (Array.isArray(v)) throw new AppError('BAD_REQUEST', `${name} is given more than once`);
  return v;
}

/** quality, viewport and window (render-params.ts): a bad value is 400 with the parser's message. */
export function renderQuery(query: Query | undefined): Omit<RenderOptions, 'mediaType'> {
  try {
    const quality = single(query, 'quality');
    const viewport = single(query, 'viewport');
    const window = single(query, 'window');
    return {
      ...(quality !== undefined ? { quality: parseQuality(quality) } : {}),
      ...(viewport !== undefined ? { viewport: parseViewport(viewport) } : {}),
      ...(window !== undefined ? { window: parseWindow(window) } : {}),
    };
  } catch (e) {
    throw renderFailure(e);
  }
}

/** A thumbnail's box: viewport=vw,vh only (Supplement 203); quality and window are the server's choice. */
function thumbnailViewport(query: Query | undefined): Pick<Viewport, 'vw' | 'vh'> | undefined {
  const { viewport } = renderQuery(query);
  if (!viewport) return undefined;
  if (viewport.sx !== undefined || viewport.sy !== undefined || viewport.sw !== undefined || viewport.sh !== undefined) {
    throw new AppError('BAD_REQUEST', 'a thumbnail viewport is vw,vh only');
  }
  return { vw: viewport.vw, vh: viewport.vh };
}

/** The one frame number of a rendered frames resource. */
function oneFrame(text: string): number {
  if (!/^[0-9]{1,9}$/.test(text)) throw new AppError('BAD_REQUEST', 'a rendered frame resource names one frame number');
  const n = Number(text);
  if (n < 1) throw new AppError('BAD_REQUEST', 'frame numbers start at 1');
  return n;
}

const acceptQuery = (request: FastifyRequest) => (request.query as Query | undefined)?.accept;

function notAcceptable(offers: readonly Offer[]): AppError {
  return new AppError('NOT_ACCEPTABLE', `acceptable: ${[...new Set(offers.map((o) => (o.type ? `${o.mediaType}; type="${o.type}"` : o.mediaType)))].join(', ')}`);
}

function send(reply: FastifyReply, rendered: Rendered): FastifyReply {
  return reply.type(rendered.mediaType).header('content-length', rendered.bytes.length).send(rendered.bytes);
}

const isPdf = (ref: StoredInstanceRef) => ref.sopClassUID === ENCAPSULATED_PDF_SOP_CLASS;

export async function renderedRoutes(app: FastifyInstance, options: RenderedRouteOptions): Promise<void> {
  const audited = (request: FastifyRequest, study: string, refs: readonly StoredInstanceRef[]) =>
    auditStudy(request, options.index, study, refs.map((r) => r.sopClassUID));

  // Instance and frames: one image (or the PDF).
  const renderedOne = async (request: FastifyRequest<{ Params: Params; Querystring: Query }>, reply: FastifyReply) => {
    const { params } = request;
    const scope = instanceScope({ study: params.study, series: params.series!, instance: params.instance! });
    request.audit.event('retrieve');
    const ref = findRenderable(options, request.access, scope);
    audited(request, scope.studyInstanceUID, [ref]);
    const frame = params.frames !== undefined ? oneFrame(params.frames) : undefined;
    const render = renderQuery(request.query);
    const offers = frame === undefined && isPdf(ref) ? PDF_OFFERS : IMAGE_OFFERS;
    const chosen = negotiate(request.headers.accept, acceptQuery(request), offers);
    if (!chosen) throw notAcceptable(offers);
    const asked = { ...render, mediaType: chosen.offer.mediaType };
    return send(reply, frame === undefined ? await renderInstance(options, ref, asked) : await renderFrame(options, ref, frame, asked));
  };

  // Study and series: one part per instance with pixels, rendered when its turn comes.
  const renderedMany = async (request: FastifyRequest<{ Params: Params; Querystring: Query }>, reply: FastifyReply) => {
    const scope = retrieveScope(request.params);
    request.audit.event('retrieve', { bulk: true });
    const refs = renderableInstances(options, request.access, scope);
    audited(request, scope.studyInstanceUID, refs);
    const render = renderQuery(request.query);
    const chosen = negotiate(request.headers.accept, acceptQuery(request), MULTIPART_OFFERS);
    if (!chosen) throw notAcceptable(MULTIPART_OFFERS);
    const part = chosen.offer.part;
    const urls = urlsFor(request, options.urls);
    const location = (r: StoredInstanceRef) => `${urls.instance(r.studyInstanceUID, r.seriesInstanceUID, r.sopInstanceUID)}/rendered`;
    // An instance this server cannot render (406: an unsupported photometric, a codec that refuses it) is left out,
    // as the objects without pixels are; any other failure stands. The first part is made before the status line,
    // so that a failure, or nothing renderable at all, is still a status; a later failure cuts the stream (no
    // closing boundary), as WADO-RS retrieve does.
    let refusal: AppError | undefined;
    const one = async (r: StoredInstanceRef): Promise<Rendered | undefined> => {
      try {
        return await renderInstance(options, r, { ...render, mediaType: part });
      } catch (e) {
        if (!(e instanceof AppError && e.code === 'NOT_ACCEPTABLE')) throw e;
        refusal ??= e;
        return undefined;
      }
    };
    let k = 0;
    let first: Rendered | undefined;
    for (; k < refs.length && !first; k++) first = await one(refs[k]!);
    if (!first) throw refusal!;
    const firstRef = refs[k - 1]!;
    const rest = refs.slice(k);
    async function* parts(): AsyncGenerator<OutgoingPart> {
      yield { contentType: first!.mediaType, contentLocation: location(firstRef), contentLength: first!.bytes.length, body: first!.bytes };
      for (const r of rest) {
        const rendered = await one(r);
        if (rendered) yield { contentType: rendered.mediaType, contentLocation: location(r), contentLength: rendered.bytes.length, body: rendered.bytes };
      }
    }
    const response = multipartResponse(part, parts());
    return reply.type(response.contentType).send(response.stream);
  };

  const thumb = async (request: FastifyRequest<{ Params: Params; Querystring: Query }>, reply: FastifyReply) => {
    const { params } = request;
    request.audit.event('retrieve');
    let ref: StoredInstanceRef;
    if (params.instance !== undefined) {
      ref = findRenderable(options, request.access, instanceScope({ study: params.study, series: params.series!, instance: params.instance }));
    } else {
      ref = representativeOf(options, request.access, retrieveScope(params));
    }
    audited(request, ref.studyInstanceUID, [ref]);
    const frame = params.frames !== undefined ? oneFrame(params.frames) : undefined;
    const viewport = thumbnailViewport(request.query);
    if (!negotiate(request.headers.accept, acceptQuery(request), THUMBNAIL_OFFERS)) throw notAcceptable(THUMBNAIL_OFFERS);
    return send(reply, await thumbnail(options, ref, { ...(frame !== undefined ? { frame } : {}), ...(viewport ? { viewport } : {}) }));
  };

  app.get('/studies/:study/rendered', renderedMany);
  app.get('/studies/:study/series/:series/rendered', renderedMany);
  app.get('/studies/:study/series/:series/instances/:instance/rendered', renderedOne);
  app.get('/studies/:study/series/:series/instances/:instance/frames/:frames/rendered', renderedOne);
  app.get('/studies/:study/thumbnail', thumb);
  app.get('/studies/:study/series/:series/thumbnail', thumb);
  app.get('/studies/:study/series/:series/instances/:instance/thumbnail', thumb);
  app.get('/studies/:study/series/:series/instances/:instance/frames/:frames/thumbnail', thumb);
}
