// Transfer syntax transcoding of a stored instance (PS3.18 8.7.3.5: the origin server may convert to a syntax the
// client accepts): decode the stored pixels (or read them, for native syntaxes) and re-encode them in the target
// syntax, with the Image Pixel attributes the new encoding needs. No HTTP types: the WADO-RS / WADO-URI routes
// and the negotiation (src/http/negotiate.ts) call this.
//
// Pipeline:
//   1. scan the stored bytes (dicom/part10-scan.ts, capped); native objects in Implicit VR LE, Explicit VR BE or
//      Deflated are first re-encoded losslessly to Explicit VR LE (dicom/reencode.ts), so that from here on the
//      dataset is Explicit VR Little Endian (encapsulated syntaxes always are, PS3.5 A.4);
//   2. the decompression-bomb guard (frame-guard.ts) on the Image Pixel attributes, then on each frame's codestream;
//   3. decode / encode each frame in the codec worker pool (codec-pool.ts: time and heap limits);
//   4. rewrite the top level (explicit-dataset.ts): every element copied byte for byte, except Pixel Data,
//      (0002,0010) Transfer Syntax UID, and the attributes the new encoding changes:
//      - PhotometricInterpretation: JPEG YBR_FULL / YBR_FULL_422 and JPEG 2000 YBR_RCT / YBR_ICT decode to RGB
//        (PS3.5 8.2.1, 8.2.4; PS3.3 C.7.6.3.1.2); encoding RGB to JPEG baseline gives YBR_FULL_422, to JPEG 2000
//        with the component transform YBR_RCT (reversible) or YBR_ICT (irreversible);
//      - PlanarConfiguration 0: codecs give and take colour-by-pixel;
//      - Lossy Image Compression (0028,2110) "01" with Ratio (0028,2112) and Method (0028,2114) appended, whenever
//        the pixels went through a lossy syntax, the stored one or the target (PS3.3 C.7.6.1.1.5: once 01, never
//        reset): a lossy result never passes for lossless;
//      - Extended Offset Table (7FE0,0001/0002) dropped: the new Pixel Data has a Basic Offset Table instead.

import { bufferSource } from '../dicom/byte-source.js';
import { walkDataset } from '../dicom/dataset-walk.js';
import { locateFrames, type ByteRange } from '../dicom/frames.js';
import { findFrameStarts } from '../dicom/frame-starts.js';
import type { ByteSource, ScanLimits } from '../dicom/part10.js';
import { scanPart10, type ScanResult } from '../dicom/part10-scan.js';
import { reencodeToExplicitLittleEndian } from '../dicom/reencode.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, transferSyntax, type TransferSyntax } from '../dicom/transfer-syntax.js';
import type { CodecPool, CodecResult } from './codec-pool.js';
import { decoderFor, encoderFor } from './codec-table.js';
import { j2kInfo } from './codestream-info.js';
import {
  editedElements,
  encodeElement,
  encodeEncapsulatedPixelData,
  metaGroupLength,
  textValue,
  topLevelElements,
  usValue,
  type TopElement,
} from './explicit-dataset.js';
import { checkCodestream, checkGeometry, DEFAULT_PIXEL_LIMITS, type FrameFormat, type PixelLimits } from './frame-guard.js';
import { TranscodeError } from './transcode-error.js';

export interface TranscoderOptions {
  pool: CodecPool;
  scanLimits: ScanLimits;
  pixelLimits?: PixelLimits;
}

export interface TranscodedInstance {
  transferSyntaxUID: string;
  /** The whole Part 10 object in the target syntax. */
  bytes: Buffer;
  /**
   * True when the pixels went through lossy compression: the result carries Lossy Image Compression "01", or it is
   * the stored object unchanged in a lossy syntax (whose attributes are as the sender wrote them).
   */
  lossy: boolean;
}

export interface TranscodedFrames {
  transferSyntaxUID: string;
  /** One entry per requested frame: native little-endian bytes, or one codestream per frame. */
  frames: Buffer[];
  /** PhotometricInterpretation of the returned frames. */
  photometricInterpretation: string;
  /** As TranscodedInstance.lossy. */
  lossy: boolean;
}

