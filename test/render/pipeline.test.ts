// The pixel pipeline of src/render/pixel-pipeline.ts on hand-made frames: the VOI functions of PS3.3 C.11.2.1.2,
// stored value masking and sign (C.7.6.3.1), rescale and Modality LUT (C.11.1), VOI LUT, MONOCHROME1 and the
// INVERSE presentation shape, and the colour models (RGB planar, YBR_FULL, YBR_FULL_422, PALETTE COLOR).

import t from 'tap';
import { expandSegmented, makeLut, type ImageAttributes } from '../../src/render/image-attributes.js';
import { applyWindow, renderColour, renderGrey, renderPixels, storedValues, unpackBits, ybrToRgb } from '../../src/render/pixel-pipeline.js';
import { RenderError } from '../../src/render/render-error.js';

function grey(values: number[], over: Partial<ImageAttributes> = {}): { frame: Uint8Array; a: ImageAttributes } {
  const a: ImageAttributes = {
    rows: 1,
    columns: values.length,
    samplesPerPixel: 1,
    bitsAllocated: 16,
    bitsStored: 16,
    highBit: 15,
    pixelRepresentation: 0,
    planarConfiguration: 0,
    photometricInterpretation: 'MONOCHROME2',
    numberOfFrames: 1,
    rescaleSlope: 1,
    rescaleIntercept: 0,
    windows: [],
    voiLuts: [],
    ...over,
  };
  const frame = new Uint8Array(values.length * (a.bitsAllocated / 8));
  const view = new DataView(frame.buffer);
  values.forEach((v, i) => (a.bitsAllocated === 16 ? view.setUint16(i * 2, v & 0xffff, true) : (frame[i] = v & 0xff)));
  return { frame, a };
}

const u16 = (...v: number[]) => {
  const b = Buffer.alloc(v.length * 2);
  v.forEach((x, i) => b.writeUInt16LE(x, i * 2));
  return b;
};

t.test('LINEAR window (C.11.2.1.2.1): the -0.5 and width-1 of the standard', async (t) => {
  const w = { center: 40, width: 400, fn: 'LINEAR' as const };
  t.equal(applyWindow(-160, w), 0, 'x <= c - 0.5 - (w-1)/2 is the minimum');
  t.equal(applyWindow(239.5, w), 1, 'x > c - 0.5 + (w-1)/2 is the maximum');
  t.equal(applyWindow(39.5, w), 0.5, 'c - 0.5 is the middle');
  t.ok(Math.abs(applyWindow(139.25, w) - 0.75) < 1e-9);
  t.equal(applyWindow(10, { center: 10, width: 1, fn: 'LINEAR' }), 1, 'width 1 is a threshold');
  t.equal(applyWindow(9, { center: 10, width: 1, fn: 'LINEAR' }), 0);
});

t.test('LINEAR_EXACT and SIGMOID windows (C.11.2.1.3)', async (t) => {
  const e = { center: 0, width: 100, fn: 'LINEAR_EXACT' as const };
  t.equal(applyWindow(-50, e), 0);
  t.equal(applyWindow(50, e), 1);
  t.equal(applyWindow(0, e), 0.5);
  t.equal(applyWindow(25, e), 0.75);
  const s = { center: 100, width: 40, fn: 'SIGMOID' as const };
  t.equal(applyWindow(100, s), 0.5);
  t.ok(Math.abs(applyWindow(120, s) - 1 / (1 + Math.exp(-2))) < 1e-12, 'y = 1 / (1 + exp(-4 (x - c) / w))');
  t.ok(applyWindow(-1e6, s) < 1e-9 && applyWindow(1e6, s) > 1 - 1e-9);
});

t.test('stored values: BitsStored at HighBit masked, sign extended (C.7.6.3.1)', async (t) => {
  // 12 bits at bits 0..11 with overlay bits set above them.
  const a = grey([0xf000 | 0x0fff, 0x8000 | 0x0800, 0x0001], { bitsStored: 12, highBit: 11, pixelRepresentation: 1 });
  t.same([...storedValues(a.frame, a.a)], [-1, -2048, 1], 'overlay bits ignored, 12-bit two\'s complement');
  const b = grey([0xfff0, 0x0010], { bitsStored: 12, highBit: 15 });
  t.same([...storedValues(b.frame, b.a)], [0xfff, 1], 'HighBit 15 with 12 bits stored: shifted down');
  const c = grey([0x80, 0x7f], { bitsAllocated: 8, bitsStored: 8, highBit: 7, pixelRepresentation: 1 });
  t.same([...storedValues(c.frame, c.a)], [-128, 127]);
});

