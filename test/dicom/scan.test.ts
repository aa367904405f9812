// The structural pre-scan (part10-scan.ts): PS3.10 framing, the File Meta group, every structural error the
// walk can meet, and the header ranges it hands to the reader.

import t from 'tap';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { scanPart10 } from '../../src/dicom/part10-scan.js';
import { FailureReason } from '../../src/dicom/status-codes.js';
import { accepted, refused } from './read.js';
import {
  EXPLICIT_LE, IMPLICIT_LE, ITEM_DELIMITER, JPEG_BASELINE, SEQUENCE_DELIMITER, TEST_LIMITS, UNDEFINED, el, ids, item, part10, str,
} from './synthetic.js';

const C000 = FailureReason.CANNOT_UNDERSTAND;
const body = () => Buffer.concat([ids(), el(0x00100010, 'PN', str('A^B'))]);

t.test('preamble: the scan reads past whatever it holds (PS3.10 7.5); what to keep is the store\'s (dicom/preamble.ts)', async (t) => {
  const withPreamble = (head: string) => {
    const p = Buffer.alloc(128);
    p.write(head, 'latin1');
    return part10(EXPLICIT_LE, body(), p);
  };
  for (const [name, file] of [
    ['zeros', part10(EXPLICIT_LE, body())],
    ['little-endian TIFF', withPreamble('II*\0')],
    ['big-endian TIFF', withPreamble('MM\0*')],
    ['a PE executable header (CVE-2019-11687)', withPreamble('MZ\x90\0')],
    ['a viewer\'s name', withPreamble('Rubo DICOM Viewer demo')],
  ] as const) {
    t.match(await accepted(file), { sopInstanceUID: '2.25.100' }, name);
  }
});

t.test('File Meta: the group is walked, a wrong (0002,0000) does not matter', async (t) => {
  for (const claimed of [0, 20, 100_000]) {
    const good = part10(EXPLICIT_LE, body());
    const bad = Buffer.from(good);
    bad.writeUInt32LE(claimed, 132 + 8); // value of (0002,0000)
    const i = await accepted(bad);
    t.equal(i.sopInstanceUID, '2.25.100', `group length ${claimed}`);
    t.same(Object.keys(i.dataset), ['00080016', '00080018', '00100010']);
  }
});

t.test('File Meta errors', async (t) => {
  const noTs = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(0x00020001, 'OB', Buffer.from([0, 1])), body()]);
  t.match(await refused(noTs), { reason: C000, detail: 'File Meta Information has no Transfer Syntax UID (0002,0010)' });
  const noMeta = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), body()]);
  t.match(await refused(noMeta), { reason: C000, detail: 'no File Meta Information group after the DICM prefix (PS3.10 7.1)' });
  const badVr = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from([2, 0, 0x10, 0, 0x7a, 0x7a, 2, 0, 0x31, 0])]);
  t.match(await refused(badVr), { detail: 'File Meta Information element (0002,0010) at offset 132 has no valid VR' });
  t.match(await refused(part10('1.2.3.abc', body())), {
    reason: FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
    detail: 'Transfer Syntax UID (0002,0010) is not a valid UID',
  });
  t.match(await refused(Buffer.alloc(100)), { detail: 'object is 100 bytes, shorter than the 128-byte preamble and DICM prefix (PS3.10 7.1)' });
});

t.test('a File Meta group with no dataset is structurally fine (and has no UIDs)', async (t) => {
  const i = await accepted(part10(EXPLICIT_LE, Buffer.alloc(0)));
  t.same(i.dataset, {});
  t.equal(i.sopInstanceUID, undefined);
});

t.test('trailing bytes: up to 7 zeros are padding, anything else is a cut header', async (t) => {
  t.ok(await accepted(part10(EXPLICIT_LE, Buffer.concat([body(), Buffer.alloc(6)]))));
  t.match(await refused(part10(EXPLICIT_LE, Buffer.concat([body(), Buffer.from([8, 0, 0x20])]))), {
    reason: C000,
    detail: /^truncated element header at offset \d+$/,
  });
});

t.test('delimiters out of place', async (t) => {
  t.match(await refused(part10(EXPLICIT_LE, Buffer.concat([ids(), ITEM_DELIMITER]))), {
    detail: /^item delimiter at offset \d+ outside an undefined-length item$/,
  });
  t.match(await refused(part10(EXPLICIT_LE, Buffer.concat([ids(), SEQUENCE_DELIMITER]))), {
    detail: /^unexpected \(FFFE,E0DD\) at offset \d+$/,
  });
  const inDefined = Buffer.concat([el(0x00400275, 'SQ', Buffer.alloc(0), 8), SEQUENCE_DELIMITER]);
  t.match(await refused(part10(EXPLICIT_LE, Buffer.concat([ids(), inDefined]))), {
    detail: /^sequence delimiter at offset \d+ inside a defined-length sequence$/,
  });
  const notAnItem = Buffer.concat([el(0x00400275, 'SQ', Buffer.alloc(0), UNDEFINED), el(0x00100010, 'PN', str('A'))]);
  t.match(await refused(part10(EXPLICIT_LE, Buffer.concat([ids(), notAnItem]))), {
    detail: /^unexpected \(0010,0010\) at offset \d+ where a sequence item was expected$/,
  });
  t.match(await refused(part10(EXPLICIT_LE, Buffer.concat([ids(), el(0x0040a160, 'UT', Buffer.alloc(0), UNDEFINED)]))), {
    detail: 'undefined length on (0040,A160) of VR UT',
  });
});

