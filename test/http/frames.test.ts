// WADO-RS Retrieve Frames (PS3.18 10.4.1.1.4) and bulk data (F.2.7) through the real app: STOW native and
// encapsulated objects, then compare every returned frame with bytes located independently in the file here
// (a small walker of its own, not the server's reader or layout), plus the media types and the refusals.
import { inflateRawSync } from 'node:zlib';
import t from 'tap';
import type { Test } from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { splitMultipart } from '../helpers/multipart-response.js';
import { locateFrames, pixelGeometry } from '../../src/dicom/frames.js';
import { parseFrameList } from '../../src/services/retrieve-frames.js';
import { MAX_BUFFERED_FRAME_BYTES } from '../../src/http/routes/frames-rs.js';
import { generatedSet, indexRows, testFile } from '../helpers/testdata.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const RLE = '1.2.840.10008.1.2.5';
const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
const OHIF_ACCEPT = 'multipart/related; type=application/octet-stream; transfer-syntax=*';

interface Fixture {
  study: string;
  series: string;
  sop: string;
  bytes: Buffer;
  frames: number;
}

const rows = indexRows();
function fixture(rel: string, bytes = testFile(rel)): Fixture {
  const row = rows.find((r) => r.path === rel)!;
  return { study: row.studyUid, series: row.seriesUid, sop: row.sopUid, bytes, frames: 0 };
}

const multiframeRel = generatedSet('ct-multiframe').files[0]!.rel;
const singleRel = generatedSet('ct-2studies').files[0]!.rel;
const FIX = {
  multiframe: { ...fixture(multiframeRel), frames: 30 },
  single: { ...fixture(singleRel), frames: 1 },
  rle: { ...fixture('dicomweb-client/US-PAL-8-10x-echo.dcm'), frames: 10 },
  jpeg: { ...fixture('derived/ct_jpeg_lossless_sv1.dcm'), frames: 1 },
};

// ---- independent locator: Explicit VR Little Endian files only (all four fixtures are) ----

const PIXEL_TAG = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
const ITEM = 0xe000fffe;
const SEQ_DELIM = 0xe0ddfffe;

/** Offset of the top-level Pixel Data element: the last (7FE0,0010) tag followed by VR OB or OW. */
function pixelElement(file: Buffer): number {
  for (let at = file.lastIndexOf(PIXEL_TAG); at >= 0; at = file.lastIndexOf(PIXEL_TAG, at - 1)) {
    const vr = file.toString('latin1', at + 4, at + 6);
    if (vr === 'OB' || vr === 'OW') return at;
  }
  throw new Error('no Pixel Data');
}

/** The Pixel Data value: native bytes, or the fragments and Basic Offset Table of encapsulated data. */
function pixelValue(file: Buffer): { native?: Buffer; bot?: number[]; fragments?: Buffer[] } {
  const at = pixelElement(file);
  const length = file.readUInt32LE(at + 8);
  const value = at + 12;
  if (length !== 0xffffffff) return { native: file.subarray(value, value + length) };
  const items: Buffer[] = [];
  let p = value;
  for (;;) {
    const tag = (file.readUInt16LE(p + 2) << 16) | file.readUInt16LE(p);
    const len = file.readUInt32LE(p + 4);
    if (tag >>> 0 === SEQ_DELIM) break;
    if (tag >>> 0 !== ITEM) throw new Error('not an item');
    items.push(file.subarray(p + 8, p + 8 + len));
    p += 8 + len;
  }
  const [botItem, ...fragments] = items;
  const bot = Array.from({ length: botItem!.length / 4 }, (_, i) => botItem!.readUInt32LE(i * 4));
  return { bot, fragments };
}

/** Frame k (1-based) as the test computes it. */
function expectedFrame(f: Fixture, k: number): Buffer {
  const v = pixelValue(f.bytes);
  if (v.native) {
    const size = v.native.length / f.frames;
    return v.native.subarray((k - 1) * size, k * size);
  }
  const fragments = v.fragments!;
  if (v.bot!.length > 0) {
    const starts: number[] = [];
    let off = 0;
    for (const fr of fragments) {
      starts.push(off);
      off += 8 + fr.length;
    }
    const first = starts.indexOf(v.bot![k - 1]!);
    const end = k < v.bot!.length ? starts.indexOf(v.bot![k]!) : fragments.length;
    return Buffer.concat(fragments.slice(first, end));
  }
  return fragments.length === f.frames ? fragments[k - 1]! : Buffer.concat(fragments);
}

