// SqliteLifecycleStore (index/lifecycle-store.ts) on a real index file: retention, legal holds, the bin, kept study
// settings, tombstones, and one transaction with the index (a rejection is all or nothing).
import path from 'node:path';
import t, { type Test } from 'tap';
import type { InstanceRecord, RetrieveScope } from '../../src/index/index-store.js';
import type { BinnedInstance, LegalHold, RemovalInfo, Tombstone } from '../../src/index/lifecycle-store.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { SqliteLifecycleStore } from '../../src/index/sqlite/sqlite-lifecycle-store.js';
import { BATCH_1, BATCH_2, I111, I112, I113, I121, I211, LEVELS_OF, MR_IMAGE, RECORD, SE11, SE12, ST1, ST2, instanceRecord } from '../contracts/index-store.fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';

const T0 = Date.UTC(2025, 0, 1, 12);
const at = (ms: number) => new Date(T0 + ms);
const DAY = 86_400_000;

function open(t: Test) {
  const index = new SqliteIndexStore(path.join(tempDir(t), 'index.sqlite'));
  t.teardown(() => index.close());
  return { index, lifecycle: new SqliteLifecycleStore(index.database) };
}

const removal = (over: Partial<RemovalInfo> = {}): RemovalInfo => ({
  code: 'delete',
  by: 'alice',
  at: at(0),
  purgeAfter: at(30 * DAY),
  ...over,
});

const binned = (record: InstanceRecord, over: Partial<RemovalInfo> = {}, patientId = 'PAT-JP'): BinnedInstance => ({
  record,
  removal: removal(over),
  patientId,
});

const hold = (over: Partial<LegalHold> = {}): LegalHold => ({
  id: 'hold-1',
  name: 'CASE-1',
  scope: 'study',
  target: ST1,
  reason: 'litigation',
  placedBy: 'lawyer',
  placedAt: at(0),
  ...over,
});

const sops = (items: { record: InstanceRecord }[]) => items.map((i) => i.record.sopInstanceUID);

t.test('retention: put, get, replace; indefinite and dates round-trip', (t) => {
  const { lifecycle } = open(t);
  t.equal(lifecycle.getRetention(ST1), undefined);
  const dated = { studyInstanceUID: ST1, keepUntil: new Date('2032-01-15T00:00:00.000Z'), rules: ['default', 'receipt-floor'], computedAt: at(5) };
  lifecycle.putRetention(dated);
  t.strictSame(lifecycle.getRetention(ST1), dated);
  const forever = { studyInstanceUID: ST1, keepUntil: 'indefinite' as const, rules: ['paediatric'], computedAt: at(9) };
  lifecycle.putRetention(forever);
  t.strictSame(lifecycle.getRetention(ST1), forever, 'replaced');
  t.equal(lifecycle.getRetention(ST2), undefined);
  t.end();
});

t.test('holds: place, get, list newest first, lift once, activeHoldsFor', (t) => {
  const { lifecycle } = open(t);
  const study = hold();
  const patient = hold({ id: 'hold-2', name: 'CASE-2', scope: 'patient', target: 'PAT-JP', placedAt: at(1000) });
  const other = hold({ id: 'hold-3', scope: 'study', target: ST2, placedAt: at(2000) });
  for (const h of [study, patient, other]) lifecycle.placeHold(h);
  t.throws(() => lifecycle.placeHold(study), 'an id is used once');
  t.strictSame(lifecycle.getHold('hold-2'), patient, 'no lift fields while active');
  t.equal(lifecycle.getHold('nope'), undefined);
  t.same(lifecycle.listHolds().map((h) => h.id), ['hold-3', 'hold-2', 'hold-1']);
  t.same(lifecycle.listHolds({ scope: 'study' }).map((h) => h.id), ['hold-3', 'hold-1']);
  t.same(lifecycle.listHolds({ scope: 'patient', target: 'PAT-JP' }).map((h) => h.id), ['hold-2']);
  t.same(lifecycle.activeHoldsFor(ST1, 'PAT-JP').map((h) => h.id), ['hold-2', 'hold-1']);
  t.same(lifecycle.activeHoldsFor(ST2, 'PAT-DE').map((h) => h.id), ['hold-3']);

  const lifted = lifecycle.liftHold('hold-1', 'judge', 'case closed', at(5000));
  t.strictSame(lifted, { ...study, liftedBy: 'judge', liftedAt: at(5000), liftReason: 'case closed' });
  t.equal(lifecycle.liftHold('hold-1', 'judge', 'again', at(6000)), undefined, 'already lifted');
  t.equal(lifecycle.liftHold('nope', 'judge', 'x', at(6000)), undefined);
  t.strictSame(lifecycle.getHold('hold-1'), lifted, 'the first lift stays recorded');
  t.same(lifecycle.listHolds().map((h) => h.id), ['hold-3', 'hold-2'], 'active only by default');
  t.same(lifecycle.listHolds({ includeLifted: true }).map((h) => h.id), ['hold-3', 'hold-2', 'hold-1']);
  t.same(lifecycle.activeHoldsFor(ST1, 'PAT-JP').map((h) => h.id), ['hold-2'], 'a lifted hold no longer holds');
  t.end();
});

