// WADO-URI (PS3.18 9) through the real app: application/dicom is the stored file byte for byte; the
// refusals (400 bad request, 404 unknown object, 406 a content type or transfer syntax that cannot be produced) say why.
import t from 'tap';
import type { Test } from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { expectSameObjectAsExplicitLE, reencodedFile } from '../helpers/reencoded.js';
import { indexRows, testFile } from '../helpers/testdata.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const RLE = '1.2.840.10008.1.2.5';

const rows = indexRows();
function corpus(rel: string) {
  const row = rows.find((r) => r.path === rel)!;
  return { study: row.studyUid, series: row.seriesUid, sop: row.sopUid, bytes: testFile(rel) };
}
/** One study of the derived corpus: each file a series of its own, in another transfer syntax. */
const files = {
  rle: corpus('derived/ct_rle.dcm'),
  implicit: corpus('derived/ct_implicit_le.dcm'),
  j2k: corpus('derived/ct_j2k_lossless.dcm'),
};
type File = (typeof files)['rle'];

async function seeded(t: Test): Promise<TestApp['app']> {
  const { app } = await testApp(t);
  const { contentType, body } = multipartBody(Object.values(files).map((f) => f.bytes));
  const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  t.equal(res.statusCode, 200, 'STOW stored everything');
  return app;
}

function wadoUrl(f: Pick<File, 'study' | 'series' | 'sop'>, extra: Record<string, string> = {}, requestType = 'WADO'): string {
  const q = new URLSearchParams({ requestType, studyUID: f.study, seriesUID: f.series, objectUID: f.sop, ...extra });
  return `/dicomweb/wado?${q}`;
}

const get = (app: TestApp['app'], url: string) => app.inject({ method: 'GET', url });

