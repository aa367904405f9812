// The whole shared corpus through STOW-RS and back through QIDO-RS (issue: "every valid file stored and found
// again; every broken file refused with a failure reason and nothing left behind").
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import t from 'tap';
import { testApp } from '../helpers/app.js';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { locateFrames, pixelGeometry } from '../../src/dicom/frames.js';
import type { ParsedInstance } from '../../src/dicom/part10.js';
import { readMeta } from '../../src/dicom/part10-meta.js';
import { TEST_LIMITS } from '../dicom/synthetic.js';
import { splitMultipart } from '../helpers/multipart-response.js';
import { expectSameObjectAsExplicitLE, littleEndianPixels } from '../helpers/reencoded.js';
import { indexRows, TESTDATA, testFile } from '../helpers/testdata.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const BIG_ENDIAN = '1.2.840.10008.1.2.2';
const DEFLATED = '1.2.840.10008.1.2.1.99';

type Ds = Record<string, { vr: string; Value?: unknown[] }>;
const FAILED = '00081198';
const reasonOf = (body: Ds) => ((body[FAILED]?.Value?.[0] as Ds | undefined)?.['00081197']?.Value ?? [])[0];
const detailOf = (body: Ds) => ((body[FAILED]?.Value?.[0] as Ds | undefined)?.['00091001']?.Value ?? [])[0];

/**
 * Files outside broken/ that are not acceptable STOW input, with the reason. Each is refused on purpose:
 * STOW-RS carries PS3.10 files (PS3.18 10.5.1.1), and a file whose meta header contradicts its dataset or
 * that ends early is not a complete object.
 */
const REFUSED_OUTSIDE_BROKEN: Record<string, number> = {
  'pydicom/test_files/ExplVR_BigEndNoMeta.dcm': 0xc000, // no preamble/meta: not PS3.10
  'pydicom/test_files/ExplVR_LitEndNoMeta.dcm': 0xc000,
  'pydicom/test_files/rtstruct.dcm': 0xc000, // bare dataset
  'pydicom/test_files/MR_truncated.dcm': 0xc000, // Pixel Data runs past the end
  'pydicom/test_files/rtplan_truncated.dcm': 0xc000,
  'pydicom/test_files/SC_rgb_jpeg.dcm': 0xc000, // meta names an explicit VR syntax, dataset is implicit
};

/** DICOMDIRs (Media Storage Directory) have no SOP Instance UID in the dataset: not storable instances. */
const isDicomdir = (p: string) => /(^|\/)DICOMDIR[^/]*$/.test(p);

/** broken/EXPECTED.tsv, with the outcome this server chose where the file allows a choice. */
const BROKEN: Record<string, { stored: boolean; reason?: number }> = {
  'valid-reference.dcm': { stored: true },
  'duplicate-sop-a.dcm': { stored: true },
  'duplicate-sop-b-other-study.dcm': { stored: false, reason: 0x0111 },
  'zero-length.dcm': { stored: false, reason: 0xc000 },
  'not-dicom.dcm': { stored: false, reason: 0xc000 },
  'no-dicm-magic.dcm': { stored: false, reason: 0xc000 },
  'truncated-header.dcm': { stored: false, reason: 0xc000 },
  'truncated-pixeldata.dcm': { stored: false, reason: 0xc000 },
  'missing-sop-instance-uid.dcm': { stored: false, reason: 0xc000 },
  'missing-study-uid.dcm': { stored: false, reason: 0xc000 },
  'missing-series-uid.dcm': { stored: false, reason: 0xc000 },
  'missing-sop-class-uid.dcm': { stored: false, reason: 0xc000 },
  'meta-sop-mismatch.dcm': { stored: true }, // filed under the dataset's SOPInstanceUID (README: STOW)
  'bad-group-length.dcm': { stored: true }, // parsed tolerantly: the meta group is walked element by element
  'ts-mismatch.dcm': { stored: false, reason: 0xc000 },
  'unknown-transfer-syntax.dcm': { stored: false, reason: 0xc122 },
  'pixel-length-mismatch.dcm': { stored: false, reason: 0xc000 }, // Pixel Data shorter than Rows x Columns declare
  'value-length-overflow.dcm': { stored: false, reason: 0xc000 },
  'seq-no-delimiter.dcm': { stored: false, reason: 0xc000 },
  'uid-invalid-chars.dcm': { stored: false, reason: 0xc000 }, // PS3.5 9.1 UID syntax
  'uid-too-long.dcm': { stored: false, reason: 0xc000 },
  'unknown-vr.dcm': { stored: false, reason: 0xc000 },
  'huge-dimensions.dcm': { stored: false, reason: 0xc000 }, // 65535 x 65535 declared, 8 KiB present
  'raw-dataset-no-meta.dcm': { stored: false, reason: 0xc000 }, // STOW requires PS3.10
};

