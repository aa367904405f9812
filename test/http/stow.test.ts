// STOW-RS (PS3.18 10.5) through the real app: media types as clients send them, per-instance outcomes,
// caps, duplicates, and nothing left behind by what was refused.
import { Readable } from 'node:stream';
import t from 'tap';
import { testApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { generatedSet, indexRows, testFile } from '../helpers/testdata.js';

const FAILED = '00081198';
const REFERENCED = '00081199';
const RETRIEVE_URL = '00081190';
const SOP_INSTANCE = '00081155';
const FAILURE_REASON = '00081197';

const { manifest, files } = generatedSet('ct-2studies');
const study1 = manifest.studies[0]!;
const study2 = manifest.studies[1]!;
const s1files = files.filter((f) => f.rel.includes('study001')).map((f) => f.bytes);
const s2files = files.filter((f) => f.rel.includes('study002')).map((f) => f.bytes);
const valid = testFile('broken/valid-reference.dcm');
const validSop = indexRows().find((r) => r.path === 'broken/valid-reference.dcm')!.sopUid;

type Body = Record<string, { vr: string; Value?: unknown[] }>;
const items = (body: Body, tag: string) => (body[tag]?.Value ?? []) as Body[];
const sopUids = (body: Body, tag: string) => items(body, tag).map((i) => (i[SOP_INSTANCE]?.Value ?? [])[0]);
const reasons = (body: Body) => items(body, FAILED).map((i) => (i[FAILURE_REASON]?.Value ?? [])[0]);

t.test('multipart/related with several instances: 200, every instance referenced with its RetrieveURL', async (t) => {
  const { app, index } = await testApp(t);
  const { contentType, body } = multipartBody(s1files);
  const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType, accept: 'application/dicom+json' }, payload: body });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/dicom\+json/);
  t.equal(res.headers['cache-control'], 'no-store');
  const json = res.json() as Body;
  t.equal(items(json, REFERENCED).length, 12);
  t.notOk(json[FAILED], 'no FailedSOPSequence when all stored');
  t.match(json[RETRIEVE_URL], { vr: 'UR', Value: [new RegExp(`/dicomweb/studies/${study1.StudyInstanceUID}$`)] });
  const first = items(json, REFERENCED)[0]!;
  const s = study1.series[0]!;
  t.match(first, {
    '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
    [SOP_INSTANCE]: { vr: 'UI', Value: [s.instances[0]!.SOPInstanceUID] },
    [RETRIEVE_URL]: { vr: 'UR', Value: [new RegExp(`^https://[^/]+/dicomweb/studies/${study1.StudyInstanceUID}/series/${s.SeriesInstanceUID}/instances/${s.instances[0]!.SOPInstanceUID}$`)] },
  });
  t.same(index.counts(), { patients: 1, studies: 1, series: 2, instances: 12 });
});

t.test('content types as real clients send them', async (t) => {
  const { app, index } = await testApp(t);
  const variants: { name: string; contentType: (b: string) => string; preamble?: string; boundary?: string; partHeaders?: (p: Buffer) => Record<string, string> }[] = [
    { name: 'quoted type, unquoted boundary', contentType: (b) => `multipart/related; type="application/dicom"; boundary=${b}` },
    { name: 'unquoted type, quoted boundary', contentType: (b) => `multipart/related; type=application/dicom; boundary="${b}"` },
    { name: 'boundary first, odd case', contentType: (b) => `Multipart/Related; BOUNDARY=${b}; Type="Application/DICOM"` },
    { name: 'no type parameter', contentType: (b) => `multipart/related; boundary=${b}` },
    {
      name: 'Orthanc: 73-character boundary, per-part Content-Length',
      boundary: 'a'.repeat(73),
      contentType: (b) => `multipart/related; type="application/dicom"; boundary=${b}`,
      partHeaders: (p) => ({ 'Content-Type': 'application/dicom', 'Content-Length': String(p.length) }),
    },
    { name: 'dicomweb-client: CRLF before the first boundary', preamble: '\r\n', contentType: (b) => `multipart/related; type="application/dicom"; boundary="${b}"` },
  ];
  let n = 0;
  for (const v of variants) {
    const boundary = v.boundary ?? `b${n}xYz`;
    const { body } = multipartBody([s1files[n]!], { boundary, preamble: v.preamble, partHeaders: v.partHeaders });
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': v.contentType(boundary) }, payload: body });
    t.equal(res.statusCode, 200, v.name);
    n++;
  }
  const single = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom' }, payload: s1files[n]! });
  t.equal(single.statusCode, 200, 'single-part application/dicom');
  t.equal(index.counts().instances, n + 1);
});