const TAG = {
  TRANSFER_SYNTAX_UID: 0x00020010,
  META_GROUP_LENGTH: 0x00020000,
  SAMPLES_PER_PIXEL: 0x00280002,
  PHOTOMETRIC: 0x00280004,
  PLANAR: 0x00280006,
  NUMBER_OF_FRAMES: 0x00280008,
  ROWS: 0x00280010,
  COLUMNS: 0x00280011,
  BITS_ALLOCATED: 0x00280100,
  BITS_STORED: 0x00280101,
  PIXEL_REPRESENTATION: 0x00280103,
  LOSSY: 0x00282110,
  LOSSY_RATIO: 0x00282112,
  LOSSY_METHOD: 0x00282114,
  EXTENDED_OFFSET_TABLE: 0x7fe00001,
  EXTENDED_OFFSET_TABLE_LENGTHS: 0x7fe00002,
  PIXEL_DATA: 0x7fe00010,
} as const;

const EXPLICIT_LE = transferSyntax(EXPLICIT_VR_LITTLE_ENDIAN)!;

/** A stored object seen as Explicit VR Little Endian, with its top-level elements. */
interface View {
  stored: TransferSyntax;
  source: ByteSource;
  scan: ScanResult;
  meta: TopElement[];
  elements: Map<number, TopElement>;
  list: TopElement[];
}

/** The pixels of the requested frames, native or as stored, with what describes them. */
interface Pixels {
  format: FrameFormat;
  numberOfFrames: number;
  frames: Buffer[];
  /** Transfer syntax of `frames`: EXPLICIT_VR_LITTLE_ENDIAN when native. */
  syntax: string;
}

interface LossyRecord {
  lossy: boolean;
  ratios: string[];
  methods: string[];
  changed: boolean;
}

export class Transcoder {
  private readonly limits: PixelLimits;

  constructor(private readonly options: TranscoderOptions) {
    this.limits = options.pixelLimits ?? DEFAULT_PIXEL_LIMITS;
  }

  /** Whether `uid` is a syntax this transcoder writes (from a suitable source). */
  static canWrite(uid: string): boolean {
    return uid === EXPLICIT_VR_LITTLE_ENDIAN || encoderFor(uid) !== undefined;
  }

  /** The stored object as a Part 10 object in `targetUid`. */
  async transcodeInstance(stored: ByteSource, targetUid: string): Promise<TranscodedInstance> {
    this.checkTarget(targetUid);
    const view = await this.view(stored);
    const lossyNow = (await this.lossyRecord(view)).lossy || view.stored.lossy;
    if (view.stored.uid === targetUid) return { transferSyntaxUID: targetUid, bytes: await readAll(stored), lossy: lossyNow };
    if (!view.stored.encapsulated && targetUid === EXPLICIT_VR_LITTLE_ENDIAN) {
      // Native to native: the lossless re-encoding of step 1 is the answer.
      return { transferSyntaxUID: targetUid, bytes: await readAll(view.source), lossy: lossyNow };
    }
    if (!view.scan.pixelData) throw new TranscodeError('unsupported-source', 'the object has no Pixel Data to transcode');
    const all = await this.pixels(view, undefined, targetUid);
    const { frames, photometric, lossy } = await this.convert(view, all, targetUid);

    const replace = new Map<number, Buffer | null>();
    replace.set(TAG.PHOTOMETRIC, encodeElement(TAG.PHOTOMETRIC, 'CS', textValue([photometric])));
    if (all.format.samplesPerPixel > 1) replace.set(TAG.PLANAR, encodeElement(TAG.PLANAR, 'US', usValue(0)));
    if (lossy.changed) {
      replace.set(TAG.LOSSY, encodeElement(TAG.LOSSY, 'CS', textValue(['01'])));
      if (lossy.ratios.length > 0) replace.set(TAG.LOSSY_RATIO, encodeElement(TAG.LOSSY_RATIO, 'DS', textValue(lossy.ratios)));
      if (lossy.methods.length > 0) replace.set(TAG.LOSSY_METHOD, encodeElement(TAG.LOSSY_METHOD, 'CS', textValue(lossy.methods)));
    }
    replace.set(TAG.EXTENDED_OFFSET_TABLE, null);
    replace.set(TAG.EXTENDED_OFFSET_TABLE_LENGTHS, null);
    replace.set(TAG.PIXEL_DATA, pixelDataElement(targetUid, frames, all.format.bitsAllocated));
    const bytes = await this.part10(view, targetUid, replace);
    return { transferSyntaxUID: targetUid, bytes, lossy: lossy.lossy };
  }

