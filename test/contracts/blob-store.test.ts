import t from 'tap';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { runBlobStoreContract } from './blob-store.contract.js';

runBlobStoreContract(t, 'FsBlobStore', () => FsBlobStore.open(tempDir(t)));

t.test('FsBlobStore: staged blobs waiting for commit hold no file descriptor once released', async (t) => {
  const fs = await import('node:fs');
  const store = await FsBlobStore.open(tempDir(t));
  const open = () => fs.readdirSync('/proc/self/fd').length;
  const before = open();
  const staged = [];
  for (let i = 0; i < 200; i++) {
    const s = await store.stage();
    await s.write(Buffer.from(`blob ${i}`));
    await s.finish();
    await s.release();
    staged.push(s);
  }
  t.ok(open() - before < 5, `descriptors: ${before} before, ${open()} with 200 staged blobs`);
  await Promise.all(staged.map((s) => s.commit()));
  t.equal(open() - before < 5, true);
  t.equal((await store.read(staged[199]!.key, 0, 8)).toString(), 'blob 199');
});
