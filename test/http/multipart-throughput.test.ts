// Throughput of the multipart reader on large parts. Not a timed assertion (machines differ): the figures are
// printed with t.comment; the assertions check that every byte came through.
//
// The measurement runs in a child process without tap: inside a tap test every await passes through tap's
// async hooks (and V8 coverage), which costs more than the parsing itself and would measure tap, not the
// reader. The child is this same file, started with DICOMVAULT_THROUGHPUT_CHILD=1.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMultipart } from '../../src/http/multipart.js';

// Orthanc's 73-character boundary: the needle Buffer.indexOf looks for is 77 bytes long
const BOUNDARY = `${'0f'.repeat(18)}-${'a9'.repeat(18)}`;
const LIMITS = { maxParts: 10, maxPartBytes: 2 ** 40, maxPartHeaderBytes: 16 * 1024, maxTotalBytes: 2 ** 40 };
const MiB = 1024 * 1024;
const REPS = 256; // 256 MiB per case

interface Result {
  name: string;
  bytes: number;
  expected: number;
  gbps: number;
}

/** Reads one part of `reps` copies of `block`, delivered in `chunkSize` chunks; returns bytes and GB/s. */
async function measure(block: Buffer, reps: number, chunkSize: number): Promise<{ bytes: number; gbps: number }> {
  async function* source() {
    yield Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`);
    for (let r = 0; r < reps; r++) {
      for (let at = 0; at < block.length; at += chunkSize) yield block.subarray(at, at + chunkSize);
    }
    yield Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  }
  let bytes = 0;
  const started = process.hrtime.bigint();
  for await (const part of readMultipart(source(), BOUNDARY, LIMITS)) {
    for await (const chunk of part.body) bytes += chunk.length;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { bytes, gbps: bytes / seconds / 1e9 };
}

function cases(): Array<[string, Buffer, number]> {
  // 1 MiB blocks: data just received from a socket is in cache, as these are
  const random = randomBytes(MiB);
  // DICOM pixel data is often runs of zeros; text-like data is full of CR LF
  const zeros = Buffer.alloc(MiB);
  const crlf = Buffer.alloc(MiB);
  for (let i = 0; i < crlf.length; i += 4) crlf.write('\r\n--', i, 'latin1');
  // worst case for the search: the boundary less its last byte, over and over
  const nearMiss = Buffer.alloc(MiB);
  const pattern = Buffer.from(`\r\n--${BOUNDARY.slice(0, -1)}_`);
  for (let i = 0; i + pattern.length <= nearMiss.length; i += pattern.length) pattern.copy(nearMiss, i);
  return [
    ['random bytes, 64 KiB chunks (what a socket delivers)', random, 65536],
    ['random bytes, 16 KiB chunks (one TLS record each)', random, 16384],
    ['random bytes, 1 MiB chunks', random, MiB],
    ['zeros, 64 KiB chunks', zeros, 65536],
    ['CR LF "--" repeated, 64 KiB chunks', crlf, 65536],
    ['near-miss boundaries, 64 KiB chunks (adversarial)', nearMiss, 65536],
  ];
}

async function child(): Promise<void> {
  const results: Result[] = [];
  for (const [name, block, chunkSize] of cases()) {
    await measure(block, 8, chunkSize); // warm-up
    const { bytes, gbps } = await measure(block, REPS, chunkSize);
    results.push({ name, bytes, expected: block.length * REPS, gbps });
  }
  process.stdout.write(JSON.stringify(results));
}

function runChild(): Promise<Result[]> {
  const here = fileURLToPath(import.meta.url);
  const env: NodeJS.ProcessEnv = { ...process.env, DICOMVAULT_THROUGHPUT_CHILD: '1' };
  delete env.NODE_V8_COVERAGE;
  delete env.NODE_OPTIONS;
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, ['--import', 'tsx', here], { cwd: resolve(dirname(here), '../..'), env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', fail);
    p.on('close', (code) => (code === 0 ? done(JSON.parse(out) as Result[]) : fail(new Error(`throughput child exited with ${code}`))));
  });
}

if (process.env.DICOMVAULT_THROUGHPUT_CHILD === '1') {
  await child();
} else {
  const { default: t } = await import('tap');
  t.test('multipart reader throughput on 256 MiB parts (measured in a child process without tap)', async (t) => {
    for (const r of await runChild()) {
      t.equal(r.bytes, r.expected, `${r.name}: every byte came through`);
      t.comment(`${r.name}: ${r.gbps.toFixed(2)} GB/s`);
    }
  });
  t.test('the same, in this process under tap (its async hooks and coverage slow every await)', async (t) => {
    const [name, block, chunkSize] = cases()[0] as [string, Buffer, number];
    const { bytes, gbps } = await measure(block, 64, chunkSize);
    t.equal(bytes, block.length * 64);
    t.comment(`${name}, under tap: ${gbps.toFixed(2)} GB/s`);
  });
}
