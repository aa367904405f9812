// One suite for every BlobStore implementation (DESIGN.md "Contract tests for ports").
import { createHash } from 'node:crypto';
import { text } from 'node:stream/consumers';
import type { Test } from 'tap';
import type { BlobOwner, BlobStore, OverwritableBlobStore } from '../../src/storage/blob-store.js';

/** Commits pass the owner as STOW does (store-instances.ts): the encrypted store refuses a commit without one. */
export const OWNER: BlobOwner = { studyInstanceUID: '1.2.826.0.1.3680043.10.1.1', sopInstanceUID: '1.2.826.0.1.3680043.10.1.1.1' };

export function runBlobStoreContract(t: Test, name: string, open: () => Promise<BlobStore>): void {
  t.test(`${name}: staged write, commit, read back`, async (t) => {
    const store = await open();
    const staged = await store.stage();
    t.match(staged.key, /^[0-9a-f]{32}$/, 'server-assigned key');
    await staged.write(Buffer.from('hello '));
    await staged.write(Buffer.from('world'));
    const { size, sha256 } = await staged.finish();
    t.equal(size, 11);
    t.equal(sha256, createHash('sha256').update('hello world').digest('hex'));
    t.equal((await staged.read(6, 5)).toString(), 'world', 'staged bytes readable before commit');
    t.equal(await store.size(staged.key), undefined, 'not visible before commit');
    await staged.commit(OWNER);
    t.equal(await store.size(staged.key), 11);
    t.equal(await text(await store.createReadStream(staged.key)), 'hello world');
    t.equal(await text(await store.createReadStream(staged.key, { start: 2, end: 7 })), 'llo w', 'range end exclusive');
    t.equal(await text(await store.createReadStream(staged.key, { start: 3, end: 3 })), '', 'empty range');
    t.equal((await store.read(staged.key, 0, 5)).toString(), 'hello');
    await t.rejects(store.read(staged.key, 8, 10), 'read past the end refused');
  });

  t.test(`${name}: keys are unique and discard leaves nothing`, async (t) => {
    const store = await open();
    const a = await store.stage();
    const b = await store.stage();
    t.not(a.key, b.key);
    await a.write(Buffer.alloc(10));
    await a.finish();
    await a.discard();
    await a.discard(); // idempotent
    t.equal(await store.size(a.key), undefined);
    await b.discard(); // discard without finish
    await t.rejects(a.commit(OWNER), 'a discarded blob cannot be committed');
  });

  t.test(`${name}: a released blob commits and reads back; read after release is refused`, async (t) => {
    const store = await open();
    const staged = await store.stage();
    await staged.write(Buffer.from('released'));
    await staged.finish();
    await staged.release();
    await t.rejects(staged.read(0, 1), 'no reading after release');
    await staged.commit(OWNER);
    t.equal((await store.read(staged.key, 0, 8)).toString(), 'released');
    const other = await store.stage();
    await other.write(Buffer.from('x'));
    await other.finish();
    await other.release();
    await other.discard();
    t.equal(await store.size(other.key), undefined, 'a released blob can still be discarded');
  });

  t.test(`${name}: missing and deleted blobs`, async (t) => {
    const store = await open();
    const staged = await store.stage();
    await staged.write(Buffer.from('x'));
    await staged.finish();
    await staged.commit(OWNER);
    await store.delete(staged.key);
    await store.delete(staged.key); // idempotent
    t.equal(await store.size(staged.key), undefined);
    await t.rejects(store.createReadStream(staged.key), { name: 'BlobNotFoundError' });
    await t.rejects(store.read(staged.key, 0, 1), { name: 'BlobNotFoundError' });
  });

  t.test(`${name}: staging leftovers are swept`, async (t) => {
    const store = await open();
    const left = await store.stage();
    await left.write(Buffer.from('partial'));
    // Simulate a crash: nothing finishes or discards `left`.
    t.ok((await store.sweepStaging()) >= 1);
    t.equal(await store.size(left.key), undefined);
  });

  t.test(`${name}: staged blobs waiting for commit hold no file descriptor once released`, async (t) => {
    const fs = await import('node:fs');
    const store = await open();
    const openFds = () => fs.readdirSync('/proc/self/fd').length;
    const before = openFds();
    const staged = [];
    for (let i = 0; i < 200; i++) {
      const s = await store.stage();
      await s.write(Buffer.from(`blob ${i}`));
      await s.finish();
      await s.release();
      staged.push(s);
    }
    t.ok(openFds() - before < 5, `descriptors: ${before} before, ${openFds()} with 200 staged blobs`);
    await Promise.all(staged.map((s) => s.commit(OWNER)));
    t.equal(openFds() - before < 5, true);
    t.equal((await store.read(staged[199]!.key, 0, 8)).toString(), 'blob 199');
  });

  t.test(`${name}: release keeping the descriptor (a request's first parts): commit and discard still close it`, async (t) => {
    const fs = await import('node:fs');
    const store = await open();
    const openFds = () => fs.readdirSync('/proc/self/fd').length;
    const before = openFds();
    const kept = [];
    for (let i = 0; i < 4; i++) {
      const s = await store.stage();
      await s.write(Buffer.from(`kept ${i}`));
      await s.finish();
      await s.release({ keepOpen: true });
      kept.push(s);
    }
    await t.rejects(kept[0]!.read(0, 1), 'no reading after release, kept open or not');
    t.ok(openFds() - before >= 4, 'the descriptors stay open until commit');
    await Promise.all(kept.slice(0, 3).map((s) => s.commit(OWNER)));
    await kept[3]!.discard();
    t.ok(openFds() - before < 2, `descriptors: ${before} before, ${openFds()} after commit and discard`);
    t.equal((await store.read(kept[2]!.key, 0, 6)).toString(), 'kept 2');
    t.equal(await store.size(kept[3]!.key), undefined, 'the discarded one is gone');
  });

  t.test(`${name}: large blob streams in chunks`, async (t) => {
    const store = await open();
    const staged = await store.stage();
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const hash = createHash('sha256');
    for (let i = 0; i < 8; i++) {
      await staged.write(chunk);
      hash.update(chunk);
    }
    const { size, sha256 } = await staged.finish();
    await staged.commit(OWNER);
    t.equal(size, 8 * 1024 * 1024);
    t.equal(sha256, hash.digest('hex'));
    const stream = await store.createReadStream(staged.key);
    const back = createHash('sha256');
    let chunks = 0;
    for await (const c of stream) {
      back.update(c as Buffer);
      chunks++;
    }
    t.equal(back.digest('hex'), sha256);
    t.ok(chunks > 1, 'streamed, not one buffer');
  });
}

