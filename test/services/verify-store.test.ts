// verifyStore (issue 4, item 6) over the real storage (SQLite index, encrypted blobs in a temp dir): a clean
// archive verifies; each kind of tampering is reported with its class and nothing else is; erased studies,
// a key service that is down and objects replaced meanwhile are told apart from corruption.
import t from 'tap';
import type { StoredInstanceRef } from '../../src/index/index-store.js';
import { type VerifyDeps, VerifyAbortedError, verifyStore } from '../../src/services/verify-store.js';
import { KeyUnavailableError } from '../../src/storage/keys/key-provider.js';
import { StudyKeyErasedError } from '../../src/storage/keys/study-keyring.js';
import { tamperedArchive } from '../helpers/tamper.js';

/** The index as verify sees it, with `edit` applied to every ref it lists. */
function editedIndex(index: VerifyDeps['index'], edit: (ref: StoredInstanceRef) => StoredInstanceRef): VerifyDeps['index'] {
  return {
    counts: () => index.counts(),
    findInstance: (sop) => index.findInstance(sop),
    listInstances: (scope) => index.listInstances(scope).map(edit),
    listAllInstances: (page) => index.listAllInstances(page).map(edit),
  };
}

t.test('tampered objects are each reported with their class; the rest verifies', async (t) => {
  const archive = await tamperedArchive(t);
  const { flipped, truncated, swapped, deleted, intact, otherStudy } = archive;
  const progress: { done: number; total: number }[] = [];
  const report = await verifyStore(archive, { onProgress: (p) => progress.push(p), pageSize: 5 });

  const total = intact.length + otherStudy.length + 5;
  t.equal(report.checked, total, 'every instance checked, across pages');
  t.equal(report.verified, intact.length + otherStudy.length);
  t.same(report.erased, []);
  t.equal(report.changed, 0);
  const expected = [
    { kind: 'integrity', f: flipped, detail: /segment 0 failed authentication/ },
    { kind: 'size-mismatch', f: truncated, detail: new RegExp(`recorded ${truncated.bytes.length} bytes, the blob holds \\d+`) },
    { kind: 'integrity', f: swapped[0], detail: /object key failed authentication/ },
    { kind: 'integrity', f: swapped[1], detail: /object key failed authentication/ },
    { kind: 'missing', f: deleted, detail: /no blob/ },
  ].sort((a, b) => a.f.sop.localeCompare(b.f.sop));
  t.equal(report.problems.length, expected.length, 'nothing else is reported');
  expected.forEach((e, i) => {
    t.match(
      report.problems[i],
      { kind: e.kind, sopInstanceUID: e.f.sop, seriesInstanceUID: e.f.series, studyInstanceUID: e.f.study, blobKey: e.f.blobKey, detail: e.detail },
      `${e.kind}: ${e.f.sop}`,
    );
  });
  t.same(progress[0], { done: 0, total }, 'progress starts at 0 of the index count');
  t.same(progress.at(-1), { done: total, total }, 'and ends at all of them');

  const one = await verifyStore(archive, { study: otherStudy[0]!.study });
  t.same(one, { checked: otherStudy.length, verified: otherStudy.length, erased: [], changed: 0, problems: [] }, '--study checks that study only');
  t.same(await verifyStore(archive, { study: '2.25.1' }), { checked: 0, verified: 0, erased: [], changed: 0, problems: [] }, 'unknown study');
});

t.test('a recorded SHA-256 that the authenticated bytes do not have is a hash mismatch', async (t) => {
  const archive = await tamperedArchive(t);
  const target = archive.otherStudy[0]!;
  const index = editedIndex(archive.index, (ref) => (ref.sopInstanceUID === target.sop ? { ...ref, sha256: '0'.repeat(64) } : ref));
  const report = await verifyStore({ index, blobs: archive.blobs }, { study: target.study });
  t.equal(report.problems.length, 1);
  t.match(report.problems[0], { kind: 'hash-mismatch', sopInstanceUID: target.sop, detail: new RegExp(`recorded ${'0'.repeat(64)}$`) });
  t.equal(report.verified, archive.otherStudy.length - 1);
});

t.test('erased studies are counted apart, not reported as corruption', async (t) => {
  const archive = await tamperedArchive(t);
  const erasedStudy = archive.otherStudy[0]!.study;
  const erasedKeys = new Set(archive.otherStudy.map((f) => f.blobKey));
  const refuse = async (key: string) => {
    if (erasedKeys.has(key)) throw new StudyKeyErasedError('the study key was destroyed: the study was erased');
  };
  const blobs: VerifyDeps['blobs'] = {
    size: (key) => archive.blobs.size(key),
    createReadStream: async (key, range) => (await refuse(key), archive.blobs.createReadStream(key, range)),
  };
  const report = await verifyStore({ index: archive.index, blobs }, { study: erasedStudy });
  t.same(report, { checked: archive.otherStudy.length, verified: 0, erased: [{ studyInstanceUID: erasedStudy, instances: archive.otherStudy.length }], changed: 0, problems: [] });
});

t.test('a key service that is down stops the check with what was found so far', async (t) => {
  const archive = await tamperedArchive(t);
  let reads = 0;
  const blobs: VerifyDeps['blobs'] = {
    size: (key) => archive.blobs.size(key),
    createReadStream: async (key, range) => {
      if (++reads > 3) throw new KeyUnavailableError('the key provider is closed');
      return archive.blobs.createReadStream(key, range);
    },
  };
  const error = await verifyStore({ index: archive.index, blobs }, { study: archive.otherStudy[0]!.study, concurrency: 1 }).catch((e: unknown) => e);
  t.ok(error instanceof VerifyAbortedError, 'a VerifyAbortedError');
  const aborted = error as VerifyAbortedError;
  t.match(aborted.message, /the key service is unavailable \(the key provider is closed\); stopped after 3 instances/);
  t.match(aborted.report, { checked: 3, verified: 3, problems: [] }, 'the partial report');
  t.equal(reads, 4, 'no object is read after the failure');
});

t.test('an object replaced while the check runs is not a problem', async (t) => {
  const archive = await tamperedArchive(t);
  // The listing still names the deleted object's old blob; the index now names another one (a replace STOW).
  const index: VerifyDeps['index'] = {
    ...editedIndex(archive.index, (ref) => ref),
    findInstance: (sop) => {
      const ref = archive.index.findInstance(sop);
      return ref && sop === archive.deleted.sop ? { ...ref, blobKey: 'f'.repeat(32) } : ref;
    },
  };
  const report = await verifyStore({ index, blobs: archive.blobs }, { study: archive.deleted.study });
  t.equal(report.changed, 1);
  t.notOk(report.problems.some((p) => p.sopInstanceUID === archive.deleted.sop), 'not reported missing');
  t.equal(report.problems.length, 4, 'the other tampered objects still are');
});
