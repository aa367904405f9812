// The attributes that turn stored pixel values into displayed ones (PS3.3 C.7.6.3 Image Pixel, C.11.1 Modality
// LUT, C.11.2 VOI LUT, C.11.6 Presentation LUT shape, C.7.6.3.1.5-6 palettes, C.7.9 segmented palettes), read
// from a dataset in the DICOM JSON Model (the form src/dicom/dataset-reader.ts produces). LUT data over the
// reader's inline threshold (64 KiB, e.g. a 65536-entry 16-bit palette) is read from the stored bytes through
// `bulk`: the caller passes a function that returns it.

import type { BulkDataLocation } from '../dicom/part10.js';
import type { DicomJsonAttribute, DicomJsonDataset } from '../dicom/json-model.js';
import { RenderError } from './render-error.js';

/** A lookup table (PS3.3 C.11.1.1.1: LUT Descriptor = entries (0 = 65536), first mapped value, bits per entry). */
export interface Lut {
  firstMapped: number;
  /** Bits of each entry as declared; `max` is the largest value the data actually holds. */
  bits: number;
  data: Uint16Array;
}

export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

export interface WindowSpec {
  center: number;
  width: number;
  fn: VoiFunction;
}

export interface ImageAttributes {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: number;
  planarConfiguration: number;
  photometricInterpretation: string;
  numberOfFrames: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  modalityLut?: Lut;
  windows: WindowSpec[];
  voiLuts: Lut[];
  presentationLutShape?: string;
  palette?: { red: Lut; green: Lut; blue: Lut };
}

export const TAGS = {
  SOPClassUID: '00080016',
  SamplesPerPixel: '00280002',
  Photometric: '00280004',
  Planar: '00280006',
  NumberOfFrames: '00280008',
  Rows: '00280010',
  Columns: '00280011',
  BitsAllocated: '00280100',
  BitsStored: '00280101',
  HighBit: '00280102',
  PixelRepresentation: '00280103',
  WindowCenter: '00281050',
  WindowWidth: '00281051',
  RescaleIntercept: '00281052',
  RescaleSlope: '00281053',
  VoiLutFunction: '00281056',
  RedDescriptor: '00281101',
  GreenDescriptor: '00281102',
  BlueDescriptor: '00281103',
  RedData: '00281201',
  GreenData: '00281202',
  BlueData: '00281203',
  SegRedData: '00281221',
  SegGreenData: '00281222',
  SegBlueData: '00281223',
  ModalityLutSequence: '00283000',
  LutDescriptor: '00283002',
  LutData: '00283006',
  VoiLutSequence: '00283010',
  PresentationLutShape: '20500020',
  EncapsulatedDocument: '00420011',
  MimeTypeOfDocument: '00420012',
} as const;

/** Reads a value left out of the JSON dataset (over 64 KiB) from the stored bytes, little endian. */
export type BulkReader = (location: BulkDataLocation) => Promise<Buffer>;

const num = (ds: DicomJsonDataset, tag: string, i = 0): number | undefined => {
  const v = ds[tag]?.Value?.[i];
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
};
const nums = (ds: DicomJsonDataset, tag: string): number[] =>
  (ds[tag]?.Value ?? []).map((_, i) => num(ds, tag, i)).filter((v): v is number => v !== undefined);
const str = (ds: DicomJsonDataset, tag: string, i = 0): string | undefined => {
  const v = ds[tag]?.Value?.[i];
  return typeof v === 'string' ? v.trim() : undefined;
};

/** The bytes of a binary attribute (OB/OW inline, US/SS multi-valued, or bulk). */
async function binary(attr: DicomJsonAttribute | undefined, path: (string | number)[], bulk: BulkDataLocation[], read: BulkReader): Promise<Buffer | undefined> {
  if (!attr) return undefined;
  if (attr.InlineBinary !== undefined) return Buffer.from(attr.InlineBinary, 'base64');
  if (attr.Value) {
    const b = Buffer.alloc(attr.Value.length * 2);
    attr.Value.forEach((v, i) => (typeof v === 'number' ? (v < 0 ? b.writeInt16LE(v, i * 2) : b.writeUInt16LE(v & 0xffff, i * 2)) : undefined));
    return b;
  }
  const where = bulk.find((b) => b.path.length === path.length && b.path.every((p, i) => p === path[i]));
  return where ? read(where) : undefined;
}

