// SECURITY.md 8 cases 14-17: the multipart reader's limits. Each failure is an AppError with an exact status,
// and the reader stops pulling from the source when it fails (it does not read the rest of a hostile body).

import t from 'tap';
import { readMultipart, TRUNCATED_MESSAGE, type MultipartLimits } from '../../src/http/multipart.js';

const LIMITS: MultipartLimits = { maxParts: 1000, maxPartBytes: 1000, maxPartHeaderBytes: 16 * 1024, maxTotalBytes: 1 << 20 };

/** A source that counts the bytes pulled from it. */
function counted(chunks: Iterable<Buffer>): { source: AsyncIterable<Buffer>; pulled: () => number } {
  let pulled = 0;
  async function* source() {
    for (const c of chunks) {
      pulled += c.length;
      yield c;
    }
  }
  return { source: source(), pulled: () => pulled };
}

/** Reads everything; returns the part count and the error (or undefined). */
async function consume(source: AsyncIterable<Buffer>, limits: MultipartLimits, boundary = 'b') {
  let parts = 0;
  let bytes = 0;
  try {
    for await (const p of readMultipart(source, boundary, limits)) {
      parts++;
      for await (const c of p.body) bytes += c.length;
    }
    return { parts, bytes, error: undefined };
  } catch (error) {
    return { parts, bytes, error: error as { code?: string; status?: number; message?: string } };
  }
}

t.test('10^5 parts -> 413 after maxParts, without reading the rest', async (t) => {
  const many = function* () {
    for (let i = 0; i < 100_000; i++) yield Buffer.from(`--b\r\nContent-Type: application/dicom\r\n\r\n${i}\r\n`);
    yield Buffer.from('--b--');
  };
  const { source, pulled } = counted(many());
  const started = process.hrtime.bigint();
  const r = await consume(source, LIMITS);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.equal(r.parts, 1000, 'exactly maxParts parts were handed out');
  t.match(r.error, { name: 'AppError', code: 'PAYLOAD_TOO_LARGE', status: 413, message: 'multipart body has more than 1000 parts' });
  t.ok(pulled() < 1002 * 60, `stopped early: ${pulled()} bytes pulled`);
  t.comment(`refused after ${ms.toFixed(1)} ms`);
});

t.test('exactly maxParts parts are accepted', async (t) => {
  const body = `${'--b\r\n\r\nx\r\n'.repeat(5)}--b--`;
  t.same(await consume(counted([Buffer.from(body)]).source, { ...LIMITS, maxParts: 5 }), { parts: 5, bytes: 5, error: undefined });
  const r = await consume(counted([Buffer.from(body)]).source, { ...LIMITS, maxParts: 4 });
  t.equal(r.parts, 4);
  t.match(r.error, { code: 'PAYLOAD_TOO_LARGE', status: 413 });
});

t.test('64 KiB of part headers -> 413, as many lines or as one line without an end', async (t) => {
  const lines = Array.from({ length: 1300 }, (_, i) => `X-Padding-${i}: 0123456789012345678901234567890123456789\r\n`).join('');
  const manyLines = Buffer.from(`--b\r\n${lines}\r\nbody\r\n--b--`);
  t.ok(manyLines.length > 64 * 1024);
  const a = counted([manyLines.subarray(0, 32 * 1024), manyLines.subarray(32 * 1024)]);
  const r1 = await consume(a.source, LIMITS);
  t.equal(r1.parts, 0);
  t.match(r1.error, { code: 'PAYLOAD_TOO_LARGE', status: 413, message: 'part 0: headers are larger than 16384 bytes' });
  t.equal(a.pulled(), 32 * 1024, 'the second half was never pulled');

  const oneLine = function* () {
    yield Buffer.from('--b\r\nX-Long: ');
    for (let i = 0; i < 64; i++) yield Buffer.alloc(1024, 'a');
  };
  const b = counted(oneLine());
  const r2 = await consume(b.source, LIMITS);
  t.match(r2.error, { code: 'PAYLOAD_TOO_LARGE', status: 413 });
  t.ok(b.pulled() < 18 * 1024, `stopped after ${b.pulled()} bytes`);

  // in 1-byte chunks too (the carry buffer grows geometrically, so this stays linear)
  const bytes = function* () {
    for (const byte of manyLines) yield Buffer.from([byte]);
  };
  const r3 = await consume(counted(bytes()).source, LIMITS);
  t.match(r3.error, { code: 'PAYLOAD_TOO_LARGE', status: 413 });
});