  /**
   * Frames `numbers` (1-based) in `targetUid`: native little-endian bytes for Explicit VR Little Endian (the
   * WADO-RS frames resource, PS3.18 8.7.3.5.3), else one codestream per frame.
   */
  async transcodeFrames(stored: ByteSource, numbers: readonly number[], targetUid: string): Promise<TranscodedFrames> {
    this.checkTarget(targetUid);
    const view = await this.view(stored);
    if (!view.scan.pixelData) throw new TranscodeError('unsupported-source', 'the object has no Pixel Data');
    const px = await this.pixels(view, numbers, targetUid);
    if (px.syntax === targetUid) {
      const lossy = (await this.lossyRecord(view)).lossy || view.stored.lossy;
      return { transferSyntaxUID: targetUid, frames: px.frames, photometricInterpretation: px.format.photometricInterpretation, lossy };
    }
    const { frames, photometric, lossy } = await this.convert(view, px, targetUid);
    return { transferSyntaxUID: targetUid, frames, photometricInterpretation: photometric, lossy: lossy.lossy };
  }

  private checkTarget(targetUid: string): void {
    if (!Transcoder.canWrite(targetUid)) throw new TranscodeError('unsupported-target', `transcoding to ${targetUid} is not supported`);
  }

  /** Step 1: scan, and re-encode native objects to Explicit VR Little Endian. */
  private async view(stored: ByteSource): Promise<View> {
    const limits = this.options.scanLimits;
    const first = await scanPart10(stored, limits);
    if (!first.ok) throw new TranscodeError('unsupported-source', `the stored object cannot be read: ${first.failure.detail}`);
    const storedTs = first.scan.transferSyntax;
    let source = stored;
    let scan = first.scan;
    if (!storedTs.encapsulated && storedTs.uid !== EXPLICIT_VR_LITTLE_ENDIAN) {
      // Deflated: the scan's source shows the dataset inflated, which is Explicit VR Little Endian.
      const plan = await reencodeToExplicitLittleEndian(scan.source, storedTs.deflated ? EXPLICIT_LE : storedTs, limits);
      const chunks: Buffer[] = [];
      for await (const c of plan.chunks()) chunks.push(c);
      source = bufferSource(Buffer.concat(chunks));
      const again = await scanPart10(source, limits);
      if (!again.ok) throw new TranscodeError('unsupported-source', `the re-encoded object cannot be read: ${again.failure.detail}`);
      scan = again.scan;
    }
    const metaSource: ByteSource = { size: scan.datasetOffset, read: (o, l) => source.read(o, l) };
    const metaWalk = await walkDataset(metaSource, 132, EXPLICIT_LE, limits, {});
    const list = topLevelElements(scan.tokens, scan.datasetOffset);
    return { stored: storedTs, source, scan, meta: topLevelElements(metaWalk.tokens, 132), elements: new Map(list.map((e) => [e.tag, e])), list };
  }

  private async value(view: View, tag: number): Promise<Buffer | undefined> {
    const el = view.elements.get(tag);
    if (!el || el.vr === 'SQ' || el.valueLength > 1024) return undefined;
    return view.source.read(el.valueOffset, el.valueLength);
  }

  private async us(view: View, tag: number): Promise<number | undefined> {
    const v = await this.value(view, tag);
    return v && v.length >= 2 ? v.readUInt16LE(0) : undefined;
  }

