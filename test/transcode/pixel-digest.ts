// The digest of decoded (native) Pixel Data that the transcoding tests compare: read with dcmjs, never with the
// code under test, so the same function digests dcmtk's / GDCM's reference decodes
// (scripts/make-transcode-references.sh) and our transcoder's output.
//
// Colour data is compared as interleaved samples (PlanarConfiguration 0): a planar decode of the same pixels
// digests the same. Lossy sources also keep per-frame means and a few hundred evenly spaced sample values, so
// a decoder that rounds differently (another IDCT, another OpenJPEG) is judged with a tolerance, not a hash.
import { createHash } from 'node:crypto';
import dcmjs from 'dcmjs';

export interface PixelDigest {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  pixelRepresentation: number;
  frames: number;
  photometric: string;
  /** sha256 of the interleaved Pixel Data, cut to exactly `frames` frames (padding byte excluded). */
  sha256: string;
  /** Lossy sources only: mean sample value of each frame. */
  frameMeans?: number[];
  /** Lossy sources only: sample values at SAMPLE_POINTS evenly spaced positions of the whole array. */
  samples?: number[];
}

/** One row of test/fixtures/transcode/references.json (written by make-references.ts, read by testdata.test.ts). */
export interface Reference {
  /** The file under ../shared/testdata. */
  path: string;
  sourceTransferSyntax: string;
  /** Which tool decoded it; "failed" when it could not (the transcoder must then refuse too, or be listed). */
  tool: string;
  lossy: boolean;
  /** The reference decode's digest; absent when the tool failed or dcmjs could not read its output (`error`). */
  digest?: PixelDigest;
  error?: string;
}

export const SAMPLE_POINTS = 256;

type Elements = Record<string, { vr: string; Value?: unknown[] } | undefined>;

// dcmjs reads LOG_LEVEL at import and logs to the console (DESIGN.md pitfalls).
(dcmjs as unknown as { log?: { setLevel?(l: string): void } }).log?.setLevel?.('error');

const first = (ds: Elements, tag: string): unknown => ds[tag]?.Value?.[0];

/** The Part 10 file's elements as dcmjs reads them; throws when dcmjs cannot read it. */
export function readWithDcmjs(bytes: Buffer): { dict: Elements; transferSyntaxUID: string } {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  // ignoreErrors: dcmjs refuses ISO 2022 multi-charset files outright, though their pixels are fine; a partial
  // read it may return instead is caught by pixelDigest's length check.
  const { DicomMessage } = (dcmjs as unknown as { data: { DicomMessage: { readFile(ab: ArrayBuffer, o: object): unknown } } }).data;
  const file = DicomMessage.readFile(ab, { ignoreErrors: true }) as { dict: Elements; meta: Elements };
  return { dict: file.dict, transferSyntaxUID: String(first(file.meta, '00020010')) };
}

/** Digest of a native (uncompressed, little endian) Part 10 file's Pixel Data. */
export function pixelDigest(bytes: Buffer, lossy: boolean): PixelDigest {
  const { dict } = readWithDcmjs(bytes);
  const num = (tag: string, dflt: number) => {
    const v = Number(first(dict, tag));
    return Number.isFinite(v) && v > 0 ? v : dflt;
  };
  const rows = num('00280010', 0);
  const columns = num('00280011', 0);
  const samplesPerPixel = num('00280002', 1);
  const bitsAllocated = num('00280100', 0);
  const pixelRepresentation = Number(first(dict, '00280103') ?? 0);
  const frames = num('00280008', 1);
  const planar = Number(first(dict, '00280006') ?? 0);
  const photometric = String(first(dict, '00280004') ?? '').trim();
  const value = dict['7FE00010']?.Value ?? [];
  const parts = value.map((v) => Buffer.from(new Uint8Array(v as ArrayBuffer)));
  const all = Buffer.concat(parts);
  // Native YBR_FULL_422 / YBR_PARTIAL_422 keep two samples per pixel (PS3.3 C.7.6.3.1.2): Y Y Cb Cr per pair.
  const subsampled = samplesPerPixel === 3 && /^YBR_(FULL|PARTIAL)_422$/.test(photometric);
  const frameBytes = Math.ceil((rows * columns * (subsampled ? 2 : samplesPerPixel) * bitsAllocated) / 8);
  if (all.length < frameBytes * frames) throw new Error(`Pixel Data has ${all.length} bytes, ${frames} frames need ${frameBytes * frames}`);
  const data = all.subarray(0, frameBytes * frames);
  const bytesPerSample = bitsAllocated / 8;
  const interleaved = samplesPerPixel > 1 && planar === 1 && !subsampled ? toInterleaved(data, rows * columns, samplesPerPixel, bytesPerSample, frames) : data;
  const digest: PixelDigest = {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    pixelRepresentation,
    frames,
    photometric,
    sha256: createHash('sha256').update(interleaved).digest('hex'),
  };
  if (lossy && Number.isInteger(bytesPerSample)) {
    const read = sampleReader(interleaved, bitsAllocated, pixelRepresentation);
    const perFrame = frameBytes / bytesPerSample;
    const count = interleaved.length / bytesPerSample;
    digest.frameMeans = Array.from({ length: frames }, (_, f) => {
      let sum = 0;
      for (let i = f * perFrame; i < (f + 1) * perFrame; i++) sum += read(i);
      return Math.round((sum / perFrame) * 1000) / 1000;
    });
    digest.samples = Array.from({ length: Math.min(SAMPLE_POINTS, count) }, (_, k) => read(Math.floor((k * count) / Math.min(SAMPLE_POINTS, count))));
  }
  return digest;
}

function toInterleaved(data: Buffer, pixels: number, spp: number, bps: number, frames: number): Buffer {
  const out = Buffer.alloc(data.length);
  const frameBytes = pixels * spp * bps;
  for (let f = 0; f < frames; f++) {
    const base = f * frameBytes;
    for (let s = 0; s < spp; s++) {
      for (let p = 0; p < pixels; p++) {
        data.copy(out, base + (p * spp + s) * bps, base + (s * pixels + p) * bps, base + (s * pixels + p) * bps + bps);
      }
    }
  }
  return out;
}

function sampleReader(buf: Buffer, bitsAllocated: number, signed: number): (i: number) => number {
  if (bitsAllocated === 8) return signed ? (i) => buf.readInt8(i) : (i) => buf[i]!;
  if (bitsAllocated === 16) return signed ? (i) => buf.readInt16LE(i * 2) : (i) => buf.readUInt16LE(i * 2);
  if (bitsAllocated === 32) return signed ? (i) => buf.readInt32LE(i * 4) : (i) => buf.readUInt32LE(i * 4);
  throw new Error(`no sample reader for BitsAllocated ${bitsAllocated}`);
}
