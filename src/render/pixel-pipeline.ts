// Stored pixel values to 8-bit display values, per PS3.3 (the "grayscale image pipeline" of PS3.4 N.2.1 and the
// colour conversions of C.7.6.3.1.2): pure functions on one native, little-endian frame, as the transcoder
// (src/transcode/) returns it. No I/O, no sharp: render-worker.ts runs this off the main thread.
//
// Greyscale: stored value (BitsStored bits at HighBit, sign-extended for PixelRepresentation 1)
//   -> Modality LUT (C.11.1: the Modality LUT Sequence, else Rescale Slope/Intercept)
//   -> VOI (C.11.2: the requested window, else the dataset's first window with its VOI LUT Function, else its first
//      VOI LUT, else the frame's own min..max)
//   -> Presentation LUT (C.11.6: MONOCHROME1 or shape INVERSE invert; other shapes are identity here)
//   -> 0..255.
// Colour: RGB as is (scaled to 8 bits), YBR_FULL / YBR_FULL_422 to RGB, PALETTE COLOR through the palettes.

import type { ImageAttributes, Lut, WindowSpec } from './image-attributes.js';
import { RenderError } from './render-error.js';

export interface RenderedPixels {
  width: number;
  height: number;
  /** 1 (greyscale) or 3 (RGB, by pixel). */
  channels: 1 | 3;
  data: Uint8Array;
}

