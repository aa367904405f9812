// The Part 10 reader STOW uses (contract: part10.ts). Three steps:
//   1. part10-scan.ts checks the structure within the caps and lists the tokens and the header byte ranges;
//   2. only those ranges are read into memory (bulk values stay where they are);
//   3. the tokens are turned into the DICOM JSON Model (PS3.18 Annex F), text decoded with the Specific
//      Character Set in force for each dataset and item (PS3.3 C.12.1.1.2; an item may carry its own).
//      For STOW this step runs in a worker thread (parse-pool.ts): it is the one whose cost the caps bound loosely.
//
// Values are decoded here rather than by dcmjs: dcmjs throws on every multi-valued Specific Character Set
// (all the ISO 2022 Japanese and Korean files), splits multi-byte text on the 0x5C byte before decoding,
// ignores a character set inside an item, parses a UN sequence (PS3.5 6.2.2) as garbage, and its output
// needed a full normalisation pass to become DICOM JSON anyway. dcmjs still provides the PS3.6 dictionary.

import { charsetDecoder, defaultDecoder, type TextDecoderFn } from './charset.js';
import type { DicomJsonAttribute, DicomJsonDataset } from './json-model.js';
import { firstNumber, firstString } from './json-model.js';
import { findFrameStarts } from './frame-starts.js';
import { asciiAttribute, binaryAttribute, numericAttribute, textAttribute } from './json-values.js';
import type { BulkDataLocation, ByteSource, InstanceReader, ParsedInstance, PixelDataLocation, ReadResult, ScanLimits } from './part10.js';
import { scanPart10, type HeaderRange, type ScanResult } from './part10-scan.js';
import { TokenFlag, TokenKind, unpackVr, type TokenList } from './scan-tokens.js';
import { FailureReason } from './status-codes.js';
import * as T from './tags.js';
import { BINARY_VRS, CHARSET_VRS, FIXED_SIZE, concreteVr } from './vr.js';

const SPECIFIC_CHARACTER_SET = 0x00080005;
const PIXEL_REPRESENTATION = 0x00280103;
const DATASET_TRAILING_PADDING = 0xfffcfffc;

/** An I/O error of the ByteSource, told apart from a decoding problem of the object itself. */
class SourceError extends Error {}

function guarded(source: ByteSource): ByteSource {
  return {
    size: source.size,
    read: async (offset, length) => {
      let buf: Buffer;
      try {
        buf = await source.read(offset, length);
      } catch (err) {
        throw new SourceError('read failed', { cause: err });
      }
      if (buf.length !== length) throw new SourceError('short read');
      return buf;
    },
  };
}

/** The header ranges, read once, and a lookup from a value's offset to its bytes. */
class HeaderBytes {
  private cursor = 0;

  private constructor(private readonly chunks: { offset: number; buf: Buffer }[]) {}

  /** The ranges over one contiguous copy of their bytes (what crosses to a worker thread). */
  static fromContiguous(ranges: readonly HeaderRange[], bytes: Buffer): HeaderBytes {
    let at = 0;
    return new HeaderBytes(ranges.map((r) => ({ offset: r.offset, buf: bytes.subarray(at, (at += r.length)) })));
  }

  /** Values are asked for in file order, so a forward-moving cursor finds each chunk. */
  get(offset: number, length: number): Buffer {
    let c = this.chunks[this.cursor];
    if (!c || offset < c.offset) {
      this.cursor = 0;
      c = this.chunks[0];
    }
    while (c && offset >= c.offset + c.buf.length && this.cursor < this.chunks.length - 1) c = this.chunks[++this.cursor];
    if (!c || offset < c.offset || offset + length > c.offset + c.buf.length) {
      throw new Error(`value at offset ${offset} is not in the header ranges`);
    }
    return c.buf.subarray(offset - c.offset, offset - c.offset + length);
  }
}

