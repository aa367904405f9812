// Issue 6 services over real SQLite storage: keep-until on STOW (only extended), the refusals of a deletion (before
// expiry, under a study or patient hold, without delete permission, unreadable), delete -> restore brings back the
// identical study, and the purge (dry run changes nothing; then blobs, bin rows and the study key go, tombstones
// stay, a second run does nothing; holds keep instances in the bin).
import path from 'node:path';
import t, { type Test } from 'tap';
import { AppError } from '../../src/errors.js';
import { parseIsoPeriod, retentionConfigSchema } from '../../src/policy/retention.js';
import { recomputeKeepUntil } from '../../src/services/keep-until.js';
import { placeHold, liftHold } from '../../src/services/legal-holds.js';
import { permittedStudy } from '../../src/services/permitted-study.js';
import { purge, type PurgeReport } from '../../src/services/purge.js';
import { RetentionSweeper } from '../../src/services/retention-sweeper.js';
import { RemovalRefusedError, removeInstances } from '../../src/services/remove-instances.js';
import { restoreInstances } from '../../src/services/restore-instances.js';
import { testApp, type TestApp } from '../helpers/app.js';
import { ADMIN, OLD, OUTSIDER, READER, RECENT, RECENT_KEEP_UNTIL, accessFor, filesUnder, lifecyclePolicyFile, stow, studyInstances } from '../helpers/lifecycle.js';
import { policyInstance } from '../helpers/policy-dataset.js';
import { tempDir } from '../helpers/temp-dir.js';

const GRACE_NOW = { DICOMVAULT_RETENTION_GRACE_PERIOD: 'P0D' };

async function archive(t: Test, studies: (typeof OLD)[]) {
  const app = await testApp(t, GRACE_NOW);
  for (const s of studies) await stow(t, app.app, studyInstances(s).map((i) => i.bytes));
  const policyFile = lifecyclePolicyFile(tempDir(t));
  const deps = { index: app.index, lifecycle: app.lifecycle, retention: app.config.retention };
  const purgeDeps = { index: app.index, lifecycle: app.lifecycle, blobs: app.blobs, keyring: app.keyring };
  return { app, deps, purgeDeps, policyFile, admin: accessFor(policyFile, ADMIN) };
}

const objectFiles = (app: TestApp) => filesUnder(path.join(app.dataDir, 'blobs', 'objects'));
const day = (d: Date | 'indefinite' | undefined) => (d instanceof Date ? d.toISOString().slice(0, 10) : d);

t.test('keep-until: computed on STOW from the rules, then only ever extended', async (t) => {
  const { app, deps } = await archive(t, [RECENT, OLD]);
  const stored = app.lifecycle.getRetention(RECENT.study);
  t.equal(day(stored?.keepUntil), RECENT_KEEP_UNTIL, 'StudyDate 2024-01-01 + P7Y');
  t.same(stored?.rules, ['default']);
  const old = app.lifecycle.getRetention(OLD.study);
  t.same(old?.rules, ['receipt-floor'], 'StudyDate 1999: every rule ended before the receipt');
  t.ok(old!.keepUntil !== 'indefinite' && old!.keepUntil.getTime() <= Date.now(), 'expired at once');

  const longer = retentionConfigSchema.parse({ rules: [{ id: 'ct-10y', when: { modalities: ['CT'] }, period: 'P10Y', anchor: 'studyDate' }] });
  const extended = recomputeKeepUntil({ ...deps, retention: longer }, RECENT.study);
  t.equal(day(extended?.keepUntil), '2034-01-01', 'a longer matching rule extends it');
  t.same(extended?.rules, ['ct-10y']);
  const again = recomputeKeepUntil(deps, RECENT.study);
  t.equal(day(again?.keepUntil), '2034-01-01', 'the default rules again: not shortened');
  t.same(again?.rules, ['ct-10y'], 'the rule that set the date stays named');

  await stow(t, app.app, [policyInstance({ study: RECENT.study, series: `${RECENT.study}.3`, sop: `${RECENT.study}.3.1`, modality: 'CT', patientId: RECENT.patientId, studyDate: RECENT.studyDate })]);
  t.equal(day(app.lifecycle.getRetention(RECENT.study)?.keepUntil), '2034-01-01', 'a STOW into the study recomputes without shortening');
  t.equal(recomputeKeepUntil(deps, '2.25.404'), undefined, 'no such study, nothing stored');
});

