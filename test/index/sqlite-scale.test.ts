// Scale smoke test: 20,000 synthetic instances in a SQLite file. Timings are reported with
// t.comment, never asserted (they depend on the machine); what is asserted is deterministic: the
// answers, and that SQLite's plan for the study-UID and PatientName-prefix queries uses an index
// (EXPLAIN QUERY PLAN), which is what keeps them flat as the archive grows (shared/bench/README.md).
import path from 'node:path';
import t from 'tap';
import { parseQido } from '../../src/index/query/parse-qido.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import {
  FAMILIES,
  INSTANCES_PER_SERIES,
  SERIES_PER_STUDY,
  studyDate,
  studyUid,
  syntheticStudy,
} from '../helpers/synthetic-archive.js';
import { tempDir } from '../helpers/temp-dir.js';

const STUDIES = 1000;
const PAGING = { defaultLimit: 1000, maxLimit: 10_000 };

t.test('20,000 instances: answers, plans, timings', (t) => {
  const store = new SqliteIndexStore(path.join(tempDir(t), 'scale.sqlite'));
  t.teardown(() => store.close());

  let started = performance.now();
  for (let k = 0; k < STUDIES; k++) store.commit(syntheticStudy(k), 'reject');
  const insertMs = performance.now() - started;
  t.same(store.counts(), { patients: 700, studies: 1000, series: 4000, instances: 20_000 });
  t.comment(`insert: ${insertMs.toFixed(0)} ms for 20,000 instances (1,000 commits of 20) = ${(20_000 / (insertMs / 1000)).toFixed(0)} instances/s`);

  const run = (label: string, level: 'study' | 'series' | 'instance', params: string, scope = {}) => {
    const query = parseQido(level, scope, new URLSearchParams(params), PAGING);
    const samples: number[] = [];
    let result = store.search(query);
    for (let i = 0; i < 30; i++) {
      started = performance.now();
      result = store.search(query);
      samples.push(performance.now() - started);
    }
    samples.sort((a, b) => a - b);
    t.comment(`${label}: median ${samples[15]!.toFixed(3)} ms, max ${samples[29]!.toFixed(3)} ms (${result.matches.length} of ${result.total})`);
    return { query, result, plan: store.explain(query) };
  };
  const uids = (r: { result: { matches: { '0020000D'?: { Value?: unknown[] } }[] } }) =>
    r.result.matches.map((m) => m['0020000D']?.Value?.[0]);

  const byUid = run('study-uid', 'study', `StudyInstanceUID=${studyUid(777)}`);
  t.same(uids(byUid), [studyUid(777)]);
  t.same(byUid.result.matches[0]!['00201208'], { vr: 'IS', Value: [20] });
  t.ok(byUid.plan.some((d) => /^SEARCH s USING (COVERING )?INDEX \S+ \(study_uid=\?\)/.test(d)), `study-uid uses an index: ${byUid.plan.join(' | ')}`);
  t.notOk(byUid.plan.some((d) => d.startsWith('SCAN')), 'study-uid scans no table');

  const byName = run('name-prefix GAR*', 'study', 'PatientName=GAR*');
  const expectedNames = [...Array(STUDIES).keys()].filter((k) => k % FAMILIES.length < 2).map(studyUid);
  t.same(uids(byName), expectedNames, 'García (accent folded) and Garner');
  t.ok(
    byName.plan.some((d) => /^SEARCH p USING (COVERING )?INDEX patients_name_a \(patient_name_a>\? AND patient_name_a<\?\)/.test(d)),
    `name prefix is an index range: ${byName.plan.join(' | ')}`,
  );
  t.notOk(byName.plan.some((d) => d.startsWith('SCAN')), 'name prefix scans no table');

  const byPatientId = run('patient-id', 'study', 'PatientID=PID12');
  t.same(uids(byPatientId), [studyUid(12), studyUid(712)]);

  const byDate = run('date-range 2015, limit=101', 'study', 'StudyDate=20150101-20151231&limit=101');
  const inYear = [...Array(STUDIES).keys()].filter((k) => studyDate(k).startsWith('2015'));
  t.equal(byDate.result.total, inYear.length);
  t.same(uids(byDate), inYear.slice(0, 101).map(studyUid));

  const byModality = run('modality PT, limit=101', 'study', 'ModalitiesInStudy=PT&limit=101');
  t.equal(byModality.result.total, STUDIES / 5, 'PT only in every fifth study');
  t.equal(byModality.result.matches.length, 101);

  const paging = run('paging offset=500', 'study', 'StudyDate=20000101-&limit=25&offset=500&includefield=00081030,00080060');
  t.same(uids(paging), [...Array(25).keys()].map((i) => studyUid(500 + i)));
  t.equal(paging.result.total, STUDIES);

  const seriesInstances = run('series-instances', 'instance', '', { studyInstanceUID: studyUid(321), seriesInstanceUID: `${studyUid(321)}.2` });
  t.equal(seriesInstances.result.total, INSTANCES_PER_SERIES);
  t.notOk(seriesInstances.plan.some((d) => d.startsWith('SCAN')), `series-instances scans no table: ${seriesInstances.plan.join(' | ')}`);

  const studySeries = run('study-series', 'series', '', { studyInstanceUID: studyUid(321) });
  t.equal(studySeries.result.total, SERIES_PER_STUDY);

  run('fuzzy "gar", limit=101', 'study', 'fuzzymatching=true&PatientName=gar&limit=101');
  run('contains *ARN*, limit=101', 'study', 'PatientName=*ARN*&limit=101');
  t.end();
});
