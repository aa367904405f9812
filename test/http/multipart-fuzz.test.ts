// Property tests for the multipart reader, with a fixed seed and a bounded count:
// 1. well-formed bodies built from random parts are read back exactly, however the bytes are chunked;
// 2. mutated bodies (flipped, inserted, deleted, truncated bytes) either read or fail with an AppError
//    (BAD_REQUEST or PAYLOAD_TOO_LARGE), never anything else, never hang, and the outcome (completed parts,
//    error code and message) does not depend on the chunking.

import t from 'tap';
import { isAppError } from '../../src/errors.js';
import { readMultipart, type MultipartLimits } from '../../src/http/multipart.js';

const LIMITS: MultipartLimits = { maxParts: 8, maxPartBytes: 600, maxPartHeaderBytes: 200, maxTotalBytes: 1 << 20 };

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const random = mulberry32(0x5eed);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;

const BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?";

function randomBoundary(): string {
  const n = 1 + int(int(2) ? 12 : 90);
  let b = '';
  for (let i = 0; i < n; i++) b += i > 0 && i < n - 1 && int(10) === 0 ? ' ' : pick([...BCHARS]);
  return b;
}

/** Bytes biased towards what confuses a multipart parser: CR, LF, dashes and pieces of the boundary. */
function trickyBytes(boundary: string, max: number): Buffer {
  const pieces: Buffer[] = [];
  let length = 0;
  const target = int(max + 1);
  while (length < target) {
    const piece = pick([
      () => Buffer.from('\r\n'),
      () => Buffer.from('\r'),
      () => Buffer.from('\n'),
      () => Buffer.from('--'),
      () => Buffer.from(`--${boundary.slice(0, int(boundary.length + 1))}`),
      () => Buffer.from(`\r\n--${boundary.slice(0, int(boundary.length + 1))}`),
      () => Buffer.from(`\r\n--${boundary}${pick(['x', '-x', '_'])}`),
      () => Buffer.from([int(256)]),
      () => Buffer.from(' \t'),
      () => Buffer.from('abc'),
    ])();
    pieces.push(piece);
    length += piece.length;
  }
  return Buffer.concat(pieces).subarray(0, target);
}

interface GenPart {
  headers: Array<[string, string]>;
  body: Buffer;
}

const HEADER_NAMES = ['Content-Type', 'Content-Location', 'Content-ID', 'X-Extra', 'content-description'];
const HEADER_VALUES = ['application/dicom', 'application/dicom+xml; transfer-syntax=1.2.840.10008.1.2.1', '/bulk/1', '<a@b>', 'x y', ''];

/**
 * Whether `body` reads back as itself: every CRLF "--" boundary in it (or right after the blank line before it)
 * is followed by a byte that cannot continue a boundary line, so it is data (multipart.ts header comment).
 */
function isBodyData(body: Buffer, delimiter: Buffer): boolean {
  const x = Buffer.concat([Buffer.from('\r\n'), body, delimiter]);
  const end = body.length + 2;
  for (let i = x.indexOf(delimiter); i !== -1 && i < end; i = x.indexOf(delimiter, i + 1)) {
    const c = x[i + delimiter.length];
    const data = c === 0x2d ? x[i + delimiter.length + 1] !== 0x2d : c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a;
    if (!data) return false;
  }
  return true;
}

function wellFormed(boundary: string): { bytes: Buffer; parts: GenPart[] } {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const padding = () => pick(['', ' ', '\t', '  \t ']);
  const out: Buffer[] = [];
  const preamble = pick(['', '\r\n', 'preamble text\r\n', `x--${boundary}\r\n`]);
  out.push(Buffer.from(`${preamble}--${boundary}${padding()}\r\n`));
  const parts: GenPart[] = [];
  const count = 1 + int(LIMITS.maxParts);
  for (let i = 0; i < count; i++) {
    const names = [...HEADER_NAMES].sort(() => random() - 0.5).slice(0, int(4));
    const headers: Array<[string, string]> = names.map((n) => [n, pick(HEADER_VALUES)]);
    let body = trickyBytes(boundary, 300);
    while (!isBodyData(body, delimiter)) body = body.subarray(1);
    if (int(3) === 0) headers.push(['Content-Length', String(body.length)]);
    const headOf = () => headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
    while (headOf().length > LIMITS.maxPartHeaderBytes) headers.shift();
    const head = headOf();
    if (i > 0) out.push(Buffer.from(`\r\n--${boundary}${padding()}\r\n`));
    out.push(Buffer.from(`${head}\r\n`), body);
    parts.push({ headers, body });
  }
  out.push(Buffer.from(`\r\n--${boundary}--${padding()}${pick(['', '\r\n', '\r\nepilogue --x\r\n'])}`));
  return { bytes: Buffer.concat(out), parts };
}

