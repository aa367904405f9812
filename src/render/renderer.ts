// Rendered images and thumbnails of stored instances (PS3.18 10.4 rendered and thumbnail resources; issue 9 items
// 2 and 3), without HTTP types: the routes (not wired yet) parse the parameters with render-params.ts, pick the
// representative instance with representative.ts, and map RenderError / TranscodeError to status codes.
//
//   stored bytes -> attributes (dataset-reader.ts, on this thread: header only, capped by ScanLimits)
//                -> size checks (before any pixel is read)
//                -> native frame (the transcoder: any stored syntax, its codec pool, limits and bomb guard)
//                -> display pixels (pixel-pipeline.ts in render-pool.ts's workers)
//                -> region / scaling / encoding (sharp, encode.ts).
//
// Encapsulated PDF (PS3.3 A.45.1) renders as the document itself, application/pdf.

import { bufferSource } from '../dicom/byte-source.js';
import { readInstance } from '../dicom/dataset-reader.js';
import type { DicomJsonDataset } from '../dicom/json-model.js';
import type { BulkDataLocation, ByteSource, ParsedInstance, ScanLimits } from '../dicom/part10.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, transferSyntax } from '../dicom/transfer-syntax.js';
import { TranscodeError } from '../transcode/transcode-error.js';
import type { Transcoder } from '../transcode/transcoder.js';
import { DEFAULT_QUALITY, encodeAnimatedGif, encodeImage, place } from './encode.js';
import { imageAttributes, TAGS, type BulkReader, type ImageAttributes, type WindowSpec } from './image-attributes.js';
import type { RenderedPixels } from './pixel-pipeline.js';
import {
  DEFAULT_RENDER_MEDIA_TYPE,
  PDF_MEDIA_TYPE,
  RENDER_MEDIA_TYPES,
  resolveViewport,
  type RenderMediaType,
  type ResolvedViewport,
  type Viewport,
} from './render-params.js';
import { RenderError } from './render-error.js';
import type { RenderPool } from './render-pool.js';

/** Encapsulated PDF Storage (PS3.4 B.5). */
export const ENCAPSULATED_PDF_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.104.1';

export interface RenderLimits {
  /** Largest source frame, pixels (Rows x Columns). */
  maxSourcePixels: number;
  /** Largest output image, pixels (the viewport, or the source region when there is none). */
  maxOutputPixels: number;
  /** Most frames in an animated GIF of a multi-frame instance; above it, the first frame only. */
  maxAnimationFrames: number;
  /** Largest animated GIF, output pixels summed over its frames. */
  maxAnimationPixels: number;
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = {
  maxSourcePixels: 8192 * 8192,
  maxOutputPixels: 4096 * 4096,
  maxAnimationFrames: 200,
  maxAnimationPixels: 64 * 1024 * 1024,
};

export interface RendererOptions {
  transcoder: Transcoder;
  pool: RenderPool;
  scanLimits: ScanLimits;
  limits?: Partial<RenderLimits>;
}

export interface RenderOptions {
  /** image/jpeg (default), image/png, image/gif; application/pdf for an Encapsulated PDF. */
  mediaType?: string;
  /** 1..100, JPEG only (PS3.18 10.4.1.1.2). */
  quality?: number;
  viewport?: Viewport;
  window?: WindowSpec;
}

export interface Rendered {
  mediaType: string;
  bytes: Buffer;
  /** Pixel size of the image (absent for a PDF). */
  width?: number;
  height?: number;
  /** Frames in the image: more than 1 only for an animated GIF. */
  frames?: number;
}

export interface ThumbnailOptions {
  /** Frame to show (1-based); default 1. */
  frame?: number;
  /** The box the thumbnail fits in (PS3.18 10.4: thumbnails take viewport=vw,vh only); default 128 x 128. */
  viewport?: Pick<Viewport, 'vw' | 'vh'>;
}

export const DEFAULT_THUMBNAIL_SIZE = 128;
const THUMBNAIL_QUALITY = 80;

interface Loaded {
  instance: ParsedInstance;
  source: ByteSource;
}

export class Renderer {
  private readonly limits: RenderLimits;