function expectedPixelData(f: Fixture): Buffer {
  const v = pixelValue(f.bytes);
  return v.native ?? Buffer.concat(v.fragments!);
}

// ---- app ----

const framesUrl = (f: Fixture, list: string) => `/dicomweb/studies/${f.study}/series/${f.series}/instances/${f.sop}/frames/${list}`;
const bulkUrl = (f: Fixture, path: string) => `/dicomweb/studies/${f.study}/series/${f.series}/instances/${f.sop}/bulk/${path}`;

async function seededApp(t: Test): Promise<TestApp> {
  const app = await testApp(t);
  const { contentType, body } = multipartBody(Object.values(FIX).map((f) => f.bytes));
  const res = await app.app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  t.equal(res.statusCode, 200, 'STOW stored everything');
  return app;
}

async function getFrames(app: TestApp, f: Fixture, list: string, accept?: string) {
  return app.app.inject({ method: 'GET', url: framesUrl(f, list), headers: accept === undefined ? {} : { accept } });
}

t.test('frames', async (t) => {
  const app = await seededApp(t);

  const cases: [keyof typeof FIX, string, number[], string, string][] = [
    ['multiframe', '1', [1], 'application/octet-stream', EXPLICIT_LE],
    ['multiframe', '30', [30], 'application/octet-stream', EXPLICIT_LE],
    ['multiframe', '1,3,5', [1, 3, 5], 'application/octet-stream', EXPLICIT_LE],
    ['multiframe', '5,2,5', [5, 2, 5], 'application/octet-stream', EXPLICIT_LE],
    ['single', '1', [1], 'application/octet-stream', EXPLICIT_LE],
    ['rle', '1', [1], 'image/dicom-rle', RLE],
    ['rle', '10', [10], 'image/dicom-rle', RLE],
    ['rle', '1,3,5', [1, 3, 5], 'image/dicom-rle', RLE],
    ['jpeg', '1', [1], 'image/jpeg', JPEG_LOSSLESS_SV1],
  ];
  for (const [name, list, numbers, partType, syntax] of cases) {
    for (const accept of [undefined, OHIF_ACCEPT, `multipart/related; type="${partType}"; transfer-syntax=${syntax}`]) {
      const f = FIX[name];
      const res = await getFrames(app, f, list, accept);
      t.equal(res.statusCode, 200, `${name} ${list} ${accept ?? '(no Accept)'}`);
      t.match(res.headers['content-type'], new RegExp(`^multipart/related; type="${partType.replace('/', '\\/')}"; boundary=`));
      const parts = splitMultipart(String(res.headers['content-type']), res.rawPayload);
      t.equal(parts.length, numbers.length, 'one part per requested frame');
      parts.forEach((p, i) => {
        const expected = expectedFrame(f, numbers[i]!);
        t.ok(expected.length > 0);
        t.ok(p.body.equals(expected), `${name} frame ${numbers[i]} byte-equal`);
        t.equal(p.headers['content-type'], `${partType}; transfer-syntax=${syntax}`);
        t.equal(p.headers['content-length'], String(expected.length));
        t.match(p.headers['content-location'], new RegExp(`/instances/${f.sop}/frames/${numbers[i]}$`));
      });
    }
  }
  // Frames of the multiframe are distinct, so a wrong offset cannot pass by accident.
  t.notOk(expectedFrame(FIX.multiframe, 1).equals(expectedFrame(FIX.multiframe, 2)), 'fixture frames differ');
  t.notOk(expectedFrame(FIX.rle, 1).equals(expectedFrame(FIX.rle, 2)), 'fixture frames differ');
});