const keys = new Map<number, string>();
/** JSON key of a tag; cached, as the same few hundred tags recur in every object. */
function hex8(tag: number): string {
  let key = keys.get(tag);
  if (key === undefined) {
    key = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
    if (keys.size < 100_000) keys.set(tag, key);
  }
  return key;
}

/** Attributes the JSON model never carries: group lengths (F.2.1), File Meta (PS3.18 F.2), trailing padding. */
function omitted(tag: number): boolean {
  return (tag & 0xffff) === 0 || tag >>> 16 === 0x0002 || tag === DATASET_TRAILING_PADDING;
}

interface DatasetFrame {
  kind: 'dataset';
  ds: DicomJsonDataset;
  path: (string | number)[];
  parent: DatasetFrame | undefined;
  /** The raw terms of this dataset's own (0008,0005), if it has one. */
  charset?: string[];
  pixelRepresentation?: number;
  /** Values decoded when the dataset is complete: text (needs the charset) and US-or-SS (needs PixelRepresentation). */
  deferred: { key: string; vr: string; bytes: Buffer; bigEndian: boolean }[];
}

interface SequenceFrame {
  kind: 'sequence';
  key: string;
  attr: DicomJsonAttribute & { Value: DicomJsonDataset[] };
  owner: DatasetFrame;
}

function decoderFor(frame: DatasetFrame): TextDecoderFn {
  for (let f: DatasetFrame | undefined = frame; f; f = f.parent) if (f.charset) return charsetDecoder(f.charset);
  return defaultDecoder;
}

function finish(frame: DatasetFrame): void {
  const decode = decoderFor(frame);
  for (const d of frame.deferred) {
    if (d.vr === 'xs') {
      // "US or SS" (PS3.6): signed when the pixel data is (PixelRepresentation = 1).
      const vr = frame.pixelRepresentation === 1 ? 'SS' : 'US';
      frame.ds[d.key] = numericAttribute(vr, d.bytes, d.bigEndian);
    } else {
      frame.ds[d.key] = textAttribute(d.vr, d.bytes, decode);
    }
  }
  frame.deferred = [];
}

/** Raw terms of (0008,0005): backslash-separated, padding removed, the first one possibly empty. */
function charsetTerms(bytes: Buffer): string[] {
  return bytes
    .toString('latin1')
    .split('\\')
    .map((t) => t.trim().replace(/\0+$/, ''));
}

/** The token columns the decoder reads (a TokenList, or the same arrays after crossing to a worker). */
export type TokenColumns = Pick<TokenList, 'length' | 'kind' | 'flags' | 'vr' | 'tag' | 'offset' | 'valueLength'>;

/** What the decoding step needs: the scan's tokens and the header bytes (their ranges and one contiguous copy). */
export interface DecodeInput {
  tokens: TokenColumns;
  ranges: HeaderRange[];
  header: Buffer;
}

export interface DecodedDataset {
  dataset: DicomJsonDataset;
  bulk: BulkDataLocation[];
}

/**
 * The DICOM JSON Model of a scanned object: the CPU-heavy step over untrusted bytes (values decoded, one object per
 * attribute and item). parse-pool.ts runs it in a worker thread with a time and memory limit.
 */
export function decodeDataset(input: DecodeInput): DecodedDataset {
  return buildDataset(input.tokens, HeaderBytes.fromContiguous(input.ranges, input.header));
}

/** Runs decodeDataset somewhere (inline, or a worker thread); a DecodeLimitError says the object was too costly. */
export type DatasetDecoder = (input: DecodeInput) => Promise<DecodedDataset>;

/** Decoding stopped at the time or memory limit: the object fails with Cxxx and this PHI-free message. */
export class DecodeLimitError extends Error {}

/** The decoder could not take the object (shutting down, no worker would start): 0110, not the object's fault. */
export class DecodeUnavailableError extends Error {}

const decodeInline: DatasetDecoder = async (input) => decodeDataset(input);