t.test("holds: patientId '' never matches a patient hold, even one on ''", (t) => {
  const { lifecycle } = open(t);
  lifecycle.placeHold(hold({ id: 'h-empty', scope: 'patient', target: '' }));
  lifecycle.placeHold(hold({ id: 'h-study', scope: 'study', target: '' }));
  t.same(lifecycle.activeHoldsFor(ST1, ''), []);
  t.same(lifecycle.activeHoldsFor('', '').map((h) => h.id), ['h-study'], 'scope study matches by study only');
  t.end();
});

t.test('bin: add, list by scope in removal order, exact record round-trip', (t) => {
  const { lifecycle } = open(t);
  const withLayout: InstanceRecord = {
    ...RECORD[I112]!,
    receivedAt: new Date('2024-06-07T08:09:10.123Z'),
    layout: { pixelData: { offset: 1, length: 2, encapsulated: true, fragments: [{ offset: 3, length: 4 }], basicOffsetTable: [0] } },
  };
  lifecycle.addToBin([binned(RECORD[I121]!, { at: at(10), code: '113001', reason: 'blurred' })]);
  lifecycle.addToBin([binned(withLayout, { at: at(20) }), binned(RECORD[I111]!, { at: at(20) })]);
  lifecycle.addToBin([binned(RECORD[I211]!, {}, 'PAT-DE')]);
  t.throws(() => lifecycle.addToBin([binned(RECORD[I111]!)]), 'one bin entry per SOP Instance UID');

  const study1 = lifecycle.listBin({ studyInstanceUID: ST1 });
  t.same(sops(study1), [I121, I112, I111], 'removal time, then insertion');
  t.strictSame(study1[0], binned(RECORD[I121]!, { at: at(10), code: '113001', reason: 'blurred' }));
  t.strictSame(study1[1]!.record, withLayout, 'Dates, layout and dataset come back exactly');
  t.notOk('reason' in study1[1]!.removal, 'no reason: absent');
  t.same(sops(lifecycle.listBin({ studyInstanceUID: ST1, seriesInstanceUID: SE11 })), [I112, I111]);
  t.same(sops(lifecycle.listBin({ studyInstanceUID: ST1, sopInstanceUID: I111 })), [I111]);
  t.same(sops(lifecycle.listBin({ studyInstanceUID: ST1, seriesInstanceUID: SE11, sopInstanceUID: I111 })), [I111]);
  const elsewhere: RetrieveScope[] = [
    { studyInstanceUID: ST2, sopInstanceUID: I111 },
    { studyInstanceUID: ST1, seriesInstanceUID: SE12, sopInstanceUID: I111 },
    { studyInstanceUID: ST2, seriesInstanceUID: SE11 },
  ];
  for (const scope of elsewhere) t.same(lifecycle.listBin(scope), [], JSON.stringify(scope));
  t.equal(lifecycle.listBin({ studyInstanceUID: ST2 })[0]!.patientId, 'PAT-DE');
  t.end();
});

