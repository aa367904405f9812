// Lossless re-encoding of an Implicit VR Little Endian or Explicit VR Big Endian Part 10 object as Explicit VR
// Little Endian, on the way out: PS3.18 8.7.3.5.2 forbids those two syntaxes in web responses, and no pixel
// codec is needed to leave them. The stored bytes are never changed.
//
// Two steps, so that a response can say how long a part is before sending it:
//   plan    the structural walk of part10-scan.ts (walkDataset, capped, headers only) over the File Meta group
//           and the dataset; the explicit VR of every element (reencode-vr.ts) and the output size follow.
//   stream  element by element in file order: a new header, then the value copied from the source (small
//           values through one read window, large ones in PIECE-sized reads), big endian values swapped to
//           little endian by VR (byte-swap.ts). Memory stays flat whatever the file size.
//
// Output rules (PS3.5 7.1.2 explicit VR headers; PS3.10 7.1 File Meta):
// - preamble and DICM as stored; the File Meta elements as stored but (0002,0010) = 1.2.840.10008.1.2.1 and a
//   recomputed (0002,0000);
// - sequences and items with undefined length and delimiters (PS3.5 7.5.1): headers change size, so defined
//   lengths would be wrong; an encapsulated value nested in an item is copied as it is (PS3.5 A.4);
// - dataset group length elements (gggg,0000), retired (PS3.5 7.2), are dropped: their value would be wrong,
//   and the DICOM JSON Model leaves them out anyway (PS3.18 F.2.1).

import { swapUnit, swappedRange, toLittleEndian } from './byte-swap.js';
import { walkDataset } from './dataset-walk.js';
import type { ByteSource, ScanLimits } from './part10.js';
import { readMeta, readPreamble } from './part10-meta.js';
import { explicitVr, pixelRepresentationElements } from './reencode-vr.js';
import { TokenFlag, TokenKind, packVr, unpackVr, type TokenList } from './scan-tokens.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, transferSyntax, type TransferSyntax } from './transfer-syntax.js';
import { LONG_LENGTH_VRS } from './vr.js';

/** The re-encoded Part 10 object: its exact size, and its bytes (each call streams them anew). */
export interface Reencoded {
  size: number;
  chunks(): AsyncIterable<Buffer>;
}

const EXPLICIT_LE = transferSyntax(EXPLICIT_VR_LITTLE_ENDIAN)!;
const TRANSFER_SYNTAX_UID = 0x00020010;
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;
const SQ = packVr('SQ');
/** Values up to this size are copied through the read window; larger ones are read piece by piece. */
const SMALL_VALUE = 64 * 1024;
/** Size of the read window and of the output chunks. */
const WINDOW = 256 * 1024;
/** Marks a dropped token in the plan's VR column. */
const DROPPED = 0;

/** Where each token goes: its output VR (DROPPED, or the packed code) and replacement values. */
interface Plan {
  tokens: TokenList;
  vr: Uint16Array;
  overrides: Map<number, Buffer>;
  size: number;
}

/**
 * Plans the Explicit VR Little Endian form of a stored object in Implicit VR Little Endian or Explicit VR Big
 * Endian (or Explicit VR Little Endian, which comes out with undefined-length sequences). Reads the headers
 * only; throws a ScanError (scan-error.ts) for a structure the scanner would refuse.
 */