t.test('chunked upload (no Content-Length), streamed in small pieces', async (t) => {
  const { app, index } = await testApp(t);
  const { contentType, body } = multipartBody(s2files, { partHeaders: (p) => ({ 'Content-Type': 'application/dicom', 'Content-Length': String(p.length) }) });
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += 4093) pieces.push(body.subarray(i, i + 4093));
  const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType, 'transfer-encoding': 'chunked' }, payload: Readable.from(pieces) });
  t.equal(res.statusCode, 200);
  t.equal(index.counts().instances, 12);
});

t.test('anything but application/dicom parts is 415, and nothing is stored', async (t) => {
  const { app, index, blobFiles } = await testApp(t);
  const cases: [string, Record<string, string>][] = [
    ['text/plain', { 'content-type': 'text/plain' }],
    ['application/json', { 'content-type': 'application/json' }],
    ['metadata+bulkdata JSON', { 'content-type': 'multipart/related; type="application/dicom+json"; boundary=x' }],
    ['form-data', { 'content-type': 'multipart/form-data; boundary=x' }],
    ['gzip-encoded body', { 'content-type': 'application/dicom', 'content-encoding': 'gzip' }],
  ];
  for (const [name, headers] of cases) {
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers, payload: valid });
    t.equal(res.statusCode, 415, name);
    t.match(res.json(), { error: 'UNSUPPORTED_MEDIA_TYPE' });
  }
  const none = await app.inject({ method: 'POST', url: '/dicomweb/studies', payload: valid, headers: { 'content-type': '' } });
  t.equal(none.statusCode, 415, 'no Content-Type');
  t.equal(index.counts().instances, 0);
  t.same(blobFiles(), { objects: 0, staging: 0 });
});

t.test('unreadable requests: 400, nothing kept', async (t) => {
  const { app, index, blobFiles } = await testApp(t);
  const truncated = multipartBody([valid, s1files[0]!], { omitClose: true });
  const cut = truncated.body.subarray(0, truncated.body.length - 100);
  const cases: [string, string, Buffer][] = [
    ['missing closing boundary, last part cut', truncated.contentType, cut],
    ['no boundary parameter', 'multipart/related; type="application/dicom"', valid],
    ['body is only a preamble', 'multipart/related; type="application/dicom"; boundary=zz', Buffer.from('hello')],
    ['no parts at all', 'multipart/related; type="application/dicom"; boundary=zz', Buffer.from('--zz--\r\n')],
  ];
  for (const [name, contentType, payload] of cases) {
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload });
    t.equal(res.statusCode, 400, name);
  }
  t.equal(index.counts().instances, 0);
  t.same(blobFiles(), { objects: 0, staging: 0 }, 'no blob and no staged file left');
  t.same(index.listPending(new Date(Date.now() + 1000)), [], 'no pending mark left');
});

t.test('caps give 413 with nothing kept', async (t) => {
  const { app, index, blobFiles } = await testApp(t, {
    DICOMVAULT_STOW_MAX_PARTS: '3',
    DICOMVAULT_STOW_MAX_PART_BYTES: String(valid.length + 10),
    DICOMVAULT_STOW_MAX_REQUEST_BYTES: String(5 * (valid.length + 500)),
    DICOMVAULT_STOW_MAX_PART_HEADER_BYTES: '1024',
  });
  const tooMany = multipartBody([valid, valid, valid, valid]);
  const bigPart = multipartBody([Buffer.concat([valid, Buffer.alloc(100)])]);
  const bigHeaders = multipartBody([valid], { partHeaders: () => ({ 'Content-Type': 'application/dicom', 'X-Padding': 'p'.repeat(2000) }) });
  const cases: [string, { contentType: string; body: Buffer }][] = [
    ['more parts than stow.maxParts', tooMany],
    ['a part over stow.maxPartBytes', bigPart],
    ['part headers over stow.maxPartHeaderBytes', bigHeaders],
    ['single-part body over stow.maxPartBytes', { contentType: 'application/dicom', body: Buffer.concat([valid, Buffer.alloc(100)]) }],
  ];
  for (const [name, { contentType, body }] of cases) {
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
    t.equal(res.statusCode, 413, name);
    t.match(res.json(), { error: 'PAYLOAD_TOO_LARGE' });
  }
  const declared = await app.inject({
    method: 'POST',
    url: '/dicomweb/studies',
    headers: { 'content-type': 'application/dicom', 'content-length': '4294967296' },
    payload: Readable.from([valid]),
  });
  t.equal(declared.statusCode, 413, 'Content-Length over stow.maxRequestBytes is refused before reading');
  t.equal(index.counts().instances, 0);
  t.same(blobFiles(), { objects: 0, staging: 0 });
});

