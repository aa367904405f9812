// PS3.18 10.4 Retrieve Transaction (WADO-RS): instances, metadata, bulk data and frames, with the media
// types and transfer syntaxes of 8.7.3 and the status codes of 10.4.3.
import { describe, expect, expectEqual, expectSameSet, expectStatus } from '../assert.js';
import { datasetArray, firstString, type Dataset } from '../dicom-json.js';
import { essence, mediaParam, type HttpResponse } from '../http.js';
import { parseMultipart, type Part } from '../multipart.js';
import type { Check, Context } from '../suite.js';
import { allInstances, nativePixelData, randomUid, type Instance } from '../test-data.js';

const DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const OCTETS_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';

const instancePath = (i: Instance) => `/studies/${i.study}/series/${i.series}/instances/${i.sop}`;

/** A 200 multipart/related answer whose root type is `type`. */
function multipartOf(res: HttpResponse, type: string, what: string): Part[] {
  expectStatus(res, 200, what);
  const ct = String(res.headers['content-type'] ?? '');
  expect(essence(ct) === 'multipart/related', `${what}: expected multipart/related, got ${describe(res)}`);
  const root = mediaParam(ct, 'type');
  // The root type's essence: Orthanc writes type="application/octet-stream; transfer-syntax=..." (quoted together).
  expect(root === undefined || essence(root) === type, `${what}: multipart type is ${root}, expected ${type}`);
  return parseMultipart(res);
}

/** The Transfer Syntax UID (0002,0010) of a Part 10 object. */
function transferSyntaxOf(part10: Buffer): string {
  const at = part10.indexOf(Buffer.from([0x02, 0x00, 0x10, 0x00, 0x55, 0x49]), 132);
  return at === -1 ? '' : part10.toString('latin1', at + 8, at + 8 + part10.readUInt16LE(at + 6)).replace(/\0+$/, '');
}

/** The parts are the stored objects, byte for byte, in any order. */
function expectStoredObjects(parts: Part[], instances: Instance[], what: string): void {
  expectEqual(parts.length, instances.length, `${what}: parts`);
  for (const p of parts) {
    expect(essence(p.headers['content-type']) === 'application/dicom', `${what}: part Content-Type is ${p.headers['content-type']}`);
    expect(instances.some((i) => i.bytes.equals(p.body)), `${what}: a part (${p.body.length} bytes) is not byte-equal to any stored instance`);
  }
}

async function metadata(ctx: Context, path: string, accept = 'application/dicom+json'): Promise<Dataset[]> {
  return datasetArray(await ctx.http.get(path, { accept }), `GET ${path}`);
}

/** Frame n (1-based) of a native multi-frame instance. */
function nativeFrame(i: Instance, n: number): Buffer {
  const size = i.rows * i.columns * 2;
  return nativePixelData(i.bytes).subarray((n - 1) * size, n * size);
}

