// Element bytes -> DICOM JSON Model (PS3.18 Annex F), through the whole reader on small synthetic objects.

import t from 'tap';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import { accepted } from './read.js';
import {
  EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, ITEM_DELIMITER, SEQUENCE_DELIMITER, UNDEFINED, el, elBE, ids, iel, item, part10,
  seq, str, u16,
} from './synthetic.js';

async function dataset(...elements: Buffer[]): Promise<DicomJsonDataset> {
  return (await accepted(part10(EXPLICIT_LE, Buffer.concat([ids(), ...elements])))).dataset;
}

const f32 = (...v: number[]) => Buffer.from(new Float32Array(v).buffer);
const f64 = (...v: number[]) => Buffer.from(new Float64Array(v).buffer);
const i16 = (...v: number[]) => Buffer.from(new Int16Array(v).buffer);
const u32 = (...v: number[]) => Buffer.from(new Uint32Array(v).buffer);
const i32 = (...v: number[]) => Buffer.from(new Int32Array(v).buffer);
const i64 = (...v: bigint[]) => Buffer.from(new BigInt64Array(v).buffer);
const u64 = (...v: bigint[]) => Buffer.from(new BigUint64Array(v).buffer);

t.test('DS and IS are numbers when they parse, strings otherwise, null when empty (F.2.3.1, F.2.5)', async (t) => {
  const ds = await dataset(
    el(0x00180050, 'DS', str(' 1.5\\2.000000\\\\-3e2')),
    el(0x00200013, 'IS', str('12\\+3')),
    el(0x00201041, 'DS', str('1A')),
    el(0x00201002, 'IS', str('0x10')),
  );
  t.same(ds['00180050'], { vr: 'DS', Value: [1.5, 2, null, -300] });
  t.same(ds['00200013'], { vr: 'IS', Value: [12, 3] });
  t.same(ds['00201041'], { vr: 'DS', Value: ['1A'] }, 'invalid DS kept as found (pydicom badVR.dcm has one)');
  t.same(ds['00201002'], { vr: 'IS', Value: ['0x10'] }, 'not an IS even though Number() would take it');
});

t.test('empty elements are { vr } only; empty values inside multi-valued ones are null', async (t) => {
  const ds = await dataset(
    el(0x00080050, 'SH'),
    el(0x00080060, 'CS', str('  ')),
    el(0x00080008, 'CS', str('ORIGINAL\\\\AXIAL')),
    el(0x00081030, 'LO', str('\\')),
    el(0x00280010, 'US'),
    el(0x00091010, 'OB'),
  );
  t.same(ds['00080050'], { vr: 'SH' });
  t.same(ds['00080060'], { vr: 'CS' }, 'padding only');
  t.same(ds['00080008'], { vr: 'CS', Value: ['ORIGINAL', null, 'AXIAL'] });
  t.same(ds['00081030'], { vr: 'LO' }, 'two empty values: nothing');
  t.same(ds['00280010'], { vr: 'US' });
  t.same(ds['00091010'], { vr: 'OB' });
});

t.test('PN is an object of its non-empty component groups (F.2.2)', async (t) => {
  const ds = await dataset(
    el(0x00100010, 'PN', str('Doe^John\\\\=Yamada')),
    el(0x00081070, 'PN', str('Smith^Ann=^=')),
    el(0x00080090, 'PN', str('^^^^')),
  );
  t.same(ds['00100010'], { vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }, null, { Ideographic: 'Yamada' }] });
  t.same(ds['00081070'], { vr: 'PN', Value: [{ Alphabetic: 'Smith^Ann', Ideographic: '^' }] });
  t.same(ds['00080090'], { vr: 'PN', Value: [{ Alphabetic: '^^^^' }] }, 'kept as written, as pydicom does');
});

