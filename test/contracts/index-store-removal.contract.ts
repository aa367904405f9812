// The IndexStore contract for issue 6 (runIndexStoreContract calls it): removeInstances() takes a retrieve scope out
// of the live index with every derived attribute kept right, commit() of what it returned puts it back exactly,
// and retentionFacts() reports the study's values. The archive is index-store.fixtures.ts.

import type { Test } from 'tap';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import type { IndexStore, InstanceRecord, RetrieveScope } from '../../src/index/index-store.js';
import type { QueryLevel } from '../../src/index/query/ast.js';
import type { QidoScope } from '../../src/index/query/parse-qido.js';
import {
  ALL_STUDIES,
  BATCH_1,
  BATCH_2,
  CT_IMAGE,
  I111,
  I112,
  I113,
  I121,
  I211,
  I212,
  LEVELS_OF,
  MR_IMAGE,
  PET_IMAGE,
  RECORD,
  SE11,
  SE12,
  SE21,
  SE41,
  ST1,
  ST2,
  ST3,
  ST4,
  instanceRecord,
} from './index-store.fixtures.js';
import { column, search, type IndexStoreFactory } from './index-store.contract.js';

const UI = (uid: string) => ({ vr: 'UI', Value: [uid] });

/** Every QIDO answer that removal can change, matches sorted (a restore re-inserts, so order may differ). */
function snapshot(store: IndexStore): Record<string, unknown> {
  const queries: [QueryLevel, string, QidoScope?][] = [
    ['study', 'includefield=all'],
    ['series', 'includefield=all'],
    ['instance', 'includefield=all'],
    ['series', 'includefield=all', { studyInstanceUID: ST1 }],
    ['instance', 'includefield=all', { studyInstanceUID: ST1, seriesInstanceUID: SE11 }],
    ['study', 'PatientName=mul&fuzzymatching=true'],
    ['study', 'ReferringPhysicianName=doe&fuzzymatching=true'],
    ['series', '00400275.00400009=SPS-1'],
    ['study', 'ModalitiesInStudy=PT'],
    ['study', `SOPClassesInStudy=${PET_IMAGE}`],
  ];
  const out: Record<string, unknown> = {};
  for (const [level, params, scope] of queries) {
    const result = search(store, level, params, scope);
    out[`${level}?${params} ${JSON.stringify(scope ?? {})}`] = {
      total: result.total,
      matches: result.matches.map((m) => JSON.stringify(m)).sort(),
    };
  }
  out.counts = store.counts();
  out.attributes = ALL_STUDIES.map((uid) => store.studyAttributes(uid));
  out.facts = ALL_STUDIES.map((uid) => store.retentionFacts(uid));
  out.retrieve = ALL_STUDIES.map((uid) => store.listInstances({ studyInstanceUID: uid }).map((r) => r.sopInstanceUID));
  return out;
}

