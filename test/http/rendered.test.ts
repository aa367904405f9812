// Rendered and thumbnail resources (PS3.18 10.4; routes/rendered-rs.ts) and WADO-URI images (PS3.18 9) through the
// real app, real render and codec workers, real stored files: media types, parameters, multi-frame, PDF, study and
// series, thumbnails, the refusals (400, 404 without access, 406) and the audit record.
import t from 'tap';
import type { Test } from 'tap';
import type { FastifyRequest } from 'fastify';
import sharp from 'sharp';
import type { Principal } from '../../src/security/principal.js';
import { ADMIN_PRINCIPAL, certificatePrincipal } from '../helpers/access.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { auditRecordsOf } from '../helpers/audit-records.js';
import { multipartBody } from '../helpers/multipart.js';
import { splitMultipart } from '../helpers/multipart-response.js';
import { indexRows, testFile } from '../helpers/testdata.js';

const rows = indexRows();
function corpus(rel: string) {
  const row = rows.find((r) => r.path === rel)!;
  return { study: row.studyUid, series: row.seriesUid, sop: row.sopUid, bytes: testFile(rel) };
}
const files = {
  rle: corpus('derived/ct_rle.dcm'), // 128 x 128 16-bit CT, RLE
  j2k: corpus('derived/ct_j2k_lossless.dcm'), // the same CT, JPEG 2000 (same study, another series)
  mr: corpus('derived/mr8_jpeg_baseline.dcm'), // 16 frames of 256 x 256, JPEG baseline
  pdf: corpus('derived/encapsulated_pdf.dcm'),
};
type File = (typeof files)['rle'];

const principals: Record<string, Principal> = { admin: ADMIN_PRINCIPAL, nobody: certificatePrincipal('test-nobody') };
const byHeader = (request: FastifyRequest) => principals[(request.headers['x-test-as'] as string | undefined) ?? 'admin'];

async function seeded(t: Test): Promise<TestApp> {
  const ctx = await testApp(t, {}, { principal: byHeader });
  const { contentType, body } = multipartBody(Object.values(files).map((f) => f.bytes));
  const res = await ctx.app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  t.equal(res.statusCode, 200, 'STOW stored everything');
  return ctx;
}

const instanceUrl = (f: File) => `/dicomweb/studies/${f.study}/series/${f.series}/instances/${f.sop}`;
const get = (ctx: TestApp, url: string, headers: Record<string, string> = {}) => ctx.app.inject({ method: 'GET', url, headers });

async function image(t: Test, res: Awaited<ReturnType<typeof get>>, format: string, what: string) {
  t.equal(res.statusCode, 200, `${what}: 200`);
  t.equal(res.headers['content-type'], `image/${format}`, `${what}: image/${format}`);
  t.equal(res.headers['content-length'], String(res.rawPayload.length), `${what}: Content-Length`);
  t.equal(res.headers['cache-control'], 'no-store', `${what}: no-store (PHI)`);
  const meta = await sharp(res.rawPayload).metadata();
  t.equal(meta.format, format, `${what}: decodes as ${format}`);
  return meta;
}

/** Mean of the decoded image's samples: enough to tell two windows apart. */
async function meanOf(bytes: Buffer): Promise<number> {
  const { data } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  let sum = 0;
  for (const v of data) sum += v;
  return sum / data.length;
}

t.test('instance rendered: JPEG by default, PNG, GIF; accept= and Accept; compressed sources', async (t) => {
  const ctx = await seeded(t);
  let meta = await image(t, await get(ctx, `${instanceUrl(files.rle)}/rendered`), 'jpeg', 'RLE CT, no Accept');
  t.same([meta.width, meta.height, meta.channels], [128, 128, 1], '128 x 128 grey');
  meta = await image(t, await get(ctx, `${instanceUrl(files.j2k)}/rendered`, { accept: 'image/png' }), 'png', 'J2K CT, Accept: image/png');
  t.same([meta.width, meta.height], [128, 128]);
  await image(t, await get(ctx, `${instanceUrl(files.rle)}/rendered?accept=image/gif`), 'gif', 'accept=image/gif');
  await image(t, await get(ctx, `${instanceUrl(files.rle)}/rendered`, { accept: '*/*' }), 'jpeg', 'Accept: */*');
  // Same pixels whatever the stored syntax (both lossless): the same rendering.
  const a = await get(ctx, `${instanceUrl(files.rle)}/rendered?accept=image/png`);
  const b = await get(ctx, `${instanceUrl(files.j2k)}/rendered?accept=image/png`);
  const [ra, rb] = await Promise.all([sharp(a.rawPayload).raw().toBuffer(), sharp(b.rawPayload).raw().toBuffer()]);
  t.ok(ra.equals(rb), 'RLE and JPEG 2000 lossless render to identical PNG pixels');
});

