// WADO-RS Retrieve Instances (PS3.18 10.4.1) through the real app: STOW files, retrieve them at the three
// levels, and check every byte, every part header, the media types clients send and the refusals.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { splitMultipart, type ResponsePart } from '../helpers/multipart-response.js';
import { expectSameObjectAsExplicitLE, reencodedFile } from '../helpers/reencoded.js';
import { generateCt } from '../helpers/generated-ct.js';
import { tempDir } from '../helpers/temp-dir.js';
import { generatedSet, indexRows, testFile, TESTDATA } from '../helpers/testdata.js';
import { MAX_BUFFERED_INSTANCE_BYTES } from '../../src/http/routes/wado-rs.js';
import { readWithDcmjs } from '../transcode/pixel-digest.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const BIG_ENDIAN = '1.2.840.10008.1.2.2';
const RLE = '1.2.840.10008.1.2.5';
const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
const J2K_LOSSLESS = '1.2.840.10008.1.2.4.90';
const DEFLATED = '1.2.840.10008.1.2.1.99';

const { manifest, files } = generatedSet('ct-2studies');
const bytesOf = new Map(files.map((f) => [f.rel, f.bytes]));
const study1 = manifest.studies[0]!;
const study2 = manifest.studies[1]!;

interface Expected {
  study: string;
  series: string;
  sop: string;
  bytes: Buffer;
}
/** A manifest study's instances in retrieve order (SeriesNumber, InstanceNumber) with their file bytes. */
const expectedOf = (s: typeof study1): Expected[] =>
  [...s.series]
    .sort((a, b) => a.SeriesNumber - b.SeriesNumber)
    .flatMap((x) =>
      [...x.instances]
        .sort((a, b) => a.InstanceNumber - b.InstanceNumber)
        .map((i) => ({
          study: s.StudyInstanceUID,
          series: x.SeriesInstanceUID,
          sop: i.SOPInstanceUID,
          bytes: bytesOf.get(files.find((f) => f.rel.endsWith(i.file))!.rel)!,
        })),
    );
const study1Expected = expectedOf(study1);
const study2Expected = expectedOf(study2);

/** The derived corpus files: one study, each file a series of its own in another transfer syntax. */
const DERIVED = {
  rle: 'derived/ct_rle.dcm',
  jpegLossless: 'derived/ct_jpeg_lossless_sv1.dcm',
  j2k: 'derived/ct_j2k_lossless.dcm',
  deflated: 'derived/ct_deflated.dcm',
  implicit: 'derived/ct_implicit_le.dcm',
  bigEndian: 'derived/ct_explicit_big_endian.dcm',
} as const;
type DerivedName = keyof typeof DERIVED;
const STORED_SYNTAX: Record<DerivedName, string> = {
  rle: RLE,
  jpegLossless: JPEG_LOSSLESS_SV1,
  j2k: J2K_LOSSLESS,
  deflated: DEFLATED,
  implicit: IMPLICIT_LE,
  bigEndian: BIG_ENDIAN,
};
const rows = indexRows();
const derived = Object.fromEntries(
  Object.entries(DERIVED).map(([name, rel]) => {
    const row = rows.find((r) => r.path === rel)!;
    return [name, { study: row.studyUid, series: row.seriesUid, sop: row.sopUid, bytes: testFile(rel) }];
  }),
) as Record<DerivedName, Expected>;
const DERIVED_STUDY = derived.rle.study;

const instanceUrl = (e: Expected) => `/dicomweb/studies/${e.study}/series/${e.series}/instances/${e.sop}`;
const seriesUrl = (e: Expected) => `/dicomweb/studies/${e.study}/series/${e.series}`;
const MULTIPART_DICOM = /^multipart\/related; type="application\/dicom"; boundary=[!-~]+$/;

async function stow(t: Test, app: TestApp['app'], parts: Buffer[]): Promise<void> {
  const { contentType, body } = multipartBody(parts);
  const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  t.equal(res.statusCode, 200, 'STOW stored everything');
}

