// The encrypted blob store beyond the shared contract (test/contracts): the on-disk format, ranges over
// segment boundaries, and that every kind of tampering is refused before any plaintext of a bad segment
// is yielded. Segments are the real 256 KiB.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import type { BlobOwner } from '../../src/storage/blob-store.js';
import { EncryptedBlobStore } from '../../src/storage/encrypted-blob-store.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { KeyIntegrityError } from '../../src/storage/keys/key-provider.js';
import { MemoryStudyKeyring } from '../helpers/memory-study-keyring.js';
import { tempDir } from '../helpers/temp-dir.js';

const S = 256 * 1024;
const HEADER = 124;
const STRIDE = S + 16;
const OWNER: BlobOwner = { studyInstanceUID: '1.2.826.0.1.3680043.10.2.1', sopInstanceUID: '1.2.826.0.1.3680043.10.2.1.1' };
const MARKER = Buffer.from('PLAINTEXT-MARKER-Doe^Jane-PLAINTEXT-MARKER');
const INTEGRITY = { name: 'BlobIntegrityError' };

/** Deterministic chunk sizes (mulberry32): a failure reproduces. */
function chunker(seed: number, max: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return 1 + (((x ^ (x >>> 14)) >>> 0) % max);
  };
}

/** Random bytes with the marker every 64 KiB. */
function plaintext(size: number): Buffer {
  const buf = randomBytes(size);
  for (let at = 0; at + MARKER.length <= size; at += 64 * 1024) MARKER.copy(buf, at);
  return buf;
}

async function setup(t: Test) {
  const dir = tempDir(t);
  const keyring = new MemoryStudyKeyring();
  const store = new EncryptedBlobStore(await FsBlobStore.open(dir), keyring);
  const fileOf = (key: string) => path.join(dir, 'objects', key.slice(0, 2), key.slice(2, 4), key);
  const put = async (plain: Buffer, seed = 1, owner: BlobOwner = OWNER) => {
    const staged = await store.stage();
    const next = chunker(seed, (3 * S) / 2);
    for (let at = 0; at < plain.length; ) {
      const n = Math.min(next(), plain.length - at);
      await staged.write(plain.subarray(at, at + n));
      at += n;
    }
    const done = await staged.finish();
    await staged.commit(owner);
    return { key: staged.key, ...done };
  };
  return { dir, keyring, store, fileOf, put };
}

/** Everything a stream yields before it ends or fails. */
async function drain(open: Promise<Readable>): Promise<{ bytes: Buffer; error?: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of await open) chunks.push(c as Buffer);
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
  return { bytes: Buffer.concat(chunks) };
}

t.test('round trip of sizes around the segment size, written in random chunks', async (t) => {
  const { store, put } = await setup(t);
  for (const [i, size] of [0, 1, S - 1, S, S + 1, 2 * S, 5 * 1024 * 1024 + 123].entries()) {
    const plain = plaintext(size);
    const { key, size: written, sha256 } = await put(plain, i + 7);
    t.equal(written, size, `size ${size}: finish() reports the plaintext size`);
    t.equal(sha256, createHash('sha256').update(plain).digest('hex'), `size ${size}: and its SHA-256`);
    t.equal(await store.size(key), size, `size ${size}: size()`);
    t.ok((await store.read(key, 0, size)).equals(plain), `size ${size}: read()`);
    const streamed = await drain(store.createReadStream(key));
    t.equal(streamed.error, undefined);
    t.ok(streamed.bytes.equals(plain), `size ${size}: createReadStream()`);
  }
});

t.test('ranges at and across segment boundaries equal the plaintext slices', async (t) => {
  const { store, put } = await setup(t);
  const size = 3 * S + S / 2;
  const plain = plaintext(size);
  const { key } = await put(plain, 3);
  const ranges: [number, number][] = [
    [0, 1], [S - 1, S], [S - 1, S + 1], [S, 2 * S], [S - 5, 2 * S + 5], [0, S], [2 * S + 1, 3 * S - 1],
    [3 * S, size], [size - 1, size], [17, size - 17], [0, size],
  ];
  for (const [start, end] of ranges) {
    const streamed = await drain(store.createReadStream(key, { start, end }));
    t.ok(streamed.bytes.equals(plain.subarray(start, end)), `stream [${start}, ${end})`);
    t.ok((await store.read(key, start, end - start)).equals(plain.subarray(start, end)), `read [${start}, ${end})`);
  }
  t.equal((await drain(store.createReadStream(key, { start: size - 3, end: size + 100 }))).bytes.length, 3, 'a range past the end is cut');
  t.equal((await drain(store.createReadStream(key, { start: size + 1, end: size + 9 }))).bytes.length, 0);
  await t.rejects(store.read(key, size - 1, 2), RangeError, 'read() past the end refused');
});

