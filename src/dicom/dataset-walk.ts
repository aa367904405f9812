// The structural walk of a dataset (PS3.5 7.1 data elements, 7.5 sequences and items, A.4 encapsulation):
// iterative, header by header, values skipped by length, every length checked against its container, and
// stopped at the caps of ScanLimits. It records the structure as tokens and the "header" byte ranges (all but
// the bulk values) for dataset-reader.ts.

import { dictionaryVr } from './dictionary.js';
import type { ByteSource, PixelDataLocation, ScanLimits } from './part10.js';
import { text } from './part10-meta.js';
import { cannot, formatTag, tooBig } from './scan-error.js';
import { TokenFlag, TokenKind, TokenList, packVr } from './scan-tokens.js';
import type { TransferSyntax } from './transfer-syntax.js';
import { BINARY_VRS, NUMERIC_ARRAY_VRS, VR_LENGTH_CLASS } from './vr.js';

/**
 * Binary values larger than this stay out of the in-memory dataset (they get a BulkDataURI, PS3.18 F.2.7).
 * 64 KiB keeps icons, LUTs and small overlays inline and every image, waveform or document out.
 */
export const INLINE_BINARY_MAX = 64 * 1024;

/** Bytes fetched per read while walking headers: one read covers thousands of small elements. */
const WINDOW = 256 * 1024;
/** After a skip of at least SKIP_READ_THRESHOLD bytes, fetch only SMALL_READ bytes (see walkDataset). */
const SKIP_READ_THRESHOLD = 4096;
const SMALL_READ = 1024;

const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;
const PIXEL_DATA = 0x7fe00010;
const FLOAT_PIXEL_DATA = 0x7fe00008;
const DOUBLE_FLOAT_PIXEL_DATA = 0x7fe00009;
const SOP_CLASS_UID = 0x00080016;
const SOP_INSTANCE_UID = 0x00080018;

export interface HeaderRange {
  offset: number;
  length: number;
}

interface Frame {
  kind: 'root' | 'item' | 'sequence' | 'fragments';
  /** End offset of a defined-length container, or -1 for undefined length (ends at a delimiter). */
  end: number;
  /** Nothing in this container may extend past this offset. */
  limit: number;
  implicit: boolean;
  bigEndian: boolean;
  /** fragments: token of the encapsulated element, where its value starts, what was seen so far. */
  token?: number;
  valueOffset?: number;
  topLevel?: boolean;
  items?: number;
  fragments?: { offset: number; length: number }[];
  fragmentBytes?: number;
  basicOffsetTable?: number[];
}

export interface WalkResult {
  tokens: TokenList;
  headerRanges: HeaderRange[];
  headerBytes: number;
  pixelData?: PixelDataLocation;
}

const SQ = packVr('SQ');
const UN = packVr('UN');
const OB = packVr('OB');
const OW = packVr('OW');
const OX = packVr('ox');

// VRs whose values may be large arrays and then become bulk data (concrete and dictionary codes alike).
const BULK_CAPABLE = new Uint8Array(65536);
for (const vr of [...BINARY_VRS, ...NUMERIC_ARRAY_VRS, 'ox', 'lt', 'xs', 'up']) BULK_CAPABLE[packVr(vr)] = 1;

const implicitVrCache = new Map<number, number>();
/** VR code of a tag in an Implicit VR stream (PS3.5 7.1.3): the dictionary's, UN when unknown or private. */
function implicitVr(tag: number): number {
  let code = implicitVrCache.get(tag);
  if (code === undefined) {
    const vr = dictionaryVr(tag);
    code = vr === undefined || vr === 'na' ? UN : packVr(vr);
    implicitVrCache.set(tag, code);
  }
  return code;
}

function u16(buf: Buffer, p: number, be: boolean): number {
  return be ? (buf[p]! << 8) | buf[p + 1]! : buf[p]! | (buf[p + 1]! << 8);
}

