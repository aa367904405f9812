// The pending marks of STOW (DESIGN.md two-phase writes, issue 8 group commit): each blob's mark is in the index
// before its blob is committed, a part that is refused or cut off leaves no mark and no file, and a stored one
// leaves no mark once the commit took it. Real stores (encrypted blobs, SQLite index); the blob store is only
// observed at commit time.
import fs from 'node:fs';
import t from 'tap';
import type { StagedBlob } from '../../src/storage/blob-store.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { Access } from '../../src/policy/access.js';
import { storeInstances, type IncomingPart, type StoreDeps } from '../../src/services/store-instances.js';
import { ADMIN_PRINCIPAL, defaultPolicies } from '../helpers/access.js';
import { testApp } from '../helpers/app.js';
import { testFile } from '../helpers/testdata.js';

const valid = testFile('broken/valid-reference.dcm');
const FAR = new Date(Date.now() + 86_400_000);

async function* chunks(bytes: Buffer, cutAt = bytes.length): AsyncGenerator<Buffer> {
  for (let at = 0; at < cutAt; at += 4096) yield bytes.subarray(at, Math.min(at + 4096, cutAt));
  if (cutAt < bytes.length) throw new Error('connection reset');
}

async function* parts(list: IncomingPart[]): AsyncGenerator<IncomingPart> {
  yield* list;
}

/**
 * The STOW path's dependencies on the test archive's real stores, its staged blobs observed: `onRelease` and
 * `onCommit` see each call before it goes through.
 */
function observedDeps(
  storage: Awaited<ReturnType<typeof testApp>>,
  observe: { onRelease?: (options: Parameters<StagedBlob['release']>[0]) => void; onCommit?: (staged: StagedBlob) => void },
): StoreDeps {
  const real = storage.blobs;
  const blobs: StoreDeps['blobs'] = {
    stage: async () => {
      const staged = await real.stage();
      return {
        key: staged.key,
        write: (chunk) => staged.write(chunk),
        finish: () => staged.finish(),
        read: (offset, length) => staged.read(offset, length),
        release: (options) => {
          observe.onRelease?.(options);
          return staged.release(options);
        },
        commit: (owner) => {
          observe.onCommit?.(staged);
          return staged.commit(owner);
        },
        discard: () => staged.discard(),
      };
    },
    createReadStream: (key, range) => real.createReadStream(key, range),
    read: (key, offset, length) => real.read(key, offset, length),
    size: (key) => real.size(key),
    delete: (key) => real.delete(key),
    sweepStaging: () => real.sweepStaging(),
  };
  return {
    index: storage.index,
    blobs,
    readInstance,
    limits: { maxSequenceDepth: 64, maxElements: 1_000_000, maxInflatedBytes: 1 << 20, maxHeaderBytes: 1 << 24 },
    duplicatePolicy: 'reject',
    log: { warn() {}, error() {} },
  };
}

t.test('a mark is in the index before its blob commits; refused and stored parts leave none', async (t) => {
  const storage = await testApp(t);
  const markedAtCommit: boolean[] = [];
  const deps = observedDeps(storage, { onCommit: (staged) => markedAtCommit.push(storage.index.listPending(FAR).includes(staged.key)) });
  const access = new Access(defaultPolicies(), ADMIN_PRINCIPAL);
  const outcomes = await storeInstances(deps, {
    access,
    parts: parts([
      { contentType: 'application/dicom', body: chunks(valid) },
      { contentType: 'application/dicom', body: chunks(Buffer.from('not DICOM at all')) },
    ]),
  });
  t.same(outcomes.map((o) => o.status), ['stored', 'failed']);
  t.same(markedAtCommit, [true], 'the stored blob was marked when it was committed');
  t.same(storage.index.listPending(FAR), [], 'no mark left: the commit took the stored one, the refused one was removed');
  t.same(storage.blobFiles(), { objects: 1, staging: 0 });

  await t.rejects(
    storeInstances(deps, { access, parts: parts([{ contentType: 'application/dicom', body: chunks(valid, 5000) }]) }),
    /connection reset/,
  );
  t.same(storage.index.listPending(FAR), [], 'a part cut off leaves no mark');
  t.same(storage.blobFiles(), { objects: 1, staging: 0 }, 'and no file');
});

t.test('staged files kept open for the commit: 32 per request, every one closed and counted back whatever happens', async (t) => {
  const storage = await testApp(t);
  let kept: boolean[] = [];
  const deps = observedDeps(storage, { onRelease: (options) => kept.push(options?.keepOpen === true) });
  const access = new Access(defaultPolicies(), ADMIN_PRINCIPAL);
  const openStaging = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).includes('/staging/');
    } catch {
      return false; // closed meanwhile
    }
  }).length;
  const many = (n: number, cutLast = false): IncomingPart[] =>
    Array.from({ length: n }, (_, i) => ({ contentType: 'application/dicom', body: chunks(valid, cutLast && i === n - 1 ? 5000 : valid.length) }));

  // Ten requests cut off at their last part: everything staged is discarded, the descriptors kept are closed.
  for (let r = 0; r < 10; r++) {
    kept = [];
    await t.rejects(storeInstances(deps, { access, parts: parts(many(40, true)) }), /connection reset/);
    t.equal(kept.filter(Boolean).length, 32, `request ${r + 1}: the first 32 accepted parts kept their file open`);
    t.equal(openStaging(), 0, `request ${r + 1}: no staged file left open`);
  }
  // Had the cut-off requests not given their count back (320 > 256 for all requests), none would be kept now.
  kept = [];
  const outcomes = await storeInstances(deps, { access, parts: parts(many(40)) });
  t.same(new Set(outcomes.map((o) => o.status)), new Set(['stored']));
  t.same(kept, [...Array<boolean>(32).fill(true), ...Array<boolean>(8).fill(false)]);
  t.equal(openStaging(), 0, 'committed: no staged file left open');
  t.same(storage.blobFiles(), { objects: 1, staging: 0 }, 'one object (the other 39 were the same instance again)');
});
