// DICOM JSON -> PS3.19 Native DICOM Model: exact output for a small dataset, safe escaping of hostile values
// (SECURITY.md section 8 case 34), and well-formed documents for real objects of the corpus.

import t from 'tap';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import { escapeAttribute, escapeText, toNativeDicomXml } from '../../src/dicom/xml-model.js';
import { testFile } from '../helpers/testdata.js';
import { accepted } from './read.js';
import { parseXml, type XmlElement } from './xml-check.js';

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM" xml:space="preserve">';

t.test('exact document for a small dataset', async (t) => {
  const ds: DicomJsonDataset = {
    '0020000D': { vr: 'UI', Value: ['1.2.3'] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }] },
    '00080008': { vr: 'CS', Value: ['ORIGINAL', null, 'AXIAL'] },
    '00080050': { vr: 'SH' },
    '00180050': { vr: 'DS', Value: [2.5] },
    '00081199': { vr: 'SQ', Value: [{}, { '00081155': { vr: 'UI', Value: ['1.2.4'] } }] },
    '00090010': { vr: 'LO', Value: ['ACME'] },
    '00091001': { vr: 'OB', InlineBinary: 'AQI=' },
    '7FE00010': { vr: 'OB', BulkDataURI: 'https://x/bulk?a=1&b=2' },
    '00100020': { vr: 'LO', Value: ['ID'] },
    '00091000': { vr: 'UN' },
  };
  // Keys deliberately out of order: the document lists them ascending. (0009,0010) reserves (0009,10xx) for "ACME".
  t.equal(
    toNativeDicomXml(ds),
    HEAD +
      '<DicomAttribute tag="00080008" vr="CS" keyword="ImageType"><Value number="1">ORIGINAL</Value><Value number="3">AXIAL</Value></DicomAttribute>' +
      '<DicomAttribute tag="00080050" vr="SH" keyword="AccessionNumber"/>' +
      '<DicomAttribute tag="00081199" vr="SQ" keyword="ReferencedSOPSequence"><Item number="1"></Item><Item number="2">' +
      '<DicomAttribute tag="00081155" vr="UI" keyword="ReferencedSOPInstanceUID"><Value number="1">1.2.4</Value></DicomAttribute></Item></DicomAttribute>' +
      '<DicomAttribute tag="00090010" vr="LO"><Value number="1">ACME</Value></DicomAttribute>' +
      '<DicomAttribute tag="00091000" vr="UN" privateCreator="ACME"/>' +
      '<DicomAttribute tag="00091001" vr="OB" privateCreator="ACME"><InlineBinary>AQI=</InlineBinary></DicomAttribute>' +
      '<DicomAttribute tag="00100010" vr="PN" keyword="PatientName"><PersonName number="1">' +
      '<Alphabetic><FamilyName>Yamada</FamilyName><GivenName>Tarou</GivenName></Alphabetic>' +
      '<Ideographic><FamilyName>山田</FamilyName><GivenName>太郎</GivenName></Ideographic>' +
      '<Phonetic><FamilyName>やまだ</FamilyName><GivenName>たろう</GivenName></Phonetic></PersonName></DicomAttribute>' +
      '<DicomAttribute tag="00100020" vr="LO" keyword="PatientID"><Value number="1">ID</Value></DicomAttribute>' +
      '<DicomAttribute tag="00180050" vr="DS" keyword="SliceThickness"><Value number="1">2.5</Value></DicomAttribute>' +
      '<DicomAttribute tag="0020000D" vr="UI" keyword="StudyInstanceUID"><Value number="1">1.2.3</Value></DicomAttribute>' +
      '<DicomAttribute tag="7FE00010" vr="OB" keyword="PixelData"><BulkData uri="https://x/bulk?a=1&amp;b=2"/></DicomAttribute>' +
      '</NativeDicomModel>\n',
  );
});

