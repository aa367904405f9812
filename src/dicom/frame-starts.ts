// Which fragment begins each frame of encapsulated Pixel Data that has no Basic Offset Table and more
// fragments than frames (PS3.5 A.4: a frame may span fragments; the table is optional). Found once at STOW
// time and kept in the layout (PixelDataLocation.frameStarts), so reading frame n later reads only its bytes.
//
// Two sources, in order:
// 1. The Extended Offset Table (7FE0,0001), PS3.3 C.7.6.3.1.8: 64-bit offsets of each frame's first item tag,
//    counted like the Basic Offset Table's. Used when its value was small enough to be kept inline.
// 2. The codec's start marker at the first bytes of a fragment: SOI (FFD8) for the JPEG family (ISO 10918,
//    JPEG-LS ISO 14495) and SOC+SIZ (FF4F FF51) for JPEG 2000 / HTJ2K codestreams (ISO 15444-1 A.4.1), or the
//    JP2 signature box. A frame's continuation fragment starts inside the entropy-coded data, where a marker
//    byte FF is always followed by 00 or a restart marker, so SOI cannot appear there.
// Either answer is used only if it names exactly NumberOfFrames frames and the first fragment starts frame 1;
// otherwise the frames stay unknown and a frames request is refused (frames.ts), never answered wrongly.

import type { DicomJsonDataset } from './json-model.js';
import type { ByteSource, PixelDataLocation } from './part10.js';

const EXTENDED_OFFSET_TABLE = '7FE00001';
const ITEM_HEADER = 8;

const JPEG_FAMILY = new Set([
  '1.2.840.10008.1.2.4.50',
  '1.2.840.10008.1.2.4.51',
  '1.2.840.10008.1.2.4.57',
  '1.2.840.10008.1.2.4.70',
  '1.2.840.10008.1.2.4.80',
  '1.2.840.10008.1.2.4.81',
]);
const JPEG_2000_FAMILY = new Set([
  '1.2.840.10008.1.2.4.90',
  '1.2.840.10008.1.2.4.91',
  '1.2.840.10008.1.2.4.92',
  '1.2.840.10008.1.2.4.93',
  '1.2.840.10008.1.2.4.201',
  '1.2.840.10008.1.2.4.202',
  '1.2.840.10008.1.2.4.203',
]);

const J2K_SOC_SIZ = Buffer.from([0xff, 0x4f, 0xff, 0x51]);
/** Length 12, type 'jP  ' (ISO 15444-1 I.5.1). */
const JP2_SIGNATURE_BOX = Buffer.from([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20]);

/** Fragment indices that begin frames 1..n, or undefined when the fragments need no grouping or cannot be grouped. */
export async function findFrameStarts(
  source: ByteSource,
  pixel: PixelDataLocation,
  numberOfFrames: number,
  transferSyntaxUID: string,
  dataset: DicomJsonDataset,
): Promise<number[] | undefined> {
  const fragments = pixel.fragments ?? [];
  if (!pixel.encapsulated || (pixel.basicOffsetTable?.length ?? 0) > 0) return undefined;
  if (numberOfFrames < 2 || fragments.length <= numberOfFrames) return undefined;
  const fromTable = fromExtendedOffsetTable(dataset, fragments);
  const starts = fromTable ?? (await fromStartMarkers(source, fragments, transferSyntaxUID));
  return starts && starts.length === numberOfFrames && starts[0] === 0 ? starts : undefined;
}

function fromExtendedOffsetTable(dataset: DicomJsonDataset, fragments: readonly { offset: number }[]): number[] | undefined {
  const inline = dataset[EXTENDED_OFFSET_TABLE]?.InlineBinary;
  if (typeof inline !== 'string') return undefined;
  const bytes = Buffer.from(inline, 'base64');
  if (bytes.length === 0 || bytes.length % 8 !== 0) return undefined;
  const base = fragments[0]!.offset - ITEM_HEADER;
  const indexOfItem = new Map(fragments.map((f, i) => [f.offset - ITEM_HEADER - base, i]));
  const starts: number[] = [];
  for (let at = 0; at < bytes.length; at += 8) {
    const i = indexOfItem.get(Number(bytes.readBigUInt64LE(at)));
    if (i === undefined || (starts.length > 0 && i <= starts.at(-1)!)) return undefined;
    starts.push(i);
  }
  return starts;
}

async function fromStartMarkers(
  source: ByteSource,
  fragments: readonly { offset: number; length: number }[],
  transferSyntaxUID: string,
): Promise<number[] | undefined> {
  const startsFrame = JPEG_FAMILY.has(transferSyntaxUID)
    ? (b: Buffer) => b[0] === 0xff && b[1] === 0xd8
    : JPEG_2000_FAMILY.has(transferSyntaxUID)
      ? (b: Buffer) => b.subarray(0, 4).equals(J2K_SOC_SIZ) || b.equals(JP2_SIGNATURE_BOX)
      : undefined;
  if (!startsFrame) return undefined;
  const starts: number[] = [];
  for (let i = 0; i < fragments.length; i++) {
    const f = fragments[i]!;
    if (f.length < 2) continue;
    if (startsFrame(await source.read(f.offset, Math.min(8, f.length)))) starts.push(i);
  }
  return starts;
}
