import t from 'tap';
import { stringifyDicomJson } from '../../src/dicom/json-serialize.js';

t.test('keys in ascending tag order at every level, integer-like tags included (PS3.18 F.2.1)', async (t) => {
  const ds = {
    '52009229': { vr: 'SQ', Value: [{ '30040002': { vr: 'CS', Value: ['GY'] }, '00209113': { vr: 'SQ', Value: [{}] } }] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' }] },
    '00280010': { vr: 'US', Value: [512] },
    '00080005': { vr: 'CS' },
    '7FE00010': { vr: 'OW', BulkDataURI: 'https://x/bulk' },
    '00091001': { vr: 'LT', Value: [null, 'a"b'] },
  };
  const text = stringifyDicomJson(ds);
  t.same(JSON.parse(text), ds, 'same content');
  const order = [...text.matchAll(/"([0-9A-F]{8})":/g)].map((m) => m[1]);
  t.same(order, ['00080005', '00091001', '00100010', '00280010', '52009229', '00209113', '30040002', '7FE00010']);
  t.equal(stringifyDicomJson([ds, {}]), `[${text},{}]`);
});