t.test('a deletion is refused before expiry, under a hold, without delete permission; unreadable is 404', async (t) => {
  const { app, deps, policyFile, admin } = await archive(t, [RECENT, OLD]);
  const before = app.index.counts();
  const files = objectFiles(app);
  const refused = (f: () => unknown, message: RegExp | string, what: string) => {
    const e = catchError(f);
    t.ok(e instanceof RemovalRefusedError, `${what}: a refusal`);
    t.match(e, { code: 'FORBIDDEN', status: 403, message }, what);
  };

  refused(() => removeInstances(deps, { scope: { studyInstanceUID: RECENT.study }, code: 'delete', access: admin }), `retained until ${RECENT_KEEP_UNTIL} (rule default)`, 'before expiry');
  refused(
    () => removeInstances(deps, { scope: { studyInstanceUID: RECENT.study, seriesInstanceUID: `${RECENT.study}.1` }, code: '113039', access: admin }),
    `rejection code 113039 (data retention period expired) before expiry: retained until ${RECENT_KEEP_UNTIL} (rule default)`,
    '113039 before expiry',
  );
  refused(() => removeInstances(deps, { scope: { studyInstanceUID: OLD.study }, code: 'delete', access: accessFor(policyFile, READER) }), 'the policy does not permit delete', 'readable, not deletable');
  const hidden = catchError(() => removeInstances(deps, { scope: { studyInstanceUID: OLD.study }, code: 'delete', access: accessFor(policyFile, OUTSIDER) }));
  const missing = catchError(() => removeInstances(deps, { scope: { studyInstanceUID: '2.25.404' }, code: 'delete', access: admin }));
  t.match(hidden, { code: 'NOT_FOUND', message: 'no such study' }, 'unreadable: 404');
  t.same([hidden.code, hidden.message], [missing.code, missing.message], 'worded like a missing study');
  t.match(catchError(() => removeInstances(deps, { scope: { studyInstanceUID: OLD.study, seriesInstanceUID: '2.25.404' }, code: 'delete', access: admin })), {
    code: 'NOT_FOUND',
    message: 'no such series',
  });

  const studyHold = placeHold({ lifecycle: app.lifecycle }, { name: 'CASE-17', scope: 'study', target: OLD.study, reason: 'litigation', by: 'admin-1' });
  refused(() => removeInstances(deps, { scope: { studyInstanceUID: OLD.study }, code: '113001', access: admin }), `under legal hold "CASE-17" (id ${studyHold.id}, on the study)`, 'study hold');
  liftHold({ lifecycle: app.lifecycle }, studyHold.id, 'admin-1', 'settled');
  const patientHold = placeHold({ lifecycle: app.lifecycle }, { name: 'CASE-18', scope: 'patient', target: OLD.patientId, reason: 'subpoena', by: 'admin-1' });
  refused(() => removeInstances(deps, { scope: { studyInstanceUID: OLD.study, seriesInstanceUID: `${OLD.study}.2` }, code: 'delete', access: admin }), /under legal hold "CASE-18" .*on the patient/, 'patient hold');
  t.throws(() => liftHold({ lifecycle: app.lifecycle }, studyHold.id, 'admin-1', 'again'), { code: 'CONFLICT' }, 'a lifted hold cannot be lifted again');
  t.throws(() => liftHold({ lifecycle: app.lifecycle }, 'no-such-hold', 'admin-1', 'x'), { code: 'NOT_FOUND' });
  t.throws(() => placeHold({ lifecycle: app.lifecycle }, { name: 'x', scope: 'study', target: 'not a uid', reason: 'x', by: 'a' }), { code: 'INVALID_UID' });

  t.same(app.index.counts(), before, 'nothing left the index');
  t.same(app.lifecycle.listBin({ studyInstanceUID: OLD.study }), [], 'nothing in the bin');
  t.same(objectFiles(app), files, 'no file changed');
  liftHold({ lifecycle: app.lifecycle }, patientHold.id, 'admin-1', 'released');
  const removed = removeInstances(deps, { scope: { studyInstanceUID: OLD.study }, code: 'delete', access: admin });
  t.equal(removed.instances, 3, 'once lifted, the expired study goes');
});

