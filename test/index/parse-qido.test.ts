import t, { type Test } from 'tap';
import type { QueryLevel } from '../../src/index/query/ast.js';
import { parseQido, type QidoParams, type QidoScope } from '../../src/index/query/parse-qido.js';

const PAGING = { defaultLimit: 100, maxLimit: 1000 };
const parse = (params: QidoParams | string, level: QueryLevel = 'study', scope: QidoScope = {}) =>
  parseQido(level, scope, typeof params === 'string' ? new URLSearchParams(params) : params, PAGING);

/** Asserts a 400 INVALID_QUERY for the query string. */
function rejects(t: Test, query: string, level: QueryLevel = 'study') {
  t.throws(() => parse(query, level), { code: 'INVALID_QUERY', status: 400, expose: true }, `400: ${level}?${query}`);
}

t.test('attribute IDs: keyword or tag, the same filter', (t) => {
  const byKeyword = parse('PatientID=PAT1');
  const byTag = parse('00100020=PAT1');
  t.same(byKeyword.filters, [{ path: ['00100020'], vr: 'LO', level: 'patient', matcher: { kind: 'single', value: 'PAT1' } }]);
  t.same(byTag.filters, byKeyword.filters);
  t.same(parse('0020000d=1.2.3').filters[0]!.path, ['0020000D'], 'lower-case hex accepted, normalised');
  t.end();
});

t.test('malformed attribute IDs are rejected', (t) => {
  for (const key of ['0010,0010', '(0010,0010)', '.00100010', '-PatientName', 'Patient_Name', '00100010x', '0010001', '00400275..00400009', '00400275.', 'Patient Name', 'X-Y']) {
    rejects(t, `${encodeURIComponent(key)}=x`);
  }
  t.end();
});

t.test('unsupported parameters and attributes are ignored (PS3.18 8.3.4)', (t) => {
  const q = parse('accept=application%2Fdicom%2Bjson&charset=utf-8&_=123&token=x&patientname=x&orderby=StudyDate&FooBar=1&00100032=1200');
  t.same(q.filters, [], 'reserved, lower-case, unknown keywords and non-matching tags');
  t.same(q.includeFields, []);
  t.same(parse('Modality=CT').filters, [], 'a series key is not matched at the study level');
  t.same(parse('Modality=').includeFields, [], 'nor returned');
  t.same(parse('00181000=x', 'series').filters, [], 'a tag outside the table is not matched');
  t.same(parse('00181000=&00100032=', 'series').includeFields, ['00100032', '00181000'], 'but returned on universal matching');
  t.same(parse('RequestedProcedureID=RP1', 'series').filters, [], 'an item key alone is not a top-level key');
  t.same(parse('00400275.00400009.00100010=x', 'series').filters, [], 'nested sequences are not matched');
  t.same(parse('00081032.00080100=x', 'study').filters, [], 'a sequence without indexed items');
  t.end();
});

t.test('a key given twice is rejected', (t) => {
  rejects(t, 'PatientID=a&PatientID=b');
  rejects(t, 'PatientID=a&00100020=b');
  rejects(t, 'PatientID=a&00100020=a');
  rejects(t, '00400275.00400009=a&RequestAttributesSequence.ScheduledProcedureStepID=b', 'series');
  rejects(t, 'limit=1&limit=2');
  rejects(t, 'offset=1&offset=2');
  rejects(t, 'fuzzymatching=true&fuzzymatching=true');
  t.throws(() => parse({ PatientID: ['a', 'b'] }), { code: 'INVALID_QUERY' }, 'record form with an array');
  t.end();
});

t.test('UIDs and UID lists (PS3.4 C.2.2.2.2)', (t) => {
  t.same(parse('StudyInstanceUID=1.2.3').filters[0]!.matcher, { kind: 'single', value: '1.2.3' });
  t.same(parse('StudyInstanceUID=1.2.3,1.2.4').filters[0]!.matcher, { kind: 'uidList', values: ['1.2.3', '1.2.4'] });
  t.same(parse('StudyInstanceUID=1.2.3%5C1.2.4').filters[0]!.matcher, { kind: 'uidList', values: ['1.2.3', '1.2.4'] }, 'OHIF backslash');
  for (const bad of ['1.2.abc', '1.02', '1.2,,1.3', '1.2,', '*', '1.2*', '1.2.?', `1.${'2'.repeat(63)}`, '1.2%201.3']) {
    rejects(t, `StudyInstanceUID=${bad}`);
  }
  rejects(t, 'SOPInstanceUID=1.2*', 'instance');
  rejects(t, 'SeriesInstanceUID=x', 'series');
  t.throws(() => parse('', 'series', { studyInstanceUID: '1.2.x' }), { code: 'INVALID_UID', status: 400 });
  t.throws(() => parse('', 'instance', { studyInstanceUID: '1.2', seriesInstanceUID: '' }), { code: 'INVALID_UID' });
  t.same(parse('', 'instance', { studyInstanceUID: '1.2', seriesInstanceUID: '1.2.3' }).scope, { studyInstanceUID: '1.2', seriesInstanceUID: '1.2.3' });
  t.end();
});

