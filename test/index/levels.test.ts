import t from 'tap';
import { attributeByKeyword, levelOfTag, returnedLevels, splitByLevel, tagOfKeyword } from '../../src/dicom/levels.js';

t.test('every attribute has one level (Study Root model, PS3.4 C.6.2)', (t) => {
  t.same(
    ['00100010', '00101010', '0020000D', '00080080', '00181000', '00080018', '00091001', '00102203', '7FE00010'].map(levelOfTag),
    ['patient', 'study', 'study', 'series', 'series', 'instance', 'instance', 'study', 'instance'],
  );
  t.equal(attributeByKeyword('StudyDescription')?.tag, '00081030');
  t.equal(attributeByKeyword('RequestedProcedureID'), undefined, 'item keys are not top-level attributes');
  t.equal(tagOfKeyword('RequestedProcedureID'), '00401001', 'but resolve inside a path');
  t.end();
});

t.test('splitByLevel keeps each level\'s own attributes and never a derived one', (t) => {
  const split = splitByLevel({
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe' }] },
    '00081030': { vr: 'LO', Value: ['desc'] },
    '00201208': { vr: 'IS', Value: [99] },
    '00080060': { vr: 'CS', Value: ['CT'] },
    '00280010': { vr: 'US', Value: [512] },
  });
  t.same(split, {
    patient: { '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe' }] } },
    study: { '00081030': { vr: 'LO', Value: ['desc'] } },
    series: { '00080060': { vr: 'CS', Value: ['CT'] } },
  });
  t.end();
});

t.test('returned levels per URL form (PS3.18 Table 10.6.3-2)', (t) => {
  t.same(returnedLevels('study', {}), ['patient', 'study']);
  t.same(returnedLevels('series', {}), ['patient', 'study', 'series']);
  t.same(returnedLevels('series', { studyInstanceUID: '1.2' }), ['series']);
  t.same(returnedLevels('instance', {}), ['patient', 'study', 'series', 'instance']);
  t.same(returnedLevels('instance', { studyInstanceUID: '1.2' }), ['series', 'instance']);
  t.same(returnedLevels('instance', { studyInstanceUID: '1.2', seriesInstanceUID: '1.2.3' }), ['instance']);
  t.end();
});