  private async strings(view: View, tag: number): Promise<string[]> {
    const v = await this.value(view, tag);
    if (!v || v.length === 0) return [];
    return v.toString('latin1').replace(/[\0 ]+$/, '').split('\\').map((s) => s.trim());
  }

  private async format(view: View): Promise<{ format: FrameFormat; numberOfFrames: number }> {
    const frames = Number((await this.strings(view, TAG.NUMBER_OF_FRAMES))[0] ?? '1');
    const bitsAllocated = (await this.us(view, TAG.BITS_ALLOCATED)) ?? 0;
    return {
      numberOfFrames: Number.isFinite(frames) && frames >= 1 ? frames : 1,
      format: {
        rows: (await this.us(view, TAG.ROWS)) ?? 0,
        columns: (await this.us(view, TAG.COLUMNS)) ?? 0,
        samplesPerPixel: (await this.us(view, TAG.SAMPLES_PER_PIXEL)) ?? 1,
        bitsAllocated,
        bitsStored: (await this.us(view, TAG.BITS_STORED)) ?? bitsAllocated,
        pixelRepresentation: (await this.us(view, TAG.PIXEL_REPRESENTATION)) ?? 0,
        planarConfiguration: (await this.us(view, TAG.PLANAR)) ?? 0,
        photometricInterpretation: (await this.strings(view, TAG.PHOTOMETRIC))[0] ?? '',
      },
    };
  }

  private async lossyRecord(view: View): Promise<LossyRecord> {
    const flag = (await this.strings(view, TAG.LOSSY))[0];
    return {
      lossy: flag === '01',
      ratios: await this.strings(view, TAG.LOSSY_RATIO),
      methods: await this.strings(view, TAG.LOSSY_METHOD),
      changed: false,
    };
  }

  /** Step 2 and the reading of the frames: native frames, or the stored codestreams (guarded, not yet decoded). */
  private async pixels(view: View, numbers: readonly number[] | undefined, targetUid: string): Promise<Pixels> {
    const { format, numberOfFrames } = await this.format(view);
    const pixel = view.scan.pixelData!;
    const wanted = numbers ?? Array.from({ length: numberOfFrames }, (_, k) => k + 1);
    for (const n of wanted) {
      if (!Number.isInteger(n) || n < 1 || n > numberOfFrames) throw new TranscodeError('no-such-frame', `frame ${n} is not in 1..${numberOfFrames}`);
    }
    const syntax = view.stored.encapsulated ? view.stored.uid : EXPLICIT_VR_LITTLE_ENDIAN;
    // Guard before reading anything: the size the frames would have once decoded.
    const needsCodec = view.stored.encapsulated ? syntax !== targetUid : targetUid !== EXPLICIT_VR_LITTLE_ENDIAN;
    // 32-bit samples pass here; the codec table says which decoders and encoders take them (only RLE does).
    if (needsCodec) checkGeometry(format, wanted.length, this.limits, true);
    if (!needsCodec && !view.stored.encapsulated && (format.bitsAllocated === 0 || format.bitsAllocated % 8 !== 0)) {
      throw new TranscodeError('unsupported-source', 'bit-packed (BitsAllocated 1) frames are not served one by one');
    }
    if (!view.stored.encapsulated && /^YBR_(FULL|PARTIAL)_42[02]$/.test(format.photometricInterpretation) && needsCodec) {
      throw new TranscodeError('unsupported-source', `native ${format.photometricInterpretation} (subsampled) pixels are not re-encoded`);
    }
    let layout = locateFrames(pixel, { ...format, numberOfFrames });
    if (!layout.ok && pixel.encapsulated && !pixel.frameStarts) {
      const starts = await findFrameStarts(view.source, pixel, numberOfFrames, view.stored.uid, {});
      if (starts) layout = locateFrames({ ...pixel, frameStarts: starts }, { ...format, numberOfFrames });
    }
    if (!layout.ok) throw new TranscodeError('unsupported-source', layout.reason);
    const frames: Buffer[] = [];
    for (const n of wanted) frames.push(await readRanges(view.source, layout.frames[n - 1]!));
    return { format, numberOfFrames, frames, syntax };
  }

