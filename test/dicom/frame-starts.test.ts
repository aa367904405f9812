// Frames of encapsulated Pixel Data with several fragments per frame and no Basic Offset Table (PS3.5 A.4):
// grouped at STOW time by the Extended Offset Table or the codec's start markers, and served frame by frame.
import t from 'tap';
import { locateFrames, pixelGeometry } from '../../src/dicom/frames.js';
import { testApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { splitMultipart } from '../helpers/multipart-response.js';
import { accepted } from './read.js';
import { el, ids, item, part10, SEQUENCE_DELIMITER, SERIES, SOP_INSTANCE, str, STUDY, studySeries, u16, UNDEFINED } from './synthetic.js';

const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const JPEG_2000 = '1.2.840.10008.1.2.4.90';
const RLE = '1.2.840.10008.1.2.5';
const SOI = [0xff, 0xd8];
const SOC_SIZ = [0xff, 0x4f, 0xff, 0x51];

/** Three frames split over 2, 1 and 3 fragments; every first fragment starts with `marker`. */
function framesOf(marker: number[]): Buffer[][] {
  const frag = (head: number[], fill: number, n: number) => Buffer.from([...head, ...Array<number>(n).fill(fill)]);
  return [
    [frag(marker, 0x11, 6), frag([], 0x12, 4)],
    [frag(marker, 0x21, 4)],
    [frag(marker, 0x31, 2), frag([], 0x32, 8), frag([0xff, 0x00], 0x33, 2)],
  ];
}

function encapsulatedObject(transferSyntax: string, frames: Buffer[][], extendedOffsets?: bigint[]): Buffer {
  const fragments = frames.flat();
  const eot = extendedOffsets
    ? el(0x7fe00001, 'OV', Buffer.concat(extendedOffsets.map((o) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(o); return b; })))
    : Buffer.alloc(0);
  const dataset = Buffer.concat([
    ids(),
    studySeries(),
    el(0x00280002, 'US', u16(1)),
    el(0x00280008, 'IS', str(String(frames.length), 'IS')),
    el(0x00280010, 'US', u16(4)),
    el(0x00280011, 'US', u16(4)),
    el(0x00280100, 'US', u16(8)),
    eot,
    el(0x7fe00010, 'OB', Buffer.alloc(0), UNDEFINED),
    item(Buffer.alloc(0)), // empty Basic Offset Table
    ...fragments.map((f) => item(f)),
    SEQUENCE_DELIMITER,
  ]);
  return part10(transferSyntax, dataset);
}

/** Item offsets (from the first fragment's item tag) of each frame's first fragment. */
function itemOffsets(frames: Buffer[][]): bigint[] {
  const offsets: bigint[] = [];
  let at = 0;
  for (const frame of frames) {
    offsets.push(BigInt(at));
    for (const f of frame) at += 8 + f.length;
  }
  return offsets;
}

async function framesFound(bytes: Buffer) {
  const instance = await accepted(bytes);
  const layout = locateFrames(instance.pixelData!, pixelGeometry(instance.dataset));
  return { instance, layout, file: bytes };
}

const bytesOf = (file: Buffer, ranges: { offset: number; length: number }[]) =>
  Buffer.concat(ranges.map((r) => file.subarray(r.offset, r.offset + r.length)));

t.test('JPEG family: frames start at SOI', async (t) => {
  const frames = framesOf(SOI);
  const { instance, layout, file } = await framesFound(encapsulatedObject(JPEG_BASELINE, frames));
  t.same(instance.pixelData!.frameStarts, [0, 2, 3]);
  if (!layout.ok) return t.fail(layout.reason);
  t.same(layout.frames.map((r) => bytesOf(file, r)), frames.map((f) => Buffer.concat(f)), 'each frame is exactly its fragments');
});

t.test('JPEG 2000: frames start at SOC SIZ', async (t) => {
  const frames = framesOf(SOC_SIZ);
  const { instance, layout, file } = await framesFound(encapsulatedObject(JPEG_2000, frames));
  t.same(instance.pixelData!.frameStarts, [0, 2, 3]);
  t.ok(layout.ok);
  if (layout.ok) t.same(bytesOf(file, layout.frames[2]!), Buffer.concat(frames[2]!));
});

t.test('Extended Offset Table wins over markers, and is checked against the fragments', async (t) => {
  // No markers at all: only the table can group these.
  const frames = framesOf([0x01, 0x02]);
  const { instance, layout } = await framesFound(encapsulatedObject(JPEG_BASELINE, frames, itemOffsets(frames)));
  t.same(instance.pixelData!.frameStarts, [0, 2, 3]);
  t.ok(layout.ok);
  const wrong = await framesFound(encapsulatedObject(JPEG_BASELINE, frames, [0n, 5n, 9n]));
  t.equal(wrong.instance.pixelData!.frameStarts, undefined, 'offsets that are not item starts: no grouping');
  t.match(wrong.layout, { ok: false, reason: /no Basic Offset Table/ });
});

t.test('grouping refused when the markers do not name NumberOfFrames frames', async (t) => {
  const frames = framesOf(SOI);
  frames[1]![0]![0] = 0x00; // frame 2 lost its SOI: two starts for three frames
  const lost = await framesFound(encapsulatedObject(JPEG_BASELINE, frames));
  t.equal(lost.instance.pixelData!.frameStarts, undefined);
  t.match(lost.layout, { ok: false, reason: /frame boundaries are unknown/ });
  const rle = await framesFound(encapsulatedObject(RLE, framesOf(SOI)));
  t.equal(rle.instance.pixelData!.frameStarts, undefined, 'no start marker known for the syntax');
});

t.test('through STOW and WADO-RS frames: frame 2 and 3 of a table-less multi-fragment object', async (t) => {
  const { app } = await testApp(t);
  const frames = framesOf(SOI);
  const { contentType, body } = multipartBody([encapsulatedObject(JPEG_BASELINE, frames)]);
  const stow = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  t.equal(stow.statusCode, 200);
  const res = await app.inject({
    method: 'GET',
    url: `/dicomweb/studies/${STUDY}/series/${SERIES}/instances/${SOP_INSTANCE}/frames/3,2`,
    headers: { accept: 'multipart/related; type="image/jpeg"' },
  });
  t.equal(res.statusCode, 200);
  const parts = splitMultipart(String(res.headers['content-type']), res.rawPayload);
  t.same(parts.map((p) => p.body), [Buffer.concat(frames[2]!), Buffer.concat(frames[1]!)]);
});