  constructor(private readonly options: RendererOptions) {
    this.limits = { ...DEFAULT_RENDER_LIMITS, ...options.limits };
  }

  /** One frame (1-based) of a stored image (the frames resource, PS3.18 10.4.1.1). */
  async renderFrame(stored: ByteSource | Buffer, frame: number, options: RenderOptions = {}): Promise<Rendered> {
    const loaded = await this.load(stored);
    if (loaded.instance.sopClassUID === ENCAPSULATED_PDF_SOP_CLASS) {
      throw new RenderError('unsupported-media-type', 'an Encapsulated PDF has no frames to render');
    }
    const mediaType = imageMediaType(options.mediaType);
    const attrs = await this.attributes(loaded);
    const vp = this.check(attrs, options.viewport, 1);
    if (!Number.isInteger(frame) || frame < 1 || frame > attrs.numberOfFrames) {
      throw new RenderError('no-such-frame', `frame ${frame} is not in 1..${attrs.numberOfFrames}`);
    }
    const [px] = await this.display(loaded, attrs, [frame], options.window);
    const out = await place(px!, vp);
    return { mediaType, bytes: await encodeImage(out, mediaType, options.quality ?? DEFAULT_QUALITY), width: out.width, height: out.height, frames: 1 };
  }

  /**
   * The instance resource: an Encapsulated PDF as the document; an image as its first frame, or, for image/gif
   * of a multi-frame instance, every frame as an animation (PS3.18 10.4: a multi-frame instance may be rendered
   * as a single frame when the media type cannot hold more).
   */
  async renderInstance(stored: ByteSource | Buffer, options: RenderOptions = {}): Promise<Rendered> {
    const loaded = await this.load(stored);
    if (loaded.instance.sopClassUID === ENCAPSULATED_PDF_SOP_CLASS) {
      if (options.mediaType !== undefined && options.mediaType !== PDF_MEDIA_TYPE) {
        throw new RenderError('unsupported-media-type', `an Encapsulated PDF renders as ${PDF_MEDIA_TYPE}, not ${options.mediaType}`);
      }
      return { mediaType: PDF_MEDIA_TYPE, bytes: await encapsulatedDocument(loaded) };
    }
    const mediaType = imageMediaType(options.mediaType);
    const attrs = await this.attributes(loaded);
    const n = attrs.numberOfFrames;
    const vp = this.check(attrs, options.viewport, 1);
    const animate = mediaType === 'image/gif' && n > 1 && n <= this.limits.maxAnimationFrames && vp.outWidth * vp.outHeight * n <= this.limits.maxAnimationPixels;
    if (!animate) return this.renderFrameOf(loaded, attrs, vp, mediaType, options);
    const frames: RenderedPixels[] = [];
    // Frame by frame: one decoded frame in memory at a time, besides the (small) scaled results.
    for (let f = 1; f <= n; f++) {
      const [px] = await this.display(loaded, attrs, [f], options.window);
      frames.push(await place(px!, vp));
    }
    const frameTime = frameTimeMs(loaded.instance.dataset);
    return { mediaType, bytes: await encodeAnimatedGif(frames, frameTime), width: vp.outWidth, height: vp.outHeight, frames: n };
  }

  /** A small JPEG of an image (PS3.18 10.4 thumbnail resources): no text is ever drawn, so no PHI is burned in. */
  async thumbnail(stored: ByteSource | Buffer, options: ThumbnailOptions = {}): Promise<Rendered> {
    const loaded = await this.load(stored);
    if (loaded.instance.sopClassUID === ENCAPSULATED_PDF_SOP_CLASS) {
      throw new RenderError('unsupported-media-type', 'an Encapsulated PDF has no image for a thumbnail');
    }
    const attrs = await this.attributes(loaded);
    const box = options.viewport ?? { vw: DEFAULT_THUMBNAIL_SIZE, vh: DEFAULT_THUMBNAIL_SIZE };
    const frame = options.frame ?? 1;
    if (!Number.isInteger(frame) || frame < 1 || frame > attrs.numberOfFrames) {
      throw new RenderError('no-such-frame', `frame ${frame} is not in 1..${attrs.numberOfFrames}`);
    }
    const vp = this.check(attrs, { vw: box.vw, vh: box.vh }, 1);
    const [px] = await this.display(loaded, attrs, [frame], undefined);
    const out = await place(px!, vp);
    return { mediaType: 'image/jpeg', bytes: await encodeImage(out, 'image/jpeg', THUMBNAIL_QUALITY), width: out.width, height: out.height, frames: 1 };
  }