t.test('bin: listPurgeable by purgeAfter with a limit, removeFromBin, binnedStudies, studyHasBinned', (t) => {
  const { lifecycle } = open(t);
  lifecycle.addToBin([
    binned(RECORD[I111]!, { at: at(3), purgeAfter: at(300) }),
    binned(RECORD[I112]!, { at: at(1), purgeAfter: at(100) }),
    binned(RECORD[I113]!, { at: at(2), purgeAfter: at(100) }),
    binned(RECORD[I211]!, { at: at(0), purgeAfter: at(200) }),
  ]);
  t.same(sops(lifecycle.listPurgeable(at(99), 10)), []);
  t.same(sops(lifecycle.listPurgeable(at(100), 10)), [I112, I113], 'purgeAfter <= before');
  t.same(sops(lifecycle.listPurgeable(at(1000), 10)), [I112, I113, I211, I111], 'oldest purgeAfter first');
  t.same(sops(lifecycle.listPurgeable(at(1000), 3)), [I112, I113, I211], 'limit');
  t.same(lifecycle.binnedStudies(10), [
    { studyInstanceUID: ST2, instances: 1, oldestRemoval: at(0) },
    { studyInstanceUID: ST1, instances: 3, oldestRemoval: at(1) },
  ]);
  t.same(lifecycle.binnedStudies(1).map((s) => s.studyInstanceUID), [ST2]);
  t.ok(lifecycle.studyHasBinned(ST1));
  t.equal(lifecycle.removeFromBin([I112, I113, '2.25.999']), 2, 'unknown UIDs count nothing');
  t.equal(lifecycle.removeFromBin([I112]), 0);
  t.equal(lifecycle.removeFromBin([]), 0);
  t.same(sops(lifecycle.listBin({ studyInstanceUID: ST1 })), [I111]);
  t.equal(lifecycle.removeFromBin([I111]), 1);
  t.notOk(lifecycle.studyHasBinned(ST1));
  t.ok(lifecycle.studyHasBinned(ST2));
  t.same(lifecycle.binnedStudies(10).map((s) => s.studyInstanceUID), [ST2]);
  t.end();
});

t.test('removed studies: save (replace), take once', (t) => {
  const { lifecycle } = open(t);
  lifecycle.saveRemovedStudies([
    { studyInstanceUID: ST1, labels: ['a', 'b'], confidentiality: 'R' },
    { studyInstanceUID: ST2, labels: [], confidentiality: '' },
  ]);
  lifecycle.saveRemovedStudies([{ studyInstanceUID: ST1, labels: ['c'], confidentiality: 'V' }]);
  t.same(lifecycle.takeRemovedStudy(ST1), { labels: ['c'], confidentiality: 'V' });
  t.equal(lifecycle.takeRemovedStudy(ST1), undefined, 'taken');
  t.same(lifecycle.takeRemovedStudy(ST2), { labels: [], confidentiality: '' });
  t.equal(lifecycle.takeRemovedStudy('2.25.999'), undefined);
  t.end();
});