t.test('delete then restore brings the study back identical, with its labels and confidentiality', async (t) => {
  const { app, deps, admin } = await archive(t, [OLD]);
  app.index.setStudyLabels(OLD.study, ['keep-me', 'teaching']);
  app.index.setStudyConfidentiality(OLD.study, 'R');
  const scope = { studyInstanceUID: OLD.study };
  const datasets = app.index.listInstanceDatasets(scope);
  const attributes = app.index.studyAttributes(OLD.study);

  const series = removeInstances(deps, { scope: { ...scope, seriesInstanceUID: `${OLD.study}.2` }, code: '113037', access: admin, reason: 'wrong patient' });
  t.match(series, { studyInstanceUID: OLD.study, patientId: OLD.patientId, instances: 1, studyRemoved: false });
  t.same([...series.sopClasses], [['1.2.840.10008.5.1.4.1.1.4', 1]], 'the MR instance');
  const rest = removeInstances(deps, { scope, code: 'delete', access: admin });
  t.match(rest, { instances: 2, studyRemoved: true });
  t.equal(app.index.studyAttributes(OLD.study), undefined, 'gone from the index at once');
  t.same(app.index.listInstances(scope), []);
  t.equal(app.lifecycle.listBin(scope).length, 3, 'all three in the bin');

  const restored = restoreInstances({ index: app.index, lifecycle: app.lifecycle }, scope);
  t.match(restored, { restored: 3, skipped: [] });
  t.same(app.index.listInstanceDatasets(scope), datasets, 'the same instances, datasets and blobs');
  t.same(app.index.studyAttributes(OLD.study), attributes, 'labels and confidentiality back');
  t.same(app.lifecycle.listBin(scope), [], 'the bin is empty');
  t.throws(() => restoreInstances({ index: app.index, lifecycle: app.lifecycle }, scope), { code: 'NOT_FOUND', message: 'nothing of this study is in the bin' });

  // An instance stored again while its old copy was in the bin stays as stored; the old copy stays binned.
  removeInstances(deps, { scope, code: 'delete', access: admin });
  const again = studyInstances(OLD)[0]!;
  await stow(t, app.app, [policyInstance(again, 99)]);
  const partly = restoreInstances({ index: app.index, lifecycle: app.lifecycle }, scope);
  t.match(partly, { restored: 2, skipped: [again.sop] });
  t.equal(app.lifecycle.listBin(scope).length, 1);
});