t.test('quality, viewport, window', async (t) => {
  const ctx = await seeded(t);
  const url = `${instanceUrl(files.mr)}/rendered`;
  const low = await get(ctx, `${url}?quality=5`);
  const high = await get(ctx, `${url}?quality=100`);
  await image(t, low, 'jpeg', 'quality=5');
  t.ok(low.rawPayload.length < high.rawPayload.length / 2, `quality=5 (${low.rawPayload.length} B) is far smaller than 100 (${high.rawPayload.length} B)`);
  let meta = await image(t, await get(ctx, `${url}?viewport=64,32`), 'jpeg', 'viewport=64,32');
  t.same([meta.width, meta.height], [32, 32], 'fits 64 x 32, aspect kept');
  meta = await image(t, await get(ctx, `${url}?viewport=100,100,0,0,128,64&accept=image/png`), 'png', 'viewport with a region');
  t.same([meta.width, meta.height], [100, 50], 'the 128 x 64 region scaled to fit 100 x 100');
  const narrow = await meanOf((await get(ctx, `${instanceUrl(files.rle)}/rendered?window=-2000,1,linear&accept=image/png`)).rawPayload);
  const wide = await meanOf((await get(ctx, `${instanceUrl(files.rle)}/rendered?window=4000,10000,linear&accept=image/png`)).rawPayload);
  t.equal(narrow, 255, 'a window below every value: all white');
  t.ok(wide < 128, `a window far above: dark (mean ${wide.toFixed(1)})`);
});

t.test('multi-frame: frames resource, GIF animation, frame thumbnail', async (t) => {
  const ctx = await seeded(t);
  const f1 = await get(ctx, `${instanceUrl(files.mr)}/frames/1/rendered?accept=image/png`);
  const f9 = await get(ctx, `${instanceUrl(files.mr)}/frames/9/rendered?accept=image/png`);
  await image(t, f9, 'png', 'frame 9');
  t.notOk((await sharp(f1.rawPayload).raw().toBuffer()).equals(await sharp(f9.rawPayload).raw().toBuffer()), 'frame 9 is not frame 1');
  const first = await get(ctx, `${instanceUrl(files.mr)}/rendered?accept=image/png`);
  t.ok((await sharp(first.rawPayload).raw().toBuffer()).equals(await sharp(f1.rawPayload).raw().toBuffer()), 'the instance as PNG is frame 1');
  const gif = await get(ctx, `${instanceUrl(files.mr)}/rendered?accept=image/gif`);
  const meta = await image(t, gif, 'gif', 'the instance as GIF');
  t.equal(meta.pages, 16, 'every frame, animated');
  const thumb = await image(t, await get(ctx, `${instanceUrl(files.mr)}/frames/9/thumbnail`), 'jpeg', 'frame 9 thumbnail');
  t.same([thumb.width, thumb.height], [128, 128]);
  for (const [url, status, message] of [
    [`${instanceUrl(files.mr)}/frames/17/rendered`, 400, /frame 17 is not in 1\.\.16/],
    [`${instanceUrl(files.mr)}/frames/0/rendered`, 400, /frame numbers start at 1/],
    [`${instanceUrl(files.mr)}/frames/1,2/rendered`, 400, /one frame number/],
    [`${instanceUrl(files.mr)}/frames/17/thumbnail`, 400, /frame 17/],
  ] as const) {
    const res = await get(ctx, url);
    t.equal(res.statusCode, status, url);
    t.match(res.json(), { message }, url);
  }
});

t.test('Encapsulated PDF: application/pdf; images of it are 406', async (t) => {
  const ctx = await seeded(t);
  const res = await get(ctx, `${instanceUrl(files.pdf)}/rendered`);
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'application/pdf');
  t.equal(res.rawPayload.subarray(0, 5).toString('latin1'), '%PDF-', 'the document itself');
  t.match(res.rawPayload.subarray(-8).toString('latin1'), /%%EOF\s*$/, 'ends at %%EOF (no pad byte)');
  t.equal((await get(ctx, `${instanceUrl(files.pdf)}/rendered`, { accept: 'application/pdf' })).statusCode, 200, 'Accept: application/pdf');
  const jpeg = await get(ctx, `${instanceUrl(files.pdf)}/rendered`, { accept: 'image/jpeg' });
  t.equal(jpeg.statusCode, 406, 'a PDF as image/jpeg');
  t.match(jpeg.json(), { message: /acceptable: application\/pdf/ });
  t.equal((await get(ctx, `${instanceUrl(files.pdf)}/thumbnail`)).statusCode, 404, 'a PDF has no thumbnail');
  t.equal((await get(ctx, `${instanceUrl(files.rle)}/rendered`, { accept: 'application/pdf' })).statusCode, 406, 'an image as PDF');
});