t.test('tombstones: add, list and isPurged by scope', (t) => {
  const { lifecycle } = open(t);
  const tomb = (r: InstanceRecord, purgedAt: number): Tombstone => ({
    studyInstanceUID: r.studyInstanceUID,
    seriesInstanceUID: r.seriesInstanceUID,
    sopInstanceUID: r.sopInstanceUID,
    sopClassUID: r.sopClassUID,
    sha256: r.sha256,
    size: r.size,
    removal: removal({ code: '113039', reason: 'expired' }),
    purgedAt: at(purgedAt),
    purgedBy: 'retention-sweep',
  });
  const t111 = tomb(RECORD[I111]!, 50);
  const t121 = tomb(RECORD[I121]!, 40);
  lifecycle.addTombstones([t111, t121]);
  t.strictSame(lifecycle.listTombstones({ studyInstanceUID: ST1 }), [t121, t111], 'purge order');
  t.strictSame(lifecycle.listTombstones({ studyInstanceUID: ST1, seriesInstanceUID: SE11 }), [t111]);
  t.strictSame(lifecycle.listTombstones({ studyInstanceUID: ST1, sopInstanceUID: I111 }), [t111]);
  t.same(lifecycle.listTombstones({ studyInstanceUID: ST2 }), []);
  t.ok(lifecycle.isPurged({ studyInstanceUID: ST1 }));
  t.ok(lifecycle.isPurged({ studyInstanceUID: ST1, seriesInstanceUID: SE12 }));
  t.ok(lifecycle.isPurged({ studyInstanceUID: ST1, seriesInstanceUID: SE11, sopInstanceUID: I111 }));
  t.notOk(lifecycle.isPurged({ studyInstanceUID: ST1, seriesInstanceUID: SE11, sopInstanceUID: I112 }));
  t.notOk(lifecycle.isPurged({ studyInstanceUID: ST1, seriesInstanceUID: SE12, sopInstanceUID: I111 }), 'wrong series');
  t.notOk(lifecycle.isPurged({ studyInstanceUID: ST2, sopInstanceUID: I111 }), 'wrong study');
  t.notOk(lifecycle.isPurged({ studyInstanceUID: ST2 }));
  // The same SOP Instance UID stored again and purged again: a second tombstone.
  lifecycle.addTombstones([{ ...t111, purgedAt: at(90) }]);
  t.equal(lifecycle.listTombstones({ studyInstanceUID: ST1, sopInstanceUID: I111 }).length, 2);
  t.end();
});

t.test('transaction: removeInstances and addToBin together, all or nothing', (t) => {
  const { index, lifecycle } = open(t);
  index.commit([...BATCH_1, ...BATCH_2], 'reject');
  const counts = index.counts();
  const scope = { studyInstanceUID: ST1 };

  t.throws(
    () =>
      lifecycle.transaction(() => {
        const removed = index.removeInstances(scope);
        lifecycle.addToBin(removed.records.map((r) => binned(r)));
        lifecycle.saveRemovedStudies(removed.removedStudies);
        throw new Error('audit failed');
      }),
    /audit failed/,
  );
  t.same(index.counts(), counts, 'index unchanged');
  t.equal(index.listInstances(scope).length, 4);
  t.same(lifecycle.listBin(scope), [], 'bin unchanged');
  t.equal(lifecycle.takeRemovedStudy(ST1), undefined);

  const moved = lifecycle.transaction(() => {
    const removed = index.removeInstances(scope);
    lifecycle.addToBin(removed.records.map((r) => binned(r)));
    lifecycle.saveRemovedStudies(removed.removedStudies);
    return removed.records.length;
  });
  t.equal(moved, 4);
  t.same(index.listInstances(scope), []);
  t.same(sops(lifecycle.listBin(scope)).sort(), [I111, I112, I113, I121].sort());
  t.same(lifecycle.takeRemovedStudy(ST1), { labels: [], confidentiality: '' });

  // Restore: back into the index and out of the bin, again in one transaction.
  lifecycle.transaction(() => {
    const items = lifecycle.listBin(scope);
    index.commit(items.map((i) => i.record), 'reject');
    lifecycle.removeFromBin(sops(items));
  });
  t.same(index.counts(), counts);
  t.notOk(lifecycle.studyHasBinned(ST1));
  t.end();
});

t.test('removeInstances of everything leaves no row in any level or child table', (t) => {
  const { index } = open(t);
  const extra = instanceRecord(LEVELS_OF.SE41, '2.25.1004.1.9', MR_IMAGE);
  index.commit([...BATCH_1, ...BATCH_2, extra], 'reject');
  index.setStudyLabels(ST1, ['x']);
  for (const uid of ['2.25.1001', '2.25.1002', '2.25.1003', '2.25.1004']) index.removeInstances({ studyInstanceUID: uid });
  const db = index.database;
  const tables = [
    'patients',
    'studies',
    'series',
    'instances',
    'study_modalities',
    'study_sop_classes',
    'study_labels',
    'series_request_attributes',
    'person_name_words',
  ];
  for (const table of tables) t.equal(db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get(), 0, table);
  t.end();
});