t.test('encapsulated values must be well-formed (PS3.5 A.4)', async (t) => {
  const px = (...parts: Buffer[]) => part10(JPEG_BASELINE, Buffer.concat([ids(), el(0x7fe00010, 'OB', Buffer.alloc(0), UNDEFINED), ...parts]));
  t.match(await refused(px(SEQUENCE_DELIMITER)), { detail: /^encapsulated value at offset \d+ has no Basic Offset Table item$/ });
  t.match(await refused(px(item(Buffer.alloc(0)), item(Buffer.alloc(0), UNDEFINED), SEQUENCE_DELIMITER)), {
    detail: /^encapsulated fragment at offset \d+ has an undefined length$/,
  });
  t.match(await refused(px(item(Buffer.alloc(3)), SEQUENCE_DELIMITER)), { detail: 'Basic Offset Table length 3 is not a multiple of 4' });
  t.match(await refused(px(item(Buffer.alloc(0)), item(Buffer.alloc(4)))), {
    detail: 'undefined-length sequence not terminated before the end of the file',
  });
});

t.test('header ranges skip Pixel Data; elements after it are still read', async (t) => {
  const pixels = Buffer.alloc(200_000, 0xab);
  const bytes = part10(EXPLICIT_LE, Buffer.concat([ids(), el(0x7fe00010, 'OW', pixels), el(0xfffafffa, 'SQ', Buffer.alloc(0), 0)]));
  const outcome = await scanPart10(bufferSource(bytes), TEST_LIMITS);
  if (!outcome.ok) return void t.fail(outcome.failure.detail);
  const { datasetOffset, headerRanges, pixelData } = outcome.scan;
  t.same(headerRanges, [
    { offset: datasetOffset, length: pixelData!.offset - datasetOffset },
    { offset: pixelData!.offset + pixels.length, length: 12 },
  ]);
  t.equal(outcome.scan.headerBytes, pixelData!.offset - datasetOffset + 12);
  const i = await accepted(bytes);
  t.same(i.dataset['FFFAFFFA'], { vr: 'SQ' }, 'element after Pixel Data decoded');
});

t.test('a ByteSource that fails is a processing failure, not a parse failure', async (t) => {
  const bytes = part10(EXPLICIT_LE, body());
  const result = await readInstance(
    {
      size: bytes.length,
      read: async (offset, length) => {
        if (offset > 132) throw new Error('EIO');
        return bytes.subarray(offset, offset + length);
      },
    },
    TEST_LIMITS,
  );
  t.same(result, { ok: false, failure: { reason: FailureReason.PROCESSING_FAILURE, detail: 'the uploaded object could not be read' } });
});

t.test('Pixel Data encoding must agree with the transfer syntax (PS3.5 A.4)', async (t) => {
  const encapsulated = Buffer.concat([el(0x7fe00010, 'OB', Buffer.alloc(0), UNDEFINED), item(Buffer.alloc(0)), item(Buffer.alloc(2)), SEQUENCE_DELIMITER]);
  t.match(await refused(part10(EXPLICIT_LE, Buffer.concat([ids(), encapsulated]))), {
    reason: C000,
    detail: 'encapsulated Pixel Data in a native transfer syntax',
  });
  t.match(await refused(part10(JPEG_BASELINE, Buffer.concat([ids(), el(0x7fe00010, 'OB', Buffer.alloc(4))]))), {
    reason: C000,
    detail: 'native (defined-length) Pixel Data in an encapsulated transfer syntax',
  });
});

t.test('a ByteSource returning short reads cannot make the scan loop', async (t) => {
  const bytes = part10(EXPLICIT_LE, body());
  const result = await readInstance(
    { size: bytes.length, read: async (offset, length) => bytes.subarray(offset, offset + Math.min(length, 16)) },
    TEST_LIMITS,
  );
  t.match(result, { ok: false, failure: { reason: FailureReason.PROCESSING_FAILURE } });
});

t.test('meta says Implicit VR, dataset is explicit: refused, not misread', async (t) => {
  const explicitBody = Buffer.concat([el(0x00080005, 'CS', str('ISO_IR 100', 'CS')), ids()]);
  t.match(await refused(part10(IMPLICIT_LE, explicitBody)), {
    reason: C000,
    detail: /^dataset at offset \d+ is explicit VR but the File Meta Information names Implicit VR Little Endian$/,
  });
});