/** The stored values of a single-sample frame: masked to BitsStored at HighBit and sign-extended (C.7.6.3.1). */
export function storedValues(frame: Uint8Array, a: Pick<ImageAttributes, 'rows' | 'columns' | 'bitsAllocated' | 'bitsStored' | 'highBit' | 'pixelRepresentation'>): Int32Array | Float64Array {
  const n = a.rows * a.columns;
  const bytes = a.bitsAllocated / 8;
  if (frame.length < n * bytes) throw new RenderError('unsupported-source', `the frame has ${frame.length} bytes, ${n * bytes} expected`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const shift = Math.max(0, a.highBit + 1 - a.bitsStored);
  const bits = a.bitsStored;
  const signed = a.pixelRepresentation === 1;
  if (a.bitsAllocated === 32) {
    const out = new Float64Array(n);
    const mask = bits >= 32 ? 0xffffffff : 2 ** bits - 1;
    for (let i = 0; i < n; i++) {
      let v = Math.floor(view.getUint32(i * 4, true) / 2 ** shift) % (mask + 1);
      if (signed && v >= 2 ** (bits - 1)) v -= 2 ** bits;
      out[i] = v;
    }
    return out;
  }
  const out = new Int32Array(n);
  const mask = (1 << bits) - 1;
  const sign = 1 << (bits - 1);
  for (let i = 0; i < n; i++) {
    let v = ((bytes === 2 ? view.getUint16(i * 2, true) : frame[i]!) >> shift) & mask;
    if (signed && v & sign) v -= 1 << bits;
    out[i] = v;
  }
  return out;
}

/** A LUT lookup: inputs below the first mapped value take the first entry, above the last the last (C.11.1.1.1). */
export function lutValue(lut: Lut, x: number): number {
  const i = Math.round(x) - lut.firstMapped;
  return lut.data[i < 0 ? 0 : i >= lut.data.length ? lut.data.length - 1 : i]!;
}

/** Largest output of a LUT, for scaling it to 0..1: 2^bits - 1 (C.11.2.1.1: the VOI LUT output range). */
const lutMax = (lut: Lut) => 2 ** lut.bits - 1;

/** The VOI window functions of PS3.3 C.11.2.1.2 (and .3 for SIGMOID), output in 0..1. */
export function applyWindow(x: number, w: WindowSpec): number {
  const c = w.center;
  const width = w.width;
  switch (w.fn) {
    case 'LINEAR_EXACT':
      if (x <= c - width / 2) return 0;
      if (x > c + width / 2) return 1;
      return (x - c) / width + 0.5;
    case 'SIGMOID':
      return 1 / (1 + Math.exp((-4 * (x - c)) / width));
    default: {
      // C.11.2.1.2.1: the "-0.5" and "width - 1" of the linear function (a width of 1 is a threshold).
      if (x <= c - 0.5 - (width - 1) / 2) return 0;
      if (x > c - 0.5 + (width - 1) / 2) return 1;
      return width === 1 ? 1 : (x - (c - 0.5)) / (width - 1) + 0.5;
    }
  }
}

export interface GreyOptions {
  /** The `window` parameter of the request: replaces the dataset's VOI (PS3.18 10.4.1.1.4 / 8.3.5.1.4). */
  window?: WindowSpec;
}

/** The greyscale pipeline on one frame (see the file comment). */
export function renderGrey(frame: Uint8Array, a: ImageAttributes, options: GreyOptions = {}): RenderedPixels {
  const values = storedValues(frame, a);
  const n = values.length;
  const modality = a.modalityLut
    ? (v: number) => lutValue(a.modalityLut!, v)
    : (v: number) => v * a.rescaleSlope + a.rescaleIntercept;
  const invert = a.photometricInterpretation === 'MONOCHROME1' || a.presentationLutShape === 'INVERSE';

  // For up to 16 stored bits, compute each distinct value once (a table over the frame's range of stored values).
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const tabled = a.bitsStored <= 16;

  let voi: (m: number) => number;
  const window = options.window ?? a.windows[0];
  const voiLut = a.voiLuts[0];
  if (window) voi = (m) => applyWindow(m, window);
  else if (voiLut) voi = (m) => lutValue(voiLut, m) / lutMax(voiLut);
  else {
    // No VOI in the dataset: stretch the frame's own modality values, min..max (what DCMTK's +Wm does).
    let mlo = Infinity;
    let mhi = -Infinity;
    if (tabled) {
      const seen = new Uint8Array(hi - lo + 1);
      for (let i = 0; i < n; i++) seen[values[i]! - lo] = 1;
      for (let k = 0; k < seen.length; k++) {
        if (!seen[k]) continue;
        const m = modality(k + lo);
        if (m < mlo) mlo = m;
        if (m > mhi) mhi = m;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const m = modality(values[i]!);
        if (m < mlo) mlo = m;
        if (m > mhi) mhi = m;
      }
    }
    const span = mhi - mlo;
    voi = span > 0 ? (m) => (m - mlo) / span : () => 0;
  }
  const display = (v: number) => {
    const y = voi(modality(v));
    return Math.round((invert ? 1 - y : y) * 255);
  };
  const out = new Uint8Array(n);
  if (tabled) {
    const table = new Uint8Array(hi - lo + 1);
    for (let k = 0; k < table.length; k++) table[k] = display(k + lo);
    for (let i = 0; i < n; i++) out[i] = table[values[i]! - lo]!;
  } else {
    for (let i = 0; i < n; i++) out[i] = display(values[i]!);
  }
  return { width: a.columns, height: a.rows, channels: 1, data: out };
}

/** A sample of a colour frame scaled to 8 bits (RGB of more than 8 bits keeps its top 8 stored bits). */
function sampleReader(frame: Uint8Array, a: ImageAttributes): (index: number) => number {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const shift = Math.max(0, a.highBit + 1 - a.bitsStored);
  const down = Math.max(0, a.bitsStored - 8);
  if (a.bitsAllocated === 8) return (i) => (frame[i]! >> shift) & 0xff;
  if (a.bitsAllocated === 16) return (i) => ((view.getUint16(i * 2, true) >> shift) & ((1 << a.bitsStored) - 1)) >> down;
  return (i) => Math.floor((view.getUint32(i * 4, true) / 2 ** shift) % 2 ** a.bitsStored / 2 ** down);
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** YCbCr (full range, PS3.3 C.7.6.3.1.2 YBR_FULL) to RGB. */
export function ybrToRgb(y: number, cb: number, cr: number): [number, number, number] {
  return [clamp8(y + 1.402 * (cr - 128)), clamp8(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)), clamp8(y + 1.772 * (cb - 128))];
}

/** The colour pipelines: RGB, YBR_FULL, YBR_FULL_422 (native, 2 pixels = Y1 Y2 Cb Cr), PALETTE COLOR. */
export function renderColour(frame: Uint8Array, a: ImageAttributes): RenderedPixels {
  const n = a.rows * a.columns;
  const out = new Uint8Array(n * 3);
  const pi = a.photometricInterpretation;
  if (pi === 'PALETTE COLOR') {
    if (!a.palette) throw new RenderError('unsupported-source', 'PALETTE COLOR without palettes');
    const values = storedValues(frame, a);
    const { red, green, blue } = a.palette;
    // 16-bit entries are scaled to 8 bits; a table declared 16-bit whose entries all fit 8 bits is taken as 8-bit
    // (a known writer error that DCMTK tolerates too).
    const scale = (lut: Lut) => (lut.bits > 8 && lut.data.some((e) => e > 255) ? 1 / 257 : 1);
    const [sr, sg, sb] = [scale(red), scale(green), scale(blue)];
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      out[i * 3] = clamp8(lutValue(red, v) * sr);
      out[i * 3 + 1] = clamp8(lutValue(green, v) * sg);
      out[i * 3 + 2] = clamp8(lutValue(blue, v) * sb);
    }
    return { width: a.columns, height: a.rows, channels: 3, data: out };
  }
  if (a.samplesPerPixel !== 3) throw new RenderError('unsupported-source', `${pi} with ${a.samplesPerPixel} samples per pixel is not rendered`);
  const sample = sampleReader(frame, a);
  if (pi === 'YBR_FULL_422') {
    // PS3.3 C.7.6.3.1.2: horizontally subsampled chroma; always by pixel (PlanarConfiguration 0).
    const cols = a.columns;
    if (frame.length < a.rows * cols * 2) throw new RenderError('unsupported-source', 'the YBR_FULL_422 frame is too short');
    for (let r = 0; r < a.rows; r++) {
      for (let c = 0; c < cols; c += 2) {
        const base = (r * cols + c) * 2;
        const cb = frame[base + 2]!;
        const cr = frame[base + 3]!;
        for (let k = 0; k < 2 && c + k < cols; k++) {
          const rgb = ybrToRgb(frame[base + k]!, cb, cr);
          out.set(rgb, (r * cols + c + k) * 3);
        }
      }
    }
    return { width: cols, height: a.rows, channels: 3, data: out };
  }
  if (pi !== 'RGB' && pi !== 'YBR_FULL') throw new RenderError('unsupported-source', `PhotometricInterpretation ${pi} is not rendered`);
  const planar = a.planarConfiguration === 1;
  const at = (p: number, s: number) => sample(planar ? s * n + p : p * 3 + s);
  for (let p = 0; p < n; p++) {
    const x = at(p, 0);
    const y = at(p, 1);
    const z = at(p, 2);
    if (pi === 'RGB') {
      out[p * 3] = x;
      out[p * 3 + 1] = y;
      out[p * 3 + 2] = z;
    } else out.set(ybrToRgb(x, y, z), p * 3);
  }
  return { width: a.columns, height: a.rows, channels: 3, data: out };
}

/**
 * A bit-packed frame (BitsAllocated 1, PS3.5 8.1.1: pixels follow each other bit by bit, least significant bit
 * first, frames too, so a frame may start inside a byte) to one byte per pixel.
 */
export function unpackBits(packed: Uint8Array, skipBits: number, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const bit = skipBits + i;
    out[i] = (packed[bit >> 3]! >> (bit & 7)) & 1;
  }
  return out;
}

/** One native frame to 8-bit display pixels. */
export function renderPixels(frame: Uint8Array, a: ImageAttributes, options: GreyOptions = {}): RenderedPixels {
  const pi = a.photometricInterpretation;
  if (pi === 'MONOCHROME1' || pi === 'MONOCHROME2') {
    if (a.samplesPerPixel !== 1) throw new RenderError('unsupported-source', `${pi} with ${a.samplesPerPixel} samples per pixel`);
    return renderGrey(frame, a, options);
  }
  return renderColour(frame, a);
}
