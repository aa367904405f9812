// The npm dicomweb-client (the library inside OHIF) against the server on a real mutual-TLS listener, as
// INTEROP.md describes it (xhr2 as XMLHttpRequest): every API of dicomweb-client 0.11.3 the server supports.
//   - STOW: storeInstances to /studies and to /studies/{study} (and the 409 for an instance of another study);
//   - QIDO: searchForStudies / searchForSeries / searchForInstances at every level, with queryParams;
//   - WADO-RS metadata: retrieveStudyMetadata / retrieveSeriesMetadata / retrieveInstanceMetadata;
//   - WADO-RS frames: retrieveInstanceFrames, single-frame CT, a 30-frame native multi-frame instance and the
//     10-frame RLE ultrasound (with `transfer-syntax=*`, as OHIF asks; with the client's image/x-dicom-rle; and
//     with its default Accept, decoded by the server); a JPEG 2000 CT and a JPEG baseline MR decoded (issue 9);
//   - WADO-RS bulk data: retrieveBulkData, multipart (the default) and single part (OHIF's `singlepart`) with Range;
//   - WADO-RS instances: retrieveInstance / retrieveSeries / retrieveStudy, byte-equal with the files stored;
//   - a large multi-frame object (the 176-frame, 23 MB Enhanced MR): STOW, QIDO, metadata, frames, retrieve;
//   - WADO-URI: buildInstanceWadoURIUrl (a URL builder: the client does not fetch it), fetched here.
//   - rendered and thumbnail resources (issue 9): retrieveInstanceRendered, retrieveInstanceFramesRendered,
//     retrieveInstanceThumbnail and retrieveInstanceFramesThumbnail against the JPEG 2000 CT and the JPEG baseline MR;
// Not covered, on purpose:
//   - deletion: dicomweb-client 0.11.3 offers no delete or reject call.
//   - retrieveInstance/Series/Study with `mediaTypes`: 0.11.3 compares the common type ("application/") with
//     "application/dicom" and throws before sending anything, so only its default Accept can be used.
// Expected pixel bytes come from dcmjs reading the files (a third-party reader), not from the server's code.
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import https from 'node:https';
import { gunzipSync } from 'node:zlib';
import dcmjs from 'dcmjs';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { openStorage } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { mtlsResolver } from '../../src/http/plugins/authenticate.js';
import { PrincipalRegistry } from '../../src/security/principal-registry.js';
import { defaultPolicies } from '../helpers/access.js';
import { request } from '../helpers/https-client.js';
import { createLogger } from '../../src/logger.js';
import { createCa, issueCertificate } from '../../src/security/pki.js';
import { buildTlsServerOptions } from '../../src/security/tls-options.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { generatedSet, indexRows, testFile } from '../helpers/testdata.js';

const require = createRequire(import.meta.url);
// Both are CommonJS builds; dicomweb-client reads the global XMLHttpRequest when it sends.
const XMLHttpRequest = require('xhr2') as { nodejsSet(o: { httpsAgent: https.Agent }): void };
const { api } = require('dicomweb-client') as { api: { DICOMwebClient: new (o: ClientOptions) => DicomwebClient } };