export function runRemovalContract(t: Test, name: string, factory: IndexStoreFactory): void {
  const seeded = (t: Test) => {
    const store = factory(t);
    t.teardown(() => store.close());
    store.commit(BATCH_1, 'reject');
    store.commit(BATCH_2, 'reject');
    return store;
  };
  const studyMatch = (store: IndexStore, uid: string): DicomJsonDataset | undefined =>
    search(store, 'study', `StudyInstanceUID=${uid}&includefield=all`).matches[0];

  t.test(`${name}: removeInstances of one instance returns its record and recounts series and study`, (t) => {
    const store = seeded(t);
    const removed = store.removeInstances({ studyInstanceUID: ST1, seriesInstanceUID: SE11, sopInstanceUID: I112 });
    t.same(removed, { records: [RECORD[I112]], removedStudies: [] });
    t.equal(store.findInstance(I112), undefined);
    t.same(store.counts(), { patients: 3, studies: 4, series: 5, instances: 7 });
    t.match(studyMatch(store, ST1), { '00201206': { Value: [2] }, '00201208': { Value: [3] } });
    t.same(column(search(store, 'series', `SeriesInstanceUID=${SE11}`), '00201209'), [2]);
    t.same(column(search(store, 'instance', '', { studyInstanceUID: ST1 }), '00080018'), [I111, I113, I121]);
    t.same(store.listInstances({ studyInstanceUID: ST1 }).map((r) => r.sopInstanceUID), [I111, I113, I121]);
    t.same(store.removeInstances({ studyInstanceUID: ST1, sopInstanceUID: I113 }).records, [RECORD[I113]], 'instance without series');
    t.end();
  });

  t.test(`${name}: removeInstances of a series drops it and updates the study's derived attributes`, (t) => {
    const store = seeded(t);
    const removed = store.removeInstances({ studyInstanceUID: ST1, seriesInstanceUID: SE12 });
    t.same(removed, { records: [RECORD[I121]], removedStudies: [] });
    t.same(store.counts(), { patients: 3, studies: 4, series: 4, instances: 7 });
    t.match(studyMatch(store, ST1), {
      '00080061': { Value: ['CT'] },
      '00080062': { Value: [CT_IMAGE] },
      '00201206': { Value: [1] },
      '00201208': { Value: [3] },
    });
    t.same(store.studyAttributes(ST1)!.modalities, ['CT']);
    t.same(column(search(store, 'study', 'ModalitiesInStudy=PT'), '0020000D'), [], 'ModalitiesInStudy matching forgets PT');
    t.same(column(search(store, 'study', `SOPClassesInStudy=${PET_IMAGE}`), '0020000D'), []);
    t.same(column(search(store, 'series', '', { studyInstanceUID: ST1 }), '0020000E'), [SE11]);
    t.same(store.retentionFacts(ST1)!.modalities, ['CT']);
    t.end();
  });

  t.test(`${name}: removeInstances of a study drops it, its settings come back, the patient goes with its last study`, (t) => {
    const store = seeded(t);
    t.ok(store.setStudyLabels(ST2, ['teaching', 'audit']));
    t.ok(store.setStudyConfidentiality(ST2, 'R'));
    const removed = store.removeInstances({ studyInstanceUID: ST2 });
    t.same(removed.records, [RECORD[I211], RECORD[I212]], 'insertion order');
    t.same(removed.removedStudies, [{ studyInstanceUID: ST2, labels: ['audit', 'teaching'], confidentiality: 'R' }]);
    t.same(store.counts(), { patients: 3, studies: 3, series: 4, instances: 6 }, 'PAT-DE keeps ST4');
    t.equal(store.studyAttributes(ST2), undefined);
    t.equal(store.retentionFacts(ST2), undefined);
    t.same(column(search(store, 'study', 'PatientID=PAT-DE'), '0020000D'), [ST4]);
    t.same(column(search(store, 'series', '00400275.00400009=SPS-3'), '0020000E'), []);

    const last = store.removeInstances({ studyInstanceUID: ST4 });
    t.same(last.removedStudies, [{ studyInstanceUID: ST4, labels: [], confidentiality: '' }]);
    t.same(store.counts(), { patients: 2, studies: 2, series: 3, instances: 5 }, 'PAT-DE had no study left');
    t.same(column(search(store, 'study', 'PatientName=mul&fuzzymatching=true'), '0020000D'), []);
    t.same(column(search(store, 'study', 'ReferringPhysicianName=doe&fuzzymatching=true'), '0020000D'), []);
    t.end();
  });

  t.test(`${name}: a scope under another study or series removes nothing`, (t) => {
    const store = seeded(t);
    const before = snapshot(store);
    const scopes: RetrieveScope[] = [
      { studyInstanceUID: ST2, seriesInstanceUID: SE11 },
      { studyInstanceUID: ST2, sopInstanceUID: I111 },
      { studyInstanceUID: ST1, seriesInstanceUID: SE12, sopInstanceUID: I111 },
      { studyInstanceUID: ST2, seriesInstanceUID: SE11, sopInstanceUID: I111 },
      { studyInstanceUID: '2.25.999' },
      { studyInstanceUID: ST1, seriesInstanceUID: '2.25.999' },
    ];
    for (const scope of scopes) t.same(store.removeInstances(scope), { records: [], removedStudies: [] }, JSON.stringify(scope));
    t.same(snapshot(store), before);
    t.end();
  });

  t.test(`${name}: commit of the removed records restores exactly what QIDO, WADO and policy saw`, (t) => {
    const store = seeded(t);
    store.setStudyLabels(ST4, ['legal']);
    store.setStudyConfidentiality(ST4, 'V');
    const scopes: RetrieveScope[] = [
      { studyInstanceUID: ST1, seriesInstanceUID: SE11, sopInstanceUID: I112 },
      { studyInstanceUID: ST1, seriesInstanceUID: SE11, sopInstanceUID: I111 },
      { studyInstanceUID: ST1, seriesInstanceUID: SE12 },
      { studyInstanceUID: ST2, seriesInstanceUID: SE21 },
      { studyInstanceUID: ST1 },
      { studyInstanceUID: ST3 },
      { studyInstanceUID: ST4, seriesInstanceUID: SE41 },
    ];
    for (const scope of scopes) {
      const before = snapshot(store);
      const removed = store.removeInstances(scope);
      t.ok(removed.records.length > 0, JSON.stringify(scope));
      t.notSame(snapshot(store), before, 'removal is visible');
      t.same(store.commit(removed.records, 'reject'), removed.records.map(() => ({ kind: 'stored' })));
      for (const s of removed.removedStudies) {
        store.setStudyLabels(s.studyInstanceUID, s.labels);
        store.setStudyConfidentiality(s.studyInstanceUID, s.confidentiality);
      }
      t.same(snapshot(store), before, `restored ${JSON.stringify(scope)}`);
    }
    t.end();
  });

  t.test(`${name}: removed records carry everything commit took (layout, receivedAt, dataset)`, (t) => {
    const store = factory(t);
    t.teardown(() => store.close());
    const record: InstanceRecord = {
      ...instanceRecord(LEVELS_OF.SE41, '2.25.1004.1.30', MR_IMAGE, { '00091010': { vr: 'LO', Value: ['x'] } }),
      receivedAt: new Date('2025-05-06T07:08:09.123Z'),
      layout: { pixelData: { offset: 1234, length: 512, encapsulated: false }, bulk: [{ path: ['54000100', 0, '54001010'], vr: 'OW', offset: 10, length: 4 }] },
    };
    store.commit([record], 'reject');
    const [back] = store.removeInstances({ studyInstanceUID: ST4 }).records;
    t.strictSame(back, record);
    t.end();
  });

  t.test(`${name}: retentionFacts`, (t) => {
    const store = seeded(t);
    t.strictSame(store.retentionFacts(ST1), {
      studyDate: '20200115',
      receivedAt: new Date('2024-01-02T03:04:05Z'),
      patientBirthDate: '19700102',
      patientAge: '050Y',
      patientId: 'PAT-JP',
      modalities: ['CT', 'PT'],
      institution: '',
      sopClasses: [CT_IMAGE, PET_IMAGE].sort(),
    });
    t.strictSame(store.retentionFacts(ST3), {
      studyDate: '20211231',
      receivedAt: new Date('2024-01-02T03:04:05Z'),
      patientId: 'PAT-ES',
      modalities: ['CT'],
      institution: '',
      sopClasses: [CT_IMAGE],
    }, 'no birth date, no age');
    t.equal(store.retentionFacts('2.25.999'), undefined);

    // A study without PatientID and StudyDate; the age only on later instances; receipts out of order.
    const lo = (value: string) => ({ vr: 'LO', Value: [value] });
    const study = '2.25.77';
    const levels = (series: string, modality: string): DicomJsonDataset[] => [
      { '0020000D': UI(study), '0020000E': UI(series), '00080060': { vr: 'CS', Value: [modality] }, '00080080': lo('North ') },
    ];
    const at = (iso: string) => new Date(iso);
    store.commit(
      [
        { ...instanceRecord(levels('2.25.77.1', 'US'), '2.25.77.1.1', CT_IMAGE), receivedAt: at('2025-03-01T00:00:00Z') },
        { ...instanceRecord(levels('2.25.77.1', 'US'), '2.25.77.1.2', MR_IMAGE, { '00101010': { vr: 'AS', Value: ['030Y'] } }), receivedAt: at('2025-01-01T00:00:00Z') },
        { ...instanceRecord(levels('2.25.77.2', 'SR'), '2.25.77.2.1', CT_IMAGE, { '00101010': { vr: 'AS', Value: ['031Y'] } }), receivedAt: at('2025-02-01T00:00:00Z') },
      ],
      'reject',
    );
    t.strictSame(store.retentionFacts(study), {
      receivedAt: at('2025-01-01T00:00:00Z'),
      patientAge: '030Y',
      patientId: '',
      modalities: ['SR', 'US'],
      institution: 'North',
      sopClasses: [CT_IMAGE, MR_IMAGE].sort(),
    });
    t.end();
  });
}
