// Display pixels (8-bit grey or RGB) to an image file with sharp (libvips): the viewport's region, flips and
// scaling, then JPEG (baseline, 8 bits per channel as PS3.18 10.4 asks), PNG or GIF. libvips works on libuv's
// thread pool, so the event loop does not wait on it. sharp reads only our raw buffers, never client bytes.

import sharp from 'sharp';
import type { RenderedPixels } from './pixel-pipeline.js';
import type { RenderMediaType, ResolvedViewport } from './render-params.js';

// Leave libvips' own cache off: every rendering is of a different object, and its cache only holds memory.
sharp.cache(false);

/** JPEG quality when the request has none (PS3.18 leaves it to the server). */
export const DEFAULT_QUALITY = 90;

/** The viewport applied to the pixels: the region, flips, and the scaling to the output size, as raw pixels. */
export async function place(px: RenderedPixels, vp: ResolvedViewport): Promise<RenderedPixels> {
  let img = sharp(Buffer.from(px.data.buffer, px.data.byteOffset, px.data.byteLength), { raw: { width: px.width, height: px.height, channels: px.channels } });
  if (vp.left !== 0 || vp.top !== 0 || vp.width !== px.width || vp.height !== px.height) {
    img = img.extract({ left: vp.left, top: vp.top, width: vp.width, height: vp.height });
  }
  if (vp.flipX) img = img.flop();
  if (vp.flipY) img = img.flip();
  if (vp.outWidth !== vp.width || vp.outHeight !== vp.height) img = img.resize(vp.outWidth, vp.outHeight, { fit: 'fill' });
  // libvips hands raw output back as sRGB unless told: grey stays grey.
  if (px.channels === 1) img = img.toColourspace('b-w');
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels === 1 ? 1 : 3, data };
}

/** One image in `mediaType`. */
export async function encodeImage(px: RenderedPixels, mediaType: RenderMediaType, quality = DEFAULT_QUALITY): Promise<Buffer> {
  let img = sharp(Buffer.from(px.data.buffer, px.data.byteOffset, px.data.byteLength), { raw: { width: px.width, height: px.height, channels: px.channels } });
  // Grey stays one channel (libvips would otherwise write sRGB): smaller files, and what a viewer expects.
  if (px.channels === 1) img = img.toColourspace('b-w');
  switch (mediaType) {
    case 'image/png':
      return img.png().toBuffer();
    case 'image/gif':
      return img.gif().toBuffer();
    default:
      // Baseline (not progressive), 4:4:4 from 90 up so that small print and edges stay sharp.
      return img.jpeg({ quality, progressive: false, chromaSubsampling: quality >= 90 ? '4:4:4' : '4:2:0' }).toBuffer();
  }
}

/** Frames of the same size as one animated GIF (loops for ever); `delayMs` per frame. */
export async function encodeAnimatedGif(frames: RenderedPixels[], delayMs: number): Promise<Buffer> {
  const first = frames[0]!;
  // GIF is palette colour: grey frames are widened to RGB (by libvips, off the event loop) so that every page has
  // the same bands.
  const pages = await Promise.all(
    frames.map((f) => {
      const buf = Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength);
      if (f.channels === 3) return buf;
      return sharp(buf, { raw: { width: f.width, height: f.height, channels: 1 } }).toColourspace('srgb').raw().toBuffer();
    }),
  );
  return sharp(Buffer.concat(pages), { raw: { width: first.width, height: first.height * frames.length, channels: 3, pageHeight: first.height } })
    .gif({ loop: 0, delay: frames.map(() => Math.max(20, Math.round(delayMs))) })
    .toBuffer();
}