/**
 * A LUT from its descriptor and data. Entries of 8 bits may come one per byte (packed, as some palettes are
 * written) or one per 16-bit word (PS3.3 C.11.1.1.1: LUT Data is US/OW): the data length tells which.
 */
export function makeLut(descriptor: number[], data: Buffer, signedInput: boolean, what: string): Lut {
  if (descriptor.length < 3) throw new RenderError('unsupported-source', `${what}: LUT Descriptor needs 3 values`);
  const entries = descriptor[0] === 0 ? 65536 : descriptor[0]!;
  let firstMapped = descriptor[1]!;
  // The first mapped value is US or SS "as the pixel data" (C.11.1.1.1): written as US, it may stand for a negative.
  if (signedInput && firstMapped > 0x7fff) firstMapped -= 0x10000;
  const bits = descriptor[2]!;
  if (!(bits >= 1 && bits <= 16)) throw new RenderError('unsupported-source', `${what}: ${bits} bits per LUT entry`);
  const out = new Uint16Array(entries);
  if (bits <= 8 && data.length >= entries && data.length < entries * 2) {
    for (let i = 0; i < entries; i++) out[i] = data[i]!;
  } else {
    if (data.length < entries * 2) throw new RenderError('unsupported-source', `${what}: LUT Data is shorter than its descriptor says`);
    for (let i = 0; i < entries; i++) out[i] = data.readUInt16LE(i * 2);
  }
  return { firstMapped, bits, data: out };
}

/**
 * A segmented palette (PS3.3 C.7.9.2): discrete (0) and linear (1) segments. Indirect segments (2) are refused:
 * no file here uses them and they allow a tiny table to describe a very long one.
 */
export function expandSegmented(segments: Buffer, entries: number, what: string): Uint16Array {
  const words = new Uint16Array(segments.length >> 1);
  for (let i = 0; i < words.length; i++) words[i] = segments.readUInt16LE(i * 2);
  const out: number[] = [];
  let i = 0;
  while (i < words.length && out.length <= entries) {
    const op = words[i]!;
    const length = words[i + 1] ?? 0;
    if (op === 0) {
      for (let k = 0; k < length; k++) out.push(words[i + 2 + k] ?? 0);
      i += 2 + length;
    } else if (op === 1) {
      if (out.length === 0) throw new RenderError('unsupported-source', `${what}: a linear segment cannot come first`);
      const y0 = out[out.length - 1]!;
      const y1 = words[i + 2] ?? y0;
      for (let k = 1; k <= length; k++) out.push(Math.round(y0 + ((y1 - y0) * k) / length));
      i += 3;
    } else {
      throw new RenderError('unsupported-source', `${what}: segment type ${op} is not supported`);
    }
  }
  if (out.length < entries) throw new RenderError('unsupported-source', `${what}: the segments give ${out.length} entries, ${entries} declared`);
  return Uint16Array.from(out.slice(0, entries));
}