function buildDataset(tokens: TokenColumns, header: HeaderBytes): DecodedDataset {
  const root: DatasetFrame = { kind: 'dataset', ds: {}, path: [], parent: undefined, deferred: [] };
  const stack: (DatasetFrame | SequenceFrame)[] = [root];
  const bulk: BulkDataLocation[] = [];

  for (let i = 0; i < tokens.length; i++) {
    const kind = tokens.kind[i]!;
    const top = stack[stack.length - 1]!;
    const tag = tokens.tag[i]!;

    if (kind === TokenKind.ItemStart) {
      const seq = top as SequenceFrame;
      const item: DicomJsonDataset = {};
      const path = [...seq.owner.path, seq.key, seq.attr.Value.length];
      seq.attr.Value.push(item);
      stack.push({ kind: 'dataset', ds: item, path, parent: seq.owner, deferred: [] });
      continue;
    }
    if (kind === TokenKind.ItemEnd) {
      finish(top as DatasetFrame);
      stack.pop();
      continue;
    }
    if (kind === TokenKind.SequenceEnd) {
      const seq = top as SequenceFrame;
      if (seq.attr.Value.length === 0) delete (seq.attr as DicomJsonAttribute).Value;
      stack.pop();
      continue;
    }

    const frame = top as DatasetFrame;
    const key = hex8(tag);
    if (kind === TokenKind.SequenceStart) {
      const attr = { vr: 'SQ', Value: [] as DicomJsonDataset[] };
      // A sequence in group 0002 or a group length cannot be meaningful; keep walking but do not show it.
      if (!omitted(tag)) frame.ds[key] = attr;
      stack.push({ kind: 'sequence', key, attr, owner: frame });
      continue;
    }
    const rawVr = unpackVr(tokens.vr[i]!);
    if (kind === TokenKind.PixelData) continue; // described by PixelDataLocation
    if (kind === TokenKind.Bulk) {
      const entry: BulkDataLocation = {
        path: [...frame.path, key],
        vr: concreteVr(rawVr),
        offset: tokens.offset[i]!,
        length: tokens.valueLength[i]!,
      };
      if (tokens.flags[i]! & TokenFlag.Encapsulated) entry.encapsulated = true;
      bulk.push(entry);
      continue;
    }
    if (omitted(tag)) continue;

    const length = tokens.valueLength[i]!;
    if (length === 0) {
      // An empty element is { vr } alone whatever its VR (PS3.18 F.2.5).
      frame.ds[key] = { vr: rawVr === 'xs' ? 'US' : concreteVr(rawVr) };
      continue;
    }
    const bytes = header.get(tokens.offset[i]!, length);
    const bigEndian = (tokens.flags[i]! & TokenFlag.BigEndian) !== 0;
    if (tag === SPECIFIC_CHARACTER_SET) frame.charset = charsetTerms(bytes);
    if (rawVr === 'xs' || CHARSET_VRS.has(rawVr)) {
      frame.ds[key] = { vr: rawVr === 'xs' ? 'US' : rawVr }; // placeholder keeps the tag order
      frame.deferred.push({ key, vr: rawVr, bytes, bigEndian });
      continue;
    }
    const vr = concreteVr(rawVr);
    let attr: DicomJsonAttribute;
    if (BINARY_VRS.has(vr)) attr = binaryAttribute(vr, bytes, bigEndian);
    else if (FIXED_SIZE[vr] !== undefined) attr = numericAttribute(vr, bytes, bigEndian);
    else attr = asciiAttribute(vr, bytes);
    if (tag === PIXEL_REPRESENTATION && typeof attr.Value?.[0] === 'number') frame.pixelRepresentation = attr.Value[0];
    frame.ds[key] = attr;
  }
  finish(root);
  return { dataset: root.ds, bulk };
}

