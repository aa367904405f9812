// The PS3.10 framing (PS3.10 7.1): 128-byte preamble, "DICM", then the File Meta Information group 0002,
// always Explicit VR Little Endian, whatever the Transfer Syntax of the dataset that follows.

import type { ByteSource, ScanLimits } from './part10.js';
import { cannot, formatTag, tooBig } from './scan-error.js';
import { VR_LENGTH_CLASS } from './vr.js';

const UNDEFINED_LENGTH = 0xffffffff;

/** Positional reads through a small moving window (the meta group is usually a few hundred bytes). */
class Window {
  start = 0;
  buf: Buffer = Buffer.alloc(0);

  constructor(
    private readonly source: ByteSource,
    readonly end: number,
    private readonly size: number,
  ) {}

  has(pos: number, n: number): boolean {
    return pos >= this.start && pos + n <= this.start + this.buf.length;
  }

  /** Loads at least `n` bytes at `pos` (the caller checked that they exist). */
  async load(pos: number, n: number): Promise<void> {
    const length = Math.min(Math.max(n, this.size), this.end - pos);
    this.buf = await this.source.read(pos, length);
    this.start = pos;
  }

  u16(pos: number, bigEndian: boolean): number {
    return bigEndian ? this.buf.readUInt16BE(pos - this.start) : this.buf.readUInt16LE(pos - this.start);
  }

  u32(pos: number, bigEndian: boolean): number {
    return bigEndian ? this.buf.readUInt32BE(pos - this.start) : this.buf.readUInt32LE(pos - this.start);
  }

  bytes(pos: number, n: number): Buffer {
    return this.buf.subarray(pos - this.start, pos - this.start + n);
  }
}

/** A short text value without its padding (UIDs, in the meta group and for failure reports). */
export function text(buf: Buffer): string {
  return buf.toString('latin1').replace(/[\0 ]+$/, '');
}

export interface Meta {
  datasetOffset: number;
  transferSyntaxUID?: string;
  mediaStorageSOPClassUID?: string;
  mediaStorageSOPInstanceUID?: string;
  elements: number;
}

/** Checks the PS3.10 framing: 128 bytes, then "DICM". What the preamble holds is the store's concern (dicom/preamble.ts). */
export async function readPreamble(source: ByteSource): Promise<void> {
  if (source.size === 0) throw cannot('empty object: 0 bytes');
  if (source.size < 132) {
    throw cannot(`object is ${source.size} bytes, shorter than the 128-byte preamble and DICM prefix (PS3.10 7.1)`);
  }
  const head = await source.read(0, 132);
  if (head.toString('latin1', 128, 132) !== 'DICM') {
    // A bare dataset starts with a small even group, e.g. (0008,0005): say so, it is a common client mistake.
    const group = head.readUInt16LE(0);
    const bare = group === 0x0008 || group === 0x0002;
    throw cannot(
      bare
        ? 'bare dataset without preamble, DICM prefix and File Meta Information: STOW-RS requires the PS3.10 format'
        : 'no DICM prefix at offset 128: not a DICOM PS3.10 file',
    );
  }
}

/**
 * Walks the group 0002 elements one by one instead of trusting (0002,0000): a wrong group length is common in
 * the wild and must neither skip part of the meta group nor swallow the start of the dataset.
 */
export async function readMeta(source: ByteSource, limits: ScanLimits): Promise<Meta> {
  // The File Meta group is usually a few hundred bytes.
  const win = new Window(source, source.size, 4096);
  const meta: Meta = { datasetOffset: 132, elements: 0 };
  let pos = 132;
  while (source.size - pos >= 8) {
    if (!win.has(pos, 12)) await win.load(pos, 12);
    if (win.u16(pos, false) !== 0x0002) break;
    const tag = ((0x0002 << 16) | win.u16(pos + 2, false)) >>> 0;
    const vrClass = VR_LENGTH_CLASS[win.u16(pos + 4, true)]!;
    if (vrClass === 0) throw cannot(`File Meta Information element ${formatTag(tag)} at offset ${pos} has no valid VR`);
    let header = 8;
    let length = win.u16(pos + 6, false);
    if (vrClass === 2) {
      if (source.size - pos < 12) throw cannot(`File Meta Information truncated at offset ${pos}`);
      header = 12;
      length = win.u32(pos + 8, false);
    }
    if (length === UNDEFINED_LENGTH) throw cannot(`File Meta Information element ${formatTag(tag)} has an undefined length`);
    const valueOffset = pos + header;
    if (valueOffset + length > source.size) throw cannot(`value length of ${formatTag(tag)} runs past the end of the file`);
    if (++meta.elements > limits.maxElements) throw tooBig(`more than ${limits.maxElements} data elements`);
    if (tag === 0x00020002 || tag === 0x00020003 || tag === 0x00020010) {
      if (length > 1024) throw cannot(`${formatTag(tag)} is ${length} bytes long`);
      if (!win.has(valueOffset, length)) await win.load(valueOffset, length);
      const value = text(win.bytes(valueOffset, length));
      // An empty value says nothing: treat it as absent.
      if (value !== '' && tag === 0x00020002) meta.mediaStorageSOPClassUID = value;
      if (value !== '' && tag === 0x00020003) meta.mediaStorageSOPInstanceUID = value;
      if (value !== '' && tag === 0x00020010) meta.transferSyntaxUID = value;
    }
    pos = valueOffset + length;
  }
  meta.datasetOffset = pos;
  if (meta.elements === 0) throw cannot('no File Meta Information group after the DICM prefix (PS3.10 7.1)');
  return meta;
}