t.test('part headers of exactly maxPartHeaderBytes are accepted (the lines with their CRLFs)', async (t) => {
  const line = (name: string, n: number) => `${name}: ${'a'.repeat(n - name.length - 4)}\r\n`; // n bytes with CRLF
  t.equal(line('X-A', 100).length, 100);
  const ok = Buffer.from(`--b\r\n${line('X-A', 100)}${line('X-B', 24)}\r\nz\r\n--b--`);
  t.same(await consume(counted([ok]).source, { ...LIMITS, maxPartHeaderBytes: 124 }), { parts: 1, bytes: 1, error: undefined });
  const r = await consume(counted([ok]).source, { ...LIMITS, maxPartHeaderBytes: 123 });
  t.match(r.error, { code: 'PAYLOAD_TOO_LARGE', status: 413 });
  // the same with every split point: the limit does not depend on how the bytes arrive
  for (let i = 1; i < ok.length; i++) {
    const split = [ok.subarray(0, i), ok.subarray(i)];
    const fits = await consume(counted(split).source, { ...LIMITS, maxPartHeaderBytes: 124 });
    const over = await consume(counted(split).source, { ...LIMITS, maxPartHeaderBytes: 123 });
    if (fits.error !== undefined || over.error?.status !== 413) t.fail(`split at ${i}: ${fits.error?.message} / ${over.error?.message}`);
  }
});

t.test('a part over maxPartBytes -> 413 from its body, then from the next iteration', async (t) => {
  const exact = Buffer.from(`--b\r\n\r\n${'a'.repeat(1000)}\r\n--b--`);
  t.same(await consume(counted([exact]).source, LIMITS), { parts: 1, bytes: 1000, error: undefined });

  const over = Buffer.from(`--b\r\n\r\n${'a'.repeat(1001)}\r\n--b\r\n\r\nnext\r\n--b--`);
  const gen = readMultipart(counted([over.subarray(0, 600), over.subarray(600)]).source, 'b', LIMITS);
  const first = await gen.next();
  let delivered = 0;
  let bodyError: unknown;
  try {
    for await (const c of (first.value as { body: AsyncIterable<Buffer> }).body) delivered += c.length;
  } catch (e) {
    bodyError = e;
  }
  t.match(bodyError, { name: 'AppError', code: 'PAYLOAD_TOO_LARGE', status: 413, message: 'part 0 is larger than 1000 bytes' });
  t.ok(delivered <= 1000, `never more than the cap delivered (${delivered})`);
  const next = await gen.next().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.equal(next, bodyError);
});

t.test('an oversized part left unread still fails the next iteration', async (t) => {
  const over = Buffer.from(`--b\r\n\r\n${'a'.repeat(5000)}\r\n--b--`);
  let parts = 0;
  const r = await (async () => {
    try {
      for await (const _ of readMultipart(counted([over]).source, 'b', LIMITS)) parts++;
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.equal(parts, 1);
  t.match(r, { code: 'PAYLOAD_TOO_LARGE', status: 413 });
});

t.test('a Content-Length over maxPartBytes -> 413 before any of the body is read', async (t) => {
  const body = Buffer.from('--b\r\nContent-Length: 1001\r\n\r\n');
  const { source, pulled } = counted([body, Buffer.alloc(1001), Buffer.from('\r\n--b--')]);
  const r = await consume(source, LIMITS);
  t.equal(r.parts, 0);
  t.match(r.error, { code: 'PAYLOAD_TOO_LARGE', status: 413, message: 'part 0 is larger than 1000 bytes' });
  t.equal(pulled(), body.length);
});

t.test('total over maxTotalBytes -> 413, counting preamble, framing and epilogue', async (t) => {
  const body = Buffer.from(`preamble\r\n--b\r\n\r\n${'a'.repeat(500)}\r\n--b\r\n\r\n${'a'.repeat(500)}\r\n--b--\r\nepilogue`);
  t.same(await consume(counted([body]).source, { ...LIMITS, maxTotalBytes: body.length }), { parts: 2, bytes: 1000, error: undefined });
  const r = await consume(counted([body.subarray(0, 100), body.subarray(100)]).source, { ...LIMITS, maxTotalBytes: body.length - 1 });
  t.match(r.error, { code: 'PAYLOAD_TOO_LARGE', status: 413, message: `request body is larger than ${body.length - 1} bytes` });

  // a huge epilogue is read (the request is consumed) but still bounded
  const withEpilogue = function* () {
    yield Buffer.from('--b\r\n\r\nx\r\n--b--\r\n');
    for (let i = 0; i < 100; i++) yield Buffer.alloc(64 * 1024, 'e');
  };
  const e = counted(withEpilogue());
  const r2 = await consume(e.source, { ...LIMITS, maxTotalBytes: 1 << 20 });
  t.equal(r2.parts, 1);
  t.match(r2.error, { code: 'PAYLOAD_TOO_LARGE', status: 413 });
  t.ok(e.pulled() <= (1 << 20) + 64 * 1024, 'stopped at the cap');
  const small = counted([Buffer.from('--b\r\n\r\nx\r\n--b--\r\n'), Buffer.alloc(1000, 'e')]);
  t.same(await consume(small.source, LIMITS), { parts: 1, bytes: 1, error: undefined });
  t.equal(small.pulled(), 1017, 'the epilogue was read to the end');
});

t.test('missing closing boundary -> 400', async (t) => {
  const r = await consume(counted([Buffer.from('--b\r\n\r\nfirst\r\n--b\r\n\r\nsecond, then the client stops')]).source, LIMITS);
  t.equal(r.parts, 2);
  t.match(r.error, { code: 'BAD_REQUEST', status: 400, message: TRUNCATED_MESSAGE });
});