  /** Step 3: decode (if the frames are compressed) and encode (if the target is). */
  private async convert(view: View, px: Pixels, targetUid: string): Promise<{ frames: Buffer[]; photometric: string; lossy: LossyRecord }> {
    const lossy = await this.lossyRecord(view);
    const frameBytes = px.format.rows * px.format.columns * px.format.samplesPerPixel * (px.format.bitsAllocated / 8);
    let format = px.format;
    let frames = px.frames;
    // What the target cannot take is refused before any decoding (decoding changes neither bits nor palette).
    const target = encoderFor(targetUid);
    if (target && (!target.bitsAllocated.includes(format.bitsAllocated) || (target.fn === 'encodeJpeg' && target.lossy && format.bitsStored > 8))) {
      throw new TranscodeError('unsupported-target', `${targetUid} does not encode ${format.bitsStored}-bit samples (BitsAllocated ${format.bitsAllocated})`);
    }
    if (target?.lossy && format.photometricInterpretation === 'PALETTE COLOR') {
      throw new TranscodeError('unsupported-target', 'PALETTE COLOR pixels are indices: they are not compressed lossily');
    }
    if (px.syntax !== EXPLICIT_VR_LITTLE_ENDIAN) {
      const decoder = decoderFor(px.syntax);
      if (!decoder) throw new TranscodeError('unsupported-source', `no decoder for the stored transfer syntax ${px.syntax}`);
      if (format.bitsAllocated === 32 && decoder.fn !== 'decodeRle') {
        throw new TranscodeError('unsupported-source', `32-bit samples in ${px.syntax} are not decoded`);
      }
      for (const f of frames) checkCodestream(px.syntax, f, format);
      const compressed = frames.reduce((n, f) => n + f.length, 0);
      // All frames queued at once: the pool spreads them over its workers.
      const results = await this.all(frames, (f, signal) =>
        this.options.pool.run({ op: 'decode', transferSyntaxUID: px.syntax, format, data: owned(f), expectedBytes: frameBytes }, signal),
      );
      // The RLE decoder lays colour out as the dataset's PlanarConfiguration says; everything after wants by-pixel.
      const decoded = results.map((r) => (r.planarConfiguration === 1 && format.samplesPerPixel > 1 ? interleave(r.data, format) : r.data));
      let photometric = results[0]?.photometricInterpretation || format.photometricInterpretation;
      if (decoder.fn === 'decodeJpeg2000' || decoder.fn === 'decodeHtJpeg2000') {
        // OpenJPEG / OpenJPH undo the component transform: the pixels are RGB (PS3.5 8.2.4).
        if (photometric === 'YBR_RCT' || photometric === 'YBR_ICT') photometric = 'RGB';
      }
      if (transferSyntax(px.syntax)?.lossy && !lossy.lossy) {
        record(lossy, (frameBytes * frames.length) / compressed, decoder.method);
      }
      frames = decoded;
      format = { ...format, photometricInterpretation: photometric, planarConfiguration: 0 };
    } else if (format.samplesPerPixel > 1 && format.planarConfiguration === 1) {
      frames = frames.map((f) => interleave(f, format));
      format = { ...format, planarConfiguration: 0 };
    }
    if (targetUid === EXPLICIT_VR_LITTLE_ENDIAN) return { frames, photometric: format.photometricInterpretation, lossy };

    const encoder = encoderFor(targetUid)!;
    if (encoder.fn === 'encodeJpeg' && format.samplesPerPixel === 3 && format.photometricInterpretation !== 'RGB') {
      throw new TranscodeError('unsupported-target', `JPEG encodes RGB colour, not ${format.photometricInterpretation}`);
    }
    const encoded = (
      await this.all(frames, (f, signal) => this.options.pool.run({ op: 'encode', transferSyntaxUID: targetUid, format, data: owned(f) }, signal))
    ).map((r) => r.data);
    let photometric = format.photometricInterpretation;
    if (format.samplesPerPixel === 3) {
      if (encoder.fn === 'encodeJpeg' && encoder.lossy) photometric = 'YBR_FULL_422';
      if ((encoder.fn === 'encodeJpeg2000' || encoder.fn === 'encodeHtJpeg2000') && encoded[0] && j2kInfo(encoded[0]).mct) {
        photometric = encoder.lossy ? 'YBR_ICT' : 'YBR_RCT';
      }
    }
    if (encoder.lossy) record(lossy, (frameBytes * frames.length) / encoded.reduce((n, f) => n + f.length, 0), encoder.method);
    return { frames: encoded, photometric, lossy };
  }