/** One app for the read-only tests: both generated studies (sent in reverse order) and the derived files. */
async function seededApp(t: Test): Promise<TestApp> {
  const app = await testApp(t);
  await stow(t, app.app, [...study2Expected, ...study1Expected].reverse().map((e) => e.bytes));
  await stow(t, app.app, Object.values(derived).map((d) => d.bytes));
  return app;
}

async function get(app: TestApp['app'], url: string, accept?: string) {
  return app.inject({ method: 'GET', url, headers: accept === undefined ? {} : { accept } });
}

/** Asserts a multipart retrieve answer: exact parts, in order, each byte-equal with its headers. */
function expectParts(t: Test, res: Awaited<ReturnType<typeof get>>, expected: { e: Expected; ts: string }[], what: string): ResponsePart[] {
  t.equal(res.statusCode, 200, `${what}: 200`);
  const contentType = res.headers['content-type'] as string;
  t.match(contentType, MULTIPART_DICOM, `${what}: multipart/related; type="application/dicom"`);
  t.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`);
  const parts = splitMultipart(contentType, res.rawPayload);
  t.equal(parts.length, expected.length, `${what}: part count`);
  parts.forEach((part, n) => {
    const { e, ts } = expected[n]!;
    t.ok(part.body.equals(e.bytes), `${what}: part ${n + 1} is the stored file, byte for byte`);
    t.equal(part.headers['content-type'], `application/dicom; transfer-syntax=${ts}`, `${what}: part ${n + 1} Content-Type`);
    t.match(part.headers['content-location'], new RegExp(`^https://[^/]+${instanceUrl(e).replaceAll('.', '\\.')}$`), `${what}: part ${n + 1} Content-Location`);
    t.equal(part.headers['content-length'], String(e.bytes.length), `${what}: part ${n + 1} Content-Length`);
  });
  return parts;
}

const plain = (list: Expected[]) => list.map((e) => ({ e, ts: EXPLICIT_LE }));

/**
 * Asserts a multipart answer of transcoded objects: the parts in order, each labelled `ts` and holding an object
 * whose File Meta names `ts` (read with dcmjs). Their pixels are compared with reference decodes in
 * transcode-rs.test.ts.
 */
function expectTranscoded(t: Test, res: Awaited<ReturnType<typeof get>>, expected: Expected[], ts: string, what: string): void {
  t.equal(res.statusCode, 200, `${what}: 200`);
  const parts = splitMultipart(res.headers['content-type'] as string, res.rawPayload);
  t.equal(parts.length, expected.length, `${what}: part count`);
  parts.forEach((part, n) => {
    t.equal(part.headers['content-type'], `application/dicom; transfer-syntax=${ts}`, `${what}: part ${n + 1} Content-Type`);
    t.equal(readWithDcmjs(part.body).transferSyntaxUID, ts, `${what}: part ${n + 1} File Meta transfer syntax`);
    t.match(part.headers['content-location'], new RegExp(`${instanceUrl(expected[n]!).replaceAll('.', '\\.')}$`), `${what}: part ${n + 1} Content-Location`);
  });
}

t.test('retrieve at every level: multipart/related, every part the stored bytes, in retrieve order', async (t) => {
  const { app } = await seededApp(t);
  expectParts(t, await get(app, `/dicomweb/studies/${study1.StudyInstanceUID}`), plain(study1Expected), 'study 1');
  expectParts(t, await get(app, `/dicomweb/studies/${study2.StudyInstanceUID}`), plain(study2Expected), 'study 2');
  const series2 = study1Expected.filter((e) => e.series === study1.series[1]!.SeriesInstanceUID);
  t.equal(series2.length, 6);
  expectParts(t, await get(app, seriesUrl(series2[0]!)), plain(series2), 'series');
  const one = study1Expected[7]!;
  expectParts(t, await get(app, instanceUrl(one)), plain([one]), 'instance');
});