t.test('signed CT: rescale then window, MONOCHROME2', async (t) => {
  // Stored -1024..1024 (signed), intercept -1024: HU -2048..0; window 40/400 on HU.
  const { frame, a } = grey([0, 1024, 1064, 1264, -1024 & 0xffff], {
    pixelRepresentation: 1,
    rescaleIntercept: -1024,
    windows: [{ center: 40, width: 400, fn: 'LINEAR' }],
  });
  const px = renderGrey(frame, a);
  t.same([...px.data], [0, 102, 128, 255, 0], 'HU -1024, 0 ((0-39.5)/399+0.5), 40, 240, -2048');
});

t.test('rescale slope scales before the window', async (t) => {
  const { frame, a } = grey([100, 200], { rescaleSlope: 2, rescaleIntercept: -100, windows: [{ center: 200, width: 200, fn: 'LINEAR_EXACT' }] });
  t.same([...renderGrey(frame, a).data], [0, 255], '100 -> 100 (the lower edge), 200 -> 300 (the upper edge)');
});

t.test('MONOCHROME1 and Presentation LUT Shape INVERSE invert', async (t) => {
  const w = [{ center: 50, width: 100, fn: 'LINEAR_EXACT' as const }];
  const m2 = grey([0, 25, 100], { windows: w });
  t.same([...renderGrey(m2.frame, m2.a).data], [0, 64, 255]);
  const m1 = grey([0, 25, 100], { windows: w, photometricInterpretation: 'MONOCHROME1' });
  t.same([...renderGrey(m1.frame, m1.a).data], [255, 191, 0], 'low values are white in MONOCHROME1');
  const inv = grey([0, 25, 100], { windows: w, presentationLutShape: 'INVERSE' });
  t.same([...renderGrey(inv.frame, inv.a).data], [255, 191, 0]);
});

t.test('the window parameter replaces the dataset window', async (t) => {
  const { frame, a } = grey([0, 50, 100], { windows: [{ center: 1000, width: 10, fn: 'LINEAR' }] });
  t.same([...renderGrey(frame, a).data], [0, 0, 0], 'the dataset window puts everything below');
  t.same([...renderGrey(frame, a, { window: { center: 50, width: 100, fn: 'LINEAR_EXACT' } }).data], [0, 128, 255]);
});

t.test('without VOI: the frame\'s own min..max', async (t) => {
  const { frame, a } = grey([1000, 1500, 2000]);
  t.same([...renderGrey(frame, a).data], [0, 128, 255]);
  const flat = grey([7, 7]);
  t.same([...renderGrey(flat.frame, flat.a).data], [0, 0], 'a flat frame is black, not a division by zero');
});

t.test('Modality LUT Sequence replaces rescale; VOI LUT Sequence maps to the display', async (t) => {
  // Modality LUT: 4 entries from stored value 10, 16 bits: 10->0, 11->100, 12->200, 13->300; outside: clamped.
  const modalityLut = makeLut([4, 10, 16], u16(0, 100, 200, 300), false, 'test');
  const { frame, a } = grey([9, 10, 11, 12, 13, 99], { modalityLut, rescaleSlope: 5, rescaleIntercept: 1000, windows: [{ center: 150, width: 300, fn: 'LINEAR_EXACT' }] });
  t.same([...renderGrey(frame, a).data], [0, 0, 85, 170, 255, 255]);
  // VOI LUT: 3 entries from 0, 8 bits: 0->0, 1->255, 2->51.
  const voiLut = makeLut([3, 0, 8], u16(0, 255, 51), false, 'test');
  const v = grey([0, 1, 2, 5], { voiLuts: [voiLut] });
  t.same([...renderGrey(v.frame, v.a).data], [0, 255, 51, 51]);
});

t.test('LUT descriptors: 0 entries means 65536, a US first value of a signed image is negative', async (t) => {
  const big = makeLut([0, 0, 16], Buffer.alloc(65536 * 2), false, 'x');
  t.equal(big.data.length, 65536);
  t.equal(makeLut([2, 0xfc18, 16], u16(1, 2), true, 'x').firstMapped, -1000);
  t.throws(() => makeLut([4, 0, 16], u16(1), false, 'x'), RenderError, 'data shorter than the descriptor');
});