export async function reencodeToExplicitLittleEndian(source: ByteSource, ts: TransferSyntax, limits: ScanLimits): Promise<Reencoded> {
  if (ts.deflated || ts.encapsulated) throw new Error(`re-encoding from ${ts.uid} is not supported`);
  await readPreamble(source);
  const meta = await readMeta(source, limits);
  // The File Meta group is Explicit VR Little Endian whatever the dataset's syntax (PS3.10 7.1).
  const metaSource: ByteSource = { size: meta.datasetOffset, read: (offset, length) => source.read(offset, length) };
  const metaWalk = await walkDataset(metaSource, 132, EXPLICIT_LE, limits, {});
  const datasetWalk = await walkDataset(source, meta.datasetOffset, ts, limits, {});

  const metaOverrides = new Map<number, Buffer>();
  for (let i = 0; i < metaWalk.tokens.length; i++) {
    if (metaWalk.tokens.tag[i] === TRANSFER_SYNTAX_UID) metaOverrides.set(i, uidValue(EXPLICIT_VR_LITTLE_ENDIAN));
  }
  const metaPlan = plan(metaWalk.tokens, new Map(), metaOverrides);
  const datasetPlan = plan(datasetWalk.tokens, await pixelRepresentations(source, datasetWalk.tokens), new Map());

  const metaBody = await collect(emit(metaSource, metaPlan));
  const head = Buffer.concat([await source.read(0, 132), groupLength(metaBody.length), metaBody]);
  return {
    size: head.length + datasetPlan.size,
    async *chunks() {
      yield head;
      yield* emit(source, datasetPlan);
    },
  };
}

/** A UI value padded to even length with NUL (PS3.5 9.1). */
function uidValue(uid: string): Buffer {
  return Buffer.from(uid.length % 2 === 0 ? uid : `${uid}\0`, 'latin1');
}

/** (0002,0000) UL: the byte count of the File Meta elements after it (PS3.10 7.1). */
function groupLength(length: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(0x0002, 0);
  b.write('UL', 4, 'latin1');
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(length, 8);
  return b;
}

/** PixelRepresentation of each dataset that has one (root = -1, else its ItemStart token). */
async function pixelRepresentations(source: ByteSource, tokens: TokenList): Promise<Map<number, number>> {
  const values = new Map<number, number>();
  for (const { dataset, token } of pixelRepresentationElements(tokens)) {
    const bytes = await source.read(tokens.offset[token]!, 2);
    values.set(dataset, tokens.flags[token]! & TokenFlag.BigEndian ? bytes.readUInt16BE(0) : bytes.readUInt16LE(0));
  }
  return values;
}

function plan(tokens: TokenList, pixelRepresentation: Map<number, number>, overrides: Map<number, Buffer>): Plan {
  const vr = new Uint16Array(tokens.length);
  const datasets: number[] = [-1];
  let size = 0;
  for (let i = 0; i < tokens.length; i++) {
    switch (tokens.kind[i]) {
      case TokenKind.SequenceStart:
        vr[i] = SQ;
        size += 12;
        continue;
      case TokenKind.ItemStart:
        datasets.push(i);
        size += 8;
        continue;
      case TokenKind.ItemEnd:
        datasets.pop();
        size += 8;
        continue;
      case TokenKind.SequenceEnd:
        size += 8;
        continue;
    }
    if ((tokens.tag[i]! & 0xffff) === 0) {
      vr[i] = DROPPED; // group length (PS3.5 7.2), see the file comment
      continue;
    }
    if (tokens.flags[i]! & TokenFlag.Encapsulated) {
      vr[i] = tokens.vr[i]!; // OB or OW, undefined length, fragments copied as they are
      size += 12 + tokens.valueLength[i]!;
      continue;
    }
    const length = overrides.get(i)?.length ?? tokens.valueLength[i]!;
    vr[i] = explicitVr(tokens.vr[i]!, length, pixelRepresentation.get(datasets[datasets.length - 1]!));
    size += (LONG_LENGTH_VRS.has(unpackVr(vr[i]!)) ? 12 : 8) + length;
  }
  return { tokens, vr, overrides, size };
}

/** Output chunks of WINDOW bytes, filled with headers and small values. */
class Output {
  private buf: Buffer = Buffer.allocUnsafe(WINDOW);
  private pos = 0;

  room(): number {
    return this.buf.length - this.pos;
  }

  get empty(): boolean {
    return this.pos === 0;
  }

  /** The bytes so far; a fresh buffer follows, as the consumer may keep the chunk. */
  take(): Buffer {
    const chunk = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(WINDOW);
    this.pos = 0;
    return chunk;
  }