t.test('single-part application/dicom for one instance', async (t) => {
  const { app } = await seededApp(t);
  const one = study2Expected[3]!;
  const res = await get(app, instanceUrl(one), 'application/dicom');
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], `application/dicom; transfer-syntax=${EXPLICIT_LE}`);
  t.equal(res.headers['content-length'], String(one.bytes.length));
  t.match(res.headers['content-location'], new RegExp(`${instanceUrl(one).replaceAll('.', '\\.')}$`));
  t.equal(res.headers['cache-control'], 'no-store');
  t.ok(res.rawPayload.equals(one.bytes), 'the stored file, byte for byte');

  const rle = await get(app, instanceUrl(derived.rle), `application/dicom; transfer-syntax=${RLE}`);
  t.equal(rle.statusCode, 200, 'naming the stored syntax');
  t.equal(rle.headers['content-type'], `application/dicom; transfer-syntax=${RLE}`);
  t.ok(rle.rawPayload.equals(derived.rle.bytes));

  for (const url of [`/dicomweb/studies/${study1.StudyInstanceUID}`, seriesUrl(study1Expected[0]!)]) {
    const res = await get(app, url, 'application/dicom');
    t.equal(res.statusCode, 406, 'single part only at the instance level');
    t.match(res.json(), { error: 'NOT_ACCEPTABLE', message: /multipart\/related; type="application\/dicom"/ });
  }
});

t.test('one instance of stored bytes up to MAX_BUFFERED_INSTANCE_BYTES goes as one body with a Content-Length; studies stream', async (t) => {
  const { app } = await testApp(t);
  // 256 x 256 CT, ~130 KB each: a few more than the limit holds.
  const instances = generateCt(tempDir(t), { count: Math.ceil(MAX_BUFFERED_INSTANCE_BYTES / 130_000) + 4, studies: 1, series: 1, seed: 11 });
  await stow(t, app, instances.map((i) => i.bytes));
  t.ok(instances.reduce((n, i) => n + i.bytes.length, 0) > MAX_BUFFERED_INSTANCE_BYTES, 'the study is over the limit');
  const bySop = new Map(instances.map((i) => [i.sop, i.bytes]));
  const sameParts = (res: Awaited<ReturnType<typeof get>>, count: number, what: string) => {
    t.equal(res.statusCode, 200, what);
    const parts = splitMultipart(res.headers['content-type'] as string, res.rawPayload);
    t.equal(parts.length, count, `${what}: part count`);
    t.ok(parts.every((p) => p.body.equals(bySop.get(String(p.headers['content-location']).split('/').pop()!)!)), `${what}: every part the stored file`);
  };
  const study = await get(app, `/dicomweb/studies/${instances[0]!.study}`);
  sameParts(study, instances.length, 'study');
  t.equal(study.headers['content-length'], undefined, 'study: streamed');
  const e = { ...instances[3]! };
  const one = await get(app, instanceUrl(e));
  sameParts(one, 1, 'instance');
  t.equal(one.headers['content-length'], String(one.rawPayload.length), 'instance: assembled, Content-Length');
  const single = await get(app, instanceUrl(e), 'application/dicom');
  t.ok(single.rawPayload.equals(e.bytes), 'single part: the stored file');
  t.equal(single.headers['content-length'], String(e.bytes.length));

  // One instance over the limit (1024 x 1100 x 16 bits) streams.
  const dir = tempDir(t);
  execFileSync(process.execPath, [path.join(TESTDATA, '../tools/gen-ct.mjs'), '--out', dir, '--count', '1', '--studies', '1', '--series', '1', '--rows', '1024', '--cols', '1100', '--seed', '12'], { stdio: 'ignore' });
  const [bigFile] = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.dcm'));
  const big = fs.readFileSync(path.join(dir, bigFile!));
  t.ok(big.length > MAX_BUFFERED_INSTANCE_BYTES);
  const bigRow = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { studies: { StudyInstanceUID: string; series: { SeriesInstanceUID: string; instances: { SOPInstanceUID: string }[] }[] }[] };
  const st = bigRow.studies[0]!;
  await stow(t, app, [big]);
  const bigUrl = instanceUrl({ study: st.StudyInstanceUID, series: st.series[0]!.SeriesInstanceUID, sop: st.series[0]!.instances[0]!.SOPInstanceUID, bytes: big });
  const bigSingle = await get(app, bigUrl, 'application/dicom');
  t.ok(bigSingle.rawPayload.equals(big), 'large instance, single part: the stored file');
  t.equal(bigSingle.headers['content-length'], String(big.length), 'its size, known before streaming');
  const bigMulti = await get(app, bigUrl);
  t.equal(bigMulti.headers['content-length'], undefined, 'large instance, multipart: streamed');
  t.ok(splitMultipart(bigMulti.headers['content-type'] as string, bigMulti.rawPayload)[0]!.body.equals(big));
});