/** What the encrypted decorator needs of the store it wraps (OverwritableStagedBlob.writeAt). */
export function runOverwritableBlobStoreContract(t: Test, name: string, open: () => Promise<OverwritableBlobStore>): void {
  t.test(`${name}: writeAt overwrites staged bytes before commit, also after release`, async (t) => {
    const store = await open();
    const staged = await store.stage();
    await staged.write(Buffer.from('hello world'));
    await t.rejects(staged.writeAt(0, Buffer.from('J')), 'not while writing');
    await staged.finish();
    await staged.writeAt(0, Buffer.from('J'));
    t.equal((await staged.read(0, 5)).toString(), 'Jello');
    await t.rejects(staged.writeAt(9, Buffer.from('xyz')), RangeError, 'no extending');
    await t.rejects(staged.writeAt(-1, Buffer.from('x')), RangeError);
    await staged.release();
    await staged.writeAt(6, Buffer.from('W'));
    await staged.commit(OWNER);
    t.equal((await store.read(staged.key, 0, 11)).toString(), 'Jello World');
    await t.rejects(staged.writeAt(0, Buffer.from('x')), 'not after commit');
  });

  t.test(`${name}: writev appends its buffers in order, counted and hashed like write`, async (t) => {
    const store = await open();
    const staged = await store.stage();
    await staged.write(Buffer.from('head|'));
    await staged.writev([Buffer.from('one|'), Buffer.alloc(0), Buffer.alloc(300_000, 0x61), Buffer.from('|two')]);
    await staged.write(Buffer.from('|tail'));
    const expected = Buffer.concat([Buffer.from('head|one|'), Buffer.alloc(300_000, 0x61), Buffer.from('|two|tail')]);
    const { size, sha256 } = await staged.finish();
    t.equal(size, expected.length);
    t.equal(sha256, createHash('sha256').update(expected).digest('hex'));
    t.ok((await staged.read(0, expected.length)).equals(expected), 'the bytes, in order');
    await t.rejects(staged.writev([Buffer.from('x')]), 'not after finish');
    await staged.commit(OWNER);
    t.ok((await store.read(staged.key, 0, expected.length)).equals(expected));
  });
}
