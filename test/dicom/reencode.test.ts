// The re-encoder to Explicit VR Little Endian (src/dicom/reencode.ts): exact output bytes for synthetic Implicit
// VR LE and Explicit VR BE objects (built here with the Explicit VR LE builders as the expectation), and every
// corpus file stored in those syntaxes read back as Explicit VR LE with the same dataset and pixel data.

import { randomBytes } from 'node:crypto';
import t from 'tap';
import type { Test } from 'tap';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { PIECE } from '../../src/dicom/byte-swap.js';
import { reencodeToExplicitLittleEndian } from '../../src/dicom/reencode.js';
import { transferSyntax } from '../../src/dicom/transfer-syntax.js';
import { expectSameObjectAsExplicitLE, parsed } from '../helpers/reencoded.js';
import { indexRows, testFile } from '../helpers/testdata.js';
import { read } from './read.js';
import {
  EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, ITEM_DELIMITER, SEQUENCE_DELIMITER, SERIES, SOP_CLASS, SOP_INSTANCE, STUDY, TEST_LIMITS, UNDEFINED,
  el, elBE, iel, item, part10, seq, str, u16,
} from './synthetic.js';

async function reencode(file: Buffer): Promise<{ out: Buffer; chunks: Buffer[]; size: number }> {
  const tsUid = (await parsed(file)).transferSyntaxUID;
  const plan = await reencodeToExplicitLittleEndian(bufferSource(file), transferSyntax(tsUid)!, TEST_LIMITS);
  const chunks: Buffer[] = [];
  for await (const c of plan.chunks()) chunks.push(Buffer.from(c));
  return { out: Buffer.concat(chunks), chunks, size: plan.size };
}

/** Byte-exact comparison, shown as hex so a failure says where. */
function sameBytes(t: Test, actual: Buffer, expected: Buffer, what: string): void {
  t.equal(actual.length, expected.length, `${what}: length`);
  t.equal(actual.toString('hex'), expected.toString('hex'), `${what}: bytes`);
}

const u32 = (...v: number[]) => Buffer.from(new Uint32Array(v).buffer);
const ui = (s: string) => str(s, 'UI');
const implicitIds = () =>
  Buffer.concat([iel(0x00080016, ui(SOP_CLASS)), iel(0x00080018, ui(SOP_INSTANCE))]);
const explicitIds = () => Buffer.concat([el(0x00080016, 'UI', ui(SOP_CLASS)), el(0x00080018, 'UI', ui(SOP_INSTANCE))]);

