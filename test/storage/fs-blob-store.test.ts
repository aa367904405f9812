// The filesystem blob store beyond the shared contract (test/contracts): how keys are laid out in fan-out
// directories (issue 8: a directory per turn of keys, so that commits share its mkdir and its fsync) and that
// commits racing into one new directory are all durable and readable.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { tempDir } from '../helpers/temp-dir.js';

const fanOut = (key: string) => key.slice(0, 4);

t.test('keys: 32 hex digits, unique, a turn of 256 in one fan-out directory, then another directory', async (t) => {
  const store = await FsBlobStore.open(tempDir(t));
  const keys: string[] = [];
  for (let i = 0; i < 600; i++) {
    const staged = await store.stage();
    keys.push(staged.key);
    await staged.discard();
  }
  t.ok(keys.every((k) => /^[0-9a-f]{32}$/.test(k)), 'the key pattern');
  t.equal(new Set(keys).size, keys.length, 'no key twice');
  t.equal(new Set(keys.slice(0, 256).map(fanOut)).size, 1, 'the first turn shares one directory');
  t.equal(new Set(keys.slice(256, 512).map(fanOut)).size, 1, 'so does the second');
  const prefixes = new Set(keys.map(fanOut));
  t.ok(prefixes.size >= 2 && prefixes.size <= 3, `turns change directory (${prefixes.size} for 600 keys; two turns may draw the same one by chance, 1 in 65536)`);
  t.equal(new Set(keys.map((k) => k.slice(4))).size, keys.length, 'the rest of each key is random');
});

t.test('concurrent commits into one new directory: every blob is in place, staging is empty', async (t) => {
  const dir = tempDir(t);
  const store = await FsBlobStore.open(dir);
  const body = (i: number) => Buffer.from(`blob ${i} `.repeat(1000));
  const staged = await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const s = await store.stage();
      await s.write(body(i));
      await s.finish();
      if (i % 2 === 0) await s.release({ keepOpen: i % 4 === 0 });
      return s;
    }),
  );
  t.equal(new Set(staged.map((s) => fanOut(s.key))).size, 1, 'one directory');
  await Promise.all(staged.map((s) => s.commit()));
  for (const [i, s] of staged.entries()) {
    t.ok((await store.read(s.key, 0, body(i).length)).equals(body(i)), `blob ${i} reads back`);
    t.ok(fs.existsSync(path.join(dir, 'objects', s.key.slice(0, 2), s.key.slice(2, 4), s.key)));
  }
  t.same(fs.readdirSync(path.join(dir, 'staging')), []);
  // The next commits into the same directory, after the first ones' fsyncs: nothing left waiting or open wrongly.
  const more = await store.stage();
  await more.write(Buffer.from('one more'));
  await more.finish();
  await more.commit();
  t.equal((await store.read(more.key, 0, 8)).toString(), 'one more');
});