  /** Explicit VR Little Endian element header (PS3.5 7.1.2, Table 7.1-1/7.1-2). */
  header(tag: number, vr: number, length: number): void {
    const b = this.buf;
    b.writeUInt16LE(tag >>> 16, this.pos);
    b.writeUInt16LE(tag & 0xffff, this.pos + 2);
    b.writeUInt16BE(vr, this.pos + 4);
    if (LONG_LENGTH_VRS.has(unpackVr(vr))) {
      b.writeUInt16LE(0, this.pos + 6);
      b.writeUInt32LE(length >>> 0, this.pos + 8);
      this.pos += 12;
    } else {
      b.writeUInt16LE(length, this.pos + 6);
      this.pos += 8;
    }
  }

  /** Item, item delimiter or sequence delimiter: tag and 32-bit length, no VR (PS3.5 7.5). */
  marker(tag: number, length: number): void {
    this.buf.writeUInt16LE(tag >>> 16, this.pos);
    this.buf.writeUInt16LE(tag & 0xffff, this.pos + 2);
    this.buf.writeUInt32LE(length >>> 0, this.pos + 4);
    this.pos += 8;
  }

  put(bytes: Buffer): void {
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }
}

/** Forward-moving read window: small values, met in file order, cost one read per WINDOW bytes. */
class ReadWindow {
  private base = 0;
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly source: ByteSource) {}

  async get(offset: number, length: number): Promise<Buffer> {
    if (length === 0) return this.buf.subarray(0, 0);
    if (offset < this.base || offset + length > this.base + this.buf.length) {
      this.buf = await this.source.read(offset, Math.min(Math.max(length, WINDOW), this.source.size - offset));
      this.base = offset;
    }
    return this.buf.subarray(offset - this.base, offset - this.base + length);
  }
}

async function* emit(source: ByteSource, { tokens, vr, overrides }: Plan): AsyncGenerator<Buffer> {
  const out = new Output();
  const window = new ReadWindow(source);
  for (let i = 0; i < tokens.length; i++) {
    const kind = tokens.kind[i]!;
    // Every header is at most 12 bytes and every small value at most SMALL_VALUE < WINDOW - 12.
    if (out.room() < 12) yield out.take();
    switch (kind) {
      case TokenKind.SequenceStart:
        out.header(tokens.tag[i]!, SQ, UNDEFINED_LENGTH);
        continue;
      case TokenKind.ItemStart:
        out.marker(ITEM, UNDEFINED_LENGTH);
        continue;
      case TokenKind.ItemEnd:
        out.marker(ITEM_DELIMITER, 0);
        continue;
      case TokenKind.SequenceEnd:
        out.marker(SEQUENCE_DELIMITER, 0);
        continue;
    }
    if (vr[i] === DROPPED) continue;

    const offset = tokens.offset[i]!;
    const override = overrides.get(i);
    const encapsulated = (tokens.flags[i]! & TokenFlag.Encapsulated) !== 0;
    const length = override?.length ?? tokens.valueLength[i]!;
    out.header(tokens.tag[i]!, vr[i]!, encapsulated ? UNDEFINED_LENGTH : length);
    // Fragments keep their bytes; other big endian values swap by their (unchanged) explicit VR.
    const unit = !encapsulated && tokens.flags[i]! & TokenFlag.BigEndian ? swapUnit(unpackVr(vr[i]!)) : 1;
    if (override || length <= SMALL_VALUE) {
      const value = override ?? toLittleEndian(await window.get(offset, length), unit);
      if (out.room() < value.length) yield out.take();
      out.put(value);
      continue;
    }
    if (!out.empty) yield out.take();
    yield* swappedRange(source, { offset, end: offset + length }, unit, offset, offset + length);
  }
  if (!out.empty) yield out.take();
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const c of chunks) all.push(c);
  return Buffer.concat(all);
}