t.test('broken/: each file refused with its reason (or stored where chosen), nothing left behind', async (t) => {
  const { app, index, blobFiles } = await testApp(t);
  const expectedFiles = fs
    .readFileSync(path.join(TESTDATA, 'broken/EXPECTED.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t')[0]!);
  t.same(Object.keys(BROKEN).sort(), expectedFiles.sort(), 'every file of EXPECTED.tsv has a decision here');
  let stored = 0;
  for (const name of expectedFiles) {
    const before = blobFiles();
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom' }, payload: testFile(`broken/${name}`) });
    const want = BROKEN[name]!;
    if (want.stored) {
      stored++;
      t.equal(res.statusCode, 200, `${name}: stored`);
    } else {
      t.equal(res.statusCode, 409, `${name}: refused`);
      t.equal(reasonOf(res.json()), want.reason, `${name}: failure reason 0x${want.reason!.toString(16)}`);
      t.match(detailOf(res.json()), /\S/, `${name}: a failure detail`);
      t.notMatch(detailOf(res.json()), /BROKEN|INPUT/, `${name}: no PHI in the detail`);
      t.same(blobFiles(), { objects: before.objects, staging: 0 }, `${name}: no blob or staged file left`);
    }
    t.equal(index.counts().instances, stored, `${name}: index holds only what was stored`);
    // The server stays up and answers.
    t.equal((await app.inject({ method: 'GET', url: '/dicomweb/studies?limit=1' })).statusCode, 200);
  }
  t.same(index.listPending(new Date(Date.now() + 1000)), [], 'no pending write left');
});

t.test('every other shared file: stored and found again by QIDO with its UIDs, or refused for a stated reason', async (t) => {
  const { app, index } = await testApp(t);
  const rows = indexRows().filter((r) => !r.path.startsWith('broken/'));
  const storedSops = new Map<string, { study: string; series: string; sha: string }>();
  const refused: Record<string, number> = {};
  let dicomdirs = 0;
  for (const row of rows) {
    const bytes = testFile(row.path);
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom' }, payload: bytes });
    if (res.statusCode === 200) {
      t.not(row.sopUid, '', `${row.path}: stored files have a SOP Instance UID`);
      storedSops.set(row.sopUid, { study: row.studyUid, series: row.seriesUid, sha: row.path });
      continue;
    }
    t.equal(res.statusCode, 409, `${row.path}: a refusal is 409 (one instance, none stored)`);
    const reason = reasonOf(res.json()) as number;
    if (row.sopUid === '') {
      // No SOP Instance UID (DICOMDIRs, pydicom's attribute-only fragments): not a storable instance.
      if (isDicomdir(row.path)) dicomdirs++;
      t.equal(reason, 0xc000, `${row.path}: no SOP Instance UID, C000`);
    } else if (reason === 0x0111) {
      // pydicom ships re-encodings of one image under one SOP Instance UID (SOURCES.md): the first is kept.
      t.ok(storedSops.has(row.sopUid), `${row.path}: duplicate of an instance stored before`);
    } else {
      refused[row.path] = reason;
    }
  }
  t.same(refused, REFUSED_OUTSIDE_BROKEN, 'exactly the known non-PS3.10 / inconsistent files are refused');
  t.ok(dicomdirs >= 2, 'the DICOMDIRs were seen');
  t.ok(storedSops.size > 150, `${storedSops.size} distinct instances stored`);
  t.equal(index.counts().instances, storedSops.size);

  // Found again: one instance-level query per stored SOP Instance UID, with study and series UIDs right.
  for (const [sop, where] of storedSops) {
    const res = await app.inject({ method: 'GET', url: `/dicomweb/instances?SOPInstanceUID=${encodeURIComponent(sop)}` });
    t.equal(res.statusCode, 200, `QIDO finds ${sop}`);
    const [ds] = res.json() as Ds[];
    t.match(ds, { '00080018': { Value: [sop] }, '0020000D': { Value: [where.study] }, '0020000E': { Value: [where.series] } }, `${where.sha}: UIDs`);
  }
});

/** A stored file as served: Deflated datasets inflated, Big Endian OW Pixel Data swapped (retrieve-frames.ts). */
async function servedView(file: Buffer, instance: ParsedInstance): Promise<Buffer> {
  if (instance.transferSyntaxUID === DEFLATED) {
    const { datasetOffset } = await readMeta(bufferSource(file), TEST_LIMITS);
    return Buffer.concat([file.subarray(0, datasetOffset), inflateRawSync(file.subarray(datasetOffset))]);
  }
  const view = Buffer.from(file);
  const px = instance.pixelData;
  if (px) littleEndianPixels(file, instance).copy(view, px.offset);
  return view;
}

