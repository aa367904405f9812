#!/usr/bin/env node
// Encryption at rest, measured: raw AES-256-GCM of this machine (256 KiB segments, one cipher per segment as
// the store does), then the encrypted blob store against the plain filesystem store it wraps: staged write
// (random 16-128 KiB chunks, like the multipart parser's), whole-blob stream, and random ranged reads
// (a frame, an HTTP Range) through createReadStream.
//
//   node --import tsx bench/blob-crypto.mjs [--mib 256] [--ranges 400] [--range-kib 64] [--dir /tmp]
//
// Prints a JSON summary. No timing assertions anywhere in the tests: figures belong here and in the report.
// Run nothing else heavy meanwhile (2-core machines: expect 10-30 % spread between runs).

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EncryptedBlobStore } from '../src/storage/encrypted-blob-store.ts';
import { FsBlobStore } from '../src/storage/fs-blob-store.ts';
import { MemoryStudyKeyring } from '../test/helpers/memory-study-keyring.ts';

const { values: opt } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' }, ranges: { type: 'string', default: '400' },
    'range-kib': { type: 'string', default: '64' }, dir: { type: 'string', default: os.tmpdir() },
  },
});
const SIZE = Number(opt.mib) * 1024 * 1024;
const SEGMENT = 256 * 1024;
const OWNER = { studyInstanceUID: '1.2.826.0.1.3680043.10.9.1', sopInstanceUID: '1.2.826.0.1.3680043.10.9.1.1' };
const mibPerS = (bytes, ms) => Math.round((bytes / 1024 / 1024 / (ms / 1000)) * 10) / 10;
const now = () => performance.now();

function rawGcm(data) {
  const key = randomBytes(32);
  const iv = Buffer.alloc(12);
  const sealed = [];
  let t0 = now();
  for (let off = 0, i = 0; off < data.length; off += SEGMENT, i++) {
    iv.writeUInt32BE(i, 7);
    const c = createCipheriv('aes-256-gcm', key, iv);
    sealed.push([c.update(data.subarray(off, off + SEGMENT)), (c.final(), c.getAuthTag())]);
  }
  const encryptMs = now() - t0;
  t0 = now();
  sealed.forEach(([ct, tag], i) => {
    iv.writeUInt32BE(i, 7);
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(tag);
    d.update(ct);
    d.final();
  });
  return { encryptMiBs: mibPerS(data.length, encryptMs), decryptMiBs: mibPerS(data.length, now() - t0) };
}

async function measureStore(store, data) {
  const chunks = [];
  for (let off = 0; off < data.length; ) {
    const n = Math.min(16 * 1024 + Math.floor(Math.random() * 112 * 1024), data.length - off);
    chunks.push(data.subarray(off, off + n));
    off += n;
  }
  let t0 = now();
  const staged = await store.stage();
  for (const c of chunks) await staged.write(c);
  await staged.finish();
  await staged.release();
  await staged.commit(OWNER);
  const writeMs = now() - t0;

  t0 = now();
  let got = 0;
  for await (const c of await store.createReadStream(staged.key)) got += c.length;
  const streamMs = now() - t0;
  if (got !== data.length) throw new Error('short stream');

  const rangeBytes = Number(opt['range-kib']) * 1024;
  const count = Number(opt.ranges);
  t0 = now();
  for (let i = 0; i < count; i++) {
    const start = Math.floor(Math.random() * (data.length - rangeBytes));
    let n = 0;
    for await (const c of await store.createReadStream(staged.key, { start, end: start + rangeBytes })) n += c.length;
    if (n !== rangeBytes) throw new Error('short range');
  }
  const rangeMs = now() - t0;
  await store.delete(staged.key);
  return {
    writeMiBs: mibPerS(data.length, writeMs),
    streamMiBs: mibPerS(data.length, streamMs),
    rangeMsEach: Math.round((rangeMs / count) * 1000) / 1000,
  };
}

const root = fs.mkdtempSync(path.join(opt.dir, 'dicomvault-bench-'));
try {
  const data = randomBytes(SIZE);
  const plain = await FsBlobStore.open(path.join(root, 'plain'));
  const encrypted = new EncryptedBlobStore(await FsBlobStore.open(path.join(root, 'enc')), new MemoryStudyKeyring());
  const result = {
    node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, mib: Number(opt.mib),
    rangeKiB: Number(opt['range-kib']), ranges: Number(opt.ranges),
    rawAesGcm256KiB: rawGcm(data),
    fs: await measureStore(plain, data),
    encryptedFs: await measureStore(encrypted, data),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