t.test('frame list and lookup refusals', async (t) => {
  const app = await seededApp(t);
  for (const [f, list] of [
    [FIX.multiframe, '0'],
    [FIX.multiframe, 'abc'],
    [FIX.multiframe, '31'],
    [FIX.multiframe, '1,,2'],
    [FIX.multiframe, '1,-2'],
    [FIX.single, '2'],
    [FIX.rle, '11'],
    [FIX.multiframe, '1,2,3,4,5,99'],
  ] as const) {
    const res = await getFrames(app, f, list);
    t.equal(res.statusCode, 400, `frames/${list.slice(0, 20)} -> 400`);
  }
  const unknown = await getFrames(app, { ...FIX.multiframe, sop: '1.2.3.4.5' }, '1');
  t.equal(unknown.statusCode, 404, 'unknown instance');
  t.notMatch(unknown.body, '1.2.3.4.5', 'UID not echoed');
  const wrongSeries = await getFrames(app, { ...FIX.multiframe, series: FIX.single.series }, '1');
  t.equal(wrongSeries.statusCode, 404, 'instance under another series');
  const badUid = await getFrames(app, { ...FIX.multiframe, sop: '1..2' }, '1');
  t.equal(badUid.statusCode, 400, 'invalid UID');
  // The router caps a path parameter at 8192 characters (app.ts maxParamLength): room for the 1000 frames
  // a request may name (MAX_FRAMES_PER_REQUEST); more numbers are 400, a longer parameter 414.
  const tooMany = await getFrames(app, FIX.multiframe, Array.from({ length: 1001 }, () => '1').join(','));
  t.equal(tooMany.statusCode, 400, '1001 frames');
  const long = await getFrames(app, FIX.multiframe, Array.from({ length: 2000 }, () => '0001').join(','));
  t.equal(long.statusCode, 414, 'frame list longer than the router allows');
  const many = await getFrames(app, FIX.multiframe, Array.from({ length: 1000 }, (_, i) => String((i % 9) + 1)).join(','));
  t.equal(many.statusCode, 200, '1000 frames in one request');
  t.equal(splitMultipart(String(many.headers['content-type']), many.rawPayload).length, 1000);
});

t.test('answers up to MAX_BUFFERED_FRAME_BYTES go out as one body with a Content-Length; longer ones stream', async (t) => {
  const app = await seededApp(t);
  const frameBytes = expectedFrame(FIX.multiframe, 1).length;
  const fits = Math.floor(MAX_BUFFERED_FRAME_BYTES / frameBytes);
  for (const [count, buffered] of [[1, true], [fits, true], [fits + 1, false]] as const) {
    const numbers = Array.from({ length: count }, (_, i) => (i % FIX.multiframe.frames) + 1);
    const res = await getFrames(app, FIX.multiframe, numbers.join(','), OHIF_ACCEPT);
    t.equal(res.statusCode, 200);
    const parts = splitMultipart(String(res.headers['content-type']), res.rawPayload);
    t.equal(parts.length, count, `${count} frames`);
    t.ok(parts.every((p, i) => p.body.equals(expectedFrame(FIX.multiframe, numbers[i]!))), `${count} frames byte-equal`);
    if (buffered) t.equal(res.headers['content-length'], String(res.rawPayload.length), `${count} frames: assembled, Content-Length`);
    else t.equal(res.headers['content-length'], undefined, `${count} frames: streamed`);
  }
});