function expectStored(t: Test, res: Awaited<ReturnType<typeof get>>, f: File, what: string): void {
  t.equal(res.statusCode, 200, `${what}: 200`);
  t.equal(res.headers['content-type'], 'application/dicom', `${what}: plain application/dicom (no transfer-syntax parameter in WADO-URI)`);
  t.equal(res.headers['content-length'], String(f.bytes.length), `${what}: Content-Length`);
  t.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`);
  t.ok(res.rawPayload.equals(f.bytes), `${what}: the stored file, byte for byte`);
}

t.test('contentType=application/dicom: the stored instance, as OHIF asks for it', async (t) => {
  const app = await seeded(t);
  const f = files.rle;
  expectStored(t, await get(app, wadoUrl(f, { contentType: 'application/dicom' })), f, 'no transferSyntax');
  expectStored(t, await get(app, wadoUrl(f, { contentType: 'application/dicom', transferSyntax: '*' })), f, 'transferSyntax=* (OHIF)');
  expectStored(t, await get(app, wadoUrl(f, { contentType: 'application/dicom', transferSyntax: RLE })), f, 'the stored transferSyntax');
  expectStored(t, await get(app, wadoUrl(files.j2k, { contentType: 'application/dicom' })), files.j2k, 'JPEG 2000');
  // Implicit VR LE: re-encoded as Explicit VR LE unless the client names the stored syntax (the PS3.18 8.7.3.5.2
  // rule against it is for the RESTful media types; a WADO-URI client naming it gets the stored bytes).
  const reencoded = { ...files.implicit, bytes: await reencodedFile(files.implicit.bytes) };
  for (const extra of [{}, { transferSyntax: '*' }, { transferSyntax: EXPLICIT_LE }] as Record<string, string>[]) {
    const res = await get(app, wadoUrl(files.implicit, { contentType: 'application/dicom', ...extra }));
    expectStored(t, res, reencoded, `Implicit VR LE, ${JSON.stringify(extra)}: re-encoded`);
    if (Object.keys(extra).length === 0) await expectSameObjectAsExplicitLE(t, res.rawPayload, files.implicit.bytes, 'Implicit VR LE');
  }
  expectStored(t, await get(app, wadoUrl(files.implicit, { contentType: 'application/dicom', transferSyntax: '1.2.840.10008.1.2' })), files.implicit, 'Implicit VR LE named');
  // A raw query string as clients build it, with the list form of contentType: the first supported entry.
  const raw = `/dicomweb/wado?requestType=WADO&studyUID=${f.study}&seriesUID=${f.series}&objectUID=${f.sop}&contentType=image/jp2,application/dicom,image/jpeg`;
  expectStored(t, await get(app, raw), f, 'contentType list: first supported');
  expectStored(t, await get(app, wadoUrl(f, { contentType: 'text/html, application/dicom;q=0.5' })), f, 'list with parameters');
});

t.test('rendered images: image/jpeg without contentType, png and gif when asked (test/http/rendered.test.ts has the parameters)', async (t) => {
  const app = await seeded(t);
  const f = files.rle;
  for (const [extra, type] of [
    [{}, 'image/jpeg'],
    [{ contentType: 'image/jpeg' }, 'image/jpeg'],
    [{ contentType: 'image/png' }, 'image/png'],
    [{ contentType: 'image/gif' }, 'image/gif'],
    [{ contentType: 'image/jp2,image/png,image/jpeg' }, 'image/png'],
  ] as [Record<string, string>, string][]) {
    const res = await get(app, wadoUrl(f, extra));
    t.equal(res.statusCode, 200, JSON.stringify(extra));
    t.equal(res.headers['content-type'], type, JSON.stringify(extra));
  }
});

t.test('406: unknown content types, a transfer syntax that cannot be produced', async (t) => {
  const app = await seeded(t);
  const f = files.rle;
  const cases: [Record<string, string>, RegExp][] = [
    [{ contentType: 'image/jp2' }, /acceptable contentType: application\/dicom, application\/pdf, image\/jpeg/],
    [{ contentType: 'text/html' }, /acceptable contentType: application\/dicom/],
    [{ contentType: 'application/dicom', transferSyntax: '1.2.3.4' }, new RegExp(`stored as ${RLE.replaceAll('.', '\\.')} .*not one this server writes`)],
    // JPEG baseline takes 8-bit samples only (ISO 10918-1 process 1): this 16-bit CT cannot be sent in it.
    [{ contentType: 'application/dicom', transferSyntax: '1.2.840.10008.1.2.4.50' }, /cannot transcode \(unsupported-target\)/],
    [{ contentType: 'application/dicom', transferSyntax: '1.2.840.10008.1.2.2' }, /not allowed in a response \(PS3\.18 8\.7\.3\.5\.2\)/],
  ];
  for (const [extra, message] of cases) {
    const res = await get(app, wadoUrl(f, extra));
    t.equal(res.statusCode, 406, JSON.stringify(extra));
    t.match(res.json(), { error: 'NOT_ACCEPTABLE', message }, JSON.stringify(extra));
  }
});

t.test('400: requestType, missing or invalid UIDs, repeated or unsupported parameters', async (t) => {
  const app = await seeded(t);
  const f = files.rle;
  const ok = { study: f.study, series: f.series, sop: f.sop };
  const base = `/dicomweb/wado?studyUID=${f.study}&seriesUID=${f.series}&objectUID=${f.sop}&contentType=application/dicom`;
  const cases: [string, string, RegExp][] = [
    ['no requestType', base, /requestType must be WADO/],
    ['requestType=wado', `${base}&requestType=wado`, /requestType must be WADO/],
    ['requestType=WADO-RS', wadoUrl(ok, { contentType: 'application/dicom' }, 'WADO-RS'), /requestType must be WADO/],
    ['requestType twice', `${base}&requestType=WADO&requestType=WADO`, /requestType is given more than once/],
    ['no studyUID', `/dicomweb/wado?requestType=WADO&seriesUID=${f.series}&objectUID=${f.sop}`, /studyUID is not a valid UID/],
    ['no seriesUID', `/dicomweb/wado?requestType=WADO&studyUID=${f.study}&objectUID=${f.sop}`, /seriesUID is not a valid UID/],
    ['no objectUID', `/dicomweb/wado?requestType=WADO&studyUID=${f.study}&seriesUID=${f.series}`, /objectUID is not a valid UID/],
    ['empty objectUID', wadoUrl({ ...ok, sop: '' }), /objectUID is not a valid UID/],
    ['objectUID ../..', wadoUrl({ ...ok, sop: '../..' }), /objectUID is not a valid UID/],
    ['studyUID with leading zero', wadoUrl({ ...ok, study: '1.02.3' }), /studyUID is not a valid UID/],
    ['objectUID twice', `${wadoUrl(ok)}&objectUID=${f.sop}`, /objectUID is given more than once/],
    ['transferSyntax not a UID', wadoUrl(ok, { contentType: 'application/dicom', transferSyntax: 'explicit' }), /transferSyntax is not a valid UID/],
    ['anonymize', wadoUrl(ok, { contentType: 'application/dicom', anonymize: 'yes' }), /anonymize is not supported/],
  ];
  for (const [what, url, message] of cases) {
    const res = await get(app, url);
    t.equal(res.statusCode, 400, what);
    t.match(res.json(), { message }, what);
  }
});

t.test('404: no such instance, or not in the named study and series', async (t) => {
  const app = await seeded(t);
  const f = files.rle;
  const dicom = { contentType: 'application/dicom' };
  for (const [what, ref] of [
    ['unknown objectUID', { ...f, sop: '1.2.3.4.5.6.7' }],
    ['objectUID of another series', { ...f, sop: files.implicit.sop }],
    ['unknown study', { ...f, study: '1.2.3' }],
  ] as const) {
    const res = await get(app, wadoUrl(ref, dicom));
    t.equal(res.statusCode, 404, what);
    t.match(res.json(), { error: 'NOT_FOUND' }, what);
    t.notMatch(res.body, ref.sop, `${what}: no UID in the body`);
  }
});