interface ClientOptions {
  url: string;
  singlepart?: string;
  wadoURLPrefix?: string;
  verbose?: boolean;
}
type Dataset = Record<string, { vr?: string; Value?: unknown[]; BulkDataURI?: string }>;
interface Study {
  studyInstanceUID: string;
}
interface Series extends Study {
  seriesInstanceUID: string;
}
interface Instance extends Series {
  sopInstanceUID: string;
}
interface MediaTypeItem {
  mediaType: string;
  transferSyntaxUID?: string;
}
interface DicomwebClient {
  storeInstances(o: { datasets: ArrayBuffer[]; studyInstanceUID?: string }): Promise<string>;
  searchForStudies(o?: { queryParams?: Record<string, string | number> }): Promise<Dataset[]>;
  searchForSeries(o?: Partial<Study> & { queryParams?: Record<string, string | number> }): Promise<Dataset[]>;
  searchForInstances(o?: Partial<Series> & { queryParams?: Record<string, string | number> }): Promise<Dataset[]>;
  retrieveStudyMetadata(o: Study): Promise<Dataset[]>;
  retrieveSeriesMetadata(o: Series): Promise<Dataset[]>;
  retrieveInstanceMetadata(o: Instance): Promise<Dataset[]>;
  retrieveInstanceFrames(o: Instance & { frameNumbers: number[]; mediaTypes?: MediaTypeItem[] }): Promise<ArrayBuffer[]>;
  retrieveInstanceRendered(o: Instance & { mediaTypes?: MediaTypeItem[]; queryParams?: Record<string, string> }): Promise<ArrayBuffer[]>;
  retrieveInstanceFramesRendered(o: Instance & { frameNumbers: number[]; mediaTypes?: MediaTypeItem[]; queryParams?: Record<string, string> }): Promise<ArrayBuffer[]>;
  retrieveInstanceThumbnail(o: Instance & { mediaTypes?: MediaTypeItem[]; queryParams?: Record<string, string> }): Promise<ArrayBuffer[]>;
  retrieveInstanceFramesThumbnail(o: Instance & { frameNumbers: number[]; mediaTypes?: MediaTypeItem[]; queryParams?: Record<string, string> }): Promise<ArrayBuffer[]>;
  retrieveBulkData(o: { BulkDataURI: string; mediaTypes?: MediaTypeItem[]; headers?: Record<string, string> }): Promise<ArrayBuffer[]>;
  retrieveInstance(o: Instance & { mediaTypes?: MediaTypeItem[] }): Promise<ArrayBuffer>;
  retrieveSeries(o: Series): Promise<ArrayBuffer[]>;
  retrieveStudy(o: Study): Promise<ArrayBuffer[]>;
  buildInstanceWadoURIUrl(o: Instance & { contentType?: string; transferSyntax?: string }): string;
}
/** The part of dcmjs used here (src/types declares only what the server uses). */
interface Dcmjs {
  data: { DicomMessage: { readFile(file: ArrayBuffer): { dict: Dataset } } };
}
/** What dicomweb-client rejects with for any status but 200/202/204/206. */
interface RequestError {
  status: number;
  response: unknown;
}


const RLE_UID = '1.2.840.10008.1.2.5';
/** sha256 of DCMTK's / GDCM's decode of a test file's pixels (scripts/make-transcode-references.sh). */
function referenceSha256(rel: string): string {
  const file = new URL('../fixtures/transcode/references.json', import.meta.url);
  const { references } = JSON.parse(readFileSync(file, 'utf8')) as { references: { path: string; digest?: { sha256: string } }[] };
  const found = references.find((r) => r.path === rel)?.digest?.sha256;
  if (!found) throw new Error(`no reference decode for ${rel}`);
  return found;
}
const arrayBuffer = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
const sha256 = (b: ArrayBuffer | Buffer) => crypto.createHash('sha256').update(Buffer.from(b as ArrayBuffer)).digest('hex');
/** The first value of a DICOM JSON attribute (PS3.18 F.2). */
const value = (ds: Dataset | undefined, tag: string): unknown => ds?.[tag]?.Value?.[0];
const values = (list: Dataset[], tag: string) => list.map((ds) => value(ds, tag));

/** Pixel Data as dcmjs reads the file: one buffer (native) or one per frame (encapsulated). */
function pixelDataOf(file: Buffer): Buffer[] {
  const dict = (dcmjs as unknown as Dcmjs).data.DicomMessage.readFile(arrayBuffer(file)).dict;
  return (dict['7FE00010']!.Value as ArrayBuffer[]).map((v) => Buffer.from(v));
}

/** The rejection of a call that must fail, with its HTTP status. */
async function rejection(t: Test, call: Promise<unknown>): Promise<RequestError> {
  const err = (await call.then(
    () => undefined,
    (e: unknown) => e,
  )) as RequestError | undefined;
  t.ok(err, 'the call is rejected');
  return err ?? { status: 0, response: undefined };
}