t.test('Implicit VR LE: dictionary VRs, sequences re-written with undefined lengths, private UN, group lengths dropped', async (t) => {
  const big = Buffer.alloc(70_000);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
  const nestedImplicit = Buffer.concat([iel(0x00081150, ui('1.2.3')), iel(0x00081155, ui('1.2.3.4'))]);
  const input = Buffer.concat([
    iel(0x00080000, u32(999)), // group length, wrong on purpose: dropped
    implicitIds(),
    iel(0x00080060, str('CT')),
    // Defined-length sequence, defined-length item, holding an undefined-length sequence of an undefined-length item.
    iel(
      0x00081115,
      item(Buffer.concat([iel(0x0008114a, Buffer.alloc(0), UNDEFINED), item(nestedImplicit, UNDEFINED), ITEM_DELIMITER, SEQUENCE_DELIMITER, iel(0x0020000e, ui('2.25.9'))])),
    ),
    iel(0x00090010, str('CREATOR')),
    iel(0x00091001, Buffer.from([1, 2, 3, 4])),
    // Private undefined-length value in Implicit VR: a sequence (PS3.5 7.5.1).
    iel(0x00091002, Buffer.alloc(0), UNDEFINED), item(iel(0x00100020, str('X')), UNDEFINED), ITEM_DELIMITER, SEQUENCE_DELIMITER,
    // Private defined-length value: opaque bytes (UN), whatever they hold.
    iel(0x00091003, item(iel(0x00100020, str('Y')))),
    iel(0x00100010, str('DOE^JOHN')),
    iel(0x0020000d, ui(STUDY)),
    iel(0x0020000e, ui(SERIES)),
    iel(0x00280000, u32(4)),
    iel(0x00280103, u16(1)),
    iel(0x00280106, u16(0xfff0)), // US or SS: SS, PixelRepresentation is 1
    iel(0x00280107), // empty US or SS: US
    iel(0x00281050, str('40')),
    iel(0x0040a132, big), // UL value over 0xFFFF bytes: UN (PS3.5 6.2.2)
    iel(0x7fe00010, u16(1, 2, 3, 4)), // Pixel Data in Implicit VR: OW (PS3.5 A.1)
  ]);
  const expected = Buffer.concat([
    explicitIds(),
    el(0x00080060, 'CS', str('CT')),
    seq(0x00081115, Buffer.concat([seq(0x0008114a, Buffer.concat([el(0x00081150, 'UI', ui('1.2.3')), el(0x00081155, 'UI', ui('1.2.3.4'))])), el(0x0020000e, 'UI', ui('2.25.9'))])),
    el(0x00090010, 'LO', str('CREATOR')),
    el(0x00091001, 'UN', Buffer.from([1, 2, 3, 4])),
    seq(0x00091002, el(0x00100020, 'LO', str('X'))),
    el(0x00091003, 'UN', item(iel(0x00100020, str('Y')))),
    el(0x00100010, 'PN', str('DOE^JOHN')),
    el(0x0020000d, 'UI', ui(STUDY)),
    el(0x0020000e, 'UI', ui(SERIES)),
    el(0x00280103, 'US', u16(1)),
    el(0x00280106, 'SS', u16(0xfff0)),
    el(0x00280107, 'US'),
    el(0x00281050, 'DS', str('40')),
    el(0x0040a132, 'UN', big),
    el(0x7fe00010, 'OW', u16(1, 2, 3, 4)),
  ]);
  const file = part10(IMPLICIT_LE, input);
  const { out, size } = await reencode(file);
  t.equal(size, out.length, 'planned size is the streamed size');
  sameBytes(t, out, part10(EXPLICIT_LE, expected), 'Explicit VR LE form');

  const before = await parsed(file);
  const after = await parsed(out);
  t.equal(after.transferSyntaxUID, EXPLICIT_LE);
  t.same(after.dataset, before.dataset, 'same DICOM JSON');
  t.match(after.dataset, { '00280106': { vr: 'SS', Value: [-16] }, '00280107': { vr: 'US' }, '00091003': { vr: 'UN' } });
  t.same(after.bulk?.map((b) => [b.path, b.vr]), [[['0040A132'], 'UL']], 'the UN value reads back as the dictionary UL, as bulk data');
});

t.test('Implicit VR LE: US or SS follows the PixelRepresentation of its own dataset', async (t) => {
  const inItem = (pr: number) => Buffer.concat([iel(0x00280103, u16(pr)), iel(0x00280106, u16(5))]);
  const input = Buffer.concat([
    implicitIds(),
    iel(0x00081115, Buffer.alloc(0), UNDEFINED),
    item(inItem(1), UNDEFINED), ITEM_DELIMITER,
    item(iel(0x00280106, u16(5)), UNDEFINED), ITEM_DELIMITER, // no PixelRepresentation of its own: US
    SEQUENCE_DELIMITER,
    iel(0x00280106, u16(5)), // top level has none: US
  ]);
  const expectedItem = (pr: number) => Buffer.concat([el(0x00280103, 'US', u16(pr)), el(0x00280106, 'SS', u16(5))]);
  const expected = Buffer.concat([explicitIds(), seq(0x00081115, expectedItem(1), el(0x00280106, 'US', u16(5))), el(0x00280106, 'US', u16(5))]);
  const file = part10(IMPLICIT_LE, input);
  sameBytes(t, (await reencode(file)).out, part10(EXPLICIT_LE, expected), 'xs resolved per dataset');
  t.same((await parsed((await reencode(file)).out)).dataset, (await parsed(file)).dataset);
});

/** Explicit VR Big Endian item and delimiters: tag and length big endian (PS3.5 7.5, A.3). */
function itemBE(content: Buffer, length = content.length): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0xfffe, 0);
  h.writeUInt16BE(0xe000, 2);
  h.writeUInt32BE(length >>> 0, 4);
  return Buffer.concat([h, content]);
}
const markerBE = (element: number) => Buffer.from([0xff, 0xfe, element >> 8, element & 0xff, 0, 0, 0, 0]);