t.test('purge: a dry run changes nothing; then blobs, bin and study key go, tombstones stay, 410; idempotent', async (t) => {
  const { app, deps, purgeDeps, admin } = await archive(t, [OLD, RECENT]);
  const scope = { studyInstanceUID: OLD.study };
  const blobKeys = app.index.listInstances(scope).map((r) => r.blobKey);
  const sha = new Map(app.index.listInstances(scope).map((r) => [r.sopInstanceUID, r.sha256]));
  removeInstances(deps, { scope, code: '113001', access: admin, reason: 'poor quality' });
  const files = objectFiles(app);
  const counts = app.index.counts();

  const progress: number[] = [];
  const dry = await purge(purgeDeps, { dryRun: true, batchSize: 2, onProgress: (p) => progress.push(p.done) });
  t.match(dry, { dryRun: true, instances: 3, keysDestroyed: 1, held: 0 });
  t.same(progress, [2, 3], 'progress per batch');
  t.same(objectFiles(app), files, 'dry run: the same files');
  t.equal(app.lifecycle.listBin(scope).length, 3, 'dry run: the same bin');
  t.same(app.index.counts(), counts, 'dry run: the same rows');
  t.same(app.lifecycle.listTombstones(scope), [], 'dry run: no tombstone');
  t.notOk(app.keyring.isErased(OLD.study), 'dry run: the key stays');

  const report = await purge(purgeDeps, { batchSize: 2 });
  t.match(report, { dryRun: false, instances: 3, keysDestroyed: 1, held: 0, blobErrors: 0 });
  const [study] = report.studies;
  t.match(study, { studyInstanceUID: OLD.study, patientId: OLD.patientId, instances: 3, keyDestroyed: true, removals: [{ by: 'admin-1', code: '113001', reason: 'poor quality' }] });
  t.same(Object.fromEntries(study!.sopClasses), { '1.2.840.10008.5.1.4.1.1.2': 2, '1.2.840.10008.5.1.4.1.1.4': 1 });
  const left = objectFiles(app);
  t.equal(left.length, files.length - 3, 'three object files gone');
  t.notOk(left.some((f) => blobKeys.some((k) => f.includes(k))), 'none of the study remains on disk');
  t.same(app.lifecycle.listBin(scope), [], 'the bin is empty');
  t.same(app.index.listPending(new Date(Date.now() + 86_400_000)), [], 'no pending marks left');
  const tombstones = app.lifecycle.listTombstones(scope);
  t.equal(tombstones.length, 3, 'one tombstone per instance');
  for (const ts of tombstones) t.equal(ts.sha256, sha.get(ts.sopInstanceUID), 'with the hash of the purged bytes');
  t.match(tombstones[0], { purgedBy: 'retention-sweep', removal: { code: '113001', by: 'admin-1', reason: 'poor quality' } });
  t.ok(app.keyring.isErased(OLD.study), 'the study key is destroyed');
  t.ok(app.lifecycle.isPurged({ ...scope, seriesInstanceUID: `${OLD.study}.1`, sopInstanceUID: `${OLD.study}.1.2` }));
  t.match(catchError(() => permittedStudy(app.index, admin, scope, 'view', { isPurged: (s) => app.lifecycle.isPurged(s) })), { code: 'GONE', status: 410 });
  t.match(catchError(() => permittedStudy(app.index, admin, scope)), { code: 'NOT_FOUND' }, 'without isPurged: 404 as before');
  t.ok(app.index.studyAttributes(RECENT.study), 'the other study is untouched');
  t.notOk(app.keyring.isErased(RECENT.study));

  const second = await purge(purgeDeps);
  t.match(second, { instances: 0, studies: [], keysDestroyed: 0, held: 0 }, 'a second run does nothing');
  t.equal(app.lifecycle.listTombstones(scope).length, 3);
});

t.test('purge keeps what a hold covers in the bin, and a partly purged study keeps its key', async (t) => {
  const { app, deps, purgeDeps, admin } = await archive(t, [OLD]);
  const scope = { studyInstanceUID: OLD.study };
  removeInstances(deps, { scope: { ...scope, seriesInstanceUID: `${OLD.study}.2` }, code: 'delete', access: admin });
  const hold = placeHold({ lifecycle: app.lifecycle }, { name: 'CASE-19', scope: 'patient', target: OLD.patientId, reason: 'x', by: 'admin-1' });
  const held = await purge(purgeDeps);
  t.match(held, { instances: 0, held: 1, heldStudies: [OLD.study] }, 'a hold placed after the removal still keeps it');
  t.equal(app.lifecycle.listBin(scope).length, 1);
  liftHold({ lifecycle: app.lifecycle }, hold.id, 'admin-1', 'done');
  const purged = await purge(purgeDeps);
  t.match(purged, { instances: 1, keysDestroyed: 0 }, 'the study still has live instances: its key stays');
  t.notOk(app.keyring.isErased(OLD.study));
  t.equal(app.index.listInstances(scope).length, 2);
});