export const wadoRsChecks: Check[] = [
  {
    name: '10.4.1 WADO-RS RetrieveInstance returns multipart/related; type="application/dicom" with the stored object (transfer-syntax=*)',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectStoredObjects(multipartOf(await ctx.http.get(instancePath(i), { accept: DICOM_ANY }), 'application/dicom', 'RetrieveInstance'), [i], 'RetrieveInstance');
    },
  },
  {
    name: '10.4.1 WADO-RS RetrieveSeries returns one part per instance of the series',
    async run(ctx) {
      const x = ctx.data.studies[0].series[0]!;
      const res = await ctx.http.get(`/studies/${x.instances[0]!.study}/series/${x.uid}`, { accept: DICOM_ANY });
      expectStoredObjects(multipartOf(res, 'application/dicom', 'RetrieveSeries'), x.instances, 'RetrieveSeries');
    },
  },
  {
    name: '10.4.1 WADO-RS RetrieveStudy returns every instance of the study',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const res = await ctx.http.get(`/studies/${s1.uid}`, { accept: DICOM_ANY });
      expectStoredObjects(multipartOf(res, 'application/dicom', 'RetrieveStudy'), allInstances(s1), 'RetrieveStudy');
    },
  },
  {
    name: '8.7.3 WADO-RS RetrieveInstance with Accept */* answers the default multipart/related; type="application/dicom"',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[1]!;
      const parts = multipartOf(await ctx.http.get(instancePath(i), { accept: '*/*' }), 'application/dicom', 'Accept */*');
      expectEqual(parts.length, 1, 'parts');
      expect(parts[0]!.body.includes(Buffer.from(i.sop)), 'the part does not hold the instance');
    },
  },
  {
    name: '8.7.3.5.2 WADO-RS transfer-syntax=1.2.840.10008.1.2.1 answers Explicit VR Little Endian',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const res = await ctx.http.get(instancePath(i), { accept: `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_LE}` });
      const [part] = multipartOf(res, 'application/dicom', 'explicit VR LE');
      expectEqual(transferSyntaxOf(part!.body), EXPLICIT_LE, 'Transfer Syntax UID (0002,0010) of the part');
    },
  },
  {
    name: '8.7.3.5.2 WADO-RS never sends Implicit VR Little Endian (asked for it: 406, or another syntax)',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const res = await ctx.http.get(instancePath(i), { accept: `multipart/related; type="application/dicom"; transfer-syntax=${IMPLICIT_LE}` });
      if (res.status === 406) return;
      for (const p of multipartOf(res, 'application/dicom', 'asked for Implicit VR LE')) {
        expect(transferSyntaxOf(p.body) !== IMPLICIT_LE, 'the server sent Implicit VR Little Endian');
        expect(mediaParam(p.headers['content-type'], 'transfer-syntax') !== IMPLICIT_LE, 'a part is labelled Implicit VR Little Endian');
      }
    },
  },
  {
    name: '8.7.3 WADO-RS RetrieveInstance with no acceptable media type (Accept text/plain): 406 Not Acceptable',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectStatus(await ctx.http.get(instancePath(i), { accept: 'text/plain' }), 406, 'Accept text/plain');
    },
  },
  {
    name: '10.4.1 WADO-RS RetrieveMetadata of a study: application/dicom+json, one dataset per instance',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const list = await metadata(ctx, `/studies/${s1.uid}/metadata`);
      expectSameSet(list.map((ds) => firstString(ds, '00080018') ?? ''), allInstances(s1).map((i) => i.sop), 'SOPInstanceUIDs');
      expect(list.every((ds) => firstString(ds, '0020000D') === s1.uid), 'a dataset names another study');
    },
  },
  {
    name: '10.4.1 WADO-RS RetrieveMetadata of a series and of an instance',
    async run(ctx) {
      const x = ctx.data.studies[0].series[1]!;
      const i = x.instances[0]!;
      const series = await metadata(ctx, `/studies/${i.study}/series/${x.uid}/metadata`);
      expectSameSet(series.map((ds) => firstString(ds, '00080018') ?? ''), x.instances.map((v) => v.sop), 'series metadata SOPInstanceUIDs');
      const [one, ...more] = await metadata(ctx, `${instancePath(i)}/metadata`);
      expectEqual(more.length, 0, 'extra datasets in instance metadata');
      expectEqual([firstString(one, '0020000E'), firstString(one, '00080018'), firstString(one, '00100020')], [x.uid, i.sop, ctx.data.studies[0].patientId], 'series, instance and patient of the instance metadata');
    },
  },
  {
    name: 'F.2 DICOM JSON keys are 8 uppercase hex digits in ascending order, each attribute with a vr',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const [ds] = await metadata(ctx, `${instancePath(i)}/metadata`);
      const keys = Object.keys(ds!);
      const bad = keys.filter((k) => !/^[0-9A-F]{8}$/.test(k));
      expect(bad.length === 0, `keys that are not 8 uppercase hex digits: ${bad.join(', ')}`);
      expectEqual(keys, [...keys].sort(), 'key order');
      const noVr = keys.filter((k) => typeof ds![k]!.vr !== 'string');
      expect(noVr.length === 0, `attributes without vr: ${noVr.join(', ')}`);
    },
  },
  {
    name: 'F.2.3 DICOM JSON numbers: US values are JSON numbers (Rows, Columns)',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const [ds] = await metadata(ctx, `${instancePath(i)}/metadata`);
      expectEqual([ds?.['00280010']?.Value, ds?.['00280011']?.Value], [[i.rows], [i.columns]], 'Rows and Columns');
    },
  },
  {
    name: '8.7.3 Accept list with an unsupported entry first (metadata, as OHIF asks): the supported entry is chosen',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const list = await metadata(ctx, `${instancePath(i)}/metadata`, 'multipart/related; type="application/octet-stream", application/dicom+json');
      expectEqual(list.length, 1, 'datasets');
    },
  },
  {
    name: '8.3.3.1 the accept query parameter selects the representation (metadata ?accept=application/dicom+json, Accept text/plain)',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const list = await metadata(ctx, `${instancePath(i)}/metadata?accept=${encodeURIComponent('application/dicom+json')}`, 'text/plain');
      expectEqual(list.length, 1, 'datasets');
    },
  },
  {
    name: '10.4.1.1.5 WADO-RS metadata refers to Pixel Data by BulkDataURI, and the URI retrieves the pixel data',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const [ds] = await metadata(ctx, `${instancePath(i)}/metadata`);
      const uri = ds?.['7FE00010']?.BulkDataURI;
      expect(typeof uri === 'string' && ds?.['7FE00010']?.InlineBinary === undefined, `Pixel Data (7FE0,0010) is ${JSON.stringify(ds?.['7FE00010'])?.slice(0, 120)}`);
      const url = new URL(uri, ctx.http.url(`${instancePath(i)}/metadata`)).href;
      const parts = multipartOf(await ctx.http.get(url, { accept: OCTETS_ANY }), 'application/octet-stream', `GET ${uri}`);
      expectEqual(parts.length, 1, 'bulk data parts');
      expect(parts[0]!.body.equals(nativePixelData(i.bytes)), `the bulk data (${parts[0]!.body.length} bytes) is not the stored Pixel Data`);
    },
  },
  {
    name: '10.4.1.1.4 WADO-RS RetrieveFrames: one frame as application/octet-stream equals the stored frame',
    async run(ctx) {
      const mf = allInstances(ctx.data.studies[2])[0]!;
      const parts = multipartOf(await ctx.http.get(`${instancePath(mf)}/frames/1`, { accept: OCTETS_ANY }), 'application/octet-stream', 'frames/1');
      expectEqual(parts.length, 1, 'parts');
      expect(essence(parts[0]!.headers['content-type']) === 'application/octet-stream', `part Content-Type is ${parts[0]!.headers['content-type']}`);
      expect(parts[0]!.body.equals(nativeFrame(mf, 1)), `frame 1 (${parts[0]!.body.length} bytes) differs from the stored frame`);
    },
  },
  {
    name: '10.4.1.1.4 WADO-RS RetrieveFrames: a frame list (1,3,30) returns one part per frame, in order',
    async run(ctx) {
      const mf = allInstances(ctx.data.studies[2])[0]!;
      const list = [1, 3, mf.frames];
      const parts = multipartOf(await ctx.http.get(`${instancePath(mf)}/frames/${list.join(',')}`, { accept: OCTETS_ANY }), 'application/octet-stream', 'frame list');
      expectEqual(parts.length, list.length, 'parts');
      list.forEach((n, k) => expect(parts[k]!.body.equals(nativeFrame(mf, n)), `part ${k + 1} is not frame ${n}`));
    },
  },
  {
    name: '10.4.1.1.4 WADO-RS RetrieveFrames: a frame number beyond NumberOfFrames is refused (400 or 404)',
    async run(ctx) {
      const mf = allInstances(ctx.data.studies[2])[0]!;
      expectStatus(await ctx.http.get(`${instancePath(mf)}/frames/${mf.frames + 1}`, { accept: OCTETS_ANY }), [400, 404], `frame ${mf.frames + 1}`);
    },
  },
  {
    name: '10.4.3 WADO-RS unknown study: 404 Not Found (retrieve and metadata)',
    async run(ctx) {
      const uid = randomUid();
      expectStatus(await ctx.http.get(`/studies/${uid}`, { accept: DICOM_ANY }), 404, 'RetrieveStudy of an unknown study');
      expectStatus(await ctx.http.get(`/studies/${uid}/metadata`, { accept: 'application/dicom+json' }), 404, 'metadata of an unknown study');
    },
  },
  {
    name: '10.4.3 WADO-RS unknown instance in a known series: 404 Not Found',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectStatus(await ctx.http.get(`/studies/${i.study}/series/${i.series}/instances/${randomUid()}`, { accept: DICOM_ANY }), 404, 'unknown instance');
    },
  },
  {
    name: '10.4.3 WADO-RS malformed Study Instance UID in the path: 400 Bad Request',
    async run(ctx) {
      expectStatus(await ctx.http.get('/studies/1.2.abc/metadata', { accept: 'application/dicom+json' }), 400, 'UID 1.2.abc');
    },
  },
];