t.test('Accept forms real clients send', async (t) => {
  const { app } = await seededApp(t);
  const series = study1Expected.filter((e) => e.series === study1.series[0]!.SeriesInstanceUID);
  const url = seriesUrl(series[0]!);
  const accepts = [
    'multipart/related; type="application/dicom"',
    'multipart/related; type=application/dicom',
    'multipart/related; type="application/dicom"; transfer-syntax=*',
    'multipart/related; type=application/dicom; transfer-syntax="*"',
    `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_LE}`,
    'multipart/related',
    'multipart/*',
    '*/*',
    'application/dicom+json, multipart/related; type="application/dicom"',
    // A first choice that cannot be produced (JPEG 2000 Part 2 is not encoded here): the next one.
    'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.92, multipart/related; type="application/dicom"; transfer-syntax=*; q=0.5',
  ];
  for (const accept of accepts) expectParts(t, await get(app, url, accept), plain(series), accept);
  // A first choice that can be produced wins over `*` with a lower weight: transcoded.
  const rleFirst = `multipart/related; type="application/dicom"; transfer-syntax=${RLE}, multipart/related; type="application/dicom"; transfer-syntax=*; q=0.5`;
  expectTranscoded(t, await get(app, url, rleFirst), series, RLE, rleFirst);
  expectParts(t, await get(app, `${url}?accept=${encodeURIComponent('multipart/related; type="application/dicom"')}`, 'application/json'), plain(series), 'accept query parameter');
});

t.test('compressed and other transfer syntaxes go as stored; another syntax is transcoded, an unknown one 406', async (t) => {
  const { app } = await seededApp(t);
  for (const name of ['rle', 'jpegLossless', 'j2k', 'deflated'] as const) {
    const d = derived[name];
    const ts = STORED_SYNTAX[name];
    expectParts(t, await get(app, seriesUrl(d)), [{ e: d, ts }], `${name} series, no transfer-syntax`);
    expectParts(t, await get(app, instanceUrl(d), `multipart/related; type="application/dicom"; transfer-syntax=${ts}`), [{ e: d, ts }], `${name}, stored syntax named`);
  }

  // Another syntax the transcoder writes: transcoded (pixels checked against reference decodes in transcode-rs.test.ts).
  const transcode = await get(app, instanceUrl(derived.rle), `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_LE}`);
  expectTranscoded(t, transcode, [derived.rle], EXPLICIT_LE, 'RLE instance asked as Explicit VR LE');
  const single = await get(app, instanceUrl(derived.jpegLossless), `application/dicom; transfer-syntax=${EXPLICIT_LE}`);
  t.equal(single.statusCode, 200, 'JPEG Lossless as single part Explicit VR LE');
  t.equal(single.headers['content-type'], `application/dicom; transfer-syntax=${EXPLICIT_LE}`);
  t.equal(single.headers['content-length'], String(single.rawPayload.length));
  t.equal(readWithDcmjs(single.rawPayload).transferSyntaxUID, EXPLICIT_LE);
  const unknownSyntax = await get(app, instanceUrl(derived.rle), 'multipart/related; type="application/dicom"; transfer-syntax=1.2.3.4');
  t.equal(unknownSyntax.statusCode, 406, 'a syntax the server does not know');
  t.match(unknownSyntax.json(), { error: 'NOT_ACCEPTABLE', message: new RegExp(`stored as ${RLE.replaceAll('.', '\\.')} \\(RLE Lossless\\)`) });
});

