// QIDO-RS (PS3.18 10.6) through the real app over SQLite: the six resources, matching as clients use it,
// paging, representations, and 400/204 answers.
import t from 'tap';
import { testApp, type TestApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { generatedSet } from '../helpers/testdata.js';

const { manifest, files } = generatedSet('ct-2studies');
const [study1, study2] = [manifest.studies[0]!, manifest.studies[1]!];

type Ds = Record<string, { vr: string; Value?: unknown[] }>;
const uidsOf = (body: Ds[], tag: string) => body.map((d) => d[tag]?.Value?.[0]).sort();

async function loaded(t: Parameters<typeof testApp>[0], env: Record<string, string> = {}): Promise<TestApp> {
  const ctx = await testApp(t, env);
  const { contentType, body } = multipartBody(files.map((f) => f.bytes));
  const res = await ctx.app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  if (res.statusCode !== 200) throw new Error(`load failed: ${res.statusCode} ${res.body}`);
  return ctx;
}

t.test('study search returns the required attributes, derived counts and RetrieveURL', async (t) => {
  const { app } = await loaded(t);
  const res = await app.inject({ method: 'GET', url: '/dicomweb/studies' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/dicom\+json/);
  t.equal(res.headers['cache-control'], 'no-store');
  const body = res.json() as Ds[];
  t.same(uidsOf(body, '0020000D'), [study1.StudyInstanceUID, study2.StudyInstanceUID].sort());
  const s1 = body.find((d) => d['0020000D']?.Value?.[0] === study1.StudyInstanceUID)!;
  t.match(s1, {
    '00080020': { vr: 'DA', Value: [study1.StudyDate] },
    '00080050': { vr: 'SH', Value: [study1.AccessionNumber] },
    '00080061': { vr: 'CS', Value: ['CT'] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: study1.PatientName }] },
    '00100020': { vr: 'LO', Value: [study1.PatientID] },
    '00201206': { vr: 'IS', Value: [2] },
    '00201208': { vr: 'IS', Value: [12] },
    '00081190': { vr: 'UR', Value: [new RegExp(`/dicomweb/studies/${study1.StudyInstanceUID}$`)] },
  });
  for (const tag of ['00080030', '00080090', '00100030', '00100040', '00200010']) t.ok(s1[tag], `required return attribute ${tag}`);
  t.same(Object.keys(s1), Object.keys(s1).sort(), 'keys in ascending tag order');
});

t.test('matching: names, IDs, dates, UID lists, modalities, wildcards', async (t) => {
  const { app } = await loaded(t);
  const get = async (qs: string) => {
    const res = await app.inject({ method: 'GET', url: `/dicomweb/studies?${qs}` });
    return { status: res.statusCode, uids: res.statusCode === 200 ? uidsOf(res.json() as Ds[], '0020000D') : [] };
  };
  const s1 = [study1.StudyInstanceUID];
  const s2 = [study2.StudyInstanceUID];
  const both = [...s1, ...s2].sort();
  const family1 = study1.PatientName.split('^')[0]!;
  t.same((await get(`PatientName=${encodeURIComponent(study1.PatientName)}`)).uids, s1, 'exact PN');
  t.same((await get(`PatientName=${family1.toLowerCase()}*`)).uids, s1, 'PN wildcard is case-insensitive');
  t.same((await get(`00100010=*${encodeURIComponent('山田')}*`)).uids, s2, 'PN ideographic group, tag key');
  t.same((await get('PatientName=yamada*')).uids, s2, 'PN alphabetic group of a multi-group name');
  t.same((await get(`PatientID=${study2.PatientID}`)).uids, s2);
  t.same((await get(`AccessionNumber=${study1.AccessionNumber}`)).uids, s1);
  t.same((await get(`StudyInstanceUID=${study1.StudyInstanceUID},${study2.StudyInstanceUID}`)).uids, both, 'UID list, comma');
  t.same((await get(`StudyInstanceUID=${study1.StudyInstanceUID}%5C${study2.StudyInstanceUID}`)).uids, both, 'UID list, backslash as OHIF sends');
  t.same((await get(`StudyDate=${study1.StudyDate}`)).uids, s1);
  t.same((await get(`StudyDate=${study1.StudyDate}-${study1.StudyDate}`)).uids, s1, 'closed range');
  const upTo = manifest.studies.filter((s) => s.StudyDate <= study1.StudyDate).map((s) => s.StudyInstanceUID).sort();
  t.same((await get(`StudyDate=-${study1.StudyDate}`)).uids, upTo, 'open start: every study up to that date');
  const from = manifest.studies.filter((s) => s.StudyDate >= study2.StudyDate).map((s) => s.StudyInstanceUID).sort();
  t.same((await get(`StudyDate=${study2.StudyDate}-`)).uids, from, 'open end from a given date');
  t.same((await get('StudyDate=19000101-')).uids, both, 'open end');
  t.same((await get('ModalitiesInStudy=CT')).uids, both);
  t.equal((await get('ModalitiesInStudy=MR')).status, 204, 'no match is 204');
  const id = study2.PatientID;
  t.same((await get(`PatientID=${id.slice(0, 4)}${'?'.repeat(id.length - 4)}`)).uids.length, 2, '? matches one character each');
  t.equal((await get(`PatientID=${id.slice(0, 4)}${'?'.repeat(id.length - 3)}`)).status, 204, 'one ? too many matches nothing');
  t.equal((await get(`AccessionNumber=${study1.AccessionNumber.toLowerCase()}`)).status, 204, 'SH matching is case-sensitive');
  t.equal((await get(`PatientName=${encodeURIComponent("*'OR 1=1--")}`)).status, 204, 'quotes are data');
  t.equal((await get('PatientName=%25')).status, 204, 'LIKE metacharacters are data');
  t.equal((await get('PatientName=_*')).status, 204);
  t.same((await get('UnknownKeyword=1&PatientID=' + study1.PatientID)).uids, s1, 'unsupported keys are ignored (PS3.18 8.3.4)');
});