t.test('dicomweb-client over mutual TLS: every API the server supports', async (t) => {
  const ca = await createCa('interop CA');
  const server = await issueCertificate(ca, { commonName: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, eku: 'serverAuth' });
  const client = await issueCertificate(ca, { commonName: 'viewer', sans: { uri: ['urn:dicomvault:principal:viewer'] }, eku: 'clientAuth' });
  const principals = [{ id: 'viewer', match: { sanUri: 'urn:dicomvault:principal:viewer' }, roles: ['admin'] }];
  const config = loadConfig({ env: { ...storageEnv(tempDir(t)), DICOMVAULT_LOG_LEVEL: 'silent', DICOMVAULT_PRINCIPALS: JSON.stringify(principals) } });
  const storage = await openStorage(config);
  const app = buildApp({
    config,
    ...storage,
    readInstance,
    logger: createLogger('silent'),
    principalOf: mtlsResolver(new PrincipalRegistry(config)),
    policy: defaultPolicies(),
    https: buildTlsServerOptions({ ca: ca.certPem, cert: server.certPem, key: server.keyPem }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const agent = new https.Agent({ ca: ca.certPem, cert: client.certPem, key: client.keyPem, keepAlive: true });
  t.teardown(async () => {
    agent.destroy();
    await app.close();
    await storage.close();
  });
  XMLHttpRequest.nodejsSet({ httpsAgent: agent });
  (globalThis as Record<string, unknown>).XMLHttpRequest = XMLHttpRequest;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const base = `https://127.0.0.1:${port}/dicomweb`;
  // verbose: false keeps the client's console.error off the TAP output for the refusals asserted below.
  const dw = new api.DICOMwebClient({ url: base, verbose: false });

  // A CT study of 2 series x 6 slices; a 30-frame native multi-frame CT; the 10-frame RLE palette ultrasound.
  const ct = generatedSet('ct-2studies');
  const study = ct.manifest.studies[0]!;
  const series = study.series[0]!;
  const studyFiles = ct.files.filter((f) => f.rel.includes('study001'));
  const firstCt = { studyInstanceUID: study.StudyInstanceUID, seriesInstanceUID: series.SeriesInstanceUID, sopInstanceUID: series.instances[0]!.SOPInstanceUID };
  const firstCtFile = studyFiles.find((f) => f.rel.endsWith(series.instances[0]!.file))!.bytes;

  const mf = generatedSet('ct-multiframe');
  const mfStudy = mf.manifest.studies[0]!;
  const mfFile = mf.files[0]!.bytes;
  const multiframe = {
    studyInstanceUID: mfStudy.StudyInstanceUID,
    seriesInstanceUID: mfStudy.series[0]!.SeriesInstanceUID,
    sopInstanceUID: mfStudy.series[0]!.instances[0]!.SOPInstanceUID,
  };

  const usRel = 'dicomweb-client/US-PAL-8-10x-echo.dcm';
  const usRow = indexRows().find((r) => r.path === usRel)!;
  const usFile = testFile(usRel);
  const us = { studyInstanceUID: usRow.studyUid, seriesInstanceUID: usRow.seriesUid, sopInstanceUID: usRow.sopUid };

  await t.test('storeInstances: STOW-RS to /studies and /studies/{study}', async (t) => {
    // Its STOW sends no Accept, a quoted boundary and a CRLF before the first boundary (INTEROP.md).
    const answer = JSON.parse(await dw.storeInstances({ datasets: studyFiles.map((f) => arrayBuffer(f.bytes)) })) as Dataset;
    const referenced = (answer['00081199']?.Value ?? []) as Dataset[];
    const sent = study.series.flatMap((s) => s.instances.map((i) => i.SOPInstanceUID));
    t.same(values(referenced, '00081155').sort(), sent.sort(), 'ReferencedSOPSequence names every instance sent');
    t.equal(answer['00081198'], undefined, 'no FailedSOPSequence');

    const toStudy = JSON.parse(await dw.storeInstances({ datasets: [arrayBuffer(mfFile)], studyInstanceUID: multiframe.studyInstanceUID })) as Dataset;
    t.same(values((toStudy['00081199']?.Value ?? []) as Dataset[], '00081155'), [multiframe.sopInstanceUID], 'POST /studies/{study}: the multi-frame instance stored');
    await dw.storeInstances({ datasets: [arrayBuffer(usFile)] });
    t.equal(storage.index.counts().instances, studyFiles.length + 2, 'all 14 instances are in the index');

    // PS3.18 10.5.3: an instance that is not of the study in the URL is not stored; none stored is 409.
    const refused = await rejection(t, dw.storeInstances({ datasets: [arrayBuffer(usFile)], studyInstanceUID: multiframe.studyInstanceUID }));
    t.equal(refused.status, 409, 'an instance of another study sent to /studies/{study}: 409');
    const failed = (JSON.parse(String(refused.response)) as Dataset)['00081198']?.Value as Dataset[] | undefined;
    t.same(values(failed ?? [], '00081155'), [us.sopInstanceUID], 'FailedSOPSequence names it');
    t.equal(value(failed?.[0], '00081197'), 0xa900, 'FailureReason A900 (does not match the study)');
  });

  await t.test('searchForStudies / searchForSeries / searchForInstances', async (t) => {
    const byPatient = await dw.searchForStudies({ queryParams: { PatientID: study.PatientID } });
    t.same(values(byPatient, '0020000D'), [study.StudyInstanceUID], 'studies by PatientID');
    t.equal(value(byPatient[0], '00201208'), studyFiles.length, 'NumberOfStudyRelatedInstances');
    t.equal(value(byPatient[0], '00201206'), study.series.length, 'NumberOfStudyRelatedSeries');

    // Both generated studies of DOE^JANE; OHIF's own query shape (limit, offset, fuzzymatching, includefield).
    const byName = await dw.searchForStudies({
      queryParams: { PatientName: 'DOE*', limit: 101, offset: 0, fuzzymatching: 'false', includefield: '00081030,00080060' },
    });
    t.same(values(byName, '0020000D').sort(), [study.StudyInstanceUID, multiframe.studyInstanceUID].sort(), 'studies by PatientName wildcard');
    t.equal(value(byName.find((s) => value(s, '0020000D') === study.StudyInstanceUID), '00081030'), study.StudyDescription, 'includefield StudyDescription');
    const page = await dw.searchForStudies({ queryParams: { limit: 1, offset: 0 } });
    t.equal(page.length, 1, 'limit=1: one study of three');
    t.same(await dw.searchForStudies({ queryParams: { PatientID: 'NO-SUCH-PATIENT' } }), [], 'no match: 204, an empty list');

    const seriesOfStudy = await dw.searchForSeries({ studyInstanceUID: study.StudyInstanceUID });
    t.same(values(seriesOfStudy, '0020000E').sort(), study.series.map((s) => s.SeriesInstanceUID).sort(), 'series of the study');
    const usSeries = await dw.searchForSeries({ queryParams: { Modality: 'US' } });
    t.same(values(usSeries, '0020000E'), [us.seriesInstanceUID], 'all series, Modality=US');

    const ofSeries = await dw.searchForInstances({ studyInstanceUID: study.StudyInstanceUID, seriesInstanceUID: series.SeriesInstanceUID });
    t.same(values(ofSeries, '00080018').sort(), series.instances.map((i) => i.SOPInstanceUID).sort(), 'instances of a series');
    const ofStudy = await dw.searchForInstances({ studyInstanceUID: study.StudyInstanceUID });
    t.equal(ofStudy.length, studyFiles.length, 'instances of a study');
    const frames30 = await dw.searchForInstances({ queryParams: { SOPInstanceUID: multiframe.sopInstanceUID, includefield: '00280008' } });
    t.same(values(frames30, '00080018'), [multiframe.sopInstanceUID], 'all instances, by SOPInstanceUID');
    t.equal(Number(value(frames30[0], '00280008')), 30, 'NumberOfFrames 30');
  });

  await t.test('retrieveStudyMetadata / retrieveSeriesMetadata / retrieveInstanceMetadata', async (t) => {
    const ofStudy = await dw.retrieveStudyMetadata({ studyInstanceUID: study.StudyInstanceUID });
    t.equal(ofStudy.length, studyFiles.length, 'study metadata: one dataset per instance');
    const ofSeries = await dw.retrieveSeriesMetadata(firstCt);
    t.same(values(ofSeries, '00080018').sort(), series.instances.map((i) => i.SOPInstanceUID).sort(), 'series metadata: its instances');
    t.match(ofSeries[0]!['7FE00010'], { BulkDataURI: /\/bulk\/7FE00010$/ });

    const [mfMeta, ...more] = await dw.retrieveInstanceMetadata(multiframe);
    t.equal(more.length, 0, 'instance metadata: one dataset');
    t.equal(value(mfMeta, '00080018'), multiframe.sopInstanceUID);
    t.equal(Number(value(mfMeta, '00280008')), 30, 'multi-frame: NumberOfFrames 30');
    t.same([value(mfMeta, '00280010'), value(mfMeta, '00280011')], [128, 128], 'Rows, Columns');
    t.match(mfMeta!['7FE00010'], { vr: 'OW', BulkDataURI: /\/bulk\/7FE00010$/ }, 'Pixel Data by BulkDataURI');

    const [usMeta] = await dw.retrieveInstanceMetadata(us);
    t.equal(Number(value(usMeta, '00280008')), 10, 'ultrasound: NumberOfFrames 10');
    t.equal(value(usMeta, '00280004'), 'PALETTE COLOR');
    t.match(usMeta!['7FE00010'], { vr: 'OB', BulkDataURI: /\/bulk\/7FE00010$/ }, 'encapsulated Pixel Data by BulkDataURI');
  });

  await t.test('retrieveInstanceFrames', async (t) => {
    const [ctFrame, ...more] = await dw.retrieveInstanceFrames({ ...firstCt, frameNumbers: [1] });
    t.equal(more.length, 0, 'one part for one frame');
    t.ok(Buffer.from(ctFrame!).equals(pixelDataOf(firstCtFile)[0]!), 'CT frame 1: the 256x256 16-bit Pixel Data of the file');

    const mfPixels = pixelDataOf(mfFile)[0]!;
    const frameSize = 128 * 128 * 2;
    t.equal(mfPixels.length, 30 * frameSize, 'the file holds 30 frames of 128x128 16-bit');
    const asked = [1, 2, 17, 30];
    const got = await dw.retrieveInstanceFrames({ ...multiframe, frameNumbers: asked });
    t.equal(got.length, asked.length, 'frames 1,2,17,30: four parts');
    got.forEach((frame, i) => {
      const n = asked[i]!;
      t.ok(Buffer.from(frame).equals(mfPixels.subarray((n - 1) * frameSize, n * frameSize)), `multi-frame: frame ${n} byte-equal`);
    });
    const all = await dw.retrieveInstanceFrames({ ...multiframe, frameNumbers: Array.from({ length: 30 }, (_, i) => i + 1) });
    t.ok(Buffer.concat(all.map((f) => Buffer.from(f))).equals(mfPixels), 'all 30 frames, in order, make the Pixel Data');
    t.equal((await rejection(t, dw.retrieveInstanceFrames({ ...multiframe, frameNumbers: [31] }))).status, 400, 'frame 31 of 30: 400');

    // RLE frames as stored, with `transfer-syntax=*` as OHIF asks; dcmjs gives one fragment per frame.
    const usFrames = pixelDataOf(usFile);
    t.equal(usFrames.length, 10, 'dcmjs reads 10 RLE frames in the file');
    const rle = await dw.retrieveInstanceFrames({ ...us, frameNumbers: [1, 5, 10], mediaTypes: [{ mediaType: 'application/octet-stream', transferSyntaxUID: '*' }] });
    t.same(
      rle.map((f) => sha256(f)),
      [1, 5, 10].map((n) => sha256(usFrames[n - 1]!)),
      'ultrasound frames 1,5,10 (transfer-syntax=*): the RLE frames of the file',
    );
    // The client's own RLE frame request, `type="image/x-dicom-rle"` (the name before PS3.18 2018): read as
    // image/dicom-rle, the stored frames.
    const rleMediaType = [{ mediaType: 'image/x-dicom-rle', transferSyntaxUID: RLE_UID }];
    const aliased = await dw.retrieveInstanceFrames({ ...us, frameNumbers: [2], mediaTypes: rleMediaType });
    t.equal(sha256(aliased[0]!), sha256(usFrames[1]!), 'image/x-dicom-rle: the RLE frame of the file');
    // The client's default Accept (octet-stream, no transfer-syntax) asks for uncompressed frames: decoded by the
    // server's transcoder, equal to the reference decode DCMTK made (test/fixtures/transcode/references.json).
    const decoded = await dw.retrieveInstanceFrames({ ...us, frameNumbers: Array.from({ length: 10 }, (_, i) => i + 1) });
    t.equal(decoded.length, 10, 'ten decoded frames');
    t.equal(sha256(Buffer.concat(decoded.map((f) => Buffer.from(f)))), referenceSha256(usRel), 'RLE frames without transfer-syntax=*: decoded, equal to the reference decode');
  });

  await t.test('retrieveInstanceFrames against compressed objects, without transfer-syntax=* (issue 9)', async (t) => {
    // A JPEG 2000 CT and a 16-frame JPEG baseline MR, stored through the client.
    const framesOf: Record<string, number> = { 'derived/ct_j2k_lossless.dcm': 1, 'derived/mr8_jpeg_baseline.dcm': 16 };
    const files = Object.keys(framesOf);
    await dw.storeInstances({ datasets: files.map((rel) => arrayBuffer(testFile(rel))) });
    for (const rel of files) {
      const row = indexRows().find((r) => r.path === rel)!;
      const instance = { studyInstanceUID: row.studyUid, seriesInstanceUID: row.seriesUid, sopInstanceUID: row.sopUid };
      const frames = framesOf[rel]!;
      const got = await dw.retrieveInstanceFrames({ ...instance, frameNumbers: Array.from({ length: frames }, (_, i) => i + 1) });
      t.equal(got.length, frames, `${rel}: one part per frame`);
      t.equal(sha256(Buffer.concat(got.map((f) => Buffer.from(f)))), referenceSha256(rel), `${rel}: decoded frames equal to the reference decode`);
    }
    // The JPEG 2000 CT's frame in RLE, asked by the client's pre-standard name: transcoded, two segments (16-bit).
    const row = indexRows().find((r) => r.path === files[0])!;
    const ct = { studyInstanceUID: row.studyUid, seriesInstanceUID: row.seriesUid, sopInstanceUID: row.sopUid };
    const [rle] = await dw.retrieveInstanceFrames({ ...ct, frameNumbers: [1], mediaTypes: [{ mediaType: 'image/x-dicom-rle', transferSyntaxUID: RLE_UID }] });
    t.equal(Buffer.from(rle!).readUInt32LE(0), 2, 'an RLE frame of a 16-bit image: two segments (PS3.5 G.3.1)');
  });

  await t.test('retrieveInstanceRendered / retrieveInstanceFramesRendered / thumbnails against compressed objects (issue 9)', async (t) => {
    // Stored by the previous subtest: the JPEG 2000 CT (128 x 128) and the 16-frame JPEG baseline MR (256 x 256).
    const instanceOf = (rel: string) => {
      const row = indexRows().find((r) => r.path === rel)!;
      return { studyInstanceUID: row.studyUid, seriesInstanceUID: row.seriesUid, sopInstanceUID: row.sopUid };
    };
    const ct = instanceOf('derived/ct_j2k_lossless.dcm');
    const mr = instanceOf('derived/mr8_jpeg_baseline.dcm');
    // A single-part answer comes back as a one-element array (the client's _httpRequest), the image in it.
    const meta = async (parts: ArrayBuffer[]) => {
      t.equal(parts.length, 1, 'one image');
      return sharp(Buffer.from(parts[0]!)).metadata();
    };
    let m = await meta(await dw.retrieveInstanceRendered(ct));
    t.same([m.format, m.width, m.height], ['jpeg', 128, 128], 'the J2K CT, client default: a 128 x 128 JPEG');
    m = await meta(await dw.retrieveInstanceRendered({ ...mr, mediaTypes: [{ mediaType: 'image/png' }], queryParams: { viewport: '64,64' } }));
    t.same([m.format, m.width, m.height], ['png', 64, 64], 'the MR as PNG with viewport=64,64');
    m = await meta(await dw.retrieveInstanceRendered({ ...mr, mediaTypes: [{ mediaType: 'image/gif' }] }));
    t.same([m.format, m.pages], ['gif', 16], 'the MR as GIF: 16 frames');
    m = await meta(await dw.retrieveInstanceFramesRendered({ ...mr, frameNumbers: [9], mediaTypes: [{ mediaType: 'image/jpeg' }], queryParams: { quality: '50' } }));
    t.same([m.format, m.width], ['jpeg', 256], 'frame 9 of the MR as JPEG, quality=50');
    m = await meta(await dw.retrieveInstanceThumbnail({ ...ct, mediaTypes: [{ mediaType: 'image/jpeg' }] }));
    t.same([m.format, m.width], ['jpeg', 128], 'the CT thumbnail');
    m = await meta(await dw.retrieveInstanceFramesThumbnail({ ...mr, frameNumbers: [3], mediaTypes: [{ mediaType: 'image/jpeg' }], queryParams: { viewport: '32,32' } }));
    t.same([m.format, m.width], ['jpeg', 32], 'a frame thumbnail, 32 x 32');
    t.equal((await rejection(t, dw.retrieveInstanceFramesRendered({ ...mr, frameNumbers: [17], mediaTypes: [{ mediaType: 'image/jpeg' }] }))).status, 400, 'frame 17 of 16: 400');
  });

  await t.test('retrieveBulkData', async (t) => {
    const [mfMeta] = await dw.retrieveInstanceMetadata(multiframe);
    const uri = mfMeta!['7FE00010']?.BulkDataURI;
    t.match(uri, new RegExp(`^${base}/studies/${multiframe.studyInstanceUID}/series/${multiframe.seriesInstanceUID}/instances/${multiframe.sopInstanceUID}/bulk/7FE00010$`), 'absolute BulkDataURI');
    const mfPixels = pixelDataOf(mfFile)[0]!;
    const multipart = await dw.retrieveBulkData({ BulkDataURI: uri! });
    t.equal(multipart.length, 1, 'multipart: one part');
    t.ok(Buffer.from(multipart[0]!).equals(mfPixels), 'multipart: the Pixel Data of all 30 frames');

    // OHIF's configuration: bulk data single part (application/octet-stream), and a byte range of it.
    const single = new api.DICOMwebClient({ url: base, singlepart: 'bulkdata', verbose: false });
    const [whole] = await single.retrieveBulkData({ BulkDataURI: uri! });
    t.ok(Buffer.from(whole!).equals(mfPixels), 'single part: the same bytes');
    const [range] = await single.retrieveBulkData({ BulkDataURI: uri!, headers: { Range: 'bytes=32768-65535' } });
    t.ok(Buffer.from(range!).equals(mfPixels.subarray(32768, 65536)), 'Range bytes=32768-65535: 206 with frame 2');

    const [usMeta] = await dw.retrieveInstanceMetadata(us);
    const [usBulk] = await dw.retrieveBulkData({ BulkDataURI: usMeta!['7FE00010']!.BulkDataURI! });
    t.ok(Buffer.from(usBulk!).equals(Buffer.concat(pixelDataOf(usFile))), 'encapsulated Pixel Data: the fragments back to back');
  });

  await t.test('retrieveInstance / retrieveSeries / retrieveStudy: byte-equal', async (t) => {
    t.ok(Buffer.from(await dw.retrieveInstance(firstCt)).equals(firstCtFile), 'CT instance');
    t.ok(Buffer.from(await dw.retrieveInstance(multiframe)).equals(mfFile), 'multi-frame instance');
    t.ok(Buffer.from(await dw.retrieveInstance(us)).equals(usFile), 'RLE ultrasound instance, as stored');

    const seriesFiles = studyFiles.filter((f) => series.instances.some((i) => f.rel.endsWith(i.file)));
    t.same((await dw.retrieveSeries(firstCt)).map(sha256).sort(), seriesFiles.map((f) => sha256(f.bytes)).sort(), 'series: its 6 files');
    t.same((await dw.retrieveStudy(firstCt)).map(sha256).sort(), studyFiles.map((f) => sha256(f.bytes)).sort(), 'study: its 12 files');
    t.same((await dw.retrieveStudy(multiframe)).map(sha256), [sha256(mfFile)], 'multi-frame study: its one file');
  });

  await t.test('a large multi-frame object: Enhanced MR, 176 frames, 23 MB', async (t) => {
    const file = gunzipSync(testFile('nibabel/philips_mprage_enhanced_mr.dcm.gz'));
    const answer = JSON.parse(await dw.storeInstances({ datasets: [arrayBuffer(file)] })) as Dataset;
    const [ref] = (answer['00081199']?.Value ?? []) as Dataset[];
    t.equal(value(ref, '00081150'), '1.2.840.10008.5.1.4.1.1.4.1', 'stored: Enhanced MR Image Storage');
    const [found] = await dw.searchForInstances({ queryParams: { SOPInstanceUID: String(value(ref, '00081155')), includefield: '00280008' } });
    const mr = { studyInstanceUID: String(value(found, '0020000D')), seriesInstanceUID: String(value(found, '0020000E')), sopInstanceUID: String(value(found, '00080018')) };
    t.equal(Number(value(found, '00280008')), 176, 'QIDO: NumberOfFrames 176');

    const [meta] = await dw.retrieveInstanceMetadata(mr);
    t.equal(meta!['52009230']?.Value?.length, 176, 'metadata: 176 items of Per-Frame Functional Groups');
    const pixels = pixelDataOf(file)[0]!;
    const frameSize = 256 * 256 * 2;
    const asked = [1, 88, 176];
    const frames = await dw.retrieveInstanceFrames({ ...mr, frameNumbers: asked });
    t.same(
      frames.map((f) => sha256(f)),
      asked.map((n) => sha256(pixels.subarray((n - 1) * frameSize, n * frameSize))),
      'frames 1,88,176: 256x256 16-bit each, byte-equal',
    );
    t.equal((await rejection(t, dw.retrieveInstanceFrames({ ...mr, frameNumbers: [177] }))).status, 400, 'frame 177 of 176: 400');
    t.equal(sha256(await dw.retrieveInstance(mr)), sha256(file), 'the 23 MB instance, byte-equal');
  });

  await t.test('buildInstanceWadoURIUrl: WADO-URI', async (t) => {
    // The WADO-URI root is {base}/wado here (OHIF's wadoUriRoot); the client builds the URL, a fetch reads it.
    const url = new api.DICOMwebClient({ url: base, wadoURLPrefix: 'wado' }).buildInstanceWadoURIUrl(multiframe);
    const res = await request(url, { ca: ca.certPem, cert: client.certPem, key: client.keyPem });
    t.equal(res.status, 200, `GET ${new URL(url).pathname}?requestType=WADO...: 200`);
    t.equal(res.headers['content-type'], 'application/dicom', 'as application/dicom');
    t.ok(res.body.equals(mfFile), 'the multi-frame file, byte-equal');
  });
});