t.test('the grace period: nothing is purged before it ends', async (t) => {
  const app = await testApp(t, { DICOMVAULT_RETENTION_GRACE_PERIOD: 'P30D' });
  await stow(t, app.app, studyInstances(OLD).map((i) => i.bytes));
  const admin = accessFor(lifecyclePolicyFile(tempDir(t)));
  const removed = removeInstances({ index: app.index, lifecycle: app.lifecycle, retention: app.config.retention }, { scope: { studyInstanceUID: OLD.study }, code: 'delete', access: admin });
  t.equal(removed.purgeAfter.getTime() - Date.now() > 29 * 86_400_000, true, 'purgeAfter is 30 days out');
  t.same(parseIsoPeriod(app.config.retention.gracePeriod), { years: 0, months: 0, weeks: 0, days: 30 });
  const purgeDeps = { index: app.index, lifecycle: app.lifecycle, blobs: app.blobs, keyring: app.keyring };
  t.match(await purge(purgeDeps), { instances: 0 }, 'not yet');
  t.match(await purge(purgeDeps, { now: new Date(Date.now() + 31 * 86_400_000) }), { instances: 3, keysDestroyed: 1 }, 'after the grace period');
});

t.test('the scheduled sweep: runs on its interval, never two at once, reports, logs errors without PHI', async (t) => {
  const { app, deps, purgeDeps, admin } = await archive(t, [OLD]);
  removeInstances(deps, { scope: { studyInstanceUID: OLD.study }, code: 'delete', access: admin });
  const reports: PurgeReport[] = [];
  const logged: { level: string; obj: Record<string, unknown> }[] = [];
  const log = {
    info: (obj: Record<string, unknown>) => logged.push({ level: 'info', obj }),
    warn: (obj: Record<string, unknown>) => logged.push({ level: 'warn', obj }),
    error: (obj: Record<string, unknown>) => logged.push({ level: 'error', obj }),
  };
  const sweeper = new RetentionSweeper({ deps: purgeDeps, batchSize: 10, onPurged: (r) => void reports.push(r), log });
  t.equal(sweeper.runOnce(), sweeper.runOnce(), 'a run in progress is shared, not repeated');
  await sweeper.runOnce();
  t.equal(reports.length, 1, 'one report');
  t.match(reports[0], { instances: 3, keysDestroyed: 1 });
  t.ok(app.keyring.isErased(OLD.study));
  t.match(logged, [{ level: 'info', obj: { instances: 3, studies: 1, keysDestroyed: 1 } }]);
  t.notOk(JSON.stringify(logged).includes(OLD.patientId), 'no PatientID in the log');

  // Scheduled: a failing store is logged (message only) and the next run comes anyway.
  let calls = 0;
  const failing = new RetentionSweeper({
    deps: { ...purgeDeps, lifecycle: { ...app.lifecycle, binnedStudies: () => { calls += 1; throw new Error('disk on fire'); } } as typeof app.lifecycle },
    batchSize: 10,
    onPurged: () => undefined,
    log,
  });
  failing.start(5);
  while (calls < 2) await new Promise((r) => setTimeout(r, 5));
  await failing.stop();
  const seen = calls;
  await new Promise((r) => setTimeout(r, 30));
  t.equal(calls, seen, 'stopped: no further runs');
  t.match(logged.filter((l) => l.level === 'error')[0], { obj: { error: 'Error: disk on fire' } });
  sweeper.start(0);
  await sweeper.stop();
});

function catchError(f: () => unknown): AppError {
  try {
    f();
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error('expected an AppError');
}

t.test('an instance removed, stored again and removed again before the purge: 409, nothing changes', async (t) => {
  const { app, deps, admin } = await archive(t, [OLD]);
  const first = studyInstances(OLD)[0]!;
  const scope = { studyInstanceUID: OLD.study, seriesInstanceUID: first.series, sopInstanceUID: first.sop };
  removeInstances(deps, { scope, code: 'delete', access: admin });
  await stow(t, app.app, [first.bytes]);
  const before = app.index.counts();
  const error = (() => {
    try {
      removeInstances(deps, { scope, code: 'delete', access: admin });
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  t.ok(error instanceof AppError && error.code === 'CONFLICT', 'CONFLICT');
  t.match((error as Error).message, /still in the bin: restore or purge that removal first/);
  t.same(app.index.counts(), before, 'the stored-again instance is still live');
  t.equal(app.lifecycle.listBin(scope).length, 1, 'the first removal is still in the bin');
});
