// WADO-RS Retrieve Metadata (PS3.18 10.4.1) through the real app: STOW the generated studies and corpus files
// (encapsulated, multi-frame, private bulk values), then read their metadata at the three levels in both
// representations, with ETag/304 and content codings.
import zlib from 'node:zlib';
import t from 'tap';
import type { Test } from 'tap';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import { instanceMetadata, retrieveMetadata } from '../../src/services/retrieve-metadata.js';
import { resourceUrls } from '../../src/services/resource-urls.js';
import { MemoryIndexStore } from '../../src/index/memory/memory-index-store.js';
import type { StoredInstanceRef } from '../../src/index/index-store.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { splitMultipart } from '../helpers/multipart-response.js';
import { generatedSet, indexRows, testFile } from '../helpers/testdata.js';
import { adminAccess } from '../helpers/access.js';

const { manifest, files } = generatedSet('ct-2studies');
const study1 = manifest.studies[0]!;
const study2 = manifest.studies[1]!;
const rows = indexRows();
const corpus = (rel: string) => {
  const row = rows.find((r) => r.path === rel)!;
  return { rel, study: row.studyUid, series: row.seriesUid, sop: row.sopUid, bytes: testFile(rel) };
};
const RLE_CT = corpus('derived/ct_rle.dcm'); // encapsulated, 16 bits allocated
const US_PAL = corpus('dicomweb-client/US-PAL-8-10x-echo.dcm'); // RLE multi-frame, 8 bits
const PHANTOM = corpus('heudiconv/phantom.dcm'); // native 16 bits, CSA header (0029,1020) as a bulk value
type Corpus = ReturnType<typeof corpus>;

const BASE = '/dicomweb';
const instancePath = (c: { study: string; series: string; sop: string }) => `${BASE}/studies/${c.study}/series/${c.series}/instances/${c.sop}`;
/** Absolute URL of an instance as urlsFor() builds it without a public URL (https://<listener>/dicomweb/...). */
const absolute = (c: { study: string; series: string; sop: string }) => new RegExp(`^https://[^/]+${instancePath(c).replaceAll('.', '\\.')}$`);

/** Retrieve order of a manifest study: SeriesNumber, then InstanceNumber. */
const orderOf = (s: typeof study1) =>
  [...s.series]
    .sort((a, b) => a.SeriesNumber - b.SeriesNumber)
    .flatMap((x) => [...x.instances].sort((a, b) => a.InstanceNumber - b.InstanceNumber).map((i) => i.SOPInstanceUID));

async function stow(t: Test, app: TestApp['app'], parts: Buffer[]): Promise<void> {
  const { contentType, body } = multipartBody(parts);
  const res = await app.inject({ method: 'POST', url: `${BASE}/studies`, headers: { 'content-type': contentType }, payload: body });
  t.equal(res.statusCode, 200, 'STOW stored everything');
}

async function seededApp(t: Test): Promise<TestApp> {
  const app = await testApp(t);
  await stow(t, app.app, files.map((f) => f.bytes));
  await stow(t, app.app, [RLE_CT.bytes, US_PAL.bytes, PHANTOM.bytes]);
  return app;
}

async function get(app: TestApp['app'], url: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url, headers });
}
const sopOf = (ds: DicomJsonDataset) => ds['00080018']?.Value?.[0];