t.test('PN components: all five, empty ones omitted', async (t) => {
  const xml = toNativeDicomXml({ '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe^^Q^Dr^Jr^extra' }] } });
  t.match(
    xml,
    '<Alphabetic><FamilyName>Doe</FamilyName><MiddleName>Q</MiddleName><NamePrefix>Dr</NamePrefix><NameSuffix>Jr^extra</NameSuffix></Alphabetic>',
  );
});

function attribute(root: XmlElement, tag: string): XmlElement {
  const found = root.children.find((c) => c.attrs.tag === tag);
  if (!found) throw new Error(`no DicomAttribute ${tag}`);
  return found;
}

t.test('hostile values: escaped, well-formed, and they read back', async (t) => {
  const nasty = 'A<b>&amp;]]>"\'\r\nC\0D\u0001\uD800E\uFFFE';
  const xml = toNativeDicomXml({
    '00100020': { vr: 'LO', Value: [nasty] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: '<Family>^Gi&ven' }] },
    '7FE00010': { vr: 'OB', BulkDataURI: 'x"y\'z<\n>' },
  });
  const root = parseXml(xml); // throws if not well-formed
  t.equal(root.name, 'NativeDicomModel');
  t.equal(attribute(root, '00100020').children[0]!.text, 'A<b>&amp;]]>"\'\r\nC\uFFFDD\uFFFD\uFFFDE\uFFFD', 'CR kept, forbidden characters replaced');
  const pn = attribute(root, '00100010').children[0]!.children[0]!;
  t.same(pn.children.map((c) => [c.name, c.text]), [['FamilyName', '<Family>'], ['GivenName', 'Gi&ven']]);
  t.equal(attribute(root, '7FE00010').children[0]!.attrs.uri, 'x"y\'z<\n>');
  t.notMatch(xml, /\0/);
  t.notMatch(xml.replace(/<\/?[A-Za-z][^>]*>/g, ''), /]]>|<(?!\?)/, 'no raw ]]> or < left in text');
});

t.test('escape helpers', async (t) => {
  t.equal(escapeText('a&b<c>d\re]]>'), 'a&amp;b&lt;c&gt;d&#13;e]]&gt;');
  t.equal(escapeAttribute('"\'\t\n'), '&quot;&apos;&#9;&#10;');
});

t.test('the checker itself rejects broken documents', async (t) => {
  t.throws(() => parseXml('<a><b></a></b>'));
  t.throws(() => parseXml('<a>x & y</a>'));
  t.throws(() => parseXml('<a>]]></a>'));
  t.throws(() => parseXml('<a x="<"/>'));
  t.throws(() => parseXml('<a>\u0000</a>'));
  t.throws(() => parseXml('<a/><b/>'));
  t.same(parseXml('<a x="1&amp;2">t&#13;</a>'), { name: 'a', attrs: { x: '1&2' }, children: [], text: 't\r' });
});

for (const file of [
  'pydicom/charset_files/chrH32.dcm',
  'pydicom/charset_files/chrSQEncoding.dcm',
  'pydicom/test_files/test-SR.dcm',
  'pydicom/test_files/rtplan.dcm',
  'pydicom/test_files/waveform_ecg.dcm',
  'heudiconv/phantom.dcm',
  'generated/ct-2studies/study002/series01/0001.dcm',
]) {
  t.test(`corpus object as XML: ${file}`, async (t) => {
    const { dataset } = await accepted(testFile(file));
    const root = parseXml(toNativeDicomXml(dataset));
    t.equal(root.children.length, Object.keys(dataset).length, 'one DicomAttribute per attribute');
    const pn = dataset['00100010']?.Value?.[0] as { Alphabetic?: string } | undefined;
    if (pn?.Alphabetic) {
      const family = attribute(root, '00100010').children[0]!.children[0]!.children[0]!;
      t.equal(family.text, pn.Alphabetic.split('^')[0], 'family name reads back');
    }
  });
}