t.test('PALETTE COLOR: 8-bit and 16-bit entries', async (t) => {
  const base = { photometricInterpretation: 'PALETTE COLOR', bitsAllocated: 8, bitsStored: 8, highBit: 7 };
  const p16 = {
    red: makeLut([3, 0, 16], u16(0xffff, 0, 0x8080), false, 'r'),
    green: makeLut([3, 0, 16], u16(0, 0xffff, 0x8080), false, 'g'),
    blue: makeLut([3, 0, 16], u16(0, 0, 0x8080), false, 'b'),
  };
  const { frame, a } = grey([0, 1, 2, 9], { ...base, palette: p16 });
  t.same([...renderPixels(frame, a).data], [255, 0, 0, 0, 255, 0, 128, 128, 128, 128, 128, 128], 'index past the end takes the last entry');
  // 8-bit entries packed one per byte.
  const p8 = {
    red: makeLut([2, 5, 8], Buffer.from([10, 20]), false, 'r'),
    green: makeLut([2, 5, 8], Buffer.from([30, 40]), false, 'g'),
    blue: makeLut([2, 5, 8], Buffer.from([50, 60]), false, 'b'),
  };
  const b = grey([5, 6], { ...base, palette: p8 });
  t.same([...renderColour(b.frame, b.a).data], [10, 30, 50, 20, 40, 60]);
  // Declared 16-bit with entries that all fit 8 bits: taken as 8-bit (writer error tolerated by DCMTK too).
  const loose = { red: makeLut([1, 0, 16], u16(200), false, 'r'), green: makeLut([1, 0, 16], u16(100), false, 'g'), blue: makeLut([1, 0, 16], u16(0), false, 'b') };
  const c = grey([0], { ...base, palette: loose });
  t.same([...renderColour(c.frame, c.a).data], [200, 100, 0]);
});

t.test('segmented palettes (C.7.9.2): discrete and linear segments; indirect refused', async (t) => {
  // discrete [0, 100], then linear to 400 over 3 steps: 0, 100, 200, 300, 400.
  t.same([...expandSegmented(u16(0, 2, 0, 100, 1, 3, 400), 5, 'x')], [0, 100, 200, 300, 400]);
  t.throws(() => expandSegmented(u16(0, 1, 0, 2, 1, 0, 0, 0), 3, 'x'), RenderError, 'indirect segment');
  t.throws(() => expandSegmented(u16(0, 1, 5), 3, 'x'), RenderError, 'fewer entries than declared');
});

t.test('colour: RGB by plane, YBR_FULL and YBR_FULL_422 to RGB', async (t) => {
  const a = (pi: string, planar = 0): ImageAttributes => ({
    rows: 1, columns: 2, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, highBit: 7, pixelRepresentation: 0,
    planarConfiguration: planar, photometricInterpretation: pi, numberOfFrames: 1, rescaleSlope: 1, rescaleIntercept: 0, windows: [], voiLuts: [],
  });
  t.same([...renderColour(Uint8Array.from([1, 2, 3, 4, 5, 6]), a('RGB')).data], [1, 2, 3, 4, 5, 6]);
  t.same([...renderColour(Uint8Array.from([1, 4, 2, 5, 3, 6]), a('RGB', 1)).data], [1, 2, 3, 4, 5, 6], 'planar: RR GG BB');
  t.same(ybrToRgb(128, 128, 128), [128, 128, 128]);
  t.same(ybrToRgb(76, 85, 255), [254, 0, 0], 'red (PS3.3 C.7.6.3.1.2 coefficients)');
  t.same([...renderColour(Uint8Array.from([76, 85, 255, 150, 44, 21]), a('YBR_FULL')).data], [254, 0, 0, ...ybrToRgb(150, 44, 21)]);
  // 422: Y1 Y2 Cb Cr for two pixels.
  t.same([...renderColour(Uint8Array.from([76, 128, 128, 128]), a('YBR_FULL_422')).data], [76, 76, 76, 128, 128, 128]);
  t.throws(() => renderColour(new Uint8Array(6), a('YBR_PARTIAL_420')), RenderError);
});

t.test('16-bit RGB keeps its top 8 stored bits', async (t) => {
  const a: ImageAttributes = {
    rows: 1, columns: 1, samplesPerPixel: 3, bitsAllocated: 16, bitsStored: 16, highBit: 15, pixelRepresentation: 0,
    planarConfiguration: 0, photometricInterpretation: 'RGB', numberOfFrames: 1, rescaleSlope: 1, rescaleIntercept: 0, windows: [], voiLuts: [],
  };
  t.same([...renderColour(new Uint8Array(u16(0xffff, 0x8000, 0x00ff)), a).data], [255, 128, 0]);
});

t.test('bit-packed frames: least significant bit first, a frame may start inside a byte (PS3.5 8.1.1)', async (t) => {
  t.same([...unpackBits(Uint8Array.from([0b00000101]), 0, 4)], [1, 0, 1, 0]);
  // Frame 2 of 3 x 2-pixel frames starts at bit 6: bits 6, 7 of byte 0 and 0..3 of byte 1.
  t.same([...unpackBits(Uint8Array.from([0b10000000, 0b00001010]), 6, 6)], [0, 1, 0, 1, 0, 1]);
});
