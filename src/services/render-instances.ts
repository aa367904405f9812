// WADO-RS rendered and thumbnail resources as use cases (PS3.18 10.4, Table 10.4.1-1: Rendered Study / Series /
// Instance / Frames, 8.7.4 rendered media types; Thumbnail resources of Supplement 203, PS3.18 10.4 / 8.7.4),
// and WADO-URI's image representations (PS3.18 9): which stored objects a URL names, whether the principal may
// see them, and their rendering by render/renderer.ts. Knows nothing about HTTP; the routes negotiate the media
// type, parse nothing but strings into RenderOptions (render/render-params.ts) and write the parts.
//
// Rendering is viewing, not downloading (permitted-study.ts 'view'): a viewer that may show frames may show them
// rendered. A study the principal may not read is a 404 worded as a missing one (no existence oracle).
// The stored blob is read through the transcoder's block cache (retrieve-instances.ts transcoderSource): the
// header reader makes many small reads, each of which would decrypt a whole segment.

import { AppError } from '../errors.js';
import type { IndexStore, RetrieveScope, StoredInstanceRef } from '../index/index-store.js';
import type { Access } from '../policy/access.js';
import { DEFAULT_RENDER_LIMITS, DEFAULT_THUMBNAIL_SIZE, ENCAPSULATED_PDF_SOP_CLASS, type Rendered, type RenderOptions, type Renderer, type ThumbnailOptions } from '../render/renderer.js';
import { isRenderError } from '../render/render-error.js';
import { representativeInstance, type InstanceDescriptor } from '../render/representative.js';
import { findInstance } from './retrieve-frames.js';
import { ThumbnailCache } from './thumbnail-cache.js';
import { findInstancesToRetrieve, transcodeFailure, transcoderSource, type RetrieveDeps } from './retrieve-instances.js';

export interface RenderDeps extends RetrieveDeps {
  renderer: Renderer;
  /** Recently made thumbnails (thumbnail-cache.ts); absent: none kept. */
  thumbnails?: ThumbnailCache;
}

/**
 * Whether the stored object has an image: Pixel Data per the layout recorded at STOW (an object without any bulk
 * value has no layout, so unknown counts as yes: the renderer then refuses it), and not an Encapsulated PDF.
 */
export const hasPixelData = (ref: StoredInstanceRef): boolean =>
  ref.sopClassUID !== ENCAPSULATED_PDF_SOP_CLASS && (ref.layout === undefined || ref.layout.pixelData !== undefined);

/** The one instance an instance or frames URL names (404 when absent or not readable, 410 when purged). */
export function findRenderable(deps: RenderDeps, access: Access, scope: Required<RetrieveScope>): StoredInstanceRef {
  return findInstance(deps.index, access, scope, deps);
}

/** The instances a study or series URL names, in index order (404 when none, or not readable). */
export function findRenderables(deps: RenderDeps, access: Access, scope: RetrieveScope): StoredInstanceRef[] {
  return findInstancesToRetrieve(deps.index, access, scope, 'view', deps);
}

const INSTANCE_NUMBER = '00200013';
const ROWS = '00280010';
const SERIES_UID = '0020000E';
const SOP_UID = '00080018';

/**
 * The instance that stands for a study or series in its thumbnail (render/representative.ts: the middle image of
 * the first series), from the index's copy of the datasets (the QIDO port, instance level: no blob is read).
 * 404 when the scope holds no image (only SR, PDF, ...): there is nothing to show.
 */
export function representativeOf(deps: RenderDeps, access: Access, scope: RetrieveScope): StoredInstanceRef {
  const refs = findRenderables(deps, access, scope).filter(hasPixelData);
  const { matches } = deps.index.search({
    level: 'instance',
    scope: { studyInstanceUID: scope.studyInstanceUID, ...(scope.seriesInstanceUID ? { seriesInstanceUID: scope.seriesInstanceUID } : {}) },
    filters: [],
    includeFields: [INSTANCE_NUMBER, ROWS, SERIES_UID],
    fuzzyMatching: false,
    limit: refs.length + 1,
    offset: 0,
  });
  const byUid = new Map(refs.map((r) => [r.sopInstanceUID, r]));
  const descriptors: (InstanceDescriptor & { ref: StoredInstanceRef })[] = [];
  for (const m of matches) {
    const ref = byUid.get(String(m[SOP_UID]?.Value?.[0] ?? ''));
    if (!ref) continue;
    const n = Number(m[INSTANCE_NUMBER]?.Value?.[0]);
    const rows = Number(m[ROWS]?.Value?.[0]);
    descriptors.push({
      ref,
      sopInstanceUID: ref.sopInstanceUID,
      seriesInstanceUID: ref.seriesInstanceUID,
      sopClassUID: ref.sopClassUID,
      ...(Number.isFinite(n) ? { instanceNumber: n } : {}),
      ...(Number.isFinite(rows) ? { rows } : {}),
    });
  }
  const chosen = representativeInstance(descriptors);
  if (!chosen) throw new AppError('NOT_FOUND', `the ${scope.seriesInstanceUID ? 'series' : 'study'} has no image for a thumbnail`);
  return chosen.ref;
}