t.test('Explicit VR BE: every value swapped by its VR, byte streams untouched', async (t) => {
  // [VR, big endian value, little endian value]
  const values: [string, Buffer, Buffer][] = [
    ['US', Buffer.from('1234abcd', 'hex'), Buffer.from('3412cdab', 'hex')],
    ['SS', Buffer.from('fffe', 'hex'), Buffer.from('feff', 'hex')],
    ['UL', Buffer.from('0102030405060708', 'hex'), Buffer.from('0403020108070605', 'hex')],
    ['SL', Buffer.from('fffffffe', 'hex'), Buffer.from('feffffff', 'hex')],
    ['FL', Buffer.from('3fc00000', 'hex'), Buffer.from('0000c03f', 'hex')],
    ['FD', Buffer.from('3ff8000000000000', 'hex'), Buffer.from('000000000000f83f', 'hex')],
    ['AT', Buffer.from('00100020', 'hex'), Buffer.from('10002000', 'hex')], // (0010,0020): group and element each swapped
    ['OW', Buffer.from('0102030405060708', 'hex'), Buffer.from('0201040306050807', 'hex')],
    ['OF', Buffer.from('0102030405060708', 'hex'), Buffer.from('0403020108070605', 'hex')],
    ['OL', Buffer.from('0102030405060708', 'hex'), Buffer.from('0403020108070605', 'hex')],
    ['OD', Buffer.from('0102030405060708', 'hex'), Buffer.from('0807060504030201', 'hex')],
    ['SV', Buffer.from('0102030405060708', 'hex'), Buffer.from('0807060504030201', 'hex')],
    ['UV', Buffer.from('0102030405060708', 'hex'), Buffer.from('0807060504030201', 'hex')],
    ['OV', Buffer.from('0102030405060708', 'hex'), Buffer.from('0807060504030201', 'hex')],
    ['OB', Buffer.from('0102030405060708', 'hex'), Buffer.from('0102030405060708', 'hex')],
    ['UN', Buffer.from('0102030405060708', 'hex'), Buffer.from('0102030405060708', 'hex')],
    ['LO', str('ABCD'), str('ABCD')],
  ];
  const beIds = Buffer.concat([elBE(0x00080016, 'UI', ui(SOP_CLASS)), elBE(0x00080018, 'UI', ui(SOP_INSTANCE))]);
  const privateBE = values.map(([vr, be], i) => elBE(0x00191001 + i, vr, be));
  const privateLE = values.map(([vr, , le], i) => el(0x00191001 + i, vr, le));
  const inner = elBE(0x00280010, 'US', Buffer.from('0100', 'hex'));
  const input = Buffer.concat([
    beIds,
    elBE(0x00190000, 'UL', Buffer.from('00000010', 'hex')), // group length: dropped
    elBE(0x00190010, 'LO', str('CREATOR')),
    ...privateBE,
    // A defined-length sequence of a defined-length item, and an undefined-length one, big endian inside.
    elBE(0x00400260, 'SQ', itemBE(inner)),
    elBE(0x00400275, 'SQ'), // placeholder replaced below with undefined length
    itemBE(inner, UNDEFINED), markerBE(0xe00d), markerBE(0xe0dd),
    elBE(0x7fe00010, 'OW', Buffer.from('a1b2c3d4', 'hex')),
  ]);
  // elBE writes the value length: patch the second sequence to undefined length.
  const undefinedAt = input.indexOf(Buffer.from([0x00, 0x40, 0x02, 0x75, 0x53, 0x51]));
  input.writeUInt32BE(UNDEFINED, undefinedAt + 8);
  const innerLE = el(0x00280010, 'US', Buffer.from('0001', 'hex'));
  const expected = Buffer.concat([
    explicitIds(),
    el(0x00190010, 'LO', str('CREATOR')),
    ...privateLE,
    seq(0x00400260, innerLE),
    seq(0x00400275, innerLE),
    el(0x7fe00010, 'OW', Buffer.from('b2a1d4c3', 'hex')),
  ]);
  const file = part10(EXPLICIT_BE, input);
  const { out } = await reencode(file);
  sameBytes(t, out, part10(EXPLICIT_LE, expected), 'Explicit VR LE form');
  const before = await parsed(file);
  const after = await parsed(out);
  t.same(after.dataset, before.dataset, 'same DICOM JSON');
  t.match(after.dataset, { '00191001': { vr: 'US', Value: [0x1234, 0xabcd] }, '00191006': { vr: 'FD', Value: [1.5] }, '00191007': { vr: 'AT', Value: ['00100020'] } });
});