t.test('frame negotiation: refusals, and what transcoding now serves', async (t) => {
  const app = await seededApp(t);
  const refused: [Fixture, string][] = [
    // A syntax that is not of that media type, a conversion the transcoder refuses (16-bit to JPEG baseline),
    // a media type that does not match the syntax named, a media type that is not a frame type.
    [FIX.rle, `multipart/related; type="image/dicom-rle"; transfer-syntax=${JPEG_LOSSLESS_SV1}`],
    [FIX.jpeg, 'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.50'],
    [FIX.multiframe, `multipart/related; type="application/octet-stream"; transfer-syntax=${RLE}`],
    [FIX.multiframe, 'application/dicom'],
  ];
  for (const [f, accept] of refused) {
    const res = await getFrames(app, f, '1', accept);
    t.equal(res.statusCode, 406, accept);
  }
  // Refused before transcoding existed; now decoded or encoded (pixels checked in transcode-rs.test.ts).
  const served: [Fixture, string, string][] = [
    [FIX.rle, `multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT_LE}`, `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`],
    [FIX.rle, 'multipart/related; type="application/octet-stream"', `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`],
    [FIX.multiframe, 'multipart/related; type="image/jpeg"', `image/jpeg; transfer-syntax=${JPEG_LOSSLESS_SV1}`],
  ];
  for (const [f, accept, partType] of served) {
    const res = await getFrames(app, f, '1', accept);
    t.equal(res.statusCode, 200, accept);
    const [part] = splitMultipart(res.headers['content-type'] as string, res.rawPayload);
    t.equal(part?.headers['content-type'], partType, `${accept}: part Content-Type`);
  }
  const ok = await getFrames(app, FIX.rle, '2', 'multipart/related; type="image/jpeg", multipart/related; type="image/dicom-rle"');
  t.equal(ok.statusCode, 200, 'the acceptable entry of a list is chosen');
  // 8-bit PALETTE COLOR cannot go to lossy JPEG baseline; JPEG lossless (the image/jpeg default) is fine, and the
  // stored image/dicom-rle entry is equally acceptable: the list's order decides.
  t.match(ok.headers['content-type'], /type="?image\/jpeg/, 'the first entry, transcoded');
});

t.test('bulk data: Pixel Data', async (t) => {
  const app = await seededApp(t);
  for (const [name, f] of Object.entries(FIX)) {
    const expected = expectedPixelData(f);
    const res = await app.app.inject({ method: 'GET', url: bulkUrl(f, '7FE00010') });
    t.equal(res.statusCode, 200, name);
    t.equal(res.headers['content-type'], 'application/octet-stream');
    t.equal(res.headers['accept-ranges'], 'bytes');
    t.equal(res.headers['content-length'], String(expected.length));
    t.ok(res.rawPayload.equals(expected), `${name} Pixel Data byte-equal`);
  }

  const f = FIX.multiframe;
  const whole = expectedPixelData(f);
  const size = whole.length;
  const ranged = async (range: string) => app.app.inject({ method: 'GET', url: bulkUrl(f, '7FE00010'), headers: { range } });
  for (const [range, start, end] of [
    ['bytes=0-99', 0, 100],
    ['bytes=1000-', 1000, size],
    ['bytes=-10', size - 10, size],
    [`bytes=${size - 5}-${size + 100}`, size - 5, size],
  ] as const) {
    const res = await ranged(range);
    t.equal(res.statusCode, 206, range);
    t.equal(res.headers['content-range'], `bytes ${start}-${end - 1}/${size}`);
    t.equal(res.headers['content-length'], String(end - start));
    t.ok(res.rawPayload.equals(whole.subarray(start, end)), `${range} bytes`);
  }
  for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0']) {
    const res = await ranged(range);
    t.equal(res.statusCode, 416, range);
    t.equal(res.headers['content-range'], `bytes */${size}`);
  }
  const multi = await ranged('bytes=0-1,5-6');
  t.equal(multi.statusCode, 200, 'multi-range: whole value');
  t.ok(multi.rawPayload.equals(whole));

  // A range across fragment boundaries of encapsulated data.
  const rle = expectedPixelData(FIX.rle);
  const mid = Math.floor(rle.length / 2);
  const across = await app.app.inject({ method: 'GET', url: bulkUrl(FIX.rle, '7FE00010'), headers: { range: `bytes=${mid - 50000}-${mid + 50000}` } });
  t.equal(across.statusCode, 206);
  t.ok(across.rawPayload.equals(rle.subarray(mid - 50000, mid + 50001)), 'range across fragments');

  const mp = await app.app.inject({ method: 'GET', url: bulkUrl(f, '7fe00010'), headers: { accept: 'multipart/related; type="application/octet-stream"' } });
  t.equal(mp.statusCode, 200);
  const parts = splitMultipart(String(mp.headers['content-type']), mp.rawPayload);
  t.equal(parts.length, 1);
  t.equal(parts[0]!.headers['content-type'], 'application/octet-stream');
  t.ok(parts[0]!.body.equals(whole), 'multipart bulk byte-equal');

  for (const path of ['00100010', '7FE00010/0/00080100', 'zz', '7FE00010/x']) {
    const res = await app.app.inject({ method: 'GET', url: bulkUrl(f, path) });
    t.equal(res.statusCode, 404, `bulk/${path}`);
  }
  const unknown = await app.app.inject({ method: 'GET', url: bulkUrl({ ...f, sop: '1.2.3.4.5' }, '7FE00010') });
  t.equal(unknown.statusCode, 404, 'unknown instance');
  const notOctet = await app.app.inject({ method: 'GET', url: bulkUrl(f, '7FE00010'), headers: { accept: 'application/dicom' } });
  t.equal(notOctet.statusCode, 406);
});

