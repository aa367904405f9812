// The rendered-resource query parameters of PS3.18 10.4.1.1 (8.3.5.1 in earlier editions), parsed and checked
// without HTTP types: `quality` (1..100), `viewport` (vw,vh[,sx,sy,sw,sh]), `window` (center,width,function).
// The routes (not wired yet) pass the raw strings; a bad value is a RenderError 'bad-parameter' (400).

import type { VoiFunction, WindowSpec } from './image-attributes.js';
import { validWindow } from './image-attributes.js';
import { RenderError } from './render-error.js';

/** Media types of rendered images (PS3.18 10.4: image/jpeg is the default; png and gif are "R" for images). */
export const RENDER_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif'] as const;
export type RenderMediaType = (typeof RENDER_MEDIA_TYPES)[number];
export const DEFAULT_RENDER_MEDIA_TYPE: RenderMediaType = 'image/jpeg';
export const PDF_MEDIA_TYPE = 'application/pdf';

/** PS3.18 10.4.1.1.3: vw,vh the viewport in pixels; sx,sy,sw,sh the source region (sw/sh negative: flipped). */
export interface Viewport {
  vw: number;
  vh: number;
  sx?: number;
  sy?: number;
  sw?: number;
  sh?: number;
}

const bad = (msg: string) => new RenderError('bad-parameter', msg);

/** `quality`: an integer 1..100 (PS3.18 10.4.1.1.2); it applies to lossy media types (JPEG here). */
export function parseQuality(value: string): number {
  if (!/^\d{1,3}$/.test(value.trim())) throw bad('quality must be an integer 1..100');
  const q = Number(value);
  if (q < 1 || q > 100) throw bad('quality must be an integer 1..100');
  return q;
}

/** `viewport=vw,vh[,sx,sy,sw,sh]` (sx,sy,sw,sh may be left empty: the defaults below apply). */
export function parseViewport(value: string): Viewport {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length !== 2 && parts.length !== 6) throw bad('viewport is vw,vh or vw,vh,sx,sy,sw,sh');
  const int = (s: string, name: string, signed: boolean) => {
    if (!(signed ? /^-?\d{1,6}$/ : /^\d{1,6}$/).test(s)) throw bad(`viewport ${name} must be ${signed ? 'an' : 'a non-negative'} integer`);
    return Number(s);
  };
  const vp: Viewport = { vw: int(parts[0]!, 'vw', false), vh: int(parts[1]!, 'vh', false) };
  if (vp.vw < 1 || vp.vh < 1) throw bad('viewport vw and vh must be at least 1');
  if (parts.length === 6) {
    const names = ['sx', 'sy', 'sw', 'sh'] as const;
    names.forEach((name, i) => {
      const s = parts[i + 2]!;
      if (s !== '') vp[name] = int(s, name, name === 'sw' || name === 'sh');
    });
  }
  return vp;
}

/** `window=center,width,function` with function linear, linear-exact or sigmoid (PS3.3 C.11.2.1.2). */
export function parseWindow(value: string): WindowSpec {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length !== 3) throw bad('window is center,width,function');
  const number = (s: string, name: string) => {
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw bad(`window ${name} must be a number`);
    return Number(s);
  };
  const fns: Record<string, VoiFunction> = { linear: 'LINEAR', 'linear-exact': 'LINEAR_EXACT', sigmoid: 'SIGMOID' };
  const fn = fns[parts[2]!.toLowerCase()];
  if (!fn) throw bad('window function must be linear, linear-exact or sigmoid');
  const w = { center: number(parts[0]!, 'center'), width: number(parts[1]!, 'width'), fn };
  if (!validWindow(w)) throw bad(fn === 'LINEAR' ? 'window width must be at least 1 for linear' : 'window width must be above 0');
  return w;
}

export interface ResolvedViewport {
  /** The source region, clipped to the image. */
  left: number;
  top: number;
  width: number;
  height: number;
  flipX: boolean;
  flipY: boolean;
  /** The output size: the region scaled to fit vw x vh, aspect ratio kept (at least 1 x 1). */
  outWidth: number;
  outHeight: number;
}

/**
 * Where a viewport takes its pixels and what size the output is. Without sx,sy the region starts at 0,0; without
 * sw,sh it runs to the right and bottom edges. A negative sw or sh selects the region leftwards / upwards of sx,sy
 * and flips it (PS3.18 10.4.1.1.3). A region outside the image is a bad parameter.
 */
export function resolveViewport(vp: Viewport | undefined, columns: number, rows: number): ResolvedViewport {
  if (!vp) return { left: 0, top: 0, width: columns, height: rows, flipX: false, flipY: false, outWidth: columns, outHeight: rows };
  const axis = (s: number | undefined, len: number | undefined, size: number, name: string) => {
    const start = s ?? 0;
    if (start > size || (start === size && (len ?? 0) >= 0)) throw bad(`viewport ${name} region starts outside the image`);
    let from = start;
    let to = len === undefined ? size : start + len;
    const flip = len !== undefined && len < 0;
    if (flip) [from, to] = [to, from];
    from = Math.max(0, from);
    to = Math.min(size, to);
    if (to - from < 1) throw bad(`viewport ${name} region is empty`);
    return { from, length: to - from, flip };
  };
  const x = axis(vp.sx, vp.sw, columns, 'x');
  const y = axis(vp.sy, vp.sh, rows, 'y');
  const scale = Math.min(vp.vw / x.length, vp.vh / y.length);
  return {
    left: x.from,
    top: y.from,
    width: x.length,
    height: y.length,
    flipX: x.flip,
    flipY: y.flip,
    outWidth: Math.max(1, Math.min(vp.vw, Math.round(x.length * scale))),
    outHeight: Math.max(1, Math.min(vp.vh, Math.round(y.length * scale))),
  };
}