/** The rendering attributes of `ds`; `bulk`/`read` give access to large LUT data. */
export async function imageAttributes(ds: DicomJsonDataset, bulk: BulkDataLocation[] = [], read: BulkReader = noBulk): Promise<ImageAttributes> {
  const bitsAllocated = num(ds, TAGS.BitsAllocated) ?? 0;
  const bitsStored = num(ds, TAGS.BitsStored) ?? bitsAllocated;
  const pixelRepresentation = num(ds, TAGS.PixelRepresentation) ?? 0;
  const signed = pixelRepresentation === 1;
  const frames = num(ds, TAGS.NumberOfFrames) ?? 1;
  const attrs: ImageAttributes = {
    rows: num(ds, TAGS.Rows) ?? 0,
    columns: num(ds, TAGS.Columns) ?? 0,
    samplesPerPixel: num(ds, TAGS.SamplesPerPixel) ?? 1,
    bitsAllocated,
    bitsStored,
    highBit: num(ds, TAGS.HighBit) ?? bitsStored - 1,
    pixelRepresentation,
    planarConfiguration: num(ds, TAGS.Planar) ?? 0,
    photometricInterpretation: (str(ds, TAGS.Photometric) ?? '').toUpperCase(),
    numberOfFrames: Number.isInteger(frames) && frames >= 1 ? frames : 1,
    rescaleSlope: num(ds, TAGS.RescaleSlope) ?? 1,
    rescaleIntercept: num(ds, TAGS.RescaleIntercept) ?? 0,
    windows: [],
    voiLuts: [],
  };
  if (attrs.rescaleSlope === 0 || !Number.isFinite(attrs.rescaleSlope)) attrs.rescaleSlope = 1;

  // Modality LUT Sequence (C.11.1): one item; it replaces Rescale Slope/Intercept.
  const mItem = ds[TAGS.ModalityLutSequence]?.Value?.[0];
  if (mItem && typeof mItem === 'object' && !('Alphabetic' in mItem)) {
    const item = mItem as DicomJsonDataset;
    const data = await binary(item[TAGS.LutData], [TAGS.ModalityLutSequence, 0, TAGS.LutData], bulk, read);
    if (data) attrs.modalityLut = makeLut(nums(item, TAGS.LutDescriptor), data, signed, 'Modality LUT');
  }

  // VOI (C.11.2): every window pair, with the VOI LUT Function; and every VOI LUT Sequence item.
  const centers = nums(ds, TAGS.WindowCenter);
  const widths = nums(ds, TAGS.WindowWidth);
  const fnName = (str(ds, TAGS.VoiLutFunction) ?? 'LINEAR').toUpperCase();
  const fn: VoiFunction = fnName === 'SIGMOID' ? 'SIGMOID' : fnName === 'LINEAR_EXACT' ? 'LINEAR_EXACT' : 'LINEAR';
  for (let i = 0; i < Math.min(centers.length, widths.length); i++) {
    const w = { center: centers[i]!, width: widths[i]!, fn };
    if (validWindow(w)) attrs.windows.push(w);
  }
  const voiItems = ds[TAGS.VoiLutSequence]?.Value ?? [];
  for (let i = 0; i < voiItems.length; i++) {
    const item = voiItems[i] as DicomJsonDataset | null;
    if (!item || typeof item !== 'object') continue;
    const data = await binary(item[TAGS.LutData], [TAGS.VoiLutSequence, i, TAGS.LutData], bulk, read);
    if (data) attrs.voiLuts.push(makeLut(nums(item, TAGS.LutDescriptor), data, signed || attrs.rescaleIntercept < 0, 'VOI LUT'));
  }
  const shape = str(ds, TAGS.PresentationLutShape);
  if (shape) attrs.presentationLutShape = shape.toUpperCase();

  if (attrs.photometricInterpretation === 'PALETTE COLOR') {
    const channel = async (descTag: string, dataTag: string, segTag: string, name: string): Promise<Lut> => {
      const desc = nums(ds, descTag);
      const data = await binary(ds[dataTag], [dataTag], bulk, read);
      if (data) return makeLut(desc, data, signed, `${name} palette`);
      const seg = await binary(ds[segTag], [segTag], bulk, read);
      if (!seg || desc.length < 3) throw new RenderError('unsupported-source', `PALETTE COLOR without ${name} palette data`);
      const entries = desc[0] === 0 ? 65536 : desc[0]!;
      const lut = makeLut(desc, Buffer.alloc(entries * 2), signed, `${name} palette`);
      lut.data = expandSegmented(seg, entries, `${name} segmented palette`);
      return lut;
    };
    attrs.palette = {
      red: await channel(TAGS.RedDescriptor, TAGS.RedData, TAGS.SegRedData, 'red'),
      green: await channel(TAGS.GreenDescriptor, TAGS.GreenData, TAGS.SegGreenData, 'green'),
      blue: await channel(TAGS.BlueDescriptor, TAGS.BlueData, TAGS.SegBlueData, 'blue'),
    };
  }
  return attrs;
}

/** PS3.3 C.11.2.1.2: width >= 1 for LINEAR, > 0 for the other functions. */
export function validWindow(w: WindowSpec): boolean {
  if (!Number.isFinite(w.center) || !Number.isFinite(w.width)) return false;
  return w.fn === 'LINEAR' ? w.width >= 1 : w.width > 0;
}

const noBulk: BulkReader = () => Promise.reject(new RenderError('unsupported-source', 'large LUT data is not available'));