t.test('text VRs: padding, backslashes, leading spaces (PS3.5 6.2)', async (t) => {
  const ds = await dataset(
    el(0x00081030, 'LO', str('  Head  ')),
    el(0x00204000, 'LT', str('  line 1\r\nA\\B  ')),
    el(0x0020000d, 'UI', str('1.2.3', 'UI')),
    el(0x00081190, 'UR', str('http://x/y ')),
  );
  t.same(ds['00081030'], { vr: 'LO', Value: ['Head'] }, 'LO: both ends trimmed');
  t.same(ds['00204000'], { vr: 'LT', Value: ['  line 1\r\nA\\B'] }, 'LT: one value, leading spaces and backslash kept');
  t.same(ds['0020000D'], { vr: 'UI', Value: ['1.2.3'] }, 'UI: NUL padding removed');
  t.same(ds['00081190'], { vr: 'UR', Value: ['http://x/y'] });
});

t.test('binary numbers, AT, and values JSON cannot hold exactly', async (t) => {
  const at = Buffer.alloc(8);
  at.writeUInt16LE(0x0010, 0);
  at.writeUInt16LE(0x0010, 2);
  at.writeUInt16LE(0x7fe0, 4);
  at.writeUInt16LE(0x0010, 6);
  const ds = await dataset(
    el(0x00209165, 'AT', at),
    el(0x00280010, 'US', u16(1, 65535)),
    el(0x00280106, 'SS', i16(-5)),
    el(0x00181310, 'UL', u32(4294967295)),
    el(0x00186020, 'SL', i32(-7)),
    el(0x00189087, 'FL', f32(0.5, Number.NaN)),
    el(0x00189089, 'FD', f64(1.25, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)),
    el(0x00660040, 'SV', i64(-2n, 9007199254740993n)),
    el(0x00660041, 'UV', u64(18446744073709551615n)),
  );
  t.same(ds['00209165'], { vr: 'AT', Value: ['00100010', '7FE00010'] });
  t.same(ds['00280010'], { vr: 'US', Value: [1, 65535] });
  t.same(ds['00280106'], { vr: 'SS', Value: [-5] });
  t.same(ds['00181310'], { vr: 'UL', Value: [4294967295] });
  t.same(ds['00186020'], { vr: 'SL', Value: [-7] });
  t.same(ds['00189087'], { vr: 'FL', Value: [0.5, 'NaN'] });
  t.same(ds['00189089'], { vr: 'FD', Value: [1.25, 'Infinity', '-Infinity'] });
  t.same(ds['00660040'], { vr: 'SV', Value: [-2, '9007199254740993'] }, 'beyond 2^53 as a string');
  t.same(ds['00660041'], { vr: 'UV', Value: ['18446744073709551615'] });
});

t.test('small binary values are InlineBinary (F.2.7)', async (t) => {
  const ds = await dataset(el(0x00091010, 'OB', Buffer.from([1, 2, 3, 0])), el(0x00283006, 'OW', u16(0x0102)));
  t.same(ds['00091010'], { vr: 'OB', InlineBinary: 'AQIDAA==' });
  t.same(ds['00283006'], { vr: 'OW', InlineBinary: Buffer.from([0x02, 0x01]).toString('base64') });
});

t.test('Explicit VR Big Endian: numbers read big endian, OW returned little endian', async (t) => {
  const ds = Buffer.concat([
    elBE(0x00080016, 'UI', str('1.2.840.10008.5.1.4.1.1.7', 'UI')),
    elBE(0x00280010, 'US', Buffer.from([0x01, 0x02])),
    elBE(0x00283006, 'OW', Buffer.from([0x01, 0x02, 0x03, 0x04])),
  ]);
  const i = await accepted(part10(EXPLICIT_BE, ds));
  t.same(i.dataset['00280010'], { vr: 'US', Value: [0x0102] });
  t.same(i.dataset['00283006'], { vr: 'OW', InlineBinary: Buffer.from([0x02, 0x01, 0x04, 0x03]).toString('base64') });
});