t.test('DA, TM and DT: single values and ranges, normalised (PS3.4 C.2.2.2.5)', (t) => {
  const m = (query: string, level: QueryLevel = 'study') => parse(query, level).filters[0]!.matcher;
  t.same(m('StudyDate=20200115'), { kind: 'range', from: '20200115', to: '20200115' });
  t.same(m('StudyDate=20200101-20201231'), { kind: 'range', from: '20200101', to: '20201231' });
  t.same(m('StudyDate=-20201231'), { kind: 'range', to: '20201231' });
  t.same(m('StudyDate=20200101-'), { kind: 'range', from: '20200101' });
  t.same(m('StudyDate=20240229'), { kind: 'range', from: '20240229', to: '20240229' }, 'leap day');
  t.same(m('StudyTime=10'), { kind: 'range', from: '100000.000000', to: '105959.999999' });
  t.same(m('StudyTime=1015'), { kind: 'range', from: '101500.000000', to: '101559.999999' });
  t.same(m('StudyTime=101530.5'), { kind: 'range', from: '101530.500000', to: '101530.599999' });
  t.same(m('StudyTime=0800-1200'), { kind: 'range', from: '080000.000000', to: '120059.999999' });
  t.same(m('StudyTime=-0900'), { kind: 'range', to: '090059.999999' });
  t.same(m('AcquisitionDateTime=2020-2021', 'instance'), {
    kind: 'range',
    from: '20200101000000.000000',
    to: '20211231235959.999999',
  });
  t.same(m('AcquisitionDateTime=202002', 'instance'), { kind: 'range', from: '20200201000000.000000', to: '20200229235959.999999' });
  t.same(
    m('AcquisitionDateTime=20200101120000-0500', 'instance'),
    { kind: 'range', from: '20200101120000.000000', to: '20200101120000.999999' },
    'a whole value with a UTC offset is one value (offset dropped)',
  );
  t.same(
    m('AcquisitionDateTime=20200101-20200102%2B0100', 'instance'),
    { kind: 'range', from: '20200101000000.000000', to: '20200102235959.999999' },
  );
  t.same(parse('StudyDate=').includeFields, ['00080020'], 'empty: universal');
  t.same(m('StudyDate=20200115%20'), { kind: 'range', from: '20200115', to: '20200115' }, 'padding space ignored');

  for (const bad of ['2020', '20201301', '20200230', '20230229', '2020*', '*', '20200101-2020', '-', '20210101-20200101', '20200101-20200102-20200103', '2020-01-01', '2020 0101']) {
    rejects(t, `StudyDate=${encodeURIComponent(bad)}`);
  }
  for (const bad of ['25', '2400', '1260', '10:00', '1200-1100', '1*', '101010.1234567', '1']) {
    rejects(t, `StudyTime=${encodeURIComponent(bad)}`);
  }
  for (const bad of ['20201301', '2020+2500', '202001011', '2021-2020', 'x']) {
    rejects(t, `AcquisitionDateTime=${encodeURIComponent(bad)}`, 'instance');
  }
  t.end();
});

t.test('IS keys are integers', (t) => {
  t.same(parse('SeriesNumber=%2B007', 'series').filters[0]!.matcher, { kind: 'single', value: '7' });
  t.same(parse('InstanceNumber=-3', 'instance').filters[0]!.matcher, { kind: 'single', value: '-3' });
  for (const bad of ['abc', '1.5', '*', '1,2', '1e3', '99999999999999999999']) rejects(t, `SeriesNumber=${bad}`, 'series');
  t.end();
});

t.test('text, wild cards, lists and universal matching', (t) => {
  const m = (query: string, level: QueryLevel = 'study') => parse(query, level).filters[0]?.matcher;
  t.same(m('AccessionNumber=%20ACC1%20'), { kind: 'single', value: 'ACC1' }, 'padding spaces dropped');
  t.same(m('AccessionNumber=AC*1?'), { kind: 'wildcard', pattern: 'AC*1?' });
  t.same(m('PatientName=GAR*'), { kind: 'wildcard', pattern: 'GAR*' });
  t.same(m('PatientName=Doe^John'), { kind: 'single', value: 'Doe^John' });
  t.same(m('ModalitiesInStudy=CT,MR'), { kind: 'uidList', values: ['CT', 'MR'] });
  t.same(m('ModalitiesInStudy=CT%5CMR'), { kind: 'uidList', values: ['CT', 'MR'] });
  t.same(m('ModalitiesInStudy=CT,'), { kind: 'single', value: 'CT' });
  t.same(m('StudyDescription=Head, neck'), { kind: 'single', value: 'Head, neck' }, 'commas are data outside CS');
  for (const universal of ['PatientName=', 'PatientName=*', 'PatientName=**', 'PatientName==', 'PatientName=%5E', 'AccessionNumber=*']) {
    const q = parse(universal);
    t.same(q.filters, [], `${universal}: no filter`);
    t.ok(q.includeFields.length === 1, `${universal}: the attribute is returned`);
  }
  rejects(t, `PatientID=${'x'.repeat(1025)}`);
  rejects(t, 'RequestAttributesSequence=x', 'series');
  rejects(t, '00100010.00100020=x');
  t.end();
});