// ---- Explicit VR Big Endian and Deflated objects: served as in their Explicit VR Little Endian form ----

/** Native Pixel Data of a Big Endian file, found here by its big endian tag, swapped to little endian if OW. */
function bigEndianPixels(file: Buffer): Buffer {
  const tag = Buffer.from([0x7f, 0xe0, 0x00, 0x10]);
  for (let at = file.lastIndexOf(tag); at >= 0; at = file.lastIndexOf(tag, at - 1)) {
    const vr = file.toString('latin1', at + 4, at + 6);
    if (vr !== 'OB' && vr !== 'OW') continue;
    const value = Buffer.from(file.subarray(at + 12, at + 12 + file.readUInt32BE(at + 8)));
    // PS3.5 A.3: OW is a stream of 16-bit words, each big endian in the file.
    return vr === 'OW' ? value.swap16() : value;
  }
  throw new Error('no Pixel Data');
}

/** A Deflated file with its dataset inflated (PS3.5 A.5): the File Meta group length says where it starts. */
function inflated(file: Buffer): Buffer {
  const datasetOffset = 132 + 12 + file.readUInt32LE(132 + 8);
  return Buffer.concat([file.subarray(0, datasetOffset), inflateRawSync(file.subarray(datasetOffset))]);
}

const OTHER = {
  bigEndian: { ...fixture('derived/ct_explicit_big_endian.dcm'), frames: 1, pixels: () => bigEndianPixels(testFile('derived/ct_explicit_big_endian.dcm')) },
  bigEndian32: { ...fixture('pydicom/test_files/rtdose_expb.dcm'), frames: 15, pixels: () => bigEndianPixels(testFile('pydicom/test_files/rtdose_expb.dcm')) },
  bigEndian8: { ...fixture('pydicom/test_files/ExplVR_BigEnd.dcm'), frames: 1, pixels: () => bigEndianPixels(testFile('pydicom/test_files/ExplVR_BigEnd.dcm')) },
  deflated: { ...fixture('derived/ct_deflated.dcm'), frames: 1, pixels: () => pixelValue(inflated(testFile('derived/ct_deflated.dcm'))).native! },
  deflated8: { ...fixture('pydicom/test_files/image_dfl.dcm'), frames: 1, pixels: () => pixelValue(inflated(testFile('pydicom/test_files/image_dfl.dcm'))).native! },
};

t.test('Big Endian and Deflated objects: frames and bulk data little endian and inflated, not 406', async (t) => {
  const app = await testApp(t);
  const { contentType, body } = multipartBody(Object.values(OTHER).map((f) => f.bytes));
  const stored = await app.app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  t.equal(stored.statusCode, 200, 'STOW stored everything');
  // The fixtures really need the work: the served bytes are not a slice of the stored file.
  t.notOk(OTHER.bigEndian.bytes.includes(OTHER.bigEndian.pixels().subarray(0, 64)), 'swapped pixels are not in the stored file');
  t.notOk(OTHER.deflated.bytes.includes(OTHER.deflated.pixels().subarray(0, 64)), 'inflated pixels are not in the stored file');

  for (const [name, f] of Object.entries(OTHER)) {
    const pixels = f.pixels();
    const size = pixels.length / f.frames;
    const list = f.frames > 2 ? `1,${f.frames},2` : '1';
    const numbers = list.split(',').map(Number);
    for (const accept of [undefined, OHIF_ACCEPT, `multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT_LE}`]) {
      const res = await getFrames(app, f, list, accept);
      t.equal(res.statusCode, 200, `${name} frames ${accept ?? '(no Accept)'}`);
      const parts = splitMultipart(String(res.headers['content-type']), res.rawPayload);
      t.equal(parts.length, numbers.length);
      parts.forEach((p, i) => {
        const k = numbers[i]!;
        t.equal(p.headers['content-type'], `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`);
        t.ok(p.body.equals(pixels.subarray((k - 1) * size, k * size)), `${name} frame ${k} byte-equal`);
      });
    }
    const bulk = await app.app.inject({ method: 'GET', url: bulkUrl(f, '7FE00010') });
    t.equal(bulk.statusCode, 200, `${name} bulk`);
    t.ok(bulk.rawPayload.equals(pixels), `${name} Pixel Data byte-equal`);
    // Ranges that start and end mid-word: the swap still counts words from the start of the value.
    for (const [start, end] of [[1, 8], [3, pixels.length - 3], [pixels.length - 1, pixels.length]] as const) {
      const ranged = await app.app.inject({ method: 'GET', url: bulkUrl(f, '7FE00010'), headers: { range: `bytes=${start}-${end - 1}` } });
      t.equal(ranged.statusCode, 206, `${name} range ${start}-${end - 1}`);
      t.ok(ranged.rawPayload.equals(pixels.subarray(start, end)), `${name} range ${start}-${end - 1} bytes`);
    }
  }
  t.notOk(OTHER.bigEndian32.pixels().subarray(0, 400).equals(OTHER.bigEndian32.pixels().subarray(400, 800)), 'RT Dose frames differ');
});