t.test('sequences: items, empty items, empty sequences, defined and undefined lengths', async (t) => {
  const definedItem = item(el(0x00100020, 'LO', str('ID1')));
  const ds = await dataset(
    el(0x00081115, 'SQ', definedItem, definedItem.length),
    seq(0x00081140),
    seq(0x00081199, Buffer.alloc(0), el(0x00081155, 'UI', str('1.2', 'UI'))),
  );
  t.same(ds['00081115'], { vr: 'SQ', Value: [{ '00100020': { vr: 'LO', Value: ['ID1'] } }] });
  t.same(ds['00081140'], { vr: 'SQ' }, 'no items: { vr } only');
  t.same(ds['00081199'], { vr: 'SQ', Value: [{}, { '00081155': { vr: 'UI', Value: ['1.2'] } }] }, 'empty item = {}');
});

t.test('UN: known tags read with their dictionary VR, UN sequences parsed as implicit VR (PS3.5 6.2.2)', async (t) => {
  const ds = await dataset(
    el(0x00100010, 'UN', Buffer.from('DOE^JOHN')),
    el(0x00400275, 'UN', Buffer.alloc(0), UNDEFINED),
    item(Buffer.alloc(0), UNDEFINED),
    iel(0x00400009, str('SPS1', 'SH')),
    ITEM_DELIMITER,
    SEQUENCE_DELIMITER,
    el(0x00291010, 'UN', Buffer.from([1, 2])),
  );
  t.same(ds['00100010'], { vr: 'PN', Value: [{ Alphabetic: 'DOE^JOHN' }] });
  t.same(ds['00400275'], { vr: 'SQ', Value: [{ '00400009': { vr: 'SH', Value: ['SPS1'] } }] });
  t.same(ds['00291010'], { vr: 'UN', InlineBinary: 'AQI=' }, 'private: stays UN');
});

t.test('never in the dataset: group lengths, File Meta elements, trailing padding (F.2)', async (t) => {
  const ds = await dataset(
    el(0x00020010, 'UI', str('1.2.840.10008.1.2.1', 'UI')),
    el(0x00100000, 'UL', u32(10)),
    el(0x00100010, 'PN', str('A^B')),
    el(0xfffcfffc, 'OB', Buffer.alloc(4)),
  );
  t.same(Object.keys(ds).sort(), ['00080016', '00080018', '00100010']);
});

t.test('Implicit VR: VRs from the dictionary, US-or-SS from PixelRepresentation, private creators LO', async (t) => {
  const body = (pixelRepresentation: number) =>
    Buffer.concat([
      iel(0x00080016, str('1.2.840.10008.5.1.4.1.1.7', 'UI')),
      iel(0x00100010, str('DOE^J', 'PN')),
      iel(0x00110010, str('ACME', 'LO')),
      iel(0x00111001, Buffer.from([1, 2])),
      iel(0x00280103, u16(pixelRepresentation)),
      iel(0x00280106, Buffer.from(i16(-2))),
    ]);
  const signed = (await accepted(part10(IMPLICIT_LE, body(1)))).dataset;
  t.same(signed['00100010'], { vr: 'PN', Value: [{ Alphabetic: 'DOE^J' }] });
  t.same(signed['00110010'], { vr: 'LO', Value: ['ACME'] });
  t.same(signed['00111001'], { vr: 'UN', InlineBinary: 'AQI=' });
  t.same(signed['00280106'], { vr: 'SS', Value: [-2] });
  const unsigned = (await accepted(part10(IMPLICIT_LE, body(0)))).dataset;
  t.same(unsigned['00280106'], { vr: 'US', Value: [65534] });
});

t.test('the four UIDs and the media storage UIDs are surfaced', async (t) => {
  const i = await accepted(
    part10(EXPLICIT_LE, Buffer.concat([ids(), el(0x0020000d, 'UI', str('2.25.7', 'UI')), el(0x0020000e, 'UI', str('2.25.8', 'UI'))])),
  );
  t.match(i, {
    transferSyntaxUID: EXPLICIT_LE,
    sopClassUID: '1.2.840.10008.5.1.4.1.1.7',
    sopInstanceUID: '2.25.100',
    studyInstanceUID: '2.25.7',
    seriesInstanceUID: '2.25.8',
    mediaStorageSOPClassUID: '1.2.840.10008.5.1.4.1.1.7',
    mediaStorageSOPInstanceUID: '2.25.100',
  });
});