t.test('study and series: multipart of rendered instances; thumbnails of the representative instance', async (t) => {
  const ctx = await seeded(t);
  const res = await get(ctx, `/dicomweb/studies/${files.rle.study}/rendered`);
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^multipart\/related; type="image\/jpeg"; boundary=/);
  const parts = splitMultipart(res.headers['content-type'] as string, res.rawPayload);
  t.equal(parts.length, 2, 'the RLE and J2K instances of the study');
  for (const p of parts) {
    t.equal(p.headers['content-type'], 'image/jpeg');
    t.match(p.headers['content-location'], /\/instances\/[0-9.]+\/rendered$/);
    t.equal((await sharp(p.body).metadata()).width, 128);
  }
  const series = await get(ctx, `/dicomweb/studies/${files.mr.study}/series/${files.mr.series}/rendered?viewport=32,32`, { accept: 'multipart/related; type="image/png"' });
  t.equal(series.statusCode, 200);
  const [only] = splitMultipart(series.headers['content-type'] as string, series.rawPayload);
  t.equal((await sharp(only!.body).metadata()).width, 32, 'viewport applies to every part');
  // The PDF's study has no image: nothing to render.
  t.equal((await get(ctx, `/dicomweb/studies/${files.pdf.study}/rendered`)).statusCode, 404);
  t.equal((await get(ctx, `/dicomweb/studies/${files.pdf.study}/thumbnail`)).statusCode, 404);

  const thumb = await image(t, await get(ctx, `/dicomweb/studies/${files.rle.study}/thumbnail`), 'jpeg', 'study thumbnail');
  t.same([thumb.width, thumb.height], [128, 128]);
  const small = await image(t, await get(ctx, `/dicomweb/studies/${files.mr.study}/series/${files.mr.series}/thumbnail?viewport=64,64`), 'jpeg', 'series thumbnail');
  t.same([small.width, small.height], [64, 64]);
  await image(t, await get(ctx, `${instanceUrl(files.rle)}/thumbnail`), 'jpeg', 'instance thumbnail');
  t.equal((await get(ctx, `${instanceUrl(files.rle)}/thumbnail`, { accept: 'image/png' })).statusCode, 406, 'thumbnails are JPEG only');
  t.equal((await get(ctx, `${instanceUrl(files.rle)}/thumbnail?viewport=64,64,0,0,10,10`)).statusCode, 400, 'no region for a thumbnail');
});

t.test('400 on bad parameters, with a clear message', async (t) => {
  const ctx = await seeded(t);
  const url = `${instanceUrl(files.rle)}/rendered`;
  for (const [query, message] of [
    ['quality=0', /quality must be an integer 1\.\.100/],
    ['quality=abc', /quality must be an integer/],
    ['quality=50&quality=60', /quality is given more than once/],
    ['viewport=10', /viewport is vw,vh or vw,vh,sx,sy,sw,sh/],
    ['viewport=0,10', /at least 1/],
    ['viewport=100000,100000', /over the .*-pixel limit/],
    ['viewport=10,10,500,0,10,10', /starts outside the image/],
    ['window=40,400', /window is center,width,function/],
    ['window=40,0,linear', /window width must be at least 1/],
    ['window=40,400,cubic', /linear, linear-exact or sigmoid/],
  ] as const) {
    const res = await get(ctx, `${url}?${query}`);
    t.equal(res.statusCode, 400, query);
    t.match(res.json(), { error: 'BAD_REQUEST', message }, query);
  }
  t.equal((await get(ctx, `/dicomweb/studies/${files.rle.study}/rendered?quality=0`)).statusCode, 400, 'study level too');
  t.equal((await get(ctx, `/dicomweb/studies/1.02.3/rendered`)).statusCode, 400, 'an invalid UID: 400 before any lookup');
  t.equal((await get(ctx, url, { accept: 'image/webp' })).statusCode, 406, 'image/webp: 406');
});

