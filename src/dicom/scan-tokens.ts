// The pre-scanner's output: the dataset's structure as a flat list of tokens in file order, stored in typed
// arrays so that a million elements cost a few MB and no per-element objects (part10-scan.ts must stay fast
// on hostile inputs). dataset-reader.ts turns the tokens plus the header bytes into the DICOM JSON Model.

export const TokenKind = {
  /** An element whose value is kept (read into memory with the header). */
  Leaf: 0,
  /** An element whose value is left out of the header: large binary, Float/Double Pixel Data, nested Pixel Data. */
  Bulk: 1,
  /** The top-level Pixel Data (7FE0,0010), described by PixelDataLocation. */
  PixelData: 2,
  SequenceStart: 3,
  ItemStart: 4,
  ItemEnd: 5,
  SequenceEnd: 6,
} as const;
export type TokenKind = (typeof TokenKind)[keyof typeof TokenKind];

export const TokenFlag = {
  /** Numbers in the value are big endian (Explicit VR Big Endian). */
  BigEndian: 1,
  /** Encapsulated (fragmented) value: offset/length cover the items and the sequence delimiter. */
  Encapsulated: 2,
} as const;

/** Packs a two-letter VR into 16 bits. */
export function packVr(vr: string): number {
  return (vr.charCodeAt(0) << 8) | vr.charCodeAt(1);
}

const unpacked: (string | undefined)[] = [];
/** The VR string of a packed code (memoised: the reader asks once per element). */
export function unpackVr(code: number): string {
  return (unpacked[code] ??= String.fromCharCode(code >> 8, code & 0xff));
}

export class TokenList {
  length = 0;
  kind: Uint8Array;
  flags: Uint8Array;
  vr: Uint16Array;
  tag: Uint32Array;
  /** File (or inflated-stream) offset of the value field. */
  offset: Float64Array;
  /** Value length in bytes (resolved for undefined-length encapsulated values). */
  valueLength: Float64Array;

  constructor(capacity = 256) {
    const n = Math.max(16, capacity);
    this.kind = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.vr = new Uint16Array(n);
    this.tag = new Uint32Array(n);
    this.offset = new Float64Array(n);
    this.valueLength = new Float64Array(n);
  }

  push(kind: TokenKind, tag: number, vr: number, offset: number, valueLength: number, flags: number): number {
    if (this.length === this.kind.length) this.grow();
    const i = this.length++;
    this.kind[i] = kind;
    this.tag[i] = tag;
    this.vr[i] = vr;
    this.offset[i] = offset;
    this.valueLength[i] = valueLength;
    this.flags[i] = flags;
    return i;
  }

  private grow(): void {
    const n = this.kind.length * 2;
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a as never);
      return b;
    };
    this.kind = grow(this.kind, (k) => new Uint8Array(k));
    this.flags = grow(this.flags, (k) => new Uint8Array(k));
    this.vr = grow(this.vr, (k) => new Uint16Array(k));
    this.tag = grow(this.tag, (k) => new Uint32Array(k));
    this.offset = grow(this.offset, (k) => new Float64Array(k));
    this.valueLength = grow(this.valueLength, (k) => new Float64Array(k));
  }
}