/**
 * A viewport whose vw x vh is over the output limit is the client's mistake (400); an image over the source limit
 * is the object's (406). Checked here because the renderer throws the same failure for both.
 */
function checkViewport(options: { viewport?: { vw: number; vh: number } }): void {
  const vp = options.viewport;
  if (vp && vp.vw * vp.vh > DEFAULT_RENDER_LIMITS.maxOutputPixels) {
    throw new AppError('BAD_REQUEST', `viewport ${vp.vw} x ${vp.vh} is over the ${DEFAULT_RENDER_LIMITS.maxOutputPixels}-pixel limit`);
  }
}

/**
 * A renderer or transcoder failure as docs/rendering.md's error table says; anything else unchanged. The messages
 * name sizes, attribute names and media types only (render-error.ts), so they go to the client.
 */
export function renderFailure(e: unknown): unknown {
  if (!isRenderError(e)) return transcodeFailure(e);
  switch (e.failure) {
    case 'bad-parameter':
      return new AppError('BAD_REQUEST', e.message, { cause: e });
    case 'no-such-frame':
      // 400, as the frames route answers a frame number past NumberOfFrames (retrieve-frames.ts parseFrameList).
      return new AppError('BAD_REQUEST', e.message, { cause: e });
    case 'timeout':
    case 'memory':
    case 'unavailable':
      return new AppError('SERVICE_UNAVAILABLE', `rendering failed (${e.failure}): ${e.message}`, { cause: e });
    default:
      // unsupported-media-type, unsupported-source, too-large (the source image): this object has no such rendering.
      return new AppError('NOT_ACCEPTABLE', `cannot render (${e.failure}): ${e.message}`, { cause: e });
  }
}

async function mapped<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw renderFailure(e);
  }
}

/** Rendered Instance: an image's first frame (every frame for image/gif), or an Encapsulated PDF as the document. */
export function renderInstance(deps: RenderDeps, ref: StoredInstanceRef, options: RenderOptions): Promise<Rendered> {
  checkViewport(options);
  if (!hasPixelData(ref) && ref.sopClassUID !== ENCAPSULATED_PDF_SOP_CLASS) {
    return Promise.reject(new AppError('NOT_ACCEPTABLE', 'the instance has no Pixel Data to render'));
  }
  return mapped(() => deps.renderer.renderInstance(transcoderSource(deps, ref), options));
}

/** Rendered Frames: one frame (1-based). 404 when the object has no Pixel Data (no frame resource). */
export function renderFrame(deps: RenderDeps, ref: StoredInstanceRef, frame: number, options: RenderOptions): Promise<Rendered> {
  checkViewport(options);
  if (!hasPixelData(ref)) return Promise.reject(new AppError('NOT_FOUND', 'the instance has no Pixel Data'));
  return mapped(() => deps.renderer.renderFrame(transcoderSource(deps, ref), frame, options));
}

/** Thumbnail of an instance (or the representative instance of a study or series): a small JPEG, no text drawn. */
export function thumbnail(deps: RenderDeps, ref: StoredInstanceRef, options: ThumbnailOptions): Promise<Rendered> {
  checkViewport(options);
  if (!hasPixelData(ref)) return Promise.reject(new AppError('NOT_FOUND', 'the instance has no image for a thumbnail'));
  const key = ThumbnailCache.key(ref, options.frame ?? 1, options.viewport ?? { vw: DEFAULT_THUMBNAIL_SIZE, vh: DEFAULT_THUMBNAIL_SIZE });
  const hit = deps.thumbnails?.get(key);
  if (hit) return Promise.resolve(hit);
  return mapped(async () => {
    const made = await deps.renderer.thumbnail(transcoderSource(deps, ref), options);
    deps.thumbnails?.set(key, made);
    return made;
  });
}

/**
 * The instances of a study or series that a rendered study/series response carries: those with pixels (an SR or a
 * PDF has no image to put in an image/* part). 404 when there are none.
 */
export function renderableInstances(deps: RenderDeps, access: Access, scope: RetrieveScope): StoredInstanceRef[] {
  const refs = findRenderables(deps, access, scope).filter(hasPixelData);
  if (refs.length === 0) throw new AppError('NOT_FOUND', `the ${scope.seriesInstanceUID ? 'series' : 'study'} has no image to render`);
  return refs;
}