t.test('a staged blob reads back decrypted before commit, at any offset', async (t) => {
  const { store } = await setup(t);
  const plain = plaintext(2 * S + 1000);
  const staged = await store.stage();
  await staged.write(plain.subarray(0, 10));
  await staged.write(plain.subarray(10));
  await staged.finish();
  for (const [offset, length] of [[0, 132], [S - 100, 200], [S, S], [2 * S - 1, 1001], [0, plain.length]] as const) {
    t.ok((await staged.read(offset, length)).equals(plain.subarray(offset, offset + length)), `staged [${offset}, +${length})`);
  }
  await t.rejects(staged.read(plain.length, 1), RangeError);
  await staged.discard();
});

t.test('no plaintext reaches the disk, staged or committed; the header is as documented', async (t) => {
  const { dir, keyring, store, fileOf } = await setup(t);
  const plain = plaintext(S + 5000);
  const staged = await store.stage();
  await staged.write(plain);
  await staged.finish();
  const stagingFiles = fs.readdirSync(path.join(dir, 'staging'));
  t.equal(stagingFiles.length, 1);
  t.equal(fs.readFileSync(path.join(dir, 'staging', stagingFiles[0]!)).indexOf(MARKER), -1, 'staging file holds no marker');
  await staged.commit(OWNER);
  const file = fs.readFileSync(fileOf(staged.key));
  t.equal(file.indexOf(MARKER), -1, 'committed file holds no marker');
  t.equal(file.indexOf(plain.subarray(1000, 1032)), -1, 'nor any other plaintext run');
  t.equal(file.indexOf(Buffer.from(OWNER.studyInstanceUID)), -1, 'nor a UID');
  t.equal(file.length, HEADER + plain.length + 2 * 16, 'header + plaintext + one tag per segment');
  t.equal(file.subarray(0, 4).toString('latin1'), 'DVEB');
  t.equal(file[4], 1, 'format version');
  t.equal(file.readUInt32BE(5), S, 'segment size');
  t.ok(file.subarray(48, 64).equals((await keyring.forStudy(OWNER.studyInstanceUID)).id), 'study key id at 48');
});

t.test('a commit without owner is refused (fail closed) and leaves nothing', async (t) => {
  const { store } = await setup(t);
  const staged = await store.stage();
  await staged.write(Buffer.from('x'));
  await staged.finish();
  await t.rejects(staged.commit(), /owner/);
  t.equal(await store.size(staged.key), undefined);
  await staged.discard();
  await t.rejects(staged.commit(OWNER), 'discarded');
});

/**
 * A 2.5-segment blob, and what a stream of it yields after `damage` edited its file. read() asks for what
 * size() now says (derived from the file's length): asking for the original length of a truncated blob is a
 * RangeError, not a decryption.
 */
async function tampered(t: Test, damage: (file: Buffer, ctx: { otherFile: Buffer }) => Buffer) {
  const { store, put, fileOf } = await setup(t);
  const plain = plaintext(2 * S + S / 2);
  const { key } = await put(plain);
  const other = await put(plaintext(2 * S + S / 2), 2);
  const file = fileOf(key);
  fs.writeFileSync(file, damage(fs.readFileSync(file), { otherFile: fs.readFileSync(fileOf(other.key)) }));
  return { plain, streamed: await drain(store.createReadStream(key)), read: async () => store.read(key, 0, (await store.size(key))!) };
}

const seg = (i: number) => HEADER + i * STRIDE;
const flip = (at: number) => (f: Buffer) => {
  f[at]! ^= 0x01;
  return f;
};