t.test('404 without read access, worded as a missing study; the retrieve audit record', async (t) => {
  const ctx = await seeded(t);
  const urls = [
    `${instanceUrl(files.rle)}/rendered`,
    `${instanceUrl(files.rle)}/frames/1/rendered`,
    `${instanceUrl(files.rle)}/thumbnail`,
    `/dicomweb/studies/${files.rle.study}/rendered`,
    `/dicomweb/studies/${files.rle.study}/thumbnail`,
    `/dicomweb/studies/${files.rle.study}/series/${files.rle.series}/thumbnail`,
  ];
  for (const url of urls) {
    // Made for an administrator first: a cached thumbnail is not an answer for someone who may not read the study.
    t.equal((await get(ctx, url)).statusCode, 200, `${url}: 200 for an administrator`);
    const denied = await get(ctx, url, { 'x-test-as': 'nobody' });
    const missing = await get(ctx, url.replace(files.rle.study, '1.2.3.4'), { 'x-test-as': 'nobody' });
    t.equal(denied.statusCode, 404, `${url}: 404 without access`);
    t.equal(missing.statusCode, 404);
    t.same(denied.json().message, missing.json().message, `${url}: the same answer as a study that does not exist`);
  }
  const records = await auditRecordsOf(ctx, () => get(ctx, `${instanceUrl(files.rle)}/rendered`));
  t.match(records, [{ eventId: { code: '110104', codeSystem: 'DCM' }, action: 'R', outcome: 0 }], 'one retrieve record, success');
  t.match(JSON.stringify(records), files.rle.study, 'naming the study');
  const refused = await auditRecordsOf(ctx, () => get(ctx, `${instanceUrl(files.rle)}/rendered`, { 'x-test-as': 'nobody' }));
  t.match(refused, [{ eventId: { code: '110104', codeSystem: 'DCM' }, outcome: 4 }], 'a refused one: outcome 4');
});

t.test('WADO-URI images: image/jpeg by default, rows/columns, region, window, frameNumber, imageQuality', async (t) => {
  const ctx = await seeded(t);
  const wado = (f: File, extra: Record<string, string> = {}) =>
    `/dicomweb/wado?${new URLSearchParams({ requestType: 'WADO', studyUID: f.study, seriesUID: f.series, objectUID: f.sop, ...extra })}`;
  let meta = await image(t, await get(ctx, wado(files.rle)), 'jpeg', 'no contentType');
  t.same([meta.width, meta.height], [128, 128]);
  meta = await image(t, await get(ctx, wado(files.mr, { contentType: 'image/png', rows: '64' })), 'png', 'rows=64');
  t.same([meta.width, meta.height], [64, 64], 'rows alone: aspect kept');
  meta = await image(t, await get(ctx, wado(files.mr, { contentType: 'image/png', columns: '100', region: '0,0,0.5,0.25' })), 'png', 'region + columns');
  t.same([meta.width, meta.height], [100, 50], 'a 128 x 64 region scaled to 100 columns');
  const f9 = await get(ctx, wado(files.mr, { contentType: 'image/png', frameNumber: '9' }));
  const rs = await get(ctx, `${instanceUrl(files.mr)}/frames/9/rendered?accept=image/png`);
  t.ok((await sharp(f9.rawPayload).raw().toBuffer()).equals(await sharp(rs.rawPayload).raw().toBuffer()), 'frameNumber=9 is the RESTful frame 9');
  const white = await get(ctx, wado(files.rle, { contentType: 'image/png', windowCenter: '-2000', windowWidth: '1' }));
  t.equal(await meanOf(white.rawPayload), 255, 'windowCenter/windowWidth: LINEAR window');
  const low = await get(ctx, wado(files.mr, { imageQuality: '5' }));
  t.ok(low.rawPayload.length < (await get(ctx, wado(files.mr, { imageQuality: '100' }))).rawPayload.length / 2, 'imageQuality');
  const pdf = await get(ctx, wado(files.pdf));
  t.equal(pdf.headers['content-type'], 'application/pdf', 'an Encapsulated PDF without contentType: the document');
  for (const [extra, status, message] of [
    [{ contentType: 'application/dicom', rows: '10' }, 400, /rows applies to image content types/],
    [{ contentType: 'image/jpeg', transferSyntax: '1.2.840.10008.1.2.1' }, 400, /transferSyntax applies to contentType=application\/dicom only/],
    [{ windowCenter: '40' }, 400, /windowCenter and windowWidth go together/],
    [{ region: '0.5,0,0.2,1' }, 400, /xmin < xmax/],
    [{ region: '0,0,2,1' }, 400, /each 0\.\.1/],
    [{ rows: '0' }, 400, /rows must be a positive integer/],
    [{ imageQuality: '101' }, 400, /quality must be an integer 1\.\.100/],
    [{ frameNumber: '2' }, 400, /frame 2 is not in 1\.\.1/],
    [{ presentationUID: '1.2.3' }, 400, /not supported/],
    [{ contentType: 'image/jp2' }, 406, /acceptable contentType/],
  ] as const) {
    const res = await get(ctx, wado(files.rle, extra));
    t.equal(res.statusCode, status, JSON.stringify(extra));
    t.match(res.json(), { message }, JSON.stringify(extra));
  }
  t.equal((await get(ctx, wado(files.rle), { 'x-test-as': 'nobody' })).statusCode, 404, 'no access: 404');
});

