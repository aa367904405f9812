// One suite for every IndexStore implementation (DESIGN.md "Contract tests for ports"): matching
// (PS3.4 C.2.2.2), return attributes (PS3.18 10.6.3), derived attributes, duplicates, paging and
// the pending marks. The archive it searches is in index-store.fixtures.ts.

import type { Test } from 'tap';
import type { IndexStore, InstanceLayout, InstanceRecord, SearchResult, StoredInstanceRef } from '../../src/index/index-store.js';
import type { QueryLevel } from '../../src/index/query/ast.js';
import { parseQido, type QidoScope } from '../../src/index/query/parse-qido.js';
import type { StudyAttributes } from '../../src/policy/study-attributes.js';
import { studyAttributesOf } from '../../src/policy/study-attributes-of.js';
import { FALSE, TRUE, type StudyCondition } from '../../src/policy/study-condition.js';
import {
  ALL_INSTANCES,
  ALL_SERIES,
  ALL_STUDIES,
  BATCH_1,
  BATCH_2,
  CT_IMAGE,
  ENHANCED_PET_IMAGE,
  EXPLICIT_LE,
  I111,
  I112,
  I113,
  I121,
  I211,
  I212,
  I311,
  I411,
  LEVELS_OF,
  MR_IMAGE,
  PET_IMAGE,
  RECORD,
  SE11,
  SE12,
  SE21,
  SE31,
  SE41,
  ST1,
  ST2,
  ST3,
  ST4,
  STUDY4_DESCRIPTION,
  instanceRecord,
} from './index-store.fixtures.js';
import { runRemovalContract } from './index-store-removal.contract.js';

type DicomJsonDatasetLike = InstanceRecord['dataset'];
const PATIENT_OF_ORDER_TEST: DicomJsonDatasetLike = { '00100020': { vr: 'LO', Value: ['PAT-ORDER'] } };

export type IndexStoreFactory = (t: Test) => IndexStore;

const PAGING = { defaultLimit: 100, maxLimit: 1000 };

export function search(
  store: IndexStore,
  level: QueryLevel,
  params: string,
  scope: QidoScope = {},
  access?: StudyCondition,
): SearchResult {
  return store.search(parseQido(level, scope, new URLSearchParams(params), PAGING), access);
}

/** The first value of `tag` in each match. */
export function column(result: SearchResult, tag: string): unknown[] {
  return result.matches.map((m) => m[tag]?.Value?.[0]);
}

const UID_OF: Record<QueryLevel, string> = { study: '0020000D', series: '0020000E', instance: '00080018' };