t.test('frame list parsing (unit)', async (t) => {
  t.same(parseFrameList('3,1,3', 3), [3, 1, 3], 'order and duplicates kept');
  t.throws(() => parseFrameList(Array.from({ length: 1001 }, () => '1').join(','), 5), /at most 1000/);
  t.same(parseFrameList(Array.from({ length: 1000 }, () => '1').join(','), 5).length, 1000);
  for (const bad of ['', ' 1', '1 ', '1.0', '+1', '0', '4', '1e1', '99999999999999999999']) t.throws(() => parseFrameList(bad, 3), bad);
});

t.test('frame location (unit)', async (t) => {
  const g = pixelGeometry({
    '00280010': { vr: 'US', Value: [2] },
    '00280011': { vr: 'US', Value: [3] },
    '00280002': { vr: 'US', Value: [3] },
    '00280100': { vr: 'US', Value: [16] },
    '00280008': { vr: 'IS', Value: ['2'] },
  });
  t.same(g, { rows: 2, columns: 3, samplesPerPixel: 3, bitsAllocated: 16, numberOfFrames: 2 });
  t.same(locateFrames({ offset: 100, length: 72, encapsulated: false }, g), {
    ok: true,
    frames: [[{ offset: 100, length: 36 }], [{ offset: 136, length: 36 }]],
  });
  t.match(locateFrames({ offset: 100, length: 71, encapsulated: false }, g), { ok: false, reason: /shorter/ });
  t.match(locateFrames({ offset: 0, length: 2, encapsulated: false }, { ...g, bitsAllocated: 1 }), { ok: false, reason: /bit-packed/ });
  t.same(pixelGeometry({}), { rows: 0, columns: 0, samplesPerPixel: 1, bitsAllocated: 0, numberOfFrames: 1 });

  // Three fragments (items at relative offsets 0, 18, 38), two frames; the table says frame 2 starts at 38.
  const fragments = [
    { offset: 1008, length: 10 },
    { offset: 1026, length: 12 },
    { offset: 1046, length: 4 },
  ];
  const two = { ...g, numberOfFrames: 2 };
  t.same(locateFrames({ offset: 992, length: 58, encapsulated: true, fragments, basicOffsetTable: [0, 38] }, two), {
    ok: true,
    frames: [[fragments[0], fragments[1]], [fragments[2]]],
  });
  t.match(locateFrames({ offset: 992, length: 58, encapsulated: true, fragments, basicOffsetTable: [0, 37] }, two), { ok: false, reason: /does not match/ });
  t.match(locateFrames({ offset: 992, length: 58, encapsulated: true, fragments, basicOffsetTable: [0] }, two), { ok: false, reason: /one entry per frame/ });
  t.match(locateFrames({ offset: 992, length: 58, encapsulated: true, fragments }, two), { ok: false, reason: /no Basic Offset Table/ });
  t.same(locateFrames({ offset: 992, length: 58, encapsulated: true, fragments }, { ...g, numberOfFrames: 1 }), { ok: true, frames: [fragments] });
  t.same(locateFrames({ offset: 992, length: 58, encapsulated: true, fragments }, { ...g, numberOfFrames: 3 }), {
    ok: true,
    frames: fragments.map((f) => [f]),
  });
});