t.test('POST /studies/{study}: instances of other studies fail (409 if none stored, 202 if some)', async (t) => {
  const { app, index } = await testApp(t);
  const url = `/dicomweb/studies/${study1.StudyInstanceUID}`;
  const onlyOther = multipartBody([s2files[0]!]);
  const res = await app.inject({ method: 'POST', url, headers: { 'content-type': onlyOther.contentType }, payload: onlyOther.body });
  t.equal(res.statusCode, 409);
  t.same(reasons(res.json()), [0xa900]);
  const mixed = multipartBody([s1files[0]!, s2files[0]!]);
  const res2 = await app.inject({ method: 'POST', url, headers: { 'content-type': mixed.contentType }, payload: mixed.body });
  t.equal(res2.statusCode, 202);
  t.same(sopUids(res2.json(), REFERENCED), [study1.series[0]!.instances[0]!.SOPInstanceUID]);
  t.same(sopUids(res2.json(), FAILED), [study2.series[0]!.instances[0]!.SOPInstanceUID]);
  t.match(res2.json()[RETRIEVE_URL], { Value: [new RegExp(`${study1.StudyInstanceUID}$`)] });
  t.equal(index.counts().instances, 1);
  const bad = await app.inject({ method: 'POST', url: '/dicomweb/studies/1.2.abc', headers: { 'content-type': 'application/dicom' }, payload: valid });
  t.equal(bad.statusCode, 400, 'invalid UID in the path');
});

t.test('duplicates: identical bytes succeed without a second copy; other bytes fail with 0111', async (t) => {
  const { app, index, blobFiles } = await testApp(t);
  const post = (payload: Buffer) => app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom' }, payload });
  t.equal((await post(valid)).statusCode, 200);
  t.equal((await post(valid)).statusCode, 200, 'identical re-STOW is idempotent');
  t.same(blobFiles(), { objects: 1, staging: 0 }, 'one copy');
  // Same SOP Instance UID, other bytes: change the last pixel byte.
  const changed = Buffer.from(valid);
  changed[changed.length - 1] = changed[changed.length - 1]! ^ 0xff;
  const res = await post(changed);
  t.equal(res.statusCode, 409);
  t.same(reasons(res.json()), [0x0111]);
  t.same(blobFiles(), { objects: 1, staging: 0 });
  // The same SOP Instance UID in another study is always refused.
  t.equal((await post(testFile('broken/duplicate-sop-a.dcm'))).statusCode, 200);
  const other = await post(testFile('broken/duplicate-sop-b-other-study.dcm'));
  t.equal(other.statusCode, 409);
  t.same(reasons(other.json()), [0x0111]);
  t.equal(index.counts().instances, 2);
});

t.test('duplicatePolicy replace: other bytes replace the stored instance and its old blob', async (t) => {
  const { app, index, blobFiles } = await testApp(t, { DICOMVAULT_STOW_DUPLICATE_POLICY: 'replace' });
  const post = (payload: Buffer) => app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom' }, payload });
  t.equal((await post(valid)).statusCode, 200);
  const before = index.findInstance(validSop);
  t.ok(before, 'indexed');
  const changed = Buffer.from(valid);
  changed[changed.length - 1] = changed[changed.length - 1]! ^ 0xff;
  t.equal((await post(changed)).statusCode, 200);
  const after = index.findInstance(validSop);
  t.not(after?.sha256, before?.sha256, 'new content indexed');
  t.not(after?.blobKey, before?.blobKey);
  t.same(blobFiles(), { objects: 1, staging: 0 }, 'old blob removed');
  t.equal(index.counts().instances, 1);
  t.equal((await post(testFile('broken/duplicate-sop-a.dcm'))).statusCode, 200);
  t.equal((await post(testFile('broken/duplicate-sop-b-other-study.dcm'))).statusCode, 409, 'never moved across studies');
});

t.test('response representations: XML when asked, 406 when nothing fits', async (t) => {
  const { app } = await testApp(t);
  const xml = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom', accept: 'application/dicom+xml' }, payload: valid });
  t.equal(xml.statusCode, 200);
  t.match(xml.headers['content-type'], /^application\/dicom\+xml/);
  t.match(xml.body, /<NativeDicomModel[\s\S]*tag="00081199"[\s\S]*<\/NativeDicomModel>/);
  const none = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom', accept: 'text/html' }, payload: valid });
  t.equal(none.statusCode, 406);
  const star = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom', accept: '*/*' }, payload: valid });
  t.match(star.headers['content-type'], /^application\/dicom\+json/);
});