t.test('sequence keys (PS3.4 C.2.2.2.6)', (t) => {
  const q = parse('00400275.00400009=SPS-1&RequestAttributesSequence.RequestedProcedureID=RP*', 'series');
  t.same(q.filters, [
    { path: ['00400275', '00400009'], vr: 'SH', level: 'series', matcher: { kind: 'single', value: 'SPS-1' } },
    { path: ['00400275', '00401001'], vr: 'SH', level: 'series', matcher: { kind: 'wildcard', pattern: 'RP*' } },
  ]);
  t.same(q.includeFields, ['00400275'], 'the sequence is returned');
  t.same(parse('00400275.00400009=SPS-1', 'study').filters, [], 'series sequence at the study level: ignored');
  t.end();
});

t.test('fuzzymatching (PS3.18 8.3.4)', (t) => {
  t.same(parse('fuzzymatching=true&PatientName=Müller jür').filters[0]!.matcher, { kind: 'fuzzy', words: ['MULLER', 'JUR'] });
  t.same(parse('fuzzymatching=TRUE&PatientName=doe').fuzzyMatching, true);
  t.same(parse('fuzzymatching=true&PatientName=*doe*').filters[0]!.matcher, { kind: 'wildcard', pattern: '*doe*' }, 'wild cards win');
  t.same(parse('fuzzymatching=true&PatientID=doe').filters[0]!.matcher, { kind: 'single', value: 'doe' }, 'PN only');
  t.same(parse('fuzzymatching=false&PatientName=doe').filters[0]!.matcher, { kind: 'single', value: 'doe' });
  t.same(parse('fuzzymatching=true&PatientName=%5E%20-').filters, [], 'no words: universal');
  rejects(t, 'fuzzymatching=yes');
  rejects(t, 'fuzzymatching=');
  t.end();
});

t.test('includefield (PS3.18 8.3.4)', (t) => {
  t.same(parse('includefield=00081030,00080060&includefield=PatientAge&includefield=00081030').includeFields, ['00081030', '00101010'],
    'repeated and comma-separated, deduplicated, lower levels dropped');
  t.same(parse('includefield=00081030&includefield=all').includeFields, 'all');
  t.same(parse('includefield=all,00081030').includeFields, 'all');
  t.same(parse('includefield=RequestAttributesSequence.RequestedProcedureID', 'series').includeFields, ['00400275']);
  t.same(parse('includefield=0008103e', 'instance').includeFields, ['0008103E']);
  t.same(parse('includefield=UnknownKeyword,,').includeFields, []);
  t.same(parse('includefield=00091001', 'study').includeFields, [], 'private (instance-level) tag at the study level');
  t.same(parse('includefield=00091001', 'instance').includeFields, ['00091001']);
  rejects(t, 'includefield=Patient_Name');
  rejects(t, 'includefield=0010%2C0010'); // "0010" twice after the comma split
  t.end();
});

t.test('limit and offset', (t) => {
  t.same([parse('').limit, parse('').offset], [100, 0], 'defaults');
  t.equal(parse('limit=25').limit, 25);
  t.equal(parse('limit=0').limit, 100, 'limit=0: the default page');
  t.equal(parse('limit=5000').limit, 1000, 'clamped to maxLimit');
  t.equal(parse('offset=40').offset, 40);
  for (const bad of ['limit=-1', 'limit=abc', 'limit=1.5', 'limit=', 'limit=%2B5', 'offset=-1', 'offset=x', 'offset=', 'limit=99999999999999999999']) {
    rejects(t, bad);
  }
  t.end();
});

t.test('the record form of parameters', (t) => {
  const q = parse({ PatientID: 'P1', includefield: ['00081030', 'StudyID'], limit: '5', ignored: undefined });
  t.same(q.filters.map((f) => f.path[0]), ['00100020']);
  t.same(q.includeFields, ['00081030', '00200010']);
  t.equal(q.limit, 5);
  t.same(q.level, 'study');
  t.end();
});