t.test('tampering is refused, and no plaintext of a failed segment is yielded', async (t) => {
  const cases: [string, (f: Buffer, c: { otherFile: Buffer }) => Buffer, number][] = [
    // [what, damage, how many whole segments verify before the failure]
    ['a flipped byte in segment 1', flip(seg(1) + 1000), 1],
    ['a flipped byte in the tag of segment 0', flip(seg(1) - 1), 0],
    ['a flipped byte in the last segment', flip(seg(2) + 5), 2],
    ['truncated by one byte', (f) => f.subarray(0, f.length - 1), 2],
    ['truncated by one segment', (f) => f.subarray(0, seg(2)), 1],
    ['a segment appended (a copy of segment 0)', (f) => Buffer.concat([f, f.subarray(seg(0), seg(1))]), 2],
    ['extended by 100 bytes', (f) => Buffer.concat([f, Buffer.alloc(100)]), 2],
    ['segments 0 and 1 swapped', (f) => Buffer.concat([f.subarray(0, seg(0)), f.subarray(seg(1), seg(2)), f.subarray(seg(0), seg(1)), f.subarray(seg(2))]), 0],
    ['segment 1 from another blob of the study', (f, c) => Buffer.concat([f.subarray(0, seg(1)), c.otherFile.subarray(seg(1), seg(2)), f.subarray(seg(2))]), 1],
  ];
  for (const [what, damage, good] of cases) {
    const { plain, streamed, read } = await tampered(t, damage);
    t.match(streamed.error, INTEGRITY, `${what}: stream fails`);
    t.ok(streamed.bytes.equals(plain.subarray(0, good * S)), `${what}: yields only the ${good} verified segment(s) before`);
    await t.rejects(read(), INTEGRITY, `${what}: read() refused`);
  }
});

t.test('a tampered header is refused before any segment is read', async (t) => {
  const fields: [string, number, { name: string }][] = [
    ['magic', 0, INTEGRITY], ['version', 4, INTEGRITY], ['segment size', 7, INTEGRITY], ['salt', 20, INTEGRITY],
    ['nonce prefix', 45, INTEGRITY], ['wrap nonce', 70, INTEGRITY], ['wrapped key', 90, INTEGRITY], ['wrap tag', 120, INTEGRITY],
    // Another key id is a key the keyring does not know (the memory keyring says erased).
    ['study key id', 50, { name: 'StudyKeyErasedError' }],
  ];
  for (const [what, at, error] of fields) {
    const { streamed, read } = await tampered(t, flip(at));
    t.match(streamed.error, error, `${what}: refused`);
    t.equal(streamed.bytes.length, 0, `${what}: nothing yielded`);
    await t.rejects(read(), error);
  }
  const { streamed } = await tampered(t, (f) => f.subarray(0, 100));
  t.match(streamed.error, INTEGRITY, 'shorter than a header');
  t.ok(streamed.error instanceof KeyIntegrityError, 'a BlobIntegrityError is a KeyIntegrityError (one mapping: 500, security log)');
  t.notMatch(String((streamed.error as Error).message), OWNER.sopInstanceUID, 'no UID in the error');
});

t.test("swapping two objects' files is refused, in one study or across studies", async (t) => {
  const { store, put, fileOf } = await setup(t);
  const a = await put(plaintext(1000));
  const b = await put(plaintext(1000), 2);
  const c = await put(plaintext(1000), 3, { studyInstanceUID: '1.2.826.0.1.3680043.10.2.2', sopInstanceUID: '1.2.826.0.1.3680043.10.2.2.1' });
  fs.renameSync(fileOf(a.key), fileOf(b.key));
  await t.rejects(store.read(b.key, 0, 10), INTEGRITY, 'same study: the wrap is bound to the blob key');
  await t.rejects(store.createReadStream(b.key), INTEGRITY);
  fs.copyFileSync(fileOf(b.key), fileOf(c.key));
  await t.rejects(store.read(c.key, 0, 10), INTEGRITY, 'other study');
});

t.test('a destroyed study key makes its objects unreadable; other studies are untouched', async (t) => {
  const { store, keyring, put } = await setup(t);
  const plain = plaintext(S + 1);
  const a = await put(plain);
  const other = await put(plain, 2, { studyInstanceUID: '1.2.826.0.1.3680043.10.2.3', sopInstanceUID: '1.2.826.0.1.3680043.10.2.3.1' });
  await keyring.destroy(OWNER.studyInstanceUID);
  await t.rejects(store.read(a.key, 0, 1), { name: 'StudyKeyErasedError' });
  await t.rejects(store.createReadStream(a.key, { start: 0, end: 10 }), { name: 'StudyKeyErasedError' }, 'before a stream exists');
  t.equal(await store.size(a.key), plain.length, 'size() needs no key');
  t.ok((await store.read(other.key, 0, plain.length)).equals(plain));
});