t.test('Implicit VR LE and Big Endian objects: re-encoded as Explicit VR LE (PS3.18 8.7.3.5.2), never as stored', async (t) => {
  const { app } = await seededApp(t);
  const reencoded = { implicit: await reencodedFile(derived.implicit.bytes), bigEndian: await reencodedFile(derived.bigEndian.bytes) };
  for (const name of ['implicit', 'bigEndian'] as const) {
    const d = derived[name];
    const sent = { ...d, bytes: reencoded[name] };
    t.notOk(sent.bytes.equals(d.bytes), `${name}: the re-encoding differs from the stored file`);
    const accepts = [
      undefined,
      '*/*',
      'multipart/related; type="application/dicom"',
      'multipart/related; type="application/dicom"; transfer-syntax=*',
      `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_LE}`,
    ];
    for (const accept of accepts) {
      const [part] = expectParts(t, await get(app, instanceUrl(d), accept), [{ e: sent, ts: EXPLICIT_LE }], `${name} with Accept ${accept ?? '(none)'}`);
      if (accept === undefined) await expectSameObjectAsExplicitLE(t, part!.body, d.bytes, name);
    }
    for (const accept of ['application/dicom', `application/dicom; transfer-syntax=${EXPLICIT_LE}`, 'application/dicom; transfer-syntax=*']) {
      const single = await get(app, instanceUrl(d), accept);
      t.equal(single.statusCode, 200, `${name} single part, ${accept}`);
      t.equal(single.headers['content-type'], `application/dicom; transfer-syntax=${EXPLICIT_LE}`);
      t.equal(single.headers['content-length'], String(sent.bytes.length));
      t.ok(single.rawPayload.equals(sent.bytes), `${name} single part: the re-encoded bytes`);
    }
    // Naming the stored (forbidden) syntax is refused: PS3.18 8.7.3.5.2 does not allow it in a response.
    for (const accept of [`multipart/related; type="application/dicom"; transfer-syntax=${STORED_SYNTAX[name]}`, `application/dicom; transfer-syntax=${STORED_SYNTAX[name]}`]) {
      const res = await get(app, instanceUrl(d), accept);
      t.equal(res.statusCode, 406, `${name}: ${accept}`);
      t.match(res.json(), { error: 'NOT_ACCEPTABLE', message: /not allowed in a response \(PS3\.18 8\.7\.3\.5\.2\): ask with transfer-syntax=1\.2\.840\.10008\.1\.2\.1 or transfer-syntax=\*/ });
    }
    const other = await get(app, instanceUrl(d), `multipart/related; type="application/dicom"; transfer-syntax=${RLE}`);
    expectTranscoded(t, other, [d], RLE, `${name}: another syntax is transcoded`);
  }

  // The whole derived study: stored bytes for the others, re-encoded ones for these two.
  const studyUrl = `/dicomweb/studies/${DERIVED_STUDY}`;
  const sentOf = (name: DerivedName) =>
    name === 'implicit' || name === 'bigEndian' ? { e: { ...derived[name], bytes: reencoded[name] }, ts: EXPLICIT_LE } : { e: derived[name], ts: STORED_SYNTAX[name] };
  const all = expectParts(t, await get(app, studyUrl), (Object.keys(DERIVED) as DerivedName[]).map(sentOf), 'whole derived study');
  t.equal(all.length, 6);
  expectParts(t, await get(app, studyUrl, 'multipart/related; type=application/dicom; transfer-syntax=*'), (Object.keys(DERIVED) as DerivedName[]).map(sentOf), 'whole derived study with *');
  const explicitStored = await get(app, instanceUrl(study1Expected[0]!), `multipart/related; type="application/dicom"; transfer-syntax=${IMPLICIT_LE}`);
  t.equal(explicitStored.statusCode, 406, 'Implicit VR LE named for an Explicit VR LE object');
  t.match(explicitStored.json().message, /^1\.2\.840\.10008\.1\.2 \(Implicit VR Little Endian\) is not allowed in a response/);
  // Named for the whole study: the compressed ones transcoded, the others re-encoded, all Explicit VR LE.
  const mixed = await get(app, studyUrl, `multipart/related; type=application/dicom; transfer-syntax=${EXPLICIT_LE}`);
  expectTranscoded(t, mixed, (Object.keys(DERIVED) as DerivedName[]).map((n) => derived[n]), EXPLICIT_LE, 'whole derived study as Explicit VR LE');
});