  /** The pipeline on a frame already decoded (native, little endian), for callers that have one. */
  async renderDecoded(frame: Buffer, attrs: ImageAttributes, options: RenderOptions = {}): Promise<Rendered> {
    const mediaType = imageMediaType(options.mediaType);
    const vp = this.check(attrs, options.viewport, 1);
    const px = await this.options.pool.run({ frame: owned(frame), attributes: attrs, ...(options.window ? { window: options.window } : {}) });
    const out = await place(px, vp);
    return { mediaType, bytes: await encodeImage(out, mediaType, options.quality ?? DEFAULT_QUALITY), width: out.width, height: out.height, frames: 1 };
  }

  private async renderFrameOf(loaded: Loaded, attrs: ImageAttributes, vp: ResolvedViewport, mediaType: RenderMediaType, options: RenderOptions): Promise<Rendered> {
    const [px] = await this.display(loaded, attrs, [1], options.window);
    const out = await place(px!, vp);
    return { mediaType, bytes: await encodeImage(out, mediaType, options.quality ?? DEFAULT_QUALITY), width: out.width, height: out.height, frames: 1 };
  }

  private async load(stored: ByteSource | Buffer): Promise<Loaded> {
    const source = Buffer.isBuffer(stored) ? bufferSource(stored) : stored;
    const read = await readInstance(source, this.options.scanLimits);
    if (!read.ok) throw new RenderError('unsupported-source', `the stored object cannot be read: ${read.failure.detail}`);
    return { instance: read.instance, source };
  }

  private async attributes(loaded: Loaded): Promise<ImageAttributes> {
    const { instance, source } = loaded;
    if (!instance.pixelData) throw new RenderError('unsupported-source', 'the object has no Pixel Data to render');
    return imageAttributes(instance.dataset, instance.bulk ?? [], bulkReader(source, instance.transferSyntaxUID));
  }

  /**
   * Refuses what would allocate too much, before any pixel is read: the source frame and the output size. Also
   * what the pipeline does not handle (bit-packed, more than 3 samples).
   */
  private check(attrs: ImageAttributes, viewport: Viewport | undefined, frames: number): ResolvedViewport {
    const { rows, columns } = attrs;
    if (!(rows >= 1 && columns >= 1 && rows <= 0xffff && columns <= 0xffff)) throw new RenderError('unsupported-source', 'Rows and Columns must be 1..65535');
    if (rows * columns > this.limits.maxSourcePixels) {
      throw new RenderError('too-large', `a ${columns} x ${rows} frame is over the ${this.limits.maxSourcePixels}-pixel rendering limit`);
    }
    if (viewport && viewport.vw * viewport.vh > this.limits.maxOutputPixels) {
      throw new RenderError('too-large', `a ${viewport.vw} x ${viewport.vh} viewport is over the ${this.limits.maxOutputPixels}-pixel limit`);
    }
    if (![1, 8, 16, 32].includes(attrs.bitsAllocated)) throw new RenderError('unsupported-source', `BitsAllocated ${attrs.bitsAllocated} is not rendered`);
    if (attrs.samplesPerPixel !== 1 && attrs.samplesPerPixel !== 3) throw new RenderError('unsupported-source', `SamplesPerPixel ${attrs.samplesPerPixel} is not rendered`);
    if (!(attrs.bitsStored >= 1 && attrs.bitsStored <= attrs.bitsAllocated && attrs.highBit < attrs.bitsAllocated && attrs.highBit + 1 >= attrs.bitsStored)) {
      throw new RenderError('unsupported-source', `BitsStored ${attrs.bitsStored} / HighBit ${attrs.highBit} do not fit BitsAllocated ${attrs.bitsAllocated}`);
    }
    const vp = resolveViewport(viewport, columns, rows);
    if (vp.outWidth * vp.outHeight * frames > this.limits.maxOutputPixels) {
      throw new RenderError('too-large', `a ${vp.outWidth} x ${vp.outHeight} image is over the ${this.limits.maxOutputPixels}-pixel limit`);
    }
    return vp;
  }