t.test('fuzzy matching on person names', async (t) => {
  const { app } = await loaded(t);
  const given = study1.PatientName.split('^')[1]!.slice(0, 2).toLowerCase();
  const res = await app.inject({ method: 'GET', url: `/dicomweb/studies?fuzzymatching=true&PatientName=${given}` });
  t.equal(res.statusCode, 200);
  t.same(uidsOf(res.json() as Ds[], '0020000D'), [study1.StudyInstanceUID], 'a word prefix of the given name matches');
});

t.test('invalid values of supported keys are 400', async (t) => {
  const { app } = await loaded(t);
  for (const qs of ['StudyDate=2015-13-45', 'StudyDate=abc', 'StudyInstanceUID=1.2.abc', 'offset=-1', 'limit=abc', 'StudyDate=20150101-20140101x', 'PatientID=a&PatientID=b']) {
    const res = await app.inject({ method: 'GET', url: `/dicomweb/studies?${qs}` });
    t.equal(res.statusCode, 400, qs);
    t.match(res.json(), { error: /INVALID_QUERY|INVALID_UID|BAD_REQUEST/ });
  }
  const path = await app.inject({ method: 'GET', url: '/dicomweb/studies/..%2F..%2Fetc/series' });
  t.equal(path.statusCode, 400, 'path UID checked');
});

t.test('limit, offset, stable order and the Warning header', async (t) => {
  const { app } = await loaded(t);
  const all = (await app.inject({ method: 'GET', url: '/dicomweb/instances' })).json() as Ds[];
  t.equal(all.length, 24);
  const seen: unknown[] = [];
  for (let offset = 0; offset < 24; offset += 5) {
    const res = await app.inject({ method: 'GET', url: `/dicomweb/instances?limit=5&offset=${offset}` });
    t.equal(res.statusCode, 200);
    const page = res.json() as Ds[];
    const remaining = 24 - offset - page.length;
    if (remaining > 0) t.match(res.headers.warning, new RegExp(`^299 https://\\S+/dicomweb: There are ${remaining} additional results that can be requested$`));
    else t.notOk(res.headers.warning, 'no warning on the last page');
    seen.push(...page.map((d) => d['00080018']?.Value?.[0]));
  }
  t.same(seen, all.map((d) => d['00080018']?.Value?.[0]), 'pages concatenate to the full result in the same order');
  const beyond = await app.inject({ method: 'GET', url: '/dicomweb/instances?offset=100' });
  t.equal(beyond.statusCode, 204);
});

t.test('maxLimit clamps limit and the Warning tells what remains', async (t) => {
  const { app } = await loaded(t, { DICOMVAULT_QIDO_MAX_LIMIT: '10', DICOMVAULT_QIDO_DEFAULT_LIMIT: '10' });
  const res = await app.inject({ method: 'GET', url: '/dicomweb/instances?limit=1000000000' });
  t.equal((res.json() as Ds[]).length, 10);
  t.match(res.headers.warning, /There are 14 additional results/);
});