/** The pixel data location, with frame starts when fragments must be grouped and no table says how. */
async function withFrameStarts(scan: ScanResult, dataset: DicomJsonDataset): Promise<PixelDataLocation> {
  const pixel = scan.pixelData!;
  const frames = firstNumber(dataset, T.NumberOfFrames);
  if (frames === undefined || !Number.isSafeInteger(frames)) return pixel;
  const frameStarts = await findFrameStarts(scan.source, pixel, frames, scan.transferSyntax.uid, dataset);
  return frameStarts ? { ...pixel, frameStarts } : pixel;
}

/** The header ranges read into one Buffer, in order (one copy: it is transferred to the decoding thread). */
async function readHeader(source: ByteSource, ranges: readonly HeaderRange[]): Promise<Buffer> {
  const out = Buffer.allocUnsafeSlow(ranges.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of ranges) {
    (await source.read(r.offset, r.length)).copy(out, at);
    at += r.length;
  }
  return out;
}

/**
 * A reader of uploaded Part 10 objects: structure first (part10-scan.ts, with caps, on this thread: cheap and
 * bounded), then the header bytes, never the pixel data; `decode` turns them into the DICOM JSON Model.
 */
export function createInstanceReader(decode: DatasetDecoder): InstanceReader {
  return (source, limits) => read(source, limits, decode);
}

async function read(source: ByteSource, limits: ScanLimits, decode: DatasetDecoder): Promise<ReadResult> {
  let scan: ScanResult | undefined;
  try {
    const outcome = await scanPart10(guarded(source), limits);
    if (!outcome.ok) return outcome;
    scan = outcome.scan;
    const header = await readHeader(scan.source, scan.headerRanges);
    const { dataset, bulk } = await decode({ tokens: scan.tokens, ranges: scan.headerRanges, header });
    const instance: ParsedInstance = {
      transferSyntaxUID: scan.transferSyntax.uid,
      dataset,
    };
    const uids: [keyof ParsedInstance, string][] = [
      ['sopClassUID', T.SOPClassUID],
      ['sopInstanceUID', T.SOPInstanceUID],
      ['studyInstanceUID', T.StudyInstanceUID],
      ['seriesInstanceUID', T.SeriesInstanceUID],
    ];
    for (const [field, tag] of uids) {
      const v = firstString(dataset, tag);
      if (v !== undefined) (instance as unknown as Record<string, string>)[field] = v;
    }
    if (scan.mediaStorageSOPClassUID !== undefined) instance.mediaStorageSOPClassUID = scan.mediaStorageSOPClassUID;
    if (scan.mediaStorageSOPInstanceUID !== undefined) instance.mediaStorageSOPInstanceUID = scan.mediaStorageSOPInstanceUID;
    if (scan.pixelData) instance.pixelData = await withFrameStarts(scan, dataset);
    if (bulk.length > 0) instance.bulk = bulk;
    return { ok: true, instance };
  } catch (err) {
    // Never thrown to the caller (STOW failures are values); the detail stays free of values and PHI.
    const failure =
      err instanceof SourceError
        ? { reason: FailureReason.PROCESSING_FAILURE, detail: 'the uploaded object could not be read' }
        : err instanceof DecodeUnavailableError
          ? { reason: FailureReason.PROCESSING_FAILURE, detail: 'the object could not be processed' }
          : { reason: FailureReason.CANNOT_UNDERSTAND, detail: err instanceof DecodeLimitError ? err.message : 'the dataset could not be decoded' };
    return {
      ok: false,
      failure: {
        ...failure,
        ...(scan?.sopClassUID ? { sopClassUID: scan.sopClassUID } : {}),
        ...(scan?.sopInstanceUID ? { sopInstanceUID: scan.sopInstanceUID } : {}),
      },
    };
  }
}

/** Decodes on the calling thread: tests, tools and the import CLI (trusted, local files). STOW uses parse-pool.ts. */
export const readInstance: InstanceReader = createInstanceReader(decodeInline);