  /** Native frames from the transcoder, then the pixel pipeline in the render pool. */
  private async display(loaded: Loaded, attrs: ImageAttributes, frames: number[], window: WindowSpec | undefined): Promise<RenderedPixels[]> {
    const raw = await nativeFrames(loaded, attrs, frames);
    if (raw) {
      const out: RenderedPixels[] = [];
      for (const [i, f] of raw.frames.entries()) {
        const packed = raw.packedBitOffsets?.[i];
        out.push(await this.options.pool.run({ frame: owned(f), attributes: raw.attrs, ...(window ? { window } : {}), ...(packed !== undefined ? { packedBitOffset: packed } : {}) }));
      }
      return out;
    }
    let decoded;
    try {
      decoded = await this.options.transcoder.transcodeFrames(loaded.source, frames, EXPLICIT_VR_LITTLE_ENDIAN);
    } catch (err) {
      if (err instanceof TranscodeError && err.failure === 'no-such-frame') throw new RenderError('no-such-frame', err.message);
      throw err;
    }
    // Decoded frames are colour-by-pixel with the photometric the codec gives (JPEG YBR -> RGB); a native frame is
    // as stored (the transcoder hands it over unchanged, planar or not).
    const stored = transferSyntax(loaded.instance.transferSyntaxUID);
    const after: ImageAttributes = {
      ...attrs,
      photometricInterpretation: decoded.photometricInterpretation || attrs.photometricInterpretation,
      planarConfiguration: stored?.encapsulated ? 0 : attrs.planarConfiguration,
    };
    const out: RenderedPixels[] = [];
    for (const f of decoded.frames) out.push(await this.options.pool.run({ frame: owned(f), attributes: after, ...(window ? { window } : {}) }));
    return out;
  }
}

/**
 * Native frames the transcoder does not serve one by one, read here from the stored Pixel Data: bit-packed
 * (BitsAllocated 1, PS3.5 8.1.1: frames follow each other bit by bit; the worker unpacks them) and horizontally subsampled YBR_*_422 (2 bytes per pixel). Undefined for everything else.
 */
async function nativeFrames(loaded: Loaded, attrs: ImageAttributes, frames: number[]): Promise<{ frames: Buffer[]; packedBitOffsets?: number[]; attrs: ImageAttributes } | undefined> {
  const subsampled = /^YBR_(FULL|PARTIAL)_422$/.test(attrs.photometricInterpretation);
  if (attrs.bitsAllocated !== 1 && !subsampled) return undefined;
  const ts = transferSyntax(loaded.instance.transferSyntaxUID);
  const pixel = loaded.instance.pixelData;
  if (!ts || ts.encapsulated) return undefined;
  if (ts.deflated || !pixel) throw new RenderError('unsupported-source', 'bit-packed or subsampled frames of a Deflated object are not rendered');
  const pixels = attrs.rows * attrs.columns;
  if (subsampled) {
    if (attrs.bitsAllocated !== 8 || attrs.samplesPerPixel !== 3) throw new RenderError('unsupported-source', `${attrs.photometricInterpretation} is rendered with 8-bit samples only`);
    const size = pixels * 2;
    const out: Buffer[] = [];
    for (const n of frames) {
      if ((n - 1) * size + size > pixel.length) throw new RenderError('unsupported-source', 'Pixel Data is shorter than its frames');
      out.push(Buffer.from(await loaded.source.read(pixel.offset + (n - 1) * size, size)));
    }
    return { frames: out, attrs: { ...attrs, planarConfiguration: 0 } };
  }
  if (attrs.samplesPerPixel !== 1) throw new RenderError('unsupported-source', 'bit-packed colour is not rendered');
  const out: Buffer[] = [];
  const offsets: number[] = [];
  for (const n of frames) {
    const firstBit = (n - 1) * pixels;
    const firstByte = Math.floor(firstBit / 8);
    const lastByte = Math.ceil((firstBit + pixels) / 8);
    if (lastByte > pixel.length) throw new RenderError('unsupported-source', 'Pixel Data is shorter than its frames');
    out.push(Buffer.from(await loaded.source.read(pixel.offset + firstByte, lastByte - firstByte)));
    offsets.push(firstBit - firstByte * 8);
  }
  // Unpacked in the render worker (pixel-pipeline.ts unpackBits), into 8-bit samples holding 0 or 1.
  return { frames: out, packedBitOffsets: offsets, attrs: { ...attrs, bitsAllocated: 8, bitsStored: 1, highBit: 0, pixelRepresentation: 0 } };
}

/** The media type of an image rendering; application/pdf or anything else is refused for an image. */
function imageMediaType(asked: string | undefined): RenderMediaType {
  if (asked === undefined) return DEFAULT_RENDER_MEDIA_TYPE;
  if ((RENDER_MEDIA_TYPES as readonly string[]).includes(asked)) return asked as RenderMediaType;
  throw new RenderError('unsupported-media-type', `images are rendered as ${RENDER_MEDIA_TYPES.join(', ')}, not ${asked}`);
}

/** Frame Time (0018,1063), ms, for the animation; 100 ms when absent or not positive. */
function frameTimeMs(ds: DicomJsonDataset): number {
  const v = Number(ds['00181063']?.Value?.[0]);
  return Number.isFinite(v) && v > 0 ? v : 100;
}

/**
 * Encapsulated Document (0042,0011) of an Encapsulated PDF (PS3.3 A.45.1, C.24.2): the PDF bytes. OB is padded to
 * even length with a trailing NUL; the PDF itself ends at its last %%EOF marker, so the pad is dropped.
 */
export async function encapsulatedDocument(loaded: { instance: ParsedInstance; source: ByteSource }): Promise<Buffer> {
  const { instance, source } = loaded;
  const attr = instance.dataset[TAGS.EncapsulatedDocument];
  let bytes: Buffer | undefined;
  if (attr?.InlineBinary !== undefined) bytes = Buffer.from(attr.InlineBinary, 'base64');
  else {
    const where = (instance.bulk ?? []).find((b) => b.path.length === 1 && b.path[0] === TAGS.EncapsulatedDocument);
    if (where) bytes = await bulkReader(source, instance.transferSyntaxUID)(where);
  }
  if (!bytes || bytes.length === 0) throw new RenderError('unsupported-source', 'the Encapsulated PDF has no Encapsulated Document');
  // The pad byte (PS3.5 7.1: values have even length): a NUL after the PDF's final %%EOF line is not the document's.
  let end = bytes.length;
  if (bytes[end - 1] === 0 && bytes.lastIndexOf('%%EOF') >= 0) while (end > 0 && bytes[end - 1] === 0) end--;
  return Buffer.from(bytes.subarray(0, end));
}

/** Values over the inline threshold, read from the stored bytes, as little endian. */
function bulkReader(source: ByteSource, transferSyntaxUID: string): BulkReader {
  const ts = transferSyntax(transferSyntaxUID);
  return async (where: BulkDataLocation) => {
    if (ts?.deflated) throw new RenderError('unsupported-source', 'large LUT data in a Deflated object is not read');
    if (where.encapsulated) throw new RenderError('unsupported-source', 'an encapsulated value is not a LUT');
    const bytes = Buffer.from(await source.read(where.offset, where.length));
    if (ts !== undefined && !ts.littleEndian && (where.vr === 'OW' || where.vr === 'US' || where.vr === 'SS') && bytes.length % 2 === 0) bytes.swap16();
    return bytes;
  };
}

/** An ArrayBuffer holding exactly these bytes, safe to transfer to a worker. */
function owned(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