t.test('a key provider that is down: reads and commits fail with KeyUnavailableError, never plaintext', async (t) => {
  const { store, keyring, put } = await setup(t);
  const a = await put(plaintext(100));
  keyring.unavailable = true;
  await t.rejects(store.createReadStream(a.key), { name: 'KeyUnavailableError' });
  const staged = await store.stage();
  await staged.write(Buffer.from('y'));
  await staged.finish();
  await t.rejects(staged.commit(OWNER), { name: 'KeyUnavailableError' });
  t.equal(await store.size(staged.key), undefined, 'not committed');
  await staged.discard();
});

t.test('the segment size is configurable and read back from each header', async (t) => {
  const dir = tempDir(t);
  const keyring = new MemoryStudyKeyring();
  const small = new EncryptedBlobStore(await FsBlobStore.open(dir), keyring, { segmentSize: 4096 });
  const staged = await small.stage();
  const plain = plaintext(10_000);
  await staged.write(plain);
  await staged.finish();
  await staged.commit(OWNER);
  const reader = new EncryptedBlobStore(await FsBlobStore.open(dir), keyring);
  t.ok((await reader.read(staged.key, 4000, 5000)).equals(plain.subarray(4000, 9000)));
  // read() of a range in the first segments reads the header with them when the blob has the reader's segment
  // size; with another one (either way) the header decides, and what the first read lacks is read again.
  for (const [start, end] of [[0, 1], [0, 10_000], [4095, 4097], [5000, 10_000]] as const) {
    t.ok((await reader.read(staged.key, start, end - start)).equals(plain.subarray(start, end)), `4 KiB segments, 256 KiB reader [${start}, ${end})`);
  }
  const large = await reader.stage();
  const bigPlain = plaintext(2 * S + 300);
  await large.write(bigPlain);
  await large.finish();
  await large.commit(OWNER);
  for (const [start, end] of [[0, 1], [0, S + 1], [10, 2 * S + 300], [S - 5, S + 5], [2 * S, 2 * S + 1]] as const) {
    t.ok((await small.read(large.key, start, end - start)).equals(bigPlain.subarray(start, end)), `256 KiB segments, 4 KiB reader [${start}, ${end})`);
    t.ok((await reader.read(large.key, start, end - start)).equals(bigPlain.subarray(start, end)), `256 KiB segments, 256 KiB reader [${start}, ${end})`);
  }
  t.throws(() => new EncryptedBlobStore(small as never, keyring, { segmentSize: 100 }), RangeError);
});

t.test('sealed segments are written a few at a time (issue 8), and all of them before finish() resolves', async (t) => {
  const dir = tempDir(t);
  const inner = await FsBlobStore.open(dir);
  const writes: number[] = [];
  const stage = inner.stage.bind(inner);
  // The real store, its staged blobs' writev counted.
  inner.stage = async (options) => {
    const staged = await stage(options);
    const writev = staged.writev.bind(staged);
    staged.writev = async (chunks) => {
      writes.push(chunks.reduce((n, c) => n + c.length, 0));
      await writev(chunks);
    };
    return staged;
  };
  const store = new EncryptedBlobStore(inner, new MemoryStudyKeyring());
  const cases: [number, number[]][] = [
    [2 * S + 1500, [HEADER + 3 * 16 + 2 * S + 1500]], // a 512x512 CT: header and three segments in one write
    [4 * S, [HEADER + 4 * STRIDE]], // the fourth segment is sealed (last) at finish: one write still
    [5 * S + 7, [HEADER + 4 * STRIDE, STRIDE + 7 + 16]],
  ];
  for (const [size, expected] of cases) {
    writes.length = 0;
    const plain = plaintext(size);
    const staged = await store.stage();
    for (let at = 0; at < size; at += 16 * 1024) await staged.write(plain.subarray(at, Math.min(size, at + 16 * 1024)));
    await staged.finish();
    t.same(writes, expected, `size ${size}: writes of ${expected.join(', ')} bytes`);
    // Segments 2 and 3 are not kept in plaintext: read back from the file.
    t.ok((await staged.read(2 * S - 10, Math.min(size - 2 * S + 10, 2 * S))).equals(plain.subarray(2 * S - 10, Math.min(size, 4 * S - 10))), `size ${size}: staged read from disk`);
    await staged.commit(OWNER);
    t.ok((await store.read(staged.key, 0, size)).equals(plain), `size ${size}: committed read`);
  }
});