/** Every object key in a JSON text, in the order written, must be sorted (PS3.18 F.2.1), at every depth. */
function keysSortedInText(text: string): boolean {
  let ok = true;
  JSON.parse(text, function (this: unknown, _key, value: unknown) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value).filter((k) => /^[0-9A-F]{8}$/.test(k));
      if (keys.some((k, i) => i > 0 && keys[i - 1]! >= k)) ok = false;
    }
    return value;
  });
  // JSON.parse keeps insertion order for non-index keys; also check the raw text of the first dataset directly.
  const top = [...text.matchAll(/^\[\{"([0-9A-F]{8})"/g)].map((m) => m[1]);
  return ok && top.length === 1;
}

t.test('study, series and instance metadata: the right instances, in retrieve order, as stored', async (t) => {
  const { app, index } = await seededApp(t);
  for (const s of [study1, study2]) {
    const res = await get(app, `${BASE}/studies/${s.StudyInstanceUID}/metadata`);
    t.equal(res.statusCode, 200);
    t.equal(res.headers['content-type'], 'application/dicom+json', 'JSON is the default (no Accept)');
    t.equal(res.headers['cache-control'], 'no-store');
    const body = JSON.parse(res.payload) as DicomJsonDataset[];
    t.same(body.map(sopOf), orderOf(s), 'every instance of the study, in retrieve order');
    t.ok(keysSortedInText(res.payload), 'keys sorted ascending in the raw text');

    // Attributes equal what QIDO says for the same instances.
    const qido = JSON.parse((await get(app, `${BASE}/studies/${s.StudyInstanceUID}/instances?includefield=all`)).payload) as DicomJsonDataset[];
    t.equal(qido.length, body.length);
    const [qStudy] = JSON.parse((await get(app, `${BASE}/studies?StudyInstanceUID=${s.StudyInstanceUID}`)).payload) as DicomJsonDataset[];
    for (const q of qido) {
      const m = body.find((d) => sopOf(d) === sopOf(q))!;
      // QIDO's instance level (Study's Instances: series + instance attributes, PS3.18 10.6.3.3.2).
      for (const tag of ['00080016', '0020000D', '0020000E', '00200013', '00080060', '0020000E', '00280010', '00280011', '00280100']) {
        t.ok(q[tag], `QIDO returns ${tag}`);
        t.same(m[tag], q[tag], `${tag} of ${String(sopOf(q)).slice(-6)} as QIDO has it`);
      }
      // Patient and study attributes are in every instance's metadata too.
      t.same(m['00100020'], { vr: 'LO', Value: [s.PatientID] }, 'PatientID');
      for (const tag of ['00100010', '00100020', '00080020', '00080050']) t.same(m[tag], qStudy![tag], `${tag} as study QIDO has it`);
      t.notOk(m['00081190'], 'no RetrieveURL added: the stored attributes as they are');
      const ref = index.findInstance(String(sopOf(q)))!;
      t.same(m['00080016'], { vr: 'UI', Value: [ref.sopClassUID] });
      t.equal(m['7FE00010']!.vr, 'OW', 'native 16-bit CT: OW');
      t.match(m['7FE00010']!.BulkDataURI, new RegExp(`^https://[^/]+${instancePath({ study: ref.studyInstanceUID, series: ref.seriesInstanceUID, sop: ref.sopInstanceUID }).replaceAll('.', '\\.')}/bulk/7FE00010$`), 'Pixel Data: absolute BulkDataURI');
      t.same(Object.keys(m['7FE00010']!).sort(), ['BulkDataURI', 'vr'], 'no Value/InlineBinary next to the URI');
    }
  }
  const series = study1.series[1]!;
  const sRes = await get(app, `${BASE}/studies/${study1.StudyInstanceUID}/series/${series.SeriesInstanceUID}/metadata`);
  t.equal(sRes.statusCode, 200);
  t.same(
    (JSON.parse(sRes.payload) as DicomJsonDataset[]).map(sopOf),
    [...series.instances].sort((a, b) => a.InstanceNumber - b.InstanceNumber).map((i) => i.SOPInstanceUID),
    'series: its instances only',
  );
  const one = series.instances[2]!;
  const iRes = await get(app, `${BASE}/studies/${study1.StudyInstanceUID}/series/${series.SeriesInstanceUID}/instances/${one.SOPInstanceUID}/metadata`);
  t.equal(iRes.statusCode, 200);
  const iBody = JSON.parse(iRes.payload) as DicomJsonDataset[];
  t.ok(Array.isArray(iBody), 'instance level is an array too (PS3.18 F.2.1.1)');
  t.same(iBody.map(sopOf), [one.SOPInstanceUID]);
});

t.test('Pixel Data VR and bulk values: encapsulated, 8-bit multi-frame, private bulk value', async (t) => {
  const { app, index } = await seededApp(t);
  const metaOf = async (c: Corpus) => {
    const res = await get(app, `${instancePath(c)}/metadata`);
    t.equal(res.statusCode, 200, `${c.rel}: 200`);
    return (JSON.parse(res.payload) as DicomJsonDataset[])[0]!;
  };
  const uri = (c: Corpus, path: string) => new RegExp(`${absolute(c).source.slice(0, -1)}/bulk/${path}$`);

  const rle = await metaOf(RLE_CT);
  t.equal(rle['7FE00010']!.vr, 'OB', 'encapsulated: OB even at 16 bits');
  t.match(rle['7FE00010']!.BulkDataURI, uri(RLE_CT, '7FE00010'));

  const us = await metaOf(US_PAL);
  t.equal(us['7FE00010']!.vr, 'OB', 'encapsulated 8-bit: OB');
  t.same(us['00280008'], { vr: 'IS', Value: [10] }, 'NumberOfFrames kept');
  t.ok(us['00281201'], 'palette LUT data stays as stored');

  const phantomRef = index.findInstance(PHANTOM.sop)!;
  t.same(phantomRef.layout?.bulk?.map((b) => b.path), [['00291020']], 'the corpus file has one bulk value');
  const ph = await metaOf(PHANTOM);
  t.equal(ph['7FE00010']!.vr, 'OW', 'native 16 bits allocated: OW');
  t.match(ph['7FE00010']!.BulkDataURI, uri(PHANTOM, '7FE00010'));
  t.same(Object.keys(ph['00291020']!).sort(), ['BulkDataURI', 'vr']);
  t.equal(ph['00291020']!.vr, 'OB');
  t.match(ph['00291020']!.BulkDataURI, uri(PHANTOM, '00291020'), 'bulk value: its own URI');
  t.ok(ph['00290010'], 'its Private Creator is there');
});

t.test('nested bulk values get tag/item/tag URIs inside their item (service)', async (t) => {
  const urls = resourceUrls('https://pacs.example/dicomweb');
  const ref: StoredInstanceRef = {
    studyInstanceUID: '1.2.3',
    seriesInstanceUID: '1.2.3.4',
    sopInstanceUID: '1.2.3.4.5',
    sopClassUID: '1.2.840.10008.5.1.4.1.1.9.1.1',
    transferSyntaxUID: '1.2.840.10008.1.2.1',
    blobKey: 'k',
    size: 1,
    sha256: 's',
    layout: {
      bulk: [
        { path: ['54000100', 1, '54001010'], vr: 'OW', offset: 100, length: 70000 },
        { path: ['00880200', 0, '7fe00010'], vr: 'OB', offset: 200, length: 70000 },
      ],
    },
  };
  const item = (n: number): DicomJsonDataset => ({ '003A0005': { vr: 'US', Value: [n] } });
  const dataset: DicomJsonDataset = {
    '00080018': { vr: 'UI', Value: ['1.2.3.4.5'] },
    '00880200': { vr: 'SQ', Value: [{ '00280100': { vr: 'US', Value: [8] } }] },
    '54000100': { vr: 'SQ', Value: [item(1), item(2)] },
  };
  const out = instanceMetadata(ref, dataset, urls);
  const inst = 'https://pacs.example/dicomweb/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5';
  t.same((out['54000100']!.Value![1] as DicomJsonDataset)['54001010'], { vr: 'OW', BulkDataURI: `${inst}/bulk/54000100/1/54001010` });
  t.notOk((out['54000100']!.Value![0] as DicomJsonDataset)['54001010'], 'only the item at that index');
  t.same((out['00880200']!.Value![0] as DicomJsonDataset)['7FE00010'], { vr: 'OB', BulkDataURI: `${inst}/bulk/00880200/0/7FE00010` }, 'tags uppercase');
  t.notOk(out['54001010'], 'nothing at the top level');
  t.notOk(out['7FE00010'], 'no top-level Pixel Data without layout.pixelData');

  const empty = new MemoryIndexStore();
  t.throws(() => retrieveMetadata(empty, adminAccess(), { studyInstanceUID: '1.2.3' }, urls), { status: 404, message: 'no such study' });
  t.throws(() => retrieveMetadata(empty, adminAccess(), { studyInstanceUID: '1.2.3', seriesInstanceUID: '1.2.3.4' }, urls), { message: 'no such series' });
});

t.test('negotiation: OHIF mixed Accept, XML multipart, 406', async (t) => {
  const { app } = await seededApp(t);
  const url = `${BASE}/studies/${study2.StudyInstanceUID}/metadata`;
  const reference = (await get(app, url)).payload;

  const ohif = await get(app, url, { accept: 'multipart/related; type=application/octet-stream; transfer-syntax=*, application/dicom+json' });
  t.equal(ohif.statusCode, 200, 'OHIF Accept: 200');
  t.equal(ohif.headers['content-type'], 'application/dicom+json');
  t.equal(ohif.payload, reference, 'the same JSON');
  const ohif2 = await get(app, url, { accept: 'application/dicom+json, multipart/related; type="application/dicom"' });
  t.equal(ohif2.headers['content-type'], 'application/dicom+json');

  const xml = await get(app, url, { accept: 'multipart/related; type="application/dicom+xml"' });
  t.equal(xml.statusCode, 200);
  const contentType = xml.headers['content-type'] as string;
  t.match(contentType, /^multipart\/related; type="application\/dicom\+xml"; boundary=/);
  const parts = splitMultipart(contentType, xml.rawPayload);
  t.equal(parts.length, orderOf(study2).length, 'one part per instance');
  parts.forEach((p, n) => {
    const text = p.body.toString('utf8');
    t.match(p.headers['content-type'], /^application\/dicom\+xml/);
    t.match(text, /<NativeDicomModel/);
    t.ok(text.includes(orderOf(study2)[n]!), `part ${n + 1} is instance ${n + 1}`);
    t.match(text, /<DicomAttribute[^>]*tag="7FE00010"[^>]*>\s*<BulkData uri="https:\/\/[^"]+\/bulk\/7FE00010"/, 'BulkData uri in XML');
  });
  const again = await get(app, url, { accept: 'multipart/related; type=application/dicom+xml' });
  t.equal(again.headers.etag, xml.headers.etag, 'XML body (and boundary) is stable: same ETag');
  t.not(xml.headers.etag, (await get(app, url)).headers.etag, 'JSON and XML have different tags');

  for (const accept of ['application/dicom', 'image/jpeg', 'multipart/related; type="application/dicom"', 'application/dicom+json;q=0']) {
    const res = await get(app, url, { accept });
    t.equal(res.statusCode, 406, `${accept}: 406`);
  }
  t.equal((await get(app, `${url}?accept=application/dicom%2Bjson`, { accept: 'image/png' })).statusCode, 200, 'accept query parameter first');
});

t.test('404 per level without UIDs in the body; 400 for malformed UIDs', async (t) => {
  const { app } = await seededApp(t);
  const s = study1.StudyInstanceUID;
  const x = study1.series[0]!.SeriesInstanceUID;
  const otherSeries = study2.series[0]!.SeriesInstanceUID;
  const cases: [string, string][] = [
    [`${BASE}/studies/2.25.999/metadata`, 'study'],
    [`${BASE}/studies/${s}/series/2.25.999/metadata`, 'series'],
    [`${BASE}/studies/${s}/series/${otherSeries}/metadata`, 'series'],
    [`${BASE}/studies/${s}/series/${x}/instances/2.25.999/metadata`, 'instance'],
  ];
  for (const [url, level] of cases) {
    const res = await get(app, url);
    t.equal(res.statusCode, 404, `${level}: 404`);
    t.match(res.payload, new RegExp(`no such ${level}`));
    t.notOk(res.payload.includes('2.25.999') || res.payload.includes(otherSeries), 'no UID in the body');
  }
  for (const url of [`${BASE}/studies/abc/metadata`, `${BASE}/studies/${s}/series/1..2/metadata`, `${BASE}/studies/${s}/series/${x}/instances/x/metadata`]) {
    t.equal((await get(app, url)).statusCode, 400, `${url.slice(-30)}: 400`);
  }
});

t.test('ETag and If-None-Match: 304 without a body', async (t) => {
  const { app } = await seededApp(t);
  const url = `${BASE}/studies/${study1.StudyInstanceUID}/metadata`;
  const res = await get(app, url);
  const etag = res.headers.etag as string;
  const { createHash } = await import('node:crypto');
  t.equal(etag, `"${createHash('sha256').update(res.rawPayload).digest('base64url')}"`, 'strong: SHA-256 base64url of the body');
  t.equal((await get(app, url)).headers.etag, etag, 'stable');
  const notModified = await get(app, url, { 'if-none-match': `"other", ${etag}` });
  t.equal(notModified.statusCode, 304);
  t.equal(notModified.rawPayload.length, 0, 'no body');
  t.equal(notModified.headers.etag, etag);
  t.equal((await get(app, url, { 'if-none-match': `W/${etag}` })).statusCode, 304, 'weak comparison');
  t.equal((await get(app, url, { 'if-none-match': '"other"' })).statusCode, 200);
  const series = await get(app, `${BASE}/studies/${study1.StudyInstanceUID}/series/${study1.series[0]!.SeriesInstanceUID}/metadata`, { 'if-none-match': etag });
  t.equal(series.statusCode, 200, 'another resource: another tag');


  // A new instance in the study changes the body and so the tag: the old one no longer gives 304.
  const fresh = await testApp(t);
  const s1Files = files.filter((f) => study1.series.some((x) => x.instances.some((i) => f.rel.endsWith(i.file))));
  await stow(t, fresh.app, s1Files.slice(1).map((f) => f.bytes));
  const before = await get(fresh.app, url);
  await stow(t, fresh.app, [s1Files[0]!.bytes]);
  const after = await get(fresh.app, url, { 'if-none-match': before.headers.etag as string });
  t.equal(after.statusCode, 200, 'changed metadata: 200');
  t.not(after.headers.etag, before.headers.etag, 'changed metadata: another tag');
  t.equal(after.headers.etag, etag, 'same content as the seeded app: same tag');
});

t.test('content codings: br preferred, gzip, identity; same JSON; Vary', async (t) => {
  const { app } = await seededApp(t);
  const url = `${BASE}/studies/${study1.StudyInstanceUID}/metadata`;
  const identity = await get(app, url);
  t.notOk(identity.headers['content-encoding']);
  t.match(identity.headers.vary, /Accept-Encoding/);

  const br = await get(app, url, { 'accept-encoding': 'gzip, deflate, br' });
  t.equal(br.headers['content-encoding'], 'br');
  t.ok(br.rawPayload.length < identity.rawPayload.length / 3, 'much smaller');
  t.equal(zlib.brotliDecompressSync(br.rawPayload).toString('utf8'), identity.payload, 'br decodes to the same JSON');
  t.match(br.headers.vary, /Accept-Encoding/);
  t.not(br.headers.etag, identity.headers.etag, 'a coded body has its own strong tag');
  t.equal((await get(app, url, { 'accept-encoding': 'br', 'if-none-match': br.headers.etag as string })).statusCode, 304);

  const gz = await get(app, url, { 'accept-encoding': 'gzip, br;q=0' });
  t.equal(gz.headers['content-encoding'], 'gzip');
  t.equal(zlib.gunzipSync(gz.rawPayload).toString('utf8'), identity.payload, 'gzip decodes to the same JSON');
  t.equal((await get(app, url, { 'accept-encoding': 'gzip;q=0.5, br;q=0.9' })).headers['content-encoding'], 'br');
  t.equal((await get(app, url, { 'accept-encoding': 'gzip;q=0, br;q=0' })).headers['content-encoding'], undefined);
  t.equal((await get(app, url, { 'accept-encoding': 'deflate' })).headers['content-encoding'], undefined, 'no deflate');

  const xmlGz = await get(app, url, { accept: 'multipart/related; type="application/dicom+xml"', 'accept-encoding': 'gzip' });
  t.equal(xmlGz.headers['content-encoding'], 'gzip', 'XML compressed too');
  t.match(zlib.gunzipSync(xmlGz.rawPayload).toString('utf8'), /<NativeDicomModel/);
});

t.test('chooseContentCoding (RFC 9110 12.5.3)', async (t) => {
  const { chooseContentCoding } = await import('../../src/http/content-coding.js');
  t.equal(chooseContentCoding(undefined), undefined, 'no header: identity');
  t.equal(chooseContentCoding(''), undefined);
  t.equal(chooseContentCoding('gzip, deflate, br, zstd'), 'br', 'what browsers send');
  t.equal(chooseContentCoding('gzip'), 'gzip');
  t.equal(chooseContentCoding('x-gzip'), 'gzip');
  t.equal(chooseContentCoding('*'), 'br', '* covers unlisted codings');
  t.equal(chooseContentCoding('*, br;q=0'), 'gzip');
  t.equal(chooseContentCoding('br;q=0, gzip;q=0, *;q=1'), undefined, 'explicit q=0 wins over *');
  t.equal(chooseContentCoding('identity'), undefined);
  t.equal(chooseContentCoding(['gzip;q=0.2', 'br;q=0.1']), 'gzip', 'higher q first');
});
