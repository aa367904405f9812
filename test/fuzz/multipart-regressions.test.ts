// Inputs the coverage-guided fuzzer (fuzz/multipart.fuzz.ts) found, minimised by hand: each gave a different
// error depending on how the body was chunked, so the same request could be answered 400 or 413 (or with a
// different message) depending on TCP segmentation or a proxy's buffering. The fuzzer's own crash files are
// in fuzz/regressions/multipart/ and replayed by fuzz-smoke.test.ts.

import t from 'tap';
import { isAppError } from '../../src/errors.js';
import { readMultipart, type MultipartLimits } from '../../src/http/multipart.js';

const LIMITS: MultipartLimits = { maxParts: 4, maxPartBytes: 4096, maxPartHeaderBytes: 512, maxTotalBytes: 1 << 20 };

async function outcome(body: Buffer, chunkSize: number): Promise<string> {
  async function* source() {
    for (let i = 0; i < body.length; i += chunkSize) yield body.subarray(i, i + chunkSize);
  }
  try {
    for await (const part of readMultipart(source(), 'b', LIMITS)) for await (const _ of part.body);
    return 'ok';
  } catch (e) {
    if (!isAppError(e)) throw e;
    return `${e.code}: ${e.message}`;
  }
}

async function sameForEveryChunking(t: Tap, body: Buffer, expected: RegExp): Promise<void> {
  const whole = await outcome(body, body.length);
  t.match(whole, expected, 'in one chunk');
  for (const size of [1, 7, 100, 511, 512, 513]) t.equal(await outcome(body, size), whole, `in chunks of ${size}`);
}
type Tap = Pick<typeof t, 'match' | 'equal'>;

t.test('a header line over the cap that ends in a bare LF is 413 however it arrives', async (t) => {
  const body = Buffer.from(`--b\r\nX-Long: ${'a'.repeat(600)}\n\r\n\r\ndata\r\n--b--`);
  await sameForEveryChunking(t, body, /^PAYLOAD_TOO_LARGE: part 0: headers are larger than 512 bytes/);
});

t.test('a header line under the cap that ends in a bare LF is still the bare-LF error', async (t) => {
  const body = Buffer.from(`--b\r\nX-Short: ${'a'.repeat(400)}\n\r\n\r\ndata\r\n--b--`);
  await sameForEveryChunking(t, body, /^BAD_REQUEST: multipart lines must end with CRLF/);
});

t.test('a malformed boundary line past the preamble cap is the preamble error however it arrives', async (t) => {
  const body = Buffer.from(`${'p'.repeat(600)}\r\n--b\rx\r\n\r\ndata\r\n--b--`);
  await sameForEveryChunking(t, body, /^BAD_REQUEST: no multipart boundary in the first 512 bytes/);
});

t.test('a malformed boundary line within the preamble cap is still refused as such', async (t) => {
  const body = Buffer.from(`${'p'.repeat(400)}\r\n--b\rx\r\n\r\ndata\r\n--b--`);
  await sameForEveryChunking(t, body, /^BAD_REQUEST: malformed multipart boundary line/);
});

t.test('a part longer than its Content-Length before a malformed boundary line is the length error however it arrives', async (t) => {
  const body = Buffer.from(`--b\r\nContent-Length: 10\r\n\r\n${'d'.repeat(20)}\r\n--b\r-`);
  await sameForEveryChunking(t, body, /^BAD_REQUEST: part 0 is longer than its Content-Length 10/);
});

t.test('a part over maxPartBytes before a malformed boundary line is 413 however it arrives', async (t) => {
  const body = Buffer.from(`--b\r\n\r\n${'d'.repeat(LIMITS.maxPartBytes + 1)}\r\n--b\r-`);
  await sameForEveryChunking(t, body, /^PAYLOAD_TOO_LARGE: part 0 is larger than 4096 bytes/);
});

t.test('within its caps, the malformed boundary line after a part body is refused as such', async (t) => {
  const body = Buffer.from(`--b\r\nContent-Length: 30\r\n\r\n${'d'.repeat(20)}\r\n--b\r-`);
  await sameForEveryChunking(t, body, /^BAD_REQUEST: malformed multipart boundary line/);
});