t.test('unknown resources are 404, malformed UIDs 400', async (t) => {
  const { app } = await seededApp(t);
  const s1 = study1Expected[0]!;
  const s2 = study2Expected[0]!;
  const notFound: [string, string][] = [
    ['unknown study', '/dicomweb/studies/2.25.12345'],
    ['unknown series', `/dicomweb/studies/${s1.study}/series/2.25.12345`],
    ['series of another study', `/dicomweb/studies/${s1.study}/series/${s2.series}`],
    ['unknown instance', `/dicomweb/studies/${s1.study}/series/${s1.series}/instances/2.25.12345`],
    ['instance of another series', `/dicomweb/studies/${s1.study}/series/${study1Expected[6]!.series}/instances/${s1.sop}`],
  ];
  for (const [name, url] of notFound) {
    const res = await get(app, url);
    t.equal(res.statusCode, 404, name);
    t.same(res.json().error, 'NOT_FOUND', name);
    t.notMatch(res.body, /2\.25\.12345/, `${name}: the UID is not echoed`);
  }
  const badUid: [string, string][] = [
    ['study', '/dicomweb/studies/1.2.abc'],
    ['series', `/dicomweb/studies/${s1.study}/series/1..2`],
    ['instance', `/dicomweb/studies/${s1.study}/series/${s1.series}/instances/01.2`],
    ['too long', `/dicomweb/studies/${'1.'.repeat(40)}1`],
  ];
  for (const [name, url] of badUid) {
    const res = await get(app, url);
    t.equal(res.statusCode, 400, `bad ${name} UID`);
    t.same(res.json().error, 'INVALID_UID');
  }
});

t.test('STOW records where Pixel Data is, for frames and bulk data retrieval', async (t) => {
  const { index } = await seededApp(t);
  const native = study1Expected[0]!;
  const px = index.findInstance(native.sop)!.layout!.pixelData!;
  t.equal(px.encapsulated, false);
  // Explicit VR LE: the 12-byte element header (7FE0,0010) OW, reserved, 32-bit length sits before the value.
  t.equal(native.bytes.readUInt16LE(px.offset - 12), 0x7fe0);
  t.equal(native.bytes.readUInt16LE(px.offset - 10), 0x0010);
  t.equal(native.bytes.readUInt32LE(px.offset - 4), px.length);

  const rle = index.findInstance(derived.rle.sop)!.layout!.pixelData!;
  t.equal(rle.encapsulated, true);
  t.ok(rle.fragments && rle.fragments.length >= 1, 'fragments recorded');
  const first = rle.fragments![0]!;
  // Each fragment is an Item (FFFE,E000) whose 32-bit length precedes the value; RLE fragments start with a 64-byte header.
  t.equal(derived.rle.bytes.readUInt16LE(first.offset - 8), 0xfffe);
  t.equal(derived.rle.bytes.readUInt16LE(first.offset - 6), 0xe000);
  t.equal(derived.rle.bytes.readUInt32LE(first.offset - 4), first.length);
});