t.test('every stored file retrieved: the stored bytes, or the same object in Explicit VR LE; every frame its bytes', async (t) => {
  const { app } = await testApp(t);
  const files = new Map<string, { path: string; bytes: Buffer; instance: ParsedInstance }>();
  for (const row of indexRows().filter((r) => !r.path.startsWith('broken/'))) {
    const bytes = testFile(row.path);
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom' }, payload: bytes });
    if (res.statusCode !== 200) continue;
    const r = await readInstance(bufferSource(bytes), TEST_LIMITS);
    if (!r.ok) throw new Error(`${row.path} was stored but does not read`);
    files.set(row.sopUid, { path: row.path, bytes, instance: r.instance });
  }
  const counts = { asStored: 0, reencoded: 0, frames: 0, deflatedFrames: 0, bigEndianFrames: 0, notLocatable: 0 };
  for (const [sop, { path, bytes, instance }] of files) {
    const url = `/dicomweb/studies/${instance.studyInstanceUID}/series/${instance.seriesInstanceUID}/instances/${sop}`;
    const res = await app.inject({ method: 'GET', url, headers: { accept: 'application/dicom' } });
    t.equal(res.statusCode, 200, `${path}: retrieved`);
    if (instance.transferSyntaxUID === IMPLICIT_LE || instance.transferSyntaxUID === BIG_ENDIAN) {
      t.equal(res.headers['content-type'], `application/dicom; transfer-syntax=${EXPLICIT_LE}`, `${path}: sent as Explicit VR LE`);
      await expectSameObjectAsExplicitLE(t, res.rawPayload, bytes, path);
      counts.reencoded++;
    } else {
      t.equal(res.headers['content-type'], `application/dicom; transfer-syntax=${instance.transferSyntaxUID}`, `${path}: stored syntax`);
      t.ok(res.rawPayload.equals(bytes), `${path}: the stored file, byte for byte`);
      counts.asStored++;
    }

    if (!instance.pixelData) continue;
    const layout = locateFrames(instance.pixelData, pixelGeometry(instance.dataset));
    const n = pixelGeometry(instance.dataset).numberOfFrames;
    const list = Array.from({ length: Math.min(n, 1000) }, (_, i) => i + 1);
    const frames = await app.inject({ method: 'GET', url: `${url}/frames/${list.join(',')}`, headers: { accept: 'multipart/related; type=application/octet-stream; transfer-syntax=*' } });
    if (!layout.ok) {
      t.equal(frames.statusCode, 406, `${path}: frames that cannot be located are 406`);
      counts.notLocatable++;
      continue;
    }
    t.equal(frames.statusCode, 200, `${path}: frames`);
    const view = await servedView(bytes, instance);
    const parts = splitMultipart(String(frames.headers['content-type']), frames.rawPayload);
    t.equal(parts.length, list.length, `${path}: one part per frame`);
    const wrong = parts.filter((p, i) => !p.body.equals(Buffer.concat(layout.frames[i]!.map((r) => view.subarray(r.offset, r.offset + r.length)))));
    t.equal(wrong.length, 0, `${path}: every frame byte-equal`);
    counts.frames++;
    if (instance.transferSyntaxUID === DEFLATED) counts.deflatedFrames++;
    if (instance.transferSyntaxUID === BIG_ENDIAN) counts.bigEndianFrames++;
  }
  t.comment(JSON.stringify(counts));
  t.ok(counts.reencoded >= 15 && counts.asStored > 100 && counts.frames > 100, 'the corpus was covered');
  t.ok(counts.deflatedFrames >= 2 && counts.bigEndianFrames >= 3, 'frames of Deflated and Big Endian files were checked');
});

t.test('a large multi-frame object (Enhanced MR, 176 frames, 23 MB) is stored and found', async (t) => {
  const { app, index } = await testApp(t);
  const bytes = gunzipSync(testFile('nibabel/philips_mprage_enhanced_mr.dcm.gz'));
  const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/dicom' }, payload: bytes });
  t.equal(res.statusCode, 200);
  const found = await app.inject({ method: 'GET', url: '/dicomweb/instances?includefield=00280008' });
  t.match((found.json() as Ds[])[0], { '00280008': { Value: [176] }, '00080016': { Value: ['1.2.840.10008.5.1.4.1.1.4.1'] } });
  t.equal(index.findInstance(((found.json() as Ds[])[0]!['00080018']!.Value as string[])[0]!)?.size, bytes.length);
});