function mutate(bytes: Buffer, boundary: string): Buffer {
  let b = bytes;
  for (let m = 1 + int(3); m > 0; m--) {
    const at = int(b.length + 1);
    switch (int(5)) {
      case 0: {
        const copy = Buffer.from(b);
        if (copy.length > 0) copy[Math.min(at, copy.length - 1)] = int(256);
        b = copy;
        break;
      }
      case 1:
        b = Buffer.concat([b.subarray(0, at), trickyBytes(boundary, 12), b.subarray(at)]);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(8)))]);
        break;
      case 3:
        b = b.subarray(0, at);
        break;
      default:
        b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(['\n', '\r\n', `--${boundary}`, '\r\n\r\n', ': ', ' '])), b.subarray(at)]);
    }
  }
  return b;
}

function chunking(bytes: Buffer, kind: 'whole' | 'bytes' | 'random'): Buffer[] {
  if (kind === 'whole') return [bytes];
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = kind === 'bytes' ? 1 : 1 + int(int(2) ? 5 : 200);
    chunks.push(bytes.subarray(i, i + n));
    i += n;
  }
  return chunks;
}

interface Outcome {
  parts: Array<{ headers: Array<[string, string]>; body: string }>;
  error?: string;
}

async function run(chunks: Buffer[], boundary: string, t: Tap): Promise<Outcome> {
  async function* source() {
    yield* chunks;
  }
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const outcome: Outcome = { parts: [] };
  let yields = 0;
  try {
    for await (const p of readMultipart(source(), boundary, LIMITS)) {
      const body: Buffer[] = [];
      for await (const c of p.body) {
        // progress: every yielded chunk carries bytes, so there can be no more chunks than bytes
        if (c.length === 0 || ++yields > total) throw new Error('reader yields without progress');
        body.push(c);
      }
      outcome.parts.push({ headers: [...p.headers], body: Buffer.concat(body).toString('latin1') });
    }
  } catch (e) {
    if (!isAppError(e) || (e.code !== 'BAD_REQUEST' && e.code !== 'PAYLOAD_TOO_LARGE')) {
      t.fail(`unexpected error: ${(e as Error).stack}`);
    }
    outcome.error = isAppError(e) ? `${e.code}: ${e.message}` : String(e);
  }
  return outcome;
}
type Tap = Pick<typeof t, 'fail'>;

t.test('well-formed bodies read back exactly under any chunking', async (t) => {
  let checked = 0;
  let failures = 0;
  for (let round = 0; round < 400; round++) {
    const boundary = randomBoundary();
    const { bytes, parts } = wellFormed(boundary);
    const expected: Outcome = {
      parts: parts.map((p) => ({
        headers: p.headers.map(([n, v]) => [n.toLowerCase(), v] as [string, string]),
        body: p.body.toString('latin1'),
      })),
    };
    for (const kind of ['whole', 'random', round % 4 === 0 ? 'bytes' : 'random'] as const) {
      const got = await run(chunking(bytes, kind), boundary, t);
      checked++;
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        failures++;
        if (failures <= 3) t.same(got, expected, `round ${round} (${kind}), boundary ${JSON.stringify(boundary)} error ${got.error} bytes ${JSON.stringify(bytes.toString("latin1"))}`);
      }
    }
  }
  t.equal(failures, 0, `${checked} reads`);
});

t.test('mutated bodies: AppError or success, never a hang, and the same outcome for every chunking', async (t) => {
  let failed = 0;
  let succeeded = 0;
  let differences = 0;
  const codes = new Set<string>();
  for (let round = 0; round < 1500; round++) {
    const boundary = randomBoundary();
    const bytes = mutate(wellFormed(boundary).bytes, boundary);
    const whole = await run(chunking(bytes, 'whole'), boundary, t);
    for (const kind of ['random', round % 10 === 0 ? 'bytes' : 'random'] as const) {
      const other = await run(chunking(bytes, kind), boundary, t);
      if (JSON.stringify(other) !== JSON.stringify(whole)) {
        differences++;
        if (differences <= 3) {
          t.same(other, whole, `round ${round} (${kind}): ${other.parts.length}/${whole.parts.length} parts, ${other.error} / ${whole.error}`);
        }
      }
    }
    if (whole.error) {
      failed++;
      codes.add(whole.error.split(':')[0] as string);
    } else succeeded++;
  }
  t.equal(differences, 0, 'chunking never changes the outcome');
  t.ok(failed > 300 && succeeded > 100, `both outcomes exercised: ${failed} refused, ${succeeded} read`);
  t.same([...codes].sort(), ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE']);
});