t.test('a value larger than one piece streams in pieces, swapped across piece boundaries, and chunks() repeats', async (t) => {
  const pixels = randomBytes(3 * PIECE + 6);
  const beIds = Buffer.concat([elBE(0x00080016, 'UI', ui(SOP_CLASS)), elBE(0x00080018, 'UI', ui(SOP_INSTANCE))]);
  const file = part10(EXPLICIT_BE, Buffer.concat([beIds, elBE(0x7fe00010, 'OW', pixels)]));
  const first = await reencode(file);
  const swapped = Buffer.from(pixels).swap16();
  sameBytes(t, first.out, part10(EXPLICIT_LE, Buffer.concat([explicitIds(), el(0x7fe00010, 'OW', swapped)])), 'swapped in 2-byte units');
  t.ok(Math.max(...first.chunks.map((c) => c.length)) <= PIECE, 'no chunk larger than one piece');
  t.ok(first.chunks.length >= 4, 'several chunks');
  sameBytes(t, (await reencode(file)).out, first.out, 'a second run gives the same bytes');
});

t.test('the File Meta group: preamble kept, Transfer Syntax UID replaced, group length recomputed', async (t) => {
  const preamble = Buffer.alloc(128);
  preamble.write('II*\0', 0, 'latin1'); // a TIFF header (dual-format file, PS3.10 7.5)
  const file = part10(IMPLICIT_LE, Buffer.concat([implicitIds(), iel(0x00100010, str('A'))]), preamble);
  const { out } = await reencode(file);
  sameBytes(t, out.subarray(0, 128), preamble, 'preamble');
  sameBytes(t, out, part10(EXPLICIT_LE, Buffer.concat([explicitIds(), el(0x00100010, 'PN', str('A'))]), preamble), 'whole file');
  const groupLength = out.readUInt32LE(132 + 8);
  t.equal(out.readUInt16LE(132 + 12 + groupLength), 0x0008, 'the dataset starts right after the group (0002,0000) measures');
});

t.test('refuses what it cannot re-encode', async (t) => {
  await t.rejects(reencodeToExplicitLittleEndian(bufferSource(Buffer.alloc(200)), transferSyntax('1.2.840.10008.1.2.5')!, TEST_LIMITS), /not supported/);
  const truncated = part10(IMPLICIT_LE, Buffer.concat([implicitIds(), iel(0x00100010, str('ABCDEF')).subarray(0, 10)]));
  await t.rejects(reencodeToExplicitLittleEndian(bufferSource(truncated), transferSyntax(IMPLICIT_LE)!, TEST_LIMITS), /runs past the end/);
});

t.test('corpus: every Implicit VR LE and Explicit VR BE file the reader accepts reads back the same as Explicit VR LE', async (t) => {
  let implicit = 0;
  let bigEndian = 0;
  for (const row of indexRows()) {
    if (row.transferSyntax !== 'Implicit VR Little Endian' && row.transferSyntax !== 'Explicit VR Big Endian') continue;
    const file = testFile(row.path);
    const r = await read(file);
    if (!r.ok) continue; // refused at STOW: never stored, never retrieved (corpus.test.ts lists why)
    const { out, size } = await reencode(file);
    t.equal(size, out.length, `${row.path}: planned size`);
    await expectSameObjectAsExplicitLE(t, out, file, row.path);
    if (r.instance.transferSyntaxUID === IMPLICIT_LE) implicit++;
    else bigEndian++;
  }
  t.ok(implicit >= 15, `${implicit} Implicit VR LE files`);
  t.ok(bigEndian >= 8, `${bigEndian} Explicit VR BE files`);
});
