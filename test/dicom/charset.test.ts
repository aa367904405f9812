// Specific Character Set decoding (PS3.3 C.12.1.1.2, PS3.5 6.1): every pydicom charset file, with the strings
// pydicom 2.3 documents for them (charset_files/FileInfo.txt, checked with pydicom.dcmread), and synthetic
// values for the sets the corpus lacks.

import t from 'tap';
import { charsetDecoder } from '../../src/dicom/charset.js';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import { testFile } from '../helpers/testdata.js';
import { accepted } from './read.js';
import { EXPLICIT_LE, el, ids, part10, seq, str } from './synthetic.js';

const DIR = 'pydicom/charset_files/';

/** (0008,0005) as stored (the JSON reports the original, never a rewrite) and (0010,0010). */
const FILES: Record<string, { charset: (string | null)[]; name: { Alphabetic?: string; Ideographic?: string; Phonetic?: string } }> = {
  'chrArab.dcm': { charset: ['ISO_IR 127'], name: { Alphabetic: 'قباني^لنزار' } },
  'chrFren.dcm': { charset: ['ISO_IR 100'], name: { Alphabetic: 'Buc^Jérôme' } },
  'chrFrenMulti.dcm': { charset: ['ISO_IR 100'], name: { Alphabetic: 'Buc^Jérôme' } },
  'chrGerm.dcm': { charset: ['ISO_IR 100'], name: { Alphabetic: 'Äneas^Rüdiger' } },
  'chrGreek.dcm': { charset: ['ISO_IR 126'], name: { Alphabetic: 'Διονυσιος' } },
  'chrH31.dcm': {
    charset: [null, 'ISO 2022 IR 87'],
    name: { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
  },
  'chrH32.dcm': {
    charset: ['ISO 2022 IR 13', 'ISO 2022 IR 87'],
    name: { Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
  },
  'chrHbrw.dcm': { charset: ['ISO_IR 138'], name: { Alphabetic: 'שרון^דבורה' } },
  'chrI2.dcm': {
    charset: [null, 'ISO 2022 IR 149'],
    name: { Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' },
  },
  'chrJapMulti.dcm': { charset: [null, 'ISO 2022 IR 87'], name: { Alphabetic: 'やまだ^たろう' } },
  'chrJapMultiExplicitIR6.dcm': { charset: ['ISO 2022 IR 6', 'ISO 2022 IR 87'], name: { Alphabetic: 'やまだ^たろう' } },
  'chrKoreanMulti.dcm': { charset: [null, 'ISO 2022 IR 149'], name: { Alphabetic: '김희중' } },
  'chrRuss.dcm': { charset: ['ISO_IR 144'], name: { Alphabetic: 'Люкceмбypг' } },
  'chrX1.dcm': { charset: ['ISO_IR 192'], name: { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小東' } },
  'chrX2.dcm': { charset: ['GB18030'], name: { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小东' } },
};

async function dataset(file: string): Promise<DicomJsonDataset> {
  return (await accepted(testFile(DIR + file))).dataset;
}

for (const [file, want] of Object.entries(FILES)) {
  t.test(file, async (t) => {
    const ds = await dataset(file);
    t.same(ds['00080005'], { vr: 'CS', Value: want.charset }, 'original Specific Character Set');
    t.same(ds['00100010'], { vr: 'PN', Value: [want.name] }, 'PatientName');
  });
}

t.test('multi-valued PN and LO are split after decoding (chrFrenMulti)', async (t) => {
  const ds = await dataset('chrFrenMulti.dcm');
  t.same(ds['00101001'], { vr: 'PN', Value: [{ Alphabetic: 'Buc^Jérôme' }, { Alphabetic: 'Buc^Jérôme' }] });
  t.same(ds['00101000'], { vr: 'LO', Value: ['eggs', 'spam'] });
});

t.test('ISO 2022 text in LT and multi-valued PN (chrJapMulti, chrKoreanMulti)', async (t) => {
  const jp = await dataset('chrJapMulti.dcm');
  t.same(jp['001021B0'], { vr: 'LT', Value: ['たろう'] });
  t.same(jp['00101001']?.Value, [{ Alphabetic: 'やまだ^たろう' }, { Alphabetic: 'やまだ^たろう' }]);
  t.same(jp['00081030'], { vr: 'LO', Value: ['Chest'] }, 'ASCII stays ASCII');
  const kr = await dataset('chrKoreanMulti.dcm');
  t.same(kr['001021B0'], { vr: 'LT', Value: ['김희중'] });
  t.same(kr['00081070'], { vr: 'PN', Value: [{ Alphabetic: '김희중' }] });
});

t.test('a sequence item with its own Specific Character Set (chrSQEncoding)', async (t) => {
  const ds = await dataset('chrSQEncoding.dcm');
  t.same(ds['00080005']?.Value, ['ISO_IR 192']);
  t.same(ds['00321032'], { vr: 'PN', Value: [{ Alphabetic: 'Doctor^Who^^MD' }] });
  const item = (ds['00321064']?.Value as DicomJsonDataset[])[0]!;
  t.same(item['00080005'], { vr: 'CS', Value: ['ISO 2022 IR 13', 'ISO 2022 IR 87'] });
  t.same(item['00100010']?.Value, [{ Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }]);
});

t.test('an item inherits the dataset Specific Character Set (chrSQEncoding1)', async (t) => {
  const ds = await dataset('chrSQEncoding1.dcm');
  const item = (ds['00321064']?.Value as DicomJsonDataset[])[0]!;
  t.equal(item['00080005'], undefined);
  t.same(item['00100010']?.Value, [{ Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }]);
});

t.test('UTF-8 generated corpus (ISO_IR 192)', async (t) => {
  const i = await accepted(testFile('generated/ct-2studies/study002/series01/0001.dcm'));
  t.same(i.dataset['00100010']?.Value, [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }]);
});

// Sets without a corpus file: expected strings checked with Python's codecs / pydicom.charset.
const bytes = (...b: (number | string)[]) =>
  Buffer.concat(b.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : Buffer.from([x]))));
const ESC = 0x1b;

t.test('single-byte sets without code extensions', async (t) => {
  t.equal(charsetDecoder(['ISO_IR 101'])(bytes(0xa3, 0xf3, 'd', 0xbc)), 'Łódź');
  t.equal(charsetDecoder(['ISO_IR 109'])(bytes(0xf8)), 'ĝ');
  t.equal(charsetDecoder(['ISO_IR 110'])(bytes(0xe0)), 'ā');
  t.equal(charsetDecoder(['ISO_IR 148'])(bytes(0xdd, 0xfe)), 'İş');
  t.equal(charsetDecoder(['ISO_IR 166'])(bytes(0xa1)), 'ก');
  t.equal(charsetDecoder(['ISO_IR 203'])(bytes(0xa4)), '€');
  t.equal(charsetDecoder(['ISO_IR 13'])(bytes(0xd4, 0xcf)), 'ﾔﾏ');
  t.equal(charsetDecoder(['ISO_IR 100'])(bytes(0x80, 0xe9)), '\u0080é', 'true ISO 8859-1, not windows-1252');
  t.equal(charsetDecoder([])(bytes('A', 0xe9)), 'Aé', 'no (0008,0005): default repertoire, lenient');
  t.equal(charsetDecoder(['NOT A CHARSET'])(bytes('A', 0xe9)), 'Aé', 'unknown term: ISO 8859-1');
  t.equal(charsetDecoder(['iso_ir_100'])(bytes(0xe9)), 'é', 'spelling variants');
});

t.test('multi-byte sets without code extensions', async (t) => {
  t.equal(charsetDecoder(['GBK'])(bytes(0xcd, 0xf5)), '王');
  t.equal(charsetDecoder(['GB18030'])(bytes(0xcd, 0xf5)), '王');
  t.equal(charsetDecoder(['ISO_IR 192'])(Buffer.from('Ærøskøbing', 'utf8')), 'Ærøskøbing');
});

t.test('ISO 2022 code extensions', async (t) => {
  t.equal(charsetDecoder(['', 'ISO 2022 IR 159'])(bytes(ESC, '$(D', 0x30, 0x21, ESC, '(B')), '丂', 'JIS X 0212');
  t.equal(charsetDecoder(['', 'ISO 2022 IR 58'])(bytes(ESC, '$)A', 0xcd, 0xf5, '^', ESC, '$)A', 0xd0, 0xa1)), '王^小', 'GB 2312');
  t.equal(
    charsetDecoder(['ISO 2022 IR 100', 'ISO 2022 IR 126'])(bytes('J', 0xe9, 'r', 0xf4, 'me ', ESC, '-F', 0xc4)),
    'Jérôme Δ',
    'Latin-1 in G1 by default, then Greek',
  );
  t.equal(charsetDecoder(['', 'ISO 2022 IR 87'])(bytes(ESC, '$B', 0x3b, 0x33, ESC, '(B', 'x')), '山x');
  t.equal(charsetDecoder(['', 'ISO 2022 IR 87'])(bytes('a', ESC, '%Z', 'b')), 'a%Zb', 'unknown escape: ESC dropped');
});

t.test('a GBK trail byte 0x5C is not a value delimiter', async (t) => {
  // "X乗Y\Z": 乗 is 81 5C in GBK; splitting the bytes first would cut the character in half.
  const value = Buffer.concat([bytes('X', 0x81, 0x5c, 'Y\\Z')]);
  const ds = Buffer.concat([el(0x00080005, 'CS', str('GBK', 'CS')), ids(), el(0x00100020, 'LO', str(value.toString('latin1')))]);
  const i = await accepted(part10(EXPLICIT_LE, ds));
  t.same(i.dataset['00100020'], { vr: 'LO', Value: ['X乗Y', 'Z'] });
});

t.test('nested items inherit, and may override, the character set', async (t) => {
  const greek = bytes(0xc4);
  const ds = Buffer.concat([
    el(0x00080005, 'CS', str('ISO_IR 126', 'CS')),
    ids(),
    seq(
      0x00400275,
      el(0x00321032, 'PN', str(greek.toString('latin1'), 'PN')),
      Buffer.concat([el(0x00080005, 'CS', str('ISO_IR 100', 'CS')), el(0x00321032, 'PN', str(greek.toString('latin1'), 'PN'))]),
    ),
  ]);
  const items = (await accepted(part10(EXPLICIT_LE, ds))).dataset['00400275']?.Value as DicomJsonDataset[];
  t.same(items[0]!['00321032']?.Value, [{ Alphabetic: 'Δ' }], 'inherited ISO_IR 126');
  t.same(items[1]!['00321032']?.Value, [{ Alphabetic: 'Ä' }], 'own ISO_IR 100');
});