  /** Every frame through the pool at once; the first failure drops the frames still queued. */
  private async all(frames: Buffer[], run: (f: Buffer, signal: AbortSignal) => Promise<CodecResult>): Promise<CodecResult[]> {
    const abort = new AbortController();
    const tasks = frames.map((f) => run(f, abort.signal));
    try {
      return await Promise.all(tasks);
    } catch (err) {
      abort.abort();
      // The dropped ones reject too; nobody waits for them.
      for (const t of tasks) t.catch(() => undefined);
      throw err;
    }
  }

  /** Step 4: preamble, File Meta group with the new Transfer Syntax UID, and the edited dataset. */
  private async part10(view: View, targetUid: string, replace: Map<number, Buffer | null>): Promise<Buffer> {
    const metaReplace = new Map<number, Buffer | null>([
      [TAG.META_GROUP_LENGTH, null],
      [TAG.TRANSFER_SYNTAX_UID, encodeElement(TAG.TRANSFER_SYNTAX_UID, 'UI', uidValue(targetUid))],
    ]);
    const meta = Buffer.concat(await editedElements(view.source, view.meta, metaReplace));
    const dataset = await editedElements(view.source, view.list, replace);
    // A new object: its preamble is zeros (PS3.10 7.5; a stored preamble could be a polyglot, CVE-2019-11687).
    const head = Buffer.alloc(132);
    head.write('DICM', 128, 'latin1');
    return Buffer.concat([head, metaGroupLength(meta.length), meta, ...dataset]);
  }
}

function record(lossy: LossyRecord, ratio: number, method: string): void {
  lossy.lossy = true;
  lossy.changed = true;
  // DS: at most 16 characters (PS3.5 6.2).
  lossy.ratios.push(Number.isFinite(ratio) ? String(Math.round(ratio * 100) / 100).slice(0, 16) : '1');
  if (method) lossy.methods.push(method);
}

function uidValue(uid: string): Buffer {
  return Buffer.from(uid.length % 2 === 0 ? uid : `${uid}\0`, 'latin1');
}

function pixelDataElement(targetUid: string, frames: Buffer[], bitsAllocated: number): Buffer {
  if (targetUid !== EXPLICIT_VR_LITTLE_ENDIAN) return encodeEncapsulatedPixelData(frames);
  // PS3.5 8.1.1 / A.2: OW for more than 8 bits allocated, OB otherwise.
  return encodeElement(TAG.PIXEL_DATA, bitsAllocated > 8 ? 'OW' : 'OB', Buffer.concat(frames));
}

async function readRanges(source: ByteSource, ranges: ByteRange[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const r of ranges) parts.push(await source.read(r.offset, r.length));
  return parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
}

async function readAll(source: ByteSource): Promise<Buffer> {
  return Buffer.from(await source.read(0, source.size));
}

/** An ArrayBuffer holding exactly these bytes, safe to transfer to a worker. */
function owned(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Colour-by-plane to colour-by-pixel (PS3.3 C.7.6.3.1.3). */
function interleave(frame: Buffer, f: FrameFormat): Buffer {
  const pixels = f.rows * f.columns;
  const bps = f.bitsAllocated / 8;
  const out = Buffer.alloc(frame.length);
  for (let s = 0; s < f.samplesPerPixel; s++) {
    for (let p = 0; p < pixels; p++) frame.copy(out, (p * f.samplesPerPixel + s) * bps, (s * pixels + p) * bps, (s * pixels + p + 1) * bps);
  }
  return out;
}