t.test('series and instance resources, relational queries and parents attributes', async (t) => {
  const { app } = await loaded(t);
  const series = await app.inject({ method: 'GET', url: `/dicomweb/studies/${study1.StudyInstanceUID}/series` });
  t.equal(series.statusCode, 200);
  const sb = series.json() as Ds[];
  t.same(uidsOf(sb, '0020000E'), study1.series.map((s) => s.SeriesInstanceUID).sort());
  t.match(sb[0], { '00080060': { vr: 'CS', Value: ['CT'] }, '00201209': { vr: 'IS', Value: [6] }, '00081190': { vr: 'UR', Value: [/\/series\/[0-9.]+$/] } });
  const allSeries = (await app.inject({ method: 'GET', url: `/dicomweb/series?PatientID=${study2.PatientID}` })).json() as Ds[];
  t.same(uidsOf(allSeries, '0020000E'), study2.series.map((s) => s.SeriesInstanceUID).sort(), 'all-series search matches study-level keys');
  t.match(allSeries[0], { '0020000D': { Value: [study2.StudyInstanceUID] }, '00100020': { Value: [study2.PatientID] } }, 'study attributes on a relational query');
  const x = study1.series[1]!;
  const inst = await app.inject({ method: 'GET', url: `/dicomweb/studies/${study1.StudyInstanceUID}/series/${x.SeriesInstanceUID}/instances` });
  const ib = inst.json() as Ds[];
  t.same(uidsOf(ib, '00080018'), x.instances.map((i) => i.SOPInstanceUID).sort());
  t.match(ib[0], { '00080016': { Value: ['1.2.840.10008.5.1.4.1.1.2'] }, '00081190': { Value: [new RegExp(`/series/${x.SeriesInstanceUID}/instances/[0-9.]+$`)] } });
  const byNumber = await app.inject({ method: 'GET', url: `/dicomweb/studies/${study1.StudyInstanceUID}/instances?InstanceNumber=3` });
  t.equal((byNumber.json() as Ds[]).length, 2, 'InstanceNumber=3 in each of the two series');
  const none = await app.inject({ method: 'GET', url: '/dicomweb/studies/1.2.3/series' });
  t.equal(none.statusCode, 204, 'unknown study: no match');
});

t.test('includefield: tags, keywords, comma lists, all', async (t) => {
  const { app } = await loaded(t);
  const get = async (qs: string) => (await app.inject({ method: 'GET', url: `/dicomweb/studies?PatientID=${study1.PatientID}&${qs}` })).json() as Ds[];
  t.match((await get('includefield=00081030'))[0], { '00081030': { vr: 'LO', Value: [study1.StudyDescription] } });
  t.match((await get('includefield=StudyDescription,00100040'))[0], { '00081030': { Value: [study1.StudyDescription] }, '00100040': { vr: 'CS' } });
  t.match((await get('includefield=StudyDescription&includefield=PatientSex'))[0], { '00081030': {}, '00100040': {} });
  const all = (await get('includefield=all'))[0]!;
  t.ok(all['00081030'] && all['00100030'], 'all includes the study and patient attributes');
  t.notOk((await get('includefield=00080018'))[0]!['00080018'], 'never lower-level attributes');
});

t.test('representations: JSON by default and for lists containing it; XML as multipart/related', async (t) => {
  const { app } = await loaded(t);
  for (const accept of [undefined, '*/*', 'application/dicom+json', 'application/json;q=0.5, application/dicom+json', 'application/dicom+json, multipart/related; type="application/octet-stream"; transfer-syntax=*']) {
    const res = await app.inject({ method: 'GET', url: '/dicomweb/studies', headers: accept ? { accept } : {} });
    t.match(res.headers['content-type'], /^application\/dicom\+json/, `Accept: ${accept}`);
  }
  const xml = await app.inject({ method: 'GET', url: '/dicomweb/studies', headers: { accept: 'multipart/related; type="application/dicom+xml"' } });
  t.equal(xml.statusCode, 200);
  const ct = xml.headers['content-type'] as string;
  t.match(ct, /^multipart\/related; *type="?application\/dicom\+xml"?; *boundary=/);
  const boundary = /boundary="?([^";]+)"?/.exec(ct)![1]!;
  const parts = xml.body.split(`--${boundary}`).filter((p) => p.includes('<NativeDicomModel'));
  t.equal(parts.length, 2, 'one part per study');
  t.match(parts[0], /Content-Type: application\/dicom\+xml/);
  t.match(parts[0], /<DicomAttribute tag="0020000D" vr="UI" keyword="StudyInstanceUID">/);
  const bad = await app.inject({ method: 'GET', url: '/dicomweb/studies', headers: { accept: 'image/png' } });
  t.equal(bad.statusCode, 406);
  const q = await app.inject({ method: 'GET', url: '/dicomweb/studies?accept=application/dicom%2Bjson', headers: { accept: 'image/png' } });
  t.equal(q.statusCode, 200, 'the accept query parameter is honoured');
});

t.test('includefield by any PS3.6 keyword, not only matching keys', async (t) => {
  const { app } = await loaded(t);
  const res = await app.inject({ method: 'GET', url: `/dicomweb/studies/${study1.StudyInstanceUID}/series/${study1.series[0]!.SeriesInstanceUID}/instances?includefield=SliceThickness,ImagePositionPatient` });
  const [ds] = res.json() as Ds[];
  t.ok(ds!['00180050']?.Value, 'SliceThickness (0018,0050) returned by keyword');
  t.equal(ds!['00200032']?.Value?.length, 3, 'ImagePositionPatient (0020,0032) returned by keyword');
});