export function runIndexStoreContract(t: Test, name: string, factory: IndexStoreFactory): void {
  /** A store holding the fixture archive. */
  const seeded = (t: Test) => {
    const store = factory(t);
    t.teardown(() => store.close());
    store.commit(BATCH_1, 'reject');
    store.commit(BATCH_2, 'reject');
    return store;
  };

  /** Asserts the UIDs a query returns, in order, and that the total agrees. */
  const expectUids = (
    t: Test,
    store: IndexStore,
    level: QueryLevel,
    params: string,
    expected: string[],
    scope: QidoScope = {},
    access?: StudyCondition,
  ) => {
    const result = search(store, level, params, scope, access);
    const label = `${level}?${params} ${JSON.stringify(scope)}${access === undefined ? '' : ` access ${JSON.stringify(access)}`}`;
    t.same(column(result, UID_OF[level]), expected, label);
    t.equal(result.total, expected.length, `total of ${label}`);
  };

  t.test(`${name}: commit stores and counts every level`, (t) => {
    const store = factory(t);
    t.teardown(() => store.close());
    t.same(store.commit(BATCH_1, 'reject'), BATCH_1.map(() => ({ kind: 'stored' })));
    t.same(store.counts(), { patients: 2, studies: 2, series: 2, instances: 5 });
    t.same(store.commit(BATCH_2, 'reject'), BATCH_2.map(() => ({ kind: 'stored' })));
    t.same(store.counts(), { patients: 3, studies: 4, series: 5, instances: 8 }, 'PAT-DE has two studies');
    t.same(store.findInstance(I212), {
      studyInstanceUID: ST2,
      seriesInstanceUID: SE21,
      sopInstanceUID: I212,
      sopClassUID: MR_IMAGE,
      transferSyntaxUID: EXPLICIT_LE,
      blobKey: `blob-${I212}`,
      size: 1000,
      sha256: `sha-${I212}`,
    });
    t.equal(store.findInstance('2.25.999'), undefined);
    t.end();
  });

  t.test(`${name}: study results carry exactly the required return attributes`, (t) => {
    const store = seeded(t);
    const [study2] = search(store, 'study', `StudyInstanceUID=${ST2}`).matches;
    t.strictSame(study2, {
      '00080020': { vr: 'DA', Value: ['20210620'] },
      '00080030': { vr: 'TM', Value: ['083000'] },
      '00080050': { vr: 'SH', Value: ['ACC-002'] },
      '00080056': { vr: 'CS', Value: ['ONLINE'] },
      '00080061': { vr: 'CS', Value: ['MR'] },
      '00080090': { vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Müller^Jürgen' }] },
      '00100020': { vr: 'LO', Value: ['PAT-DE'] },
      '00100030': { vr: 'DA', Value: ['19650430'] },
      '00100040': { vr: 'CS', Value: ['M'] },
      '0020000D': { vr: 'UI', Value: [ST2] },
      '00200010': { vr: 'SH', Value: ['S2'] },
      '00201206': { vr: 'IS', Value: [1] },
      '00201208': { vr: 'IS', Value: [2] },
    });
    t.same(Object.keys(study2!), Object.keys(study2!).sort(), 'keys in ascending tag order (PS3.18 F.2.1)');

    const [study3] = search(store, 'study', `StudyInstanceUID=${ST3}`).matches;
    t.strictSame(study3!['00080090'], { vr: 'PN' }, 'required but absent: returned empty');
    t.strictSame(study3!['00100030'], { vr: 'DA' });
    t.equal(study3!['00080201'], undefined, '"if known" and unknown: omitted');
    t.strictSame(search(store, 'study', `StudyInstanceUID=${ST1}`).matches[0]!['00080201'], { vr: 'SH', Value: ['+0100'] }, '"if known" and known');
    t.strictSame(study3!['00080030'], { vr: 'TM', Value: ['235959.5'] }, 'stored value returned as sent, not normalised');
    const [study4] = search(store, 'study', `StudyInstanceUID=${ST4}`).matches;
    t.strictSame(study4!['00200010'], { vr: 'SH' });
    t.end();
  });

  t.test(`${name}: series and instance results per URL form (PS3.18 Table 10.6.3-2)`, (t) => {
    const store = seeded(t);
    const studySeries = search(store, 'series', '', { studyInstanceUID: ST1 });
    t.same(column(studySeries, '0020000E'), [SE11, SE12]);
    t.strictSame(studySeries.matches[0], {
      '00080056': { vr: 'CS', Value: ['ONLINE'] },
      '00080060': { vr: 'CS', Value: ['CT'] },
      '00080201': { vr: 'SH', Value: ['+0100'] },
      '0008103E': { vr: 'LO', Value: ['Axial'] },
      '0020000D': { vr: 'UI', Value: [ST1] },
      '0020000E': { vr: 'UI', Value: [SE11] },
      '00200011': { vr: 'IS', Value: [1] },
      '00201209': { vr: 'IS', Value: [3] },
      '00400244': { vr: 'DA', Value: ['20200115'] },
      '00400245': { vr: 'TM', Value: ['101000'] },
      '00400275': {
        vr: 'SQ',
        Value: [
          { '00400009': { vr: 'SH', Value: ['SPS-1'] }, '00401001': { vr: 'SH', Value: ['RP-1'] } },
          { '00400009': { vr: 'SH', Value: ['SPS-2'] }, '00401001': { vr: 'SH', Value: ['RP-2'] } },
        ],
      },
    }, "Study's Series: series attributes only");
    t.strictSame(studySeries.matches[1], {
      '00080056': { vr: 'CS', Value: ['ONLINE'] },
      '00080060': { vr: 'CS', Value: ['PT'] },
      '00080201': { vr: 'SH', Value: ['+0100'] },
      '0008103E': { vr: 'LO', Value: ['PET WB'] },
      '0020000D': { vr: 'UI', Value: [ST1] },
      '0020000E': { vr: 'UI', Value: [SE12] },
      '00200011': { vr: 'IS', Value: [2] },
      '00201209': { vr: 'IS', Value: [1] },
    }, '"if known" series attributes omitted when absent (the study\'s timezone is known)');

    const allSeries = search(store, 'series', `SeriesInstanceUID=${SE21}`);
    t.match(allSeries.matches[0], {
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Müller^Jürgen' }] },
      '00080020': { vr: 'DA', Value: ['20210620'] },
      '00201208': { vr: 'IS', Value: [2] },
      '00080060': { vr: 'CS', Value: ['MR'] },
    }, 'All Series: study attributes too');

    const seriesInstances = search(store, 'instance', '', { studyInstanceUID: ST1, seriesInstanceUID: SE11 });
    t.same(column(seriesInstances, '00080018'), [I111, I112, I113]);
    t.strictSame(seriesInstances.matches[0], {
      '00080016': { vr: 'UI', Value: [CT_IMAGE] },
      '00080018': { vr: 'UI', Value: [I111] },
      '00080056': { vr: 'CS', Value: ['ONLINE'] },
      '00080201': { vr: 'SH', Value: ['+0100'] },
      '00083002': { vr: 'UI', Value: [EXPLICIT_LE] },
      '0020000D': { vr: 'UI', Value: [ST1] },
      '0020000E': { vr: 'UI', Value: [SE11] },
      '00200013': { vr: 'IS', Value: [1] },
      '00280010': { vr: 'US', Value: [512] },
      '00280011': { vr: 'US', Value: [512] },
      '00280100': { vr: 'US', Value: [16] },
    }, "Series' Instances: instance attributes only");

    const studyInstances = search(store, 'instance', '', { studyInstanceUID: ST1 });
    t.same(column(studyInstances, '00080018'), [I111, I112, I113, I121]);
    t.match(studyInstances.matches[3], {
      '00080060': { vr: 'CS', Value: ['PT'] },
      '00201209': { vr: 'IS', Value: [1] },
      '00280008': { vr: 'IS', Value: [1] },
    }, "Study's Instances: series attributes too");
    t.equal(studyInstances.matches[3]!['00100010'], undefined, "Study's Instances: no study attributes");

    const allInstances = search(store, 'instance', `SOPInstanceUID=${I311}`);
    t.match(allInstances.matches[0], {
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'García^María^^Dra' }] },
      '00080061': { vr: 'CS', Value: ['CT'] },
      '00080060': { vr: 'CS', Value: ['CT'] },
      '00200011': { vr: 'IS', Value: ['03'] },
    }, 'All Instances: every level');
    t.strictSame(allInstances.matches[0]!['00200013'], { vr: 'IS' }, 'InstanceNumber absent: empty');

    expectUids(t, store, 'series', '', [], { studyInstanceUID: '2.25.999' });
    expectUids(t, store, 'instance', '', [], { studyInstanceUID: ST1, seriesInstanceUID: SE21 });
    expectUids(t, store, 'instance', '', [I211, I212], { seriesInstanceUID: SE21 });
    expectUids(t, store, 'series', '', [SE21], { studyInstanceUID: ST2, seriesInstanceUID: SE21 });
    expectUids(t, store, 'series', '', [], { studyInstanceUID: ST1, seriesInstanceUID: SE21 });
    t.end();
  });

  t.test(`${name}: includefield, matched and universal attributes`, (t) => {
    const store = seeded(t);
    const [s1] = search(store, 'study', `StudyInstanceUID=${ST1}&includefield=00081030,00080060&includefield=PatientAge`).matches;
    t.strictSame(s1!['00081030'], { vr: 'LO', Value: ['CT Chest'] });
    t.strictSame(s1!['00101010'], { vr: 'AS', Value: ['050Y'] }, 'by keyword');
    t.equal(s1!['00080060'], undefined, 'a series attribute is never returned at the study level');

    const [s1all] = search(store, 'study', `StudyInstanceUID=${ST1}&includefield=all`).matches;
    t.strictSame(s1all!['00081030'], { vr: 'LO', Value: ['CT Chest'] });
    t.strictSame(s1all!['00101010'], { vr: 'AS', Value: ['050Y'] });
    t.strictSame(s1all!['00080062'], { vr: 'UI', Value: [PET_IMAGE, CT_IMAGE] }, 'SOPClassesInStudy, sorted');
    for (const tag of ['00080060', '0008103E', '00200013', '00280010', '00080016']) {
      t.equal(s1all![tag], undefined, `all: no lower-level ${tag}`);
    }

    const [se41] = search(store, 'series', 'includefield=00181000,00080080,00091001', { studyInstanceUID: ST4 }).matches;
    t.strictSame(se41!['00181000'], { vr: 'LO', Value: ['SN-41'] }, 'an attribute outside the index table, by tag');
    t.strictSame(se41!['00080080'], { vr: 'LO' }, 'requested, known, absent: empty');
    t.equal(se41!['00091001'], undefined, 'instance-level private attribute not returned for a series');
    const [se11] = search(store, 'series', 'includefield=00181000', { studyInstanceUID: ST1 }).matches;
    t.equal(se11!['00181000'], undefined, 'requested, unknown to the table, absent: left out');

    const [se41all] = search(store, 'series', 'includefield=all', { studyInstanceUID: ST4 }).matches;
    t.strictSame(se41all!['00181000'], { vr: 'LO', Value: ['SN-41'] });
    t.equal(se41all!['00100010'], undefined, "Study's Series with all: still no study attributes");

    const [i113] = search(store, 'instance', 'includefield=all', { studyInstanceUID: ST1, seriesInstanceUID: SE11 }).matches.slice(2);
    t.strictSame(i113!['00091001'], { vr: 'LO', Value: ['private value'] }, 'all: every instance attribute');
    t.equal(i113!['00080060'], undefined, 'all: the series attributes stay out of Series\' Instances');

    const matched = search(store, 'study', 'StudyDescription=MR*');
    t.same(column(matched, '00081030'), ['MR Brain'], 'a matched attribute is returned');
    const universal = search(store, 'series', 'BodyPartExamined=');
    t.same(column(universal, '00180015'), ['CHEST', undefined, undefined, undefined, undefined], 'universal matching returns the attribute');
    t.strictSame(universal.matches[1]!['00180015'], { vr: 'CS' });
    t.end();
  });

  t.test(`${name}: derived attributes follow every commit`, (t) => {
    const store = factory(t);
    t.teardown(() => store.close());
    const derived = (uid: string) => {
      const [m] = search(store, 'study', `StudyInstanceUID=${uid}&includefield=SOPClassesInStudy`).matches;
      return [m!['00080061']?.Value, m!['00080062']?.Value, m!['00201206']?.Value, m!['00201208']?.Value];
    };
    store.commit(BATCH_1, 'reject');
    t.same(derived(ST1), [['CT'], [CT_IMAGE], [1], [3]]);
    t.same(derived(ST2), [['MR'], [MR_IMAGE], [1], [2]]);
    store.commit(BATCH_2, 'reject');
    t.same(derived(ST1), [['CT', 'PT'], [PET_IMAGE, CT_IMAGE], [2], [4]], 'new series in an existing study');
    t.same(derived(ST4), [['MR'], [MR_IMAGE], [1], [1]]);
    t.same(column(search(store, 'series', '', { studyInstanceUID: ST1 }), '00201209'), [3, 1]);

    // Replacing the PET image with an Enhanced PET one: SOP classes follow, counts do not move.
    const replacement = instanceRecord(LEVELS_OF.SE12, I121, ENHANCED_PET_IMAGE, {}, { blobKey: 'blob-new', sha256: 'sha-new' });
    t.same(store.commit([replacement], 'replace'), [{ kind: 'replaced', previousBlobKey: `blob-${I121}` }]);
    t.same(derived(ST1), [['CT', 'PT'], [ENHANCED_PET_IMAGE, CT_IMAGE], [2], [4]]);
    t.same(store.counts(), { patients: 3, studies: 4, series: 5, instances: 8 });
    t.end();
  });

  t.test(`${name}: duplicates (identical, reject, replace, other study or series)`, (t) => {
    const store = seeded(t);
    const original = store.findInstance(I211)!;

    t.same(store.commit([RECORD[I211]!], 'reject'), [{ kind: 'identical' }], 'same UID, same bytes');
    t.same(store.commit([RECORD[I211]!], 'replace'), [{ kind: 'identical' }]);

    const changed = instanceRecord(LEVELS_OF.SE21, I211, MR_IMAGE, { '00200013': { vr: 'IS', Value: [7] } }, {
      blobKey: 'blob-2',
      sha256: 'sha-2',
    });
    t.same(store.commit([changed], 'reject'), [{ kind: 'duplicate', existing: original }], 'other bytes, reject');
    t.same(store.findInstance(I211), original, 'a rejected duplicate changes nothing');
    t.same(column(search(store, 'instance', `SOPInstanceUID=${I211}`), '00200013'), ['1']);

    t.same(store.commit([changed], 'replace'), [{ kind: 'replaced', previousBlobKey: original.blobKey }]);
    t.same(store.findInstance(I211), { ...original, blobKey: 'blob-2', sha256: 'sha-2' });
    t.same(column(search(store, 'instance', `SOPInstanceUID=${I211}`), '00200013'), [7], 'the new attributes are searched');
    expectUids(t, store, 'instance', 'InstanceNumber=7', [I211]);
    t.same(store.counts(), { patients: 3, studies: 4, series: 5, instances: 8 });

    const otherStudy = instanceRecord(LEVELS_OF.SE31, I211, MR_IMAGE, {}, { sha256: 'sha-3' });
    t.same(store.commit([otherStudy], 'replace'), [{ kind: 'duplicate', existing: store.findInstance(I211)! }], 'other study: always a duplicate');
    const sameBytesOtherSeries = instanceRecord(LEVELS_OF.SE12, I111, CT_IMAGE);
    t.equal(store.commit([sameBytesOtherSeries], 'replace')[0]!.kind, 'duplicate', 'other series, same bytes: still a duplicate');

    const fresh = instanceRecord(LEVELS_OF.SE41, '2.25.1004.1.9', MR_IMAGE);
    const freshChanged = instanceRecord(LEVELS_OF.SE41, '2.25.1004.1.9', MR_IMAGE, {}, { blobKey: 'blob-x', sha256: 'sha-x' });
    t.same(
      store.commit([fresh, freshChanged], 'reject').map((o) => o.kind),
      ['stored', 'duplicate'],
      'a batch sees its own earlier records',
    );
    t.same(column(search(store, 'study', `StudyInstanceUID=${ST4}`), '00201208'), [2]);
    t.end();
  });

  t.test(`${name}: study matching keys (PS3.18 Table 10.6.1-5)`, (t) => {
    const store = seeded(t);
    const s = (params: string, expected: string[]) => expectUids(t, store, 'study', params, expected);
    s('', ALL_STUDIES);

    s('StudyDate=20200115', [ST1]);
    s('StudyDate=20210101-20211231', [ST2, ST3]);
    s('StudyDate=-20000101', [ST4]);
    s('00080020=20211231-', [ST3]);
    s('StudyDate=18000101', []);

    s('StudyTime=1015', [ST1]);
    s('StudyTime=2359-', [ST3]);
    s('StudyTime=-0900', [ST2]);
    s('StudyTime=083000-120000', [ST1, ST2, ST4]);

    s('AccessionNumber=ACC-001', [ST1]);
    s('AccessionNumber=ACC-003', []); // single value matching is case-sensitive
    s('AccessionNumber=acc-003', [ST3]);
    s('AccessionNumber=ACC-00?', [ST1, ST2, ST4]);
    s('AccessionNumber=*003', [ST3]);
    s('AccessionNumber=acc*', [ST3]);
    s('AccessionNumber=ACC*', [ST1, ST2, ST4]);

    s('ModalitiesInStudy=PT', [ST1]);
    s('ModalitiesInStudy=CT', [ST1, ST3]);
    s('ModalitiesInStudy=MR', [ST2, ST4]);
    s('ModalitiesInStudy=CT,MR', ALL_STUDIES);
    s('ModalitiesInStudy=PT%5CMR', [ST1, ST2, ST4]);
    s('ModalitiesInStudy=P*', [ST1]);
    s('ModalitiesInStudy=ct', []);
    s(`SOPClassesInStudy=${PET_IMAGE}`, [ST1]);

    s('ReferringPhysicianName=smith^anne', [ST1]); // PN: case-insensitive
    s('ReferringPhysicianName=DOE*', [ST2, ST4]);
    s('ReferringPhysicianName=Doe^J?ne', [ST4]);

    s('PatientID=PAT-DE', [ST2, ST4]);
    s('PatientID=pat-de', []);
    s('PatientID=PAT-*', ALL_STUDIES);
    s('00100020=*JP', [ST1]);

    s(`StudyInstanceUID=${ST3}`, [ST3]);
    s(`StudyInstanceUID=${ST4},${ST1}`, [ST1, ST4]);
    s(`StudyInstanceUID=${ST2}%5C${ST3}`, [ST2, ST3]); // OHIF joins with a backslash
    s('StudyInstanceUID=2.25.999', []);

    s('StudyID=S1', [ST1]);
    s('StudyID=S?', [ST1, ST2, ST3]);
    s('StudyDescription=Head, neck', [ST3]);
    s('StudyDescription=*ead*', [ST3]);

    s('PatientBirthDate=19650430', [ST2, ST4]);
    s('PatientSex=F', [ST3]);
    s('PatientSex=M&StudyDate=20200101-', [ST1, ST2]);
    t.end();
  });

  t.test(`${name}: person name matching (case, accents, groups, fuzzy)`, (t) => {
    const store = seeded(t);
    const s = (params: string, expected: string[]) => expectUids(t, store, 'study', params, expected);
    s('PatientName=yamada^tarou', [ST1]);
    s('PatientName=YAMADA^TAROU', [ST1]);
    s('PatientName=Yamada', []); // single value: the whole name
    s('PatientName=山田^太郎', [ST1]); // ideographic group
    s('PatientName=やまだ^たろう', [ST1]); // phonetic group
    s('PatientName=やまた^たろう', []); // voicing marks are not accents
    s('PatientName=やまだ*', [ST1]);
    s('PatientName=Yamada^Tarou=山田^太郎', [ST1]);
    s('PatientName=Yamada*=山田^太郎', [ST1]);
    s('PatientName==山田^太郎', [ST1]);
    s('PatientName=*=山田*', [ST1]);
    s('PatientName=Yamada^Tarou=山田^次郎', []);
    s('PatientName=muller^jurgen', [ST2, ST4]); // accent-insensitive
    s('PatientName=MÜLLER^JÜRGEN', [ST2, ST4]);
    s(`PatientName=${encodeURIComponent('Mu\u0308ller^Ju\u0308rgen')}`, [ST2, ST4]); // decomposed input
    s('PatientName=Müller*', [ST2, ST4]);
    s('PatientName=m?ller*', [ST2, ST4]);
    s('PatientName=*ARIA*', [ST3]);
    s('PatientName=garcia^maria^^dra', [ST3]);
    s('PatientName=garcia^maria^^dra^', [ST3]); // trailing empty component
    s('PatientName=garcia^maria', []);
    s('PatientName=*', ALL_STUDIES);

    s('fuzzymatching=true&PatientName=tar yam', [ST1]);
    s('fuzzymatching=true&PatientName=jur', [ST2, ST4]);
    s('fuzzymatching=true&PatientName=mar^gar', [ST3]);
    s('fuzzymatching=true&PatientName=maria x', []);
    s('fuzzymatching=true&PatientName=たろ', [ST1]);
    s('fuzzymatching=true&PatientName=arc', []); // word prefixes, not substrings
    s('fuzzymatching=true&ReferringPhysicianName=jo', [ST2]);
    s('fuzzymatching=true&PatientName=*arc*', [ST3]); // wild cards win over fuzzy
    t.end();
  });

  t.test(`${name}: series and instance matching keys, sequences`, (t) => {
    const store = seeded(t);
    const se = (params: string, expected: string[], scope: QidoScope = {}) => expectUids(t, store, 'series', params, expected, scope);
    const i = (params: string, expected: string[], scope: QidoScope = {}) => expectUids(t, store, 'instance', params, expected, scope);

    se('', ALL_SERIES);
    se('Modality=CT', [SE11, SE31]);
    se('Modality=MR', [SE21, SE41]);
    se('Modality=MR', [SE41], { studyInstanceUID: ST4 });
    se('Modality=?T', [SE11, SE12, SE31]);
    se(`SeriesInstanceUID=${SE31}`, [SE31]);
    se('SeriesInstanceUID=', ALL_SERIES);
    se(`SeriesInstanceUID=${SE41},${SE12}`, [SE12, SE41]);
    se('SeriesNumber=1', [SE11, SE21, SE41]);
    se('SeriesNumber=3', [SE31]); // stored as "03"
    se('SeriesNumber=+2', [SE12]);
    se('PerformedProcedureStepStartDate=20200115', [SE11]);
    se('PerformedProcedureStepStartDate=20200101-', [SE11, SE21]);
    se('PerformedProcedureStepStartTime=0830-0900', [SE21]);
    se('00400275.00400009=SPS-2', [SE11]);
    se('RequestAttributesSequence.RequestedProcedureID=RP-3', [SE21]);
    se('00400275.00400009=SPS-1&00400275.00401001=RP-1', [SE11]);
    se('00400275.00400009=SPS-1&00400275.00401001=RP-2', []); // both keys must match the same item
    se('00400275.00400009=SPS-*', [SE11, SE21]);
    se('00400275.00400009=sps-*', []);
    se('StudyDate=20210101-20211231', [SE21, SE31]); // study attributes on All Series
    se('PatientName=garcia*', [SE31]);
    se('SeriesDescription=*a*', [SE11, SE21]);
    se('BodyPartExamined=CHEST', [SE11]);

    i('', ALL_INSTANCES);
    i('InstanceNumber=1', [I111, I211, I121, I411]);
    i('InstanceNumber=2', [I112, I212]);
    i(`SOPClassUID=${MR_IMAGE}`, [I211, I212, I411]);
    i(`SOPClassUID=${CT_IMAGE},${PET_IMAGE}`, [I111, I112, I113, I121, I311]);
    i(`SOPInstanceUID=${I411}%5C${I113}`, [I113, I411]);
    i('AcquisitionDateTime=202001151000-202001151100', [I111]);
    i('AcquisitionDateTime=20200115', [I111, I112]);
    i('AcquisitionDateTime=2020011511-', [I112]);
    i('Modality=MR', [I211, I212, I411]);
    i('PatientName=Müller*', [I211, I212, I411]);
    i('InstanceNumber=1', [I121], { studyInstanceUID: ST1, seriesInstanceUID: SE12 });
    i('InstanceNumber=1', [I111, I121], { studyInstanceUID: ST1 });
    t.end();
  });

  t.test(`${name}: values that look like SQL or pattern syntax are data`, (t) => {
    const store = seeded(t);
    const s = (params: string, expected: string[]) => expectUids(t, store, 'study', params, expected);
    const q = (key: string, value: string, expected: string[]) => s(`${key}=${encodeURIComponent(value)}`, expected);
    q('AccessionNumber', "*'OR 1=1--", []);
    q('AccessionNumber', "' OR '1'='1", []);
    q('PatientID', "PAT-DE' --", []);
    q('PatientName', "*' OR ''='*", []);
    q('StudyDescription', '%', []);
    q('StudyDescription', '_', []);
    q('StudyDescription', '*%*', [ST4]);
    q('StudyDescription', '*_*', [ST4]);
    q('StudyDescription', '*[x]*', [ST4]);
    q('StudyDescription', '*[*', [ST4]);
    q('StudyDescription', '*]*', [ST4]);
    q('StudyDescription', '*\\*', [ST4]);
    q('StudyDescription', '50?_off*', [ST4]);
    q('StudyDescription', '[5]*', []);
    q('StudyDescription', STUDY4_DESCRIPTION, [ST4]);
    q('StudyDescription', "*'OR 1=1--", [ST4]);
    q('AccessionNumber', '%', []);
    t.same(store.counts(), { patients: 3, studies: 4, series: 5, instances: 8 }, 'nothing was changed');
    t.end();
  });

  t.test(`${name}: paging is stable and totals count every match`, (t) => {
    const store = seeded(t);
    const page = (limit: number, offset: number) => search(store, 'instance', `limit=${limit}&offset=${offset}`);
    const pages = [page(3, 0), page(3, 3), page(3, 6)];
    t.same(pages.map((p) => p.matches.length), [3, 3, 2]);
    t.same(pages.map((p) => p.total), [8, 8, 8]);
    t.same(pages.flatMap((p) => column(p, '00080018')), ALL_INSTANCES, 'pages concatenate to the full list');
    t.same(column(page(1, 7), '00080018'), [I411]);
    for (const offset of [8, 100]) {
      const beyond = page(3, offset);
      t.same(beyond.matches, [], `offset ${offset}: empty page`);
      t.equal(beyond.total, 8, `offset ${offset}: total still counts`);
    }
    const studies = (limit: number, offset: number) => search(store, 'study', `limit=${limit}&offset=${offset}`);
    t.same([studies(4, 0).total, studies(5, 0).total, studies(2, 0).total, studies(5, 3).total], [4, 4, 4, 4]);
    t.same(column(studies(2, 2), '0020000D'), [ST3, ST4]);
    const filtered = search(store, 'study', 'PatientID=PAT-DE&limit=1&offset=1');
    t.same(column(filtered, '0020000D'), [ST4]);
    t.equal(filtered.total, 2);
    t.same(search(store, 'study', 'StudyDate=18000101'), { matches: [], total: 0 }, 'no match');
    t.end();
  });

  t.test(`${name}: a Series UID reused in another study stays two series`, (t) => {
    const store = seeded(t);
    const reused: InstanceRecord = instanceRecord([...LEVELS_OF.SE31, { '0020000E': { vr: 'UI', Value: [SE11] } }], '2.25.1003.9.1', CT_IMAGE);
    t.same(store.commit([reused], 'reject'), [{ kind: 'stored' }]);
    expectUids(t, store, 'series', `SeriesInstanceUID=${SE11}`, [SE11, SE11]);
    expectUids(t, store, 'instance', '', ['2.25.1003.9.1'], { studyInstanceUID: ST3, seriesInstanceUID: SE11 });
    expectUids(t, store, 'instance', '', [I111, I112, I113], { studyInstanceUID: ST1, seriesInstanceUID: SE11 });
    t.end();
  });

  t.test(`${name}: a study without Patient ID is a patient of its own`, (t) => {
    const store = factory(t);
    t.teardown(() => store.close());
    const anonymous = (study: string, name: string): InstanceRecord =>
      instanceRecord(
        [{ '00100010': { vr: 'PN', Value: [{ Alphabetic: name }] }, '0020000D': { vr: 'UI', Value: [study] }, '0020000E': { vr: 'UI', Value: [`${study}.1`] } }],
        `${study}.1.1`,
        CT_IMAGE,
      );
    store.commit([anonymous('2.25.71', 'Anon^A'), anonymous('2.25.72', 'Anon^B')], 'reject');
    t.same(store.counts(), { patients: 2, studies: 2, series: 2, instances: 2 });
    expectUids(t, store, 'study', 'PatientName=anon^b', ['2.25.72']);
    t.strictSame(search(store, 'study', '').matches[0]!['00100020'], { vr: 'LO' });
    t.end();
  });

  t.test(`${name}: instance layout round-trips (native and encapsulated Pixel Data, bulk values)`, (t) => {
    const store = seeded(t);
    const native: InstanceLayout = {
      pixelData: { offset: 1234, length: 512 * 512 * 2, encapsulated: false },
      bulk: [
        { path: ['54000100', 0, '54001010'], vr: 'OW', offset: 900, length: 70_000 },
        { path: ['00880200', 1, '7FE00010'], vr: 'OB', offset: 400, length: 300, encapsulated: true },
      ],
    };
    const encapsulated: InstanceLayout = {
      pixelData: {
        offset: 2000,
        length: 30_016,
        encapsulated: true,
        fragments: [
          { offset: 2024, length: 10_000 },
          { offset: 12_032, length: 19_984 },
        ],
        basicOffsetTable: [0, 10_008],
      },
    };
    const withNative = { ...instanceRecord(LEVELS_OF.SE41, '2.25.1004.1.20', MR_IMAGE), layout: native };
    const withEncapsulated = { ...instanceRecord(LEVELS_OF.SE41, '2.25.1004.1.21', MR_IMAGE), layout: encapsulated };
    t.same(store.commit([withNative, withEncapsulated], 'reject'), [{ kind: 'stored' }, { kind: 'stored' }]);
    t.strictSame(store.findInstance('2.25.1004.1.20')!.layout, native);
    t.strictSame(store.findInstance('2.25.1004.1.21')!.layout, encapsulated);
    t.notOk('layout' in store.findInstance(I411)!, 'no layout given: none returned (NULL, not an empty object)');

    const returned = store.findInstance('2.25.1004.1.20')!;
    returned.layout!.bulk!.pop();
    t.strictSame(store.findInstance('2.25.1004.1.20')!.layout, native, 'a returned layout is a copy');

    const replaced = { ...withNative, blobKey: 'blob-20b', sha256: 'sha-20b', layout: encapsulated };
    t.same(store.commit([replaced], 'replace'), [{ kind: 'replaced', previousBlobKey: withNative.blobKey }]);
    t.strictSame(store.findInstance('2.25.1004.1.20')!.layout, encapsulated, 'a replacement takes the new layout');
    const { layout: _dropped, ...withoutLayout } = { ...replaced, blobKey: 'blob-20c', sha256: 'sha-20c' };
    t.same(store.commit([withoutLayout], 'replace')[0]!.kind, 'replaced');
    t.notOk('layout' in store.findInstance('2.25.1004.1.20')!, 'a replacement without large values clears it');
    t.end();
  });

  t.test(`${name}: listInstances gives every instance of a retrieve scope, in retrieve order`, (t) => {
    const store = seeded(t);
    const sops = (refs: StoredInstanceRef[]) => refs.map((r) => r.sopInstanceUID);
    t.same(sops(store.listInstances({ studyInstanceUID: ST1 })), [I111, I112, I113, I121], 'series #1 then #2');
    t.same(sops(store.listInstances({ studyInstanceUID: ST1, seriesInstanceUID: SE12 })), [I121]);
    t.same(sops(store.listInstances({ studyInstanceUID: ST2, seriesInstanceUID: SE21, sopInstanceUID: I212 })), [I212]);
    t.same(sops(store.listInstances({ studyInstanceUID: ST2, sopInstanceUID: I212 })), [I212], 'instance in a study, any series');
    t.same(store.listInstances({ studyInstanceUID: ST2, seriesInstanceUID: SE21, sopInstanceUID: I212 }), [store.findInstance(I212)], 'full refs');

    t.same(store.listInstances({ studyInstanceUID: '2.25.999' }), [], 'unknown study');
    t.same(store.listInstances({ studyInstanceUID: ST1, seriesInstanceUID: '2.25.999' }), [], 'unknown series');
    t.same(store.listInstances({ studyInstanceUID: ST2, seriesInstanceUID: SE11 }), [], 'series of another study');
    t.same(store.listInstances({ studyInstanceUID: ST1, seriesInstanceUID: SE11, sopInstanceUID: I121 }), [], 'instance of another series');
    t.same(store.listInstances({ studyInstanceUID: ST2, sopInstanceUID: I111 }), [], 'instance of another study');
    t.same(store.listInstances({ studyInstanceUID: ST1, seriesInstanceUID: SE11, sopInstanceUID: '2.25.999' }), [], 'unknown instance');

    // Order: SeriesNumber (absent last), then series insertion; InstanceNumber (absent last), then insertion.
    const study = { '0020000D': { vr: 'UI', Value: ['2.25.77'] } };
    const seriesLevel = (uid: string, number?: number) => [
      PATIENT_OF_ORDER_TEST,
      study,
      { '0020000E': { vr: 'UI', Value: [uid] }, ...(number === undefined ? {} : { '00200011': { vr: 'IS', Value: [number] } }) },
    ];
    const inst = (series: DicomJsonDatasetLike[], uid: string, number?: number | string) =>
      instanceRecord(series, uid, CT_IMAGE, number === undefined ? {} : { '00200013': { vr: 'IS', Value: [number] } });
    const A = seriesLevel('2.25.77.1', 2);
    const B = seriesLevel('2.25.77.2', 1);
    const C = seriesLevel('2.25.77.3');
    const D = seriesLevel('2.25.77.4', 2);
    store.commit(
      [inst(C, '2.25.77.3.1', 1), inst(A, '2.25.77.1.1', 3), inst(A, '2.25.77.1.2'), inst(A, '2.25.77.1.3', '1'), inst(B, '2.25.77.2.1', 10)],
      'reject',
    );
    store.commit([inst(A, '2.25.77.1.4', 1), inst(D, '2.25.77.4.1', 1), inst(B, '2.25.77.2.2', 9)], 'reject');
    t.same(sops(store.listInstances({ studyInstanceUID: '2.25.77' })), [
      '2.25.77.2.2', // series #1: instance 9 before 10
      '2.25.77.2.1',
      '2.25.77.1.3', // series #2 (inserted before D): instance 1 (inserted first), 1, 3, then no number
      '2.25.77.1.4',
      '2.25.77.1.1',
      '2.25.77.1.2',
      '2.25.77.4.1', // series #2 inserted later
      '2.25.77.3.1', // no SeriesNumber: last
    ]);
    t.same(sops(store.listInstances({ studyInstanceUID: '2.25.77', seriesInstanceUID: '2.25.77.1' })), [
      '2.25.77.1.3',
      '2.25.77.1.4',
      '2.25.77.1.1',
      '2.25.77.1.2',
    ]);
    t.end();
  });

  t.test(`${name}: listInstanceDatasets gives listInstances' refs with each stored dataset`, (t) => {
    const store = seeded(t);
    const scopes = [
      { studyInstanceUID: ST1 },
      { studyInstanceUID: ST1, seriesInstanceUID: SE12 },
      { studyInstanceUID: ST2, seriesInstanceUID: SE21, sopInstanceUID: I212 },
      { studyInstanceUID: ST2, sopInstanceUID: I212 },
      { studyInstanceUID: '2.25.999' },
      { studyInstanceUID: ST2, seriesInstanceUID: SE11 },
      { studyInstanceUID: ST2, sopInstanceUID: I111 },
    ];
    for (const scope of scopes) {
      const listed = store.listInstanceDatasets(scope);
      t.same(listed.map((l) => l.ref), store.listInstances(scope), `same refs, same order: ${JSON.stringify(scope)}`);
    }
    const all = store.listInstanceDatasets({ studyInstanceUID: ST1 });
    t.equal(all.length, 4);
    for (const { ref, dataset } of all) {
      t.same(dataset['00080018'], { vr: 'UI', Value: [ref.sopInstanceUID] }, 'the instance UID is in its dataset');
      t.same(dataset['0020000E'], { vr: 'UI', Value: [ref.seriesInstanceUID] }, 'the series UID is in its dataset');
      t.same(dataset['0020000D'], { vr: 'UI', Value: [ST1] }, 'the study UID is in its dataset');
      t.same(dataset['00080016'], { vr: 'UI', Value: [ref.sopClassUID] });
    }
    // The full instance dataset, not a level's slice: patient and study attributes are there too.
    const [first] = all;
    t.ok(first!.dataset['00100020'], 'PatientID kept');
    t.ok(first!.dataset['00080060'], 'series attributes kept (Modality)');
    // What the caller gets is a copy.
    first!.dataset['00100020'] = { vr: 'LO', Value: ['CHANGED'] };
    t.not(store.listInstanceDatasets({ studyInstanceUID: ST1 })[0]!.dataset['00100020']!.Value?.[0], 'CHANGED', 'no aliasing');
    t.end();
  });

  t.test(`${name}: listAllInstances pages through every instance in SOP Instance UID order`, (t) => {
    const store = seeded(t);
    const sorted = [...ALL_INSTANCES].sort();
    const walked: StoredInstanceRef[] = [];
    let pages = 0;
    for (let page = store.listAllInstances({ limit: 3 }); page.length > 0; page = store.listAllInstances({ after: walked.at(-1)!.sopInstanceUID, limit: 3 })) {
      t.ok(page.length <= 3, 'a page holds at most limit refs');
      walked.push(...page);
      pages++;
    }
    t.same(walked.map((r) => r.sopInstanceUID), sorted, 'every instance once, in order');
    t.equal(pages, Math.ceil(sorted.length / 3));
    t.same(walked.find((r) => r.sopInstanceUID === I212), store.findInstance(I212), 'full refs (blob key, size, SHA-256)');
    t.same(store.listAllInstances({ after: sorted.at(-1)!, limit: 10 }), [], 'nothing after the last');
    t.same(store.listAllInstances({ after: sorted[0]!, limit: 1 }).map((r) => r.sopInstanceUID), [sorted[1]], 'after is exclusive');
    const empty = factory(t);
    t.teardown(() => empty.close());
    t.same(empty.listAllInstances({ limit: 10 }), [], 'an empty index');
    t.end();
  });

  t.test(`${name}: pending marks`, (t) => {
    const store = factory(t);
    t.teardown(() => store.close());
    const t0 = Date.parse('2024-05-01T00:00:00Z');
    store.addPending('k2', new Date(t0 + 1000));
    store.addPending('k1', new Date(t0));
    store.addPending('k3', new Date(t0 + 5000));
    t.same(store.listPending(new Date(t0 + 500)), ['k1']);
    t.same(store.listPending(new Date(t0 + 2000)), ['k1', 'k2'], 'oldest first');
    t.same(store.listPending(new Date(t0)), [], 'strictly before');
    store.removePending('k1');
    store.removePending('unknown');
    t.same(store.listPending(new Date(t0 + 10_000)), ['k2', 'k3']);
    store.addPending('k3', new Date(t0 + 6000));
    t.same(store.listPending(new Date(t0 + 10_000)), ['k2', 'k3'], 'marking twice keeps one mark');

    const record = { ...RECORD[I111]!, blobKey: 'k2' };
    store.commit([record], 'reject');
    t.same(store.listPending(new Date(t0 + 10_000)), ['k3'], 'commit removes the mark');
    // The blob a commit leaves unreferenced (an identical or refused copy, a replaced instance's previous blob)
    // is pending after it, in the same transaction, until the caller has deleted it and removed the mark: a
    // crash in between leaves it to the sweeper instead of orphaning it.
    store.addPending('k4', new Date(t0));
    store.addPending('k5', new Date(t0));
    t.same(store.commit([{ ...record, blobKey: 'k4' }], 'reject').map((o) => o.kind), ['identical']);
    t.same(store.commit([{ ...record, blobKey: 'k5', sha256: 'other' }], 'reject').map((o) => o.kind), ['duplicate']);
    t.same(store.listPending(new Date(t0 + 10_000)), ['k4', 'k5', 'k3'], 'the copies not kept stay pending');
    store.addPending('k6', new Date(t0 + 7000));
    const replaced = store.commit([{ ...record, blobKey: 'k6', sha256: 'other', receivedAt: new Date(t0 + 8000) }], 'replace');
    t.same(replaced.map((o) => o.kind), ['replaced']);
    t.same(store.listPending(new Date(t0 + 10_000)), ['k4', 'k5', 'k3', 'k2'], 'the replacement is no longer pending; the previous blob (k2) is');
    t.end();
  });

  // --- per-study policy (issue 5): studyAttributes, labels, confidentiality, search(query, access) ---------

  t.test(`${name}: studyAttributes of the stored studies, absent values as '' and 0`, (t) => {
    const store = seeded(t);
    t.strictSame(store.studyAttributes(ST1), {
      studyInstanceUID: ST1,
      institution: '',
      referringPhysician: 'SMITH^ANNE',
      modalities: ['CT', 'PT'],
      accessionNumber: 'ACC-001',
      patientId: 'PAT-JP',
      studyDate: 20200115,
      labels: [],
      confidentiality: '',
    });
    t.strictSame(store.studyAttributes(ST3), {
      studyInstanceUID: ST3,
      institution: '',
      referringPhysician: '',
      modalities: ['CT'],
      accessionNumber: 'acc-003',
      patientId: 'PAT-ES',
      studyDate: 20211231,
      labels: [],
      confidentiality: '',
    });
    t.equal(store.studyAttributes('2.25.404'), undefined);
    const attributes = store.studyAttributes(ST2)!;
    attributes.modalities.push('XX');
    attributes.labels.push('mine');
    t.same(store.studyAttributes(ST2)!.modalities, ['MR'], 'a returned object is a copy');
    t.same(store.studyAttributes(ST2)!.labels, []);
    t.end();
  });

  t.test(`${name}: policy attributes come from the first instance; modalities grow with new series`, (t) => {
    const store = factory(t);
    t.teardown(() => store.close());
    const study = '2.25.7001';
    const lo = (value: string) => ({ vr: 'LO', Value: [value] });
    const first = instanceRecord(
      [
        {
          '0020000D': { vr: 'UI', Value: [study] },
          '00080090': { vr: 'PN', Value: [{ Alphabetic: 'Núñez^José^^', Ideographic: 'X' }] },
          '00080080': lo('  Hospital A '),
          '00401008': lo('RESTRICTED'),
          '00080060': { vr: 'CS', Value: ['US'] },
          '0020000E': { vr: 'UI', Value: [`${study}.1`] },
        },
      ],
      `${study}.1.1`,
      CT_IMAGE,
    );
    // What STOW authorisation evaluates before the store, and what the index keeps after it.
    const expectedFirst: StudyAttributes = {
      studyInstanceUID: study,
      institution: 'Hospital A',
      referringPhysician: 'NUNEZ^JOSE',
      modalities: ['US'],
      accessionNumber: '',
      patientId: '',
      studyDate: 0,
      labels: [],
      confidentiality: 'RESTRICTED',
    };
    t.strictSame(studyAttributesOf(first.dataset, undefined), expectedFirst);
    store.commit([first], 'reject');
    t.strictSame(store.studyAttributes(study), expectedFirst);

    // A second series with other institution, confidentiality and names: only the modality counts.
    const second = instanceRecord(
      [
        {
          ...first.dataset,
          '00080080': lo('Hospital B'),
          '00401008': lo('OPEN'),
          '00080050': { vr: 'SH', Value: ['ACC-9'] },
          '00080060': { vr: 'CS', Value: ['CT'] },
          '0020000E': { vr: 'UI', Value: [`${study}.2`] },
        },
      ],
      `${study}.2.1`,
      CT_IMAGE,
    );
    const expectedSecond = { ...expectedFirst, modalities: ['CT', 'US'] };
    t.strictSame(studyAttributesOf(second.dataset, store.studyAttributes(study)), expectedSecond);
    store.commit([second], 'reject');
    t.strictSame(store.studyAttributes(study), expectedSecond);
    // A third series of a modality already there, and an instance without Modality: nothing changes.
    const third = instanceRecord([{ ...second.dataset, '0020000E': { vr: 'UI', Value: [`${study}.3`] } }], `${study}.3.1`, CT_IMAGE);
    const noModality: DicomJsonDatasetLike = { ...second.dataset, '0020000E': { vr: 'UI', Value: [`${study}.4`] } };
    delete noModality['00080060'];
    t.strictSame(studyAttributesOf(noModality, expectedSecond), expectedSecond);
    store.commit([third, instanceRecord([noModality], `${study}.4.1`, CT_IMAGE)], 'reject');
    t.strictSame(store.studyAttributes(study), expectedSecond);
    // A replacement (a correction) does not move the study in or out of a policy.
    store.commit([instanceRecord([first.dataset, { '00080080': lo('Hospital C') }], `${study}.1.1`, CT_IMAGE, {}, { sha256: 'x' })], 'replace');
    t.equal(store.studyAttributes(study)!.institution, 'Hospital A');
    t.end();
  });

  t.test(`${name}: labels and confidentiality setters`, (t) => {
    const store = seeded(t);
    t.equal(store.setStudyLabels(ST1, ['teaching', 'research', 'teaching', 'Research']), true);
    t.same(store.studyAttributes(ST1)!.labels, ['Research', 'research', 'teaching'], 'sorted, deduplicated, case kept');
    t.same(store.studyAttributes(ST2)!.labels, [], 'other studies untouched');
    t.equal(store.setStudyLabels(ST1, ['vip']), true);
    t.same(store.studyAttributes(ST1)!.labels, ['vip'], 'replaced, not merged');
    t.equal(store.setStudyLabels('2.25.404', ['x']), false);
    t.equal(store.setStudyConfidentiality(ST2, 'V'), true);
    t.equal(store.studyAttributes(ST2)!.confidentiality, 'V');
    t.equal(store.setStudyConfidentiality('2.25.404', 'V'), false);
    const labelled: StudyCondition = { kind: 'has', attribute: 'labels', values: ['vip'], mode: 'any' };
    expectUids(t, store, 'study', '', [ST1], {}, labelled);
    expectUids(t, store, 'study', '', [ST1, ST3, ST4], {}, { kind: 'not', item: { kind: 'eq', attribute: 'confidentiality', value: 'V' } });
    t.equal(store.setStudyLabels(ST1, []), true);
    expectUids(t, store, 'study', '', [], {}, labelled);
    expectUids(t, store, 'study', '', ALL_STUDIES, {}, { kind: 'empty', attribute: 'labels' });
    t.end();
  });

  t.test(`${name}: search with an access condition, at every level`, (t) => {
    const store = seeded(t);
    // ST2 (Doe^John, MR) and ST3 (acc-003, CT); ST1 (CT+PT) and ST4 (MR) are not visible.
    const access: StudyCondition = {
      kind: 'or',
      items: [
        { kind: 'eq', attribute: 'referringPhysician', value: 'DOE^JOHN' },
        { kind: 'eq', attribute: 'accessionNumber', value: 'acc-003' },
      ],
    };
    expectUids(t, store, 'study', '', [ST2, ST3], {}, access);
    expectUids(t, store, 'study', 'ModalitiesInStudy=CT', [ST3], {}, access);
    expectUids(t, store, 'study', `StudyInstanceUID=${ST1}`, [], {}, access);
    expectUids(t, store, 'study', 'PatientID=PAT-DE', [ST2], {}, access);
    expectUids(t, store, 'series', '', [SE21, SE31], {}, access);
    expectUids(t, store, 'series', 'Modality=CT', [SE31], {}, access);
    expectUids(t, store, 'series', '', [], { studyInstanceUID: ST1 }, access);
    expectUids(t, store, 'series', '', [SE21], { studyInstanceUID: ST2 }, access);
    expectUids(t, store, 'instance', '', [I211, I212, I311], {}, access);
    expectUids(t, store, 'instance', `SOPClassUID=${CT_IMAGE}`, [I311], {}, access);
    expectUids(t, store, 'instance', '', [], { studyInstanceUID: ST1 }, access);
    expectUids(t, store, 'instance', '', [], { studyInstanceUID: ST1, seriesInstanceUID: SE11 }, access);
    expectUids(t, store, 'instance', '', [], { seriesInstanceUID: SE11 }, access);
    expectUids(t, store, 'instance', '', [I211, I212], { studyInstanceUID: ST2 }, access);
    expectUids(t, store, 'instance', '', [I211, I212], { studyInstanceUID: ST2, seriesInstanceUID: SE21 }, access);

    // Paging and totals over the permitted matches only (a full page makes the store count).
    const page = (level: QueryLevel, params: string) => search(store, level, params, {}, access);
    t.same([column(page('study', 'limit=1'), '0020000D'), page('study', 'limit=1').total], [[ST2], 2]);
    t.same([column(page('study', 'limit=1&offset=1'), '0020000D'), page('study', 'limit=1&offset=1').total], [[ST3], 2]);
    t.same([page('study', 'limit=1&offset=5').matches, page('study', 'limit=1&offset=5').total], [[], 2]);
    t.same([column(page('series', 'limit=1'), '0020000E'), page('series', 'limit=1').total], [[SE21], 2]);
    t.same([column(page('instance', 'limit=2&offset=1'), '00080018'), page('instance', 'limit=2&offset=1').total], [[I212, I311], 3]);
    t.same([page('instance', 'limit=2&offset=3').matches, page('instance', 'limit=2&offset=3').total], [[], 3]);

    // Derived attributes of a permitted study are the study's own, whatever else is hidden.
    const [st2] = page('study', `StudyInstanceUID=${ST2}`).matches;
    t.match(st2, { '00080061': { Value: ['MR'] }, '00201206': { Value: [1] }, '00201208': { Value: [2] } });

    // Constants, and the same search without access.
    for (const level of ['study', 'series', 'instance'] as const) {
      t.same(search(store, level, '', {}, FALSE), { matches: [], total: 0 }, `${level}: false hides everything`);
      t.same(search(store, level, 'limit=2', {}, FALSE), { matches: [], total: 0 }, `${level}: false, limited`);
    }
    expectUids(t, store, 'study', '', ALL_STUDIES, {}, TRUE);
    expectUids(t, store, 'series', '', ALL_SERIES, {}, TRUE);
    expectUids(t, store, 'instance', '', ALL_INSTANCES, {}, TRUE);

    // Set, date and like conditions.
    const notCt: StudyCondition = { kind: 'not', item: { kind: 'has', attribute: 'modalities', values: ['CT'], mode: 'any' } };
    expectUids(t, store, 'study', '', [ST2, ST4], {}, notCt);
    expectUids(t, store, 'series', '', [SE21, SE41], {}, notCt);
    expectUids(t, store, 'study', '', [ST1], {}, { kind: 'has', attribute: 'modalities', values: ['PT', 'CT'], mode: 'all' });
    expectUids(t, store, 'study', '', [ST2, ST3], {}, { kind: 'compare', attribute: 'studyDate', op: '>=', value: 20210101 });
    expectUids(t, store, 'study', '', [ST2, ST4], {}, { kind: 'like', attribute: 'referringPhysician', pattern: [{ literal: 'DOE^' }, 'wildcard'] });
    expectUids(t, store, 'study', '', [ST3], {}, { kind: 'eq', attribute: 'referringPhysician', value: '' });
    expectUids(t, store, 'study', '', [], {}, { kind: 'eq', attribute: 'studyDate', value: '20200115' as unknown as number });
    const mixed = search(store, 'instance', 'limit=1', {}, { kind: 'in', attribute: 'patientId', values: ['PAT-DE', 42] });
    t.same([column(mixed, '00080018'), mixed.total], [[I211], 3], 'a number is never equal to a string attribute');
    t.end();
  });

  t.test(`${name}: access on institution and confidentiality of the first instance`, (t) => {
    const store = factory(t);
    t.teardown(() => store.close());
    const lo = (value: string) => ({ vr: 'LO', Value: [value] });
    const studyOf = (n: number, institution: string | undefined, confidentiality: string | undefined) =>
      instanceRecord(
        [
          {
            '0020000D': { vr: 'UI', Value: [`2.25.80${n}`] },
            '0020000E': { vr: 'UI', Value: [`2.25.80${n}.1`] },
            '00080060': { vr: 'CS', Value: ['CR'] },
            ...(institution === undefined ? {} : { '00080080': lo(institution) }),
            ...(confidentiality === undefined ? {} : { '00401008': lo(confidentiality) }),
          },
        ],
        `2.25.80${n}.1.1`,
        CT_IMAGE,
      );
    store.commit([studyOf(1, 'North', undefined), studyOf(2, 'South', 'R'), studyOf(3, undefined, 'R'), studyOf(4, 'North*', '')], 'reject');
    const institution = (value: string): StudyCondition => ({ kind: 'eq', attribute: 'institution', value });
    expectUids(t, store, 'study', '', ['2.25.801'], {}, institution('North'));
    expectUids(t, store, 'study', '', ['2.25.803'], {}, institution(''));
    expectUids(t, store, 'study', '', ['2.25.801', '2.25.804'], {}, { kind: 'like', attribute: 'institution', pattern: [{ literal: 'North' }, 'wildcard'] });
    expectUids(t, store, 'study', '', ['2.25.804'], {}, { kind: 'like', attribute: 'institution', pattern: [{ literal: 'North*' }] });
    expectUids(t, store, 'series', '', ['2.25.801.1', '2.25.804.1'], {}, { kind: 'not', item: { kind: 'eq', attribute: 'confidentiality', value: 'R' } });
    expectUids(t, store, 'instance', '', ['2.25.802.1.1'], {}, {
      kind: 'and',
      items: [institution('South'), { kind: 'in', attribute: 'confidentiality', values: ['R', 'V'] }],
    });
    t.end();
  });

  runRemovalContract(t, name, factory);
}