function u32(buf: Buffer, p: number, be: boolean): number {
  return be
    ? ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0
    : (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0;
}

/**
 * The dataset walk. `run()` is synchronous and processes elements until it needs bytes that are not in the
 * window; it then returns NEED_BYTES with `need` set, the driver reads, and `run()` resumes at the same
 * element (nothing is changed for an element before its bytes are present, so the restart is exact).
 * Keeping the loop out of an async function lets V8 optimise it: 10^6 elements must scan in well under 50 ms.
 */
class DatasetWalker {
  readonly tokens: TokenList;
  readonly headerRanges: HeaderRange[] = [];
  headerBytes = 0;
  pixelData: PixelDataLocation | undefined;
  /** Bytes needed from `pos` when run() returns NEED_BYTES. */
  need = 0;
  /** Length of the last value skipped (a hint for the size of the next read). */
  skipped = 0;
  pos: number;
  buf: Buffer = Buffer.alloc(0);
  base = 0;
  bufEnd = 0;
  private headerStart: number;
  private elements = 0;
  private depth = 0;
  private readonly stack: Frame[];
  private readonly encapsulatedSyntax: boolean;
  readonly seen: { sopClassUID?: string; sopInstanceUID?: string } = {};

  constructor(
    readonly end: number,
    private readonly datasetOffset: number,
    ts: TransferSyntax,
    private readonly limits: ScanLimits,
  ) {
    this.pos = datasetOffset;
    this.headerStart = datasetOffset;
    this.encapsulatedSyntax = ts.encapsulated;
    // Every element takes at least 8 bytes: no need to ever grow past that, nor past the cap.
    this.tokens = new TokenList(Math.min(Math.floor((end - datasetOffset) / 8), limits.maxElements) + 16);
    this.stack = [{ kind: 'root', end, limit: end, implicit: !ts.explicitVr, bigEndian: !ts.littleEndian }];
  }

  /** Leaves [from, to) out of the header ranges (values are met in file order). */
  private exclude(from: number, to: number): void {
    if (from > this.headerStart) {
      this.headerRanges.push({ offset: this.headerStart, length: from - this.headerStart });
      this.headerBytes += from - this.headerStart;
    }
    this.headerStart = to;
  }

  finish(): void {
    this.exclude(this.end, this.end);
  }

  private missing(pos: number, n: number): boolean {
    if (pos >= this.base && pos + n <= this.bufEnd) return false;
    this.need = pos + n - this.pos;
    return true;
  }

  run(): typeof DONE | typeof NEED_BYTES {
    const { tokens, stack, end, limits } = this;
    const maxElements = limits.maxElements;
    let pos = this.pos;
    try {
      for (;;) {
        this.pos = pos;
        const frame = stack[stack.length - 1]!;
        const be = frame.bigEndian;
        const flags = be ? TokenFlag.BigEndian : 0;

        // A defined-length container ends exactly at its end; the root ends at the end of the file.
        if (pos === frame.end) {
          if (frame.kind === 'root') return DONE;
          if (frame.kind === 'item') tokens.push(TokenKind.ItemEnd, ITEM, 0, pos, 0, flags);
          else {
            tokens.push(TokenKind.SequenceEnd, 0, 0, pos, 0, flags);
            this.depth--;
          }
          stack.pop();
          continue;
        }
        const room = frame.limit - pos;
        if (room < 8) {
          if (frame.kind === 'root') {
            // Up to 7 trailing zero bytes (padding by some writers) are harmless; else a cut-off header.
            if (this.missing(pos, room)) return NEED_BYTES;
            for (let i = 0; i < room; i++) if (this.buf[pos - this.base + i] !== 0) throw cannot(`truncated element header at offset ${pos}`);
            return DONE;
          }
          if (frame.end === -1 && frame.limit === end) {
            throw cannot(`undefined-length ${frame.kind === 'item' ? 'item' : 'sequence'} not terminated before the end of the file`);
          }
          throw cannot(`element header at offset ${pos} crosses the end of its ${frame.kind === 'item' ? 'item' : 'sequence'}`);
        }
        if (this.missing(pos, room < 12 ? room : 12)) return NEED_BYTES;
        const buf = this.buf;
        const p = pos - this.base;
        const tag = ((u16(buf, p, be) << 16) | u16(buf, p + 2, be)) >>> 0;

        // Inside a sequence or an encapsulated value: only items and the sequence delimiter (PS3.5 7.5, A.4).
        if (frame.kind === 'sequence' || frame.kind === 'fragments') {
          const length = u32(buf, p + 4, be);
          if (tag === SEQUENCE_DELIMITER) {
            if (frame.end !== -1) throw cannot(`sequence delimiter at offset ${pos} inside a defined-length sequence`);
            pos += 8;
            stack.pop();
            if (frame.kind === 'fragments') {
              this.pixelData = closeFragments(frame, pos, tokens) ?? this.pixelData;
              this.exclude(frame.valueOffset!, pos);
            } else {
              tokens.push(TokenKind.SequenceEnd, 0, 0, pos, 0, flags);
              this.depth--;
            }
            continue;
          }
          if (tag !== ITEM) throw cannot(`unexpected ${formatTag(tag)} at offset ${pos} where a sequence item was expected`);
          const valueOffset = pos + 8;
          if (frame.kind === 'fragments') {
            if (length === UNDEFINED_LENGTH) throw cannot(`encapsulated fragment at offset ${pos} has an undefined length`);
            if (valueOffset + length > frame.limit) throw cannot(`encapsulated fragment at offset ${pos} runs past the end of its container`);
            if (frame.items === 0 && frame.topLevel) {
              if (length / 4 > maxElements) throw tooBig(`Basic Offset Table has more than ${maxElements} entries`);
              if (this.missing(pos, 8 + length)) return NEED_BYTES;
              frame.basicOffsetTable = readBasicOffsetTable(buf, valueOffset - this.base, length);
            } else if (frame.topLevel) {
              frame.fragments!.push({ offset: valueOffset, length });
              frame.fragmentBytes! += 8 + length;
            }
            if (++this.elements > maxElements) throw tooMany(maxElements);
            frame.items!++;
            pos = valueOffset + length;
            this.skipped = length;
            continue;
          }
          if (++this.elements > maxElements) throw tooMany(maxElements);
          const itemEnd = length === UNDEFINED_LENGTH ? -1 : valueOffset + length;
          if (itemEnd > frame.limit) throw cannot(`item at offset ${pos} runs past the end of its sequence`);
          tokens.push(TokenKind.ItemStart, ITEM, 0, valueOffset, 0, flags);
          stack.push({ kind: 'item', end: itemEnd, limit: itemEnd === -1 ? frame.limit : itemEnd, implicit: frame.implicit, bigEndian: be });
          pos = valueOffset;
          continue;
        }

        // Inside the root dataset or an item: a data element, or the item delimiter.
        if (tag === ITEM_DELIMITER) {
          if (frame.kind !== 'item' || frame.end !== -1) throw cannot(`item delimiter at offset ${pos} outside an undefined-length item`);
          pos += 8;
          tokens.push(TokenKind.ItemEnd, ITEM, 0, pos, 0, flags);
          stack.pop();
          continue;
        }
        if (tag >>> 16 === 0xfffe) throw cannot(`unexpected ${formatTag(tag)} at offset ${pos}`);

        let vr: number;
        let length: number;
        let header: number;
        let unknownAsImplicit = false;
        if (frame.implicit) {
          // The reverse mismatch: a first element whose length bytes spell a VR (e.g. "CS") is explicit VR. The
          // first element is in group 0008 and short, so a length of 16705 (0x4141) or more there is no accident.
          if (pos === this.datasetOffset && tag >>> 16 === 0x0008 && VR_LENGTH_CLASS[(buf[p + 4]! << 8) | buf[p + 5]!] !== 0) {
            throw cannot(`dataset at offset ${pos} is explicit VR but the File Meta Information names Implicit VR Little Endian`);
          }
          vr = implicitVr(tag);
          length = u32(buf, p + 4, be);
          header = 8;
        } else {
          vr = (buf[p + 4]! << 8) | buf[p + 5]!;
          const vrClass = VR_LENGTH_CLASS[vr]!;
          if (vrClass === 0) {
            throw cannot(
              pos === this.datasetOffset
                ? `dataset at offset ${pos} is not encoded in the explicit VR Transfer Syntax the File Meta Information names`
                : `invalid VR in ${formatTag(tag)} at offset ${pos}`,
            );
          }
          if (vrClass === 2) {
            if (room < 12) throw cannot(`truncated element header at offset ${pos}`);
            length = u32(buf, p + 8, be);
            header = 12;
          } else {
            length = u16(buf, p + 6, be);
            header = 8;
          }
          // PS3.5 6.2.2: a UN value holds the Implicit VR Little Endian encoding of a (public) element the
          // writer did not know; read it with the dictionary VR, as pydicom and dcmtk do, so that the UIDs and
          // names it holds count.
          if (vr === UN && !be && length !== UNDEFINED_LENGTH) {
            const known = implicitVr(tag);
            if (known !== UN) {
              vr = known;
              unknownAsImplicit = true;
            }
          }
        }
        const valueOffset = pos + header;
        const topLevel = frame.kind === 'root';

        if (length === UNDEFINED_LENGTH) {
          // PS3.5 7.5.1 / 6.2.2: undefined length is allowed for SQ, for UN holding a sequence (then encoded in
          // Implicit VR Little Endian), and for encapsulated OB/OW pixel data (A.4).
          if (vr === SQ || vr === UN || (frame.implicit && tag !== PIXEL_DATA)) {
            if (++this.elements > maxElements) throw tooMany(maxElements);
            if (++this.depth > limits.maxSequenceDepth) throw tooBig(`sequences nested deeper than ${limits.maxSequenceDepth}`);
            const implicit = frame.implicit || vr === UN;
            tokens.push(TokenKind.SequenceStart, tag, SQ, valueOffset, 0, flags);
            stack.push({ kind: 'sequence', end: -1, limit: frame.limit, implicit, bigEndian: vr === UN ? false : be });
            pos = valueOffset;
            continue;
          }
          if (vr === OB || vr === OW || vr === OX) {
            if (++this.elements > maxElements) throw tooMany(maxElements);
            const pixel = topLevel && tag === PIXEL_DATA;
            // PS3.5 A.4 / 8.2: Pixel Data is encapsulated exactly when the transfer syntax says so; a mislabelled
            // object would have its frames cut out of the wrong bytes.
            if (pixel && !this.encapsulatedSyntax) throw cannot('encapsulated Pixel Data in a native transfer syntax');
            const kind = pixel ? TokenKind.PixelData : TokenKind.Bulk;
            const token = tokens.push(kind, tag, vr === OX ? OB : vr, valueOffset, 0, flags | TokenFlag.Encapsulated);
            stack.push({
              kind: 'fragments', end: -1, limit: frame.limit, implicit: frame.implicit, bigEndian: false,
              token, valueOffset, topLevel: pixel, items: 0, fragments: [], fragmentBytes: 0,
            });
            pos = valueOffset;
            continue;
          }
          throw cannot(`undefined length on ${formatTag(tag)} of VR ${String.fromCharCode(vr >> 8, vr & 0xff)}`);
        }

        if (valueOffset + length > frame.limit) {
          throw cannot(`value length of ${formatTag(tag)} at offset ${pos} runs past the end of ${frame.limit === end ? 'the file' : 'its item'}`);
        }
        // Top-level SOP Class/Instance UIDs are kept for the failure report (PS3.18 I.2.2 FailedSOPSequence).
        const wantUid = topLevel && (tag === SOP_CLASS_UID || tag === SOP_INSTANCE_UID) && length <= 128 && vr !== SQ;
        if (wantUid && this.missing(pos, header + length)) return NEED_BYTES;
        if (++this.elements > maxElements) throw tooMany(maxElements);

        if (vr === SQ) {
          if (++this.depth > limits.maxSequenceDepth) throw tooBig(`sequences nested deeper than ${limits.maxSequenceDepth}`);
          tokens.push(TokenKind.SequenceStart, tag, SQ, valueOffset, length, flags);
          const implicit = frame.implicit || unknownAsImplicit;
          stack.push({ kind: 'sequence', end: valueOffset + length, limit: valueOffset + length, implicit, bigEndian: be });
          pos = valueOffset;
          continue;
        }
        if (topLevel && tag === PIXEL_DATA) {
          if (this.encapsulatedSyntax) throw cannot('native (defined-length) Pixel Data in an encapsulated transfer syntax');
          tokens.push(TokenKind.PixelData, tag, vr, valueOffset, length, flags);
          this.pixelData = { offset: valueOffset, length, encapsulated: false };
          this.exclude(valueOffset, valueOffset + length);
        } else if (
          (length > INLINE_BINARY_MAX && BULK_CAPABLE[vr] === 1) ||
          (topLevel && (tag === FLOAT_PIXEL_DATA || tag === DOUBLE_FLOAT_PIXEL_DATA))
        ) {
          tokens.push(TokenKind.Bulk, tag, vr, valueOffset, length, flags);
          this.exclude(valueOffset, valueOffset + length);
        } else {
          tokens.push(TokenKind.Leaf, tag, vr, valueOffset, length, flags);
          if (wantUid) {
            const uid = text(buf.subarray(valueOffset - this.base, valueOffset - this.base + length));
            if (tag === SOP_CLASS_UID) this.seen.sopClassUID = uid;
            else this.seen.sopInstanceUID = uid;
          }
        }
        pos = valueOffset + length;
        this.skipped = length;
      }
    } finally {
      this.pos = pos;
    }
  }
}

const DONE = 0;
const NEED_BYTES = 1;
const tooMany = (max: number) => tooBig(`more than ${max} data elements`);

export async function walkDataset(
  source: ByteSource,
  datasetOffset: number,
  ts: TransferSyntax,
  limits: ScanLimits,
  seen: { sopClassUID?: string; sopInstanceUID?: string },
): Promise<WalkResult> {
  const walker = new DatasetWalker(source.size, datasetOffset, ts, limits);
  try {
    while (walker.run() === NEED_BYTES) {
      // After skipping a large value (a fragment, an image) the next header is likely followed by another
      // large value: read a little, not a full window, or walking 10^5 fragments would read the whole file.
      const jumped = walker.skipped >= SKIP_READ_THRESHOLD;
      const length = Math.min(Math.max(walker.need, jumped ? SMALL_READ : WINDOW), source.size - walker.pos);
      walker.buf = await source.read(walker.pos, length);
      if (walker.buf.length !== length) throw new Error('ByteSource returned a short read');
      walker.base = walker.pos;
      walker.bufEnd = walker.pos + walker.buf.length;
    }
  } finally {
    Object.assign(seen, walker.seen);
  }
  walker.finish();
  return {
    tokens: walker.tokens,
    headerRanges: walker.headerRanges,
    headerBytes: walker.headerBytes,
    ...(walker.pixelData ? { pixelData: walker.pixelData } : {}),
  };
}

/** PS3.5 A.4: the first item of encapsulated Pixel Data holds 32-bit offsets of each frame's first fragment. */
function readBasicOffsetTable(buf: Buffer, at: number, length: number): number[] {
  if (length % 4 !== 0) throw cannot(`Basic Offset Table length ${length} is not a multiple of 4`);
  const table: number[] = new Array(length / 4);
  for (let i = 0; i < table.length; i++) table[i] = u32(buf, at + 4 * i, false);
  return table;
}

/** Finishes an encapsulated value at its sequence delimiter; returns the PixelDataLocation when top-level. */
function closeFragments(frame: Frame, endPos: number, tokens: TokenList): PixelDataLocation | undefined {
  const length = endPos - frame.valueOffset!;
  tokens.valueLength[frame.token!] = length;
  if (frame.items === 0) throw cannot(`encapsulated value at offset ${frame.valueOffset} has no Basic Offset Table item`);
  if (!frame.topLevel) return undefined;
  const table = frame.basicOffsetTable!;
  // Offsets count from the first byte of the first fragment item; each must land inside the fragments.
  for (let i = 0; i < table.length; i++) {
    if (table[i]! >= frame.fragmentBytes! || (i > 0 && table[i]! <= table[i - 1]!)) {
      throw cannot(`Basic Offset Table entry ${i + 1} does not point at a fragment`);
    }
  }
  return {
    offset: frame.valueOffset!,
    length,
    encapsulated: true,
    fragments: frame.fragments!,
    ...(table.length > 0 ? { basicOffsetTable: table } : {}),
  };
}
