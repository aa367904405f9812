import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import t from 'tap';
import { AppError } from '../../src/errors.js';
import {
  parseMultipartContentType,
  readMultipart,
  TRUNCATED_MESSAGE,
  type MultipartLimits,
  type MultipartPart,
} from '../../src/http/multipart.js';

const LIMITS: MultipartLimits = { maxParts: 100, maxPartBytes: 1 << 20, maxPartHeaderBytes: 1024, maxTotalBytes: 1 << 24 };

interface ReadPart {
  index: number;
  headers: Record<string, string>;
  contentType?: string;
  contentLocation?: string;
  contentLength?: number;
  body: Buffer;
}

async function* chunksOf(data: Buffer, size: number | ((i: number) => number) = data.length || 1): AsyncGenerator<Buffer> {
  let i = 0;
  for (let at = 0; at < data.length; i++) {
    const n = Math.max(1, typeof size === 'number' ? size : size(i));
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function toParts(parts: AsyncIterable<MultipartPart>): Promise<ReadPart[]> {
  const out: ReadPart[] = [];
  for await (const p of parts) {
    const chunks: Buffer[] = [];
    for await (const c of p.body) {
      if (c.length === 0) throw new Error('empty chunk yielded');
      chunks.push(Buffer.from(c));
    }
    const r: ReadPart = { index: p.index, headers: Object.fromEntries(p.headers), body: Buffer.concat(chunks) };
    if (p.contentType !== undefined) r.contentType = p.contentType;
    if (p.contentLocation !== undefined) r.contentLocation = p.contentLocation;
    if (p.contentLength !== undefined) r.contentLength = p.contentLength;
    out.push(r);
  }
  return out;
}

const read = (body: Buffer | string, boundary: string, limits = LIMITS, size?: number | ((i: number) => number)) =>
  toParts(readMultipart(chunksOf(Buffer.from(body as string), size), boundary, limits));

const rejectsWith = (t: Tap, p: Promise<unknown>, code: string, message?: string | RegExp) =>
  t.rejects(p, { name: 'AppError', code, ...(message === undefined ? {} : { message }) });
type Tap = Pick<typeof t, 'rejects'>;

t.test('parseMultipartContentType', async (t) => {
  // Orthanc: quoted type, unquoted 73-character boundary (INTEROP.md)
  const b73 = `${'0123456789abcdef0123456789abcdef0123'}-${'0123456789abcdef0123456789abcdef0123'}`;
  t.equal(b73.length, 73);
  t.same(parseMultipartContentType(`multipart/related; type="application/dicom"; boundary=${b73}`), {
    boundary: b73,
    type: 'application/dicom',
    params: new Map([
      ['type', 'application/dicom'],
      ['boundary', b73],
    ]),
  });
  // dicomweb-client: quoted boundary; any order; case; unquoted type
  const c = parseMultipartContentType('Multipart/Related; Boundary="a:b=c?d (e)"; TYPE=Application/Dicom');
  t.equal(c.boundary, 'a:b=c?d (e)');
  t.equal(c.type, 'application/dicom');
  t.equal(parseMultipartContentType('multipart/related; boundary=x').type, undefined);
  t.equal(parseMultipartContentType('multipart/related; type="application/dicom+xml"; boundary=x').type, 'application/dicom+xml');
  t.equal(parseMultipartContentType(`multipart/related; boundary=${'b'.repeat(200)}`).boundary.length, 200);

  const UMT = { name: 'AppError', code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 };
  const BAD = { name: 'AppError', code: 'BAD_REQUEST', status: 400 };
  t.throws(() => parseMultipartContentType(undefined), UMT);
  t.throws(() => parseMultipartContentType('application/dicom'), UMT);
  t.throws(() => parseMultipartContentType('multipart/form-data; boundary=x'), UMT);
  t.throws(() => parseMultipartContentType('multipart/relatedx; boundary=x'), UMT);
  t.throws(() => parseMultipartContentType('multipart/related\tx; boundary=x'), UMT, 'tab trick');
  t.throws(() => parseMultipartContentType('multipart/related ,application/json; boundary=x'), UMT);
  t.throws(() => parseMultipartContentType('multipart/related; boundary=x; boundary=y'), UMT, 'two boundaries');
  t.throws(() => parseMultipartContentType('multipart/related; type="application"; boundary=x'), UMT, 'malformed type');
  t.throws(() => parseMultipartContentType('multipart/related'), BAD, 'no boundary');
  t.throws(() => parseMultipartContentType('multipart/related; type="application/dicom"'), BAD);
  t.throws(() => parseMultipartContentType('multipart/related; boundary=""'), BAD, 'empty boundary');
  t.throws(() => parseMultipartContentType(`multipart/related; boundary=${'b'.repeat(201)}`), BAD, 'too long');
  t.throws(() => parseMultipartContentType('multipart/related; boundary="ends with space "'), BAD);
  t.throws(() => parseMultipartContentType('multipart/related; boundary="semi;colon"'), BAD, 'not a bchar');
  t.throws(() => parseMultipartContentType('multipart/related; boundary=a*b'), BAD, '* is a tchar but not a bchar');
});

const B73 = `${'a'.repeat(36)}-${'b'.repeat(36)}`;

t.test('Orthanc style: 73-character boundary, no preamble, Content-Type and Content-Length on every part', async (t) => {
  const one = randomBytes(5000);
  const two = randomBytes(3);
  const body = Buffer.concat([
    Buffer.from(`--${B73}\r\nContent-Type: application/dicom\r\nContent-Length: ${one.length}\r\n\r\n`),
    one,
    Buffer.from(`\r\n--${B73}\r\nContent-Type: application/dicom\r\nContent-Length: 3\r\n\r\n`),
    two,
    Buffer.from(`\r\n--${B73}--\r\n`),
  ]);
  const parts = await read(body, B73);
  t.same(parts, [
    {
      index: 0,
      headers: { 'content-type': 'application/dicom', 'content-length': String(one.length) },
      contentType: 'application/dicom',
      contentLength: one.length,
      body: one,
    },
    { index: 1, headers: { 'content-type': 'application/dicom', 'content-length': '3' }, contentType: 'application/dicom', contentLength: 3, body: two },
  ]);
});

t.test('dicomweb-client style: CRLF before the first boundary, no Content-Length', async (t) => {
  const parts = await read('\r\n--XyZ\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--XyZ--', 'XyZ');
  t.same(parts, [{ index: 0, headers: { 'content-type': 'application/dicom' }, contentType: 'application/dicom', body: Buffer.from('DICM') }]);
});

t.test('a text preamble, transport padding after boundaries, and an epilogue are ignored', async (t) => {
  const body =
    'This is a preamble.\r\n--b\r\n\r\nnot a boundary: --b\r\n' +
    '\r\n--b \t \r\nContent-Type: text/plain\r\n\r\none\r\n--b\t\r\n\r\ntwo\r\n--b-- \t\r\n' +
    'epilogue with --b and\r\n--b\r\n junk and a bare \n LF';
  const parts = await read(body, 'b');
  t.same(
    parts.map((p) => [p.headers, p.body.toString()]),
    [
      [{}, 'not a boundary: --b\r\n'],
      [{ 'content-type': 'text/plain' }, 'one'],
      [{}, 'two'],
    ],
  );
});

t.test('"--boundary" in the preamble that does not start a line is not the opening boundary', async (t) => {
  const parts = await read('x--b\r\n--b\r\n\r\nA\r\n--b--', 'b');
  t.same(
    parts.map((p) => p.body.toString()),
    ['A'],
  );
});

t.test('boundary-like sequences inside part data are data', async (t) => {
  const tricky = [
    '--boundary at the start of the body',
    '\r\n-boundary',
    '\r\n--boundar',
    '\r\n--boundaryX (a longer boundary-like string)',
    '\r\n--boundary-x',
    '\r\n--boundary_',
    '\n--boundary\r\n (LF only: not a delimiter)',
    '\r--boundary\r\n (CR only)',
    '\r\n\r\n--bound',
    '\r\r\n-\r\n--\r\n--b',
    'ends with CR\r',
  ].join('|');
  const body = `--boundary\r\n\r\n${tricky}\r\n--boundary\r\n\r\n${tricky}\r\n--boundary--`;
  const parts = await read(body, 'boundary');
  t.same(
    parts.map((p) => p.body.toString()),
    [tricky, tricky],
  );
  for (const size of [1, 2, 3, 7, 13]) {
    const again = await read(body, 'boundary', LIMITS, size);
    t.same(
      again.map((p) => p.body.toString()),
      [tricky, tricky],
      `chunks of ${size}`,
    );
  }
});

t.test('empty parts', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['--b\r\nContent-Type: x/y\r\n\r\n\r\n--b--', ['']], // headers, blank line, empty body, delimiter
    ['--b\r\nContent-Type: x/y\r\n\r\n--b--', ['']], // headers then the delimiter directly (body-part := headers [CRLF *OCTET])
    ['--b\r\n\r\n--b--', ['']], // no headers, no body
    ['--b\r\n\r\n--b\r\n\r\n--b--', ['', '']],
    ['--b\r\n\r\n\r\n--b--', ['']], // no headers, blank line, empty body
    ['--b\r\n\r\n\r\n\r\n--b--', ['\r\n']], // a body that is one CRLF
    ['--b\r\nContent-Type: x/y\r\n\r\n--bX\r\n--b--', ['--bX']], // blank line then data that only looks like a boundary
    ['--b\r\nContent-Type: x/y\r\n\r\n--b x\r\n--b--', ['--b x']], // not a well-formed boundary line: data
    ['--b\r\n\r\n--b\n\r\n--b--', ['--b\n']],
  ];
  for (const [body, expected] of cases) {
    for (const size of [undefined, 1]) {
      const parts = await read(body, 'b', LIMITS, size);
      t.same(
        parts.map((p) => p.body.toString()),
        expected,
        `${JSON.stringify(body)} in chunks of ${size ?? 'all'}`,
      );
    }
  }
  const [withHeaders] = await read('--b\r\nContent-Type: x/y\r\n\r\n--b--', 'b');
  t.equal(withHeaders?.contentType, 'x/y');
});

t.test('part headers: names lowercased, values trimmed, folding unfolded, Content-Location exposed', async (t) => {
  const body =
    '--b\r\nCONTENT-TYPE:application/dicom+xml; charset=utf-8  \r\ncontent-location:  /bulk/1\t\r\n' +
    'X-Folded: first\r\n  second\r\n\tthird\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n\r\n<x/>\r\n--b--';
  const [part] = await read(Buffer.from(body, 'latin1'), 'b');
  t.same(part?.headers, {
    'content-type': 'application/dicom+xml; charset=utf-8',
    'content-location': '/bulk/1',
    'x-folded': 'first second third',
    'x-empty': '',
    'x-latin': 'caf\u00e9',
  });
  t.equal(part?.contentType, 'application/dicom+xml; charset=utf-8');
  t.equal(part?.contentLocation, '/bulk/1');
  t.equal(part?.body.toString(), '<x/>');
  const [folded] = await read('--b\r\nX-A:\r\n more\r\nX-B: v\r\n \r\n\r\nz\r\n--b--', 'b');
  t.same(folded?.headers, { 'x-a': 'more', 'x-b': 'v' });
});

t.test('malformed part headers are 400', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['--b\r\nContent-Type: a/b\r\ncontent-type: a/b\r\n\r\nx\r\n--b--', /appears twice/],
    ['--b\r\nno colon here\r\n\r\nx\r\n--b--', /malformed header line/],
    ['--b\r\n: empty name\r\n\r\nx\r\n--b--', /malformed header line/],
    ['--b\r\nContent-Type : a/b\r\n\r\nx\r\n--b--', /malformed header line/],
    ['--b\r\nBad\tName: a/b\r\n\r\nx\r\n--b--', /malformed header line/],
    ['--b\r\n folded-first: x\r\n\r\nx\r\n--b--', /starts with whitespace/],
    ['--b\r\nX: a\u0000b\r\n\r\nx\r\n--b--', /control character/],
    ['--b\r\nX: a\rb\r\n\r\nx\r\n--b--', /control character/],
    ['--b\r\nContent-Type: a/b\n\r\nx\r\n--b--', /bare LF/],
    ['--b\r\nContent-Type: a/b\r\n\nx\r\n--b--', /bare LF/],
    ['--b\r\n\nx\r\n--b--', /bare LF/],
    ['--b\r\nContent-Length: 1x\r\n\r\nx\r\n--b--', /invalid Content-Length/],
    ['--b\r\nContent-Length: -1\r\n\r\nx\r\n--b--', /invalid Content-Length/],
    ['--b\r\nContent-Length: 12345678901234567\r\n\r\nx\r\n--b--', /invalid Content-Length/],
  ];
  for (const [body, message] of cases) await rejectsWith(t, read(body, 'b'), 'BAD_REQUEST', message);
});

t.test('line endings are CRLF only: a bare-LF body is refused with a clear message', async (t) => {
  await rejectsWith(t, read('--b\nContent-Type: a/b\n\nx\n--b--\n', 'b'), 'BAD_REQUEST', /bare LF/);
  await rejectsWith(t, read('--b\r\nContent-Type: a/b\r\n\r\nx\r\n--b\nContent-Type: a/b\r\n\r\ny\r\n--b--', 'b'), 'BAD_REQUEST', /bare LF/);
  await rejectsWith(t, read('--b   \n\r\n', 'b'), 'BAD_REQUEST', /bare LF/);
});

t.test('malformed boundary lines are 400', async (t) => {
  await rejectsWith(t, read('--b x\r\n\r\nA\r\n--b--', 'b'), 'BAD_REQUEST', /malformed multipart boundary line/);
  await rejectsWith(t, read('--b\rx\r\n\r\nA\r\n--b--', 'b'), 'BAD_REQUEST', /malformed multipart boundary line/);
  await rejectsWith(t, read('--b\r\n\r\nA\r\n--b \tx\r\n--b--', 'b'), 'BAD_REQUEST', /malformed multipart boundary line/);
  await rejectsWith(t, read(`--b${' '.repeat(257)}\r\n\r\nA\r\n--b--`, 'b'), 'BAD_REQUEST', /transport padding/);
  const ok = await read(`--b${' '.repeat(256)}\r\n\r\nA\r\n--b--`, 'b');
  t.equal(ok[0]?.body.toString(), 'A', '256 bytes of padding are allowed');
});

t.test('per-part Content-Length is checked against the delimited length', async (t) => {
  const ok = await read('--b\r\nContent-Length: 4\r\n\r\nab\r\n\r\n--b--', 'b');
  t.equal(ok[0]?.body.toString(), 'ab\r\n');
  t.equal(ok[0]?.contentLength, 4);
  // a length that covers a delimiter cannot make the reader read through it
  await rejectsWith(
    t,
    read('--b\r\nContent-Length: 4\r\n\r\n\r\n--b\r\n--b--', 'b'),
    'BAD_REQUEST',
    'part 0: Content-Length 4 does not match its delimited length 0',
  );
  await rejectsWith(t, read('--b\r\nContent-Length: 3\r\n\r\nabcd\r\n--b--', 'b'), 'BAD_REQUEST', 'part 0 is longer than its Content-Length 3');
  await rejectsWith(
    t,
    read('--b\r\nContent-Length: 5\r\n\r\nabcd\r\n--b--', 'b'),
    'BAD_REQUEST',
    'part 0: Content-Length 5 does not match its delimited length 4',
  );
  // a Content-Length that claims more than the delimiter allows cannot make the reader swallow a boundary
  await rejectsWith(
    t,
    read('--b\r\nContent-Length: 20\r\n\r\nabcd\r\n--b\r\n\r\nefgh\r\n--b--', 'b'),
    'BAD_REQUEST',
    /does not match its delimited length 4/,
  );
  const empty = await read('--b\r\nContent-Length: 0\r\n\r\n\r\n--b--', 'b');
  t.equal(empty[0]?.contentLength, 0);
});

t.test('chunked arrival at every split point gives the same parts', async (t) => {
  const bin = Buffer.from([0, 13, 10, 45, 45, 13, 255, 10, 13, 13, 10, 45]);
  const body = Buffer.concat([
    Buffer.from('\r\npreamble\r\n--bnd \t\r\nContent-Type: application/dicom\r\nContent-Length: 12\r\n\r\n'),
    bin,
    Buffer.from('\r\n--bnd\r\n\r\n\r\n--bnd\r\nX: y\r\n z\r\n\r\n--bndX\r\n-bnd\r\n\r\n--bnd-- \r\nepilogue'),
  ]);
  const expected = await read(body, 'bnd');
  t.same(
    expected.map((p) => [p.headers, p.body.toString('latin1')]),
    [
      [{ 'content-type': 'application/dicom', 'content-length': '12' }, bin.toString('latin1')],
      [{}, ''],
      [{ x: 'y z' }, '--bndX\r\n-bnd\r\n'],
    ],
  );
  let mismatches = 0;
  for (let i = 1; i < body.length; i++) {
    const split = async function* () {
      yield body.subarray(0, i);
      yield body.subarray(i);
    };
    const parts = await toParts(readMultipart(split(), 'bnd', LIMITS));
    if (JSON.stringify(parts) !== JSON.stringify(expected)) mismatches++;
  }
  t.equal(mismatches, 0, `every one of ${body.length - 1} two-chunk splits`);
  for (let i = 1; i < body.length; i++) {
    for (let j = i + 1; j < body.length; j += 3) {
      const split = async function* () {
        yield body.subarray(0, i);
        yield body.subarray(i, j);
        yield body.subarray(j);
      };
      const parts = await toParts(readMultipart(split(), 'bnd', LIMITS));
      if (JSON.stringify(parts) !== JSON.stringify(expected)) mismatches++;
    }
  }
  t.equal(mismatches, 0, 'three-chunk splits');
  t.same(await read(body, 'bnd', LIMITS, 1), expected, '1-byte chunks');
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let round = 0; round < 200; round++) {
    const parts = await read(body, 'bnd', LIMITS, () => 1 + Math.floor(random() * 40));
    if (JSON.stringify(parts) !== JSON.stringify(expected)) mismatches++;
  }
  t.equal(mismatches, 0, '200 random chunkings');
});

t.test('large binary parts pass through intact, in chunks, without being buffered whole', async (t) => {
  const big = randomBytes(3 * 1024 * 1024 + 7);
  const body = Buffer.concat([Buffer.from(`--${B73}\r\nContent-Type: application/dicom\r\n\r\n`), big, Buffer.from(`\r\n--${B73}--`)]);
  let chunks = 0;
  let largest = 0;
  const hashes: Buffer[] = [];
  for await (const p of readMultipart(chunksOf(body, 65536), B73, { ...LIMITS, maxPartBytes: 4 << 20 })) {
    for await (const c of p.body) {
      chunks++;
      largest = Math.max(largest, c.length);
      hashes.push(Buffer.from(c));
    }
  }
  t.ok(Buffer.concat(hashes).equals(big), 'same bytes');
  t.ok(chunks >= 48, `streamed in ${chunks} chunks`);
  // at most a source chunk plus a carried-over possible delimiter start (CRLF -- boundary, less one byte)
  t.ok(largest <= 65536 + B73.length + 3, `no chunk much larger than what the source delivered (${largest})`);
});

t.test('a body left unread, or left half-read, is discarded when the next part is requested', async (t) => {
  const body = '--b\r\nN: 0\r\n\r\nskipped body\r\n--b\r\nN: 1\r\n\r\nread\r\n--b\r\nN: 2\r\n\r\npartly read\r\n--b\r\nN: 3\r\n\r\nlast\r\n--b--';
  const seen: string[] = [];
  for await (const p of readMultipart(chunksOf(Buffer.from(body), 3), 'b', LIMITS)) {
    if (p.index === 0) continue;
    let text = '';
    for await (const c of p.body) {
      text += c.toString();
      if (p.index === 2) break;
    }
    seen.push(`${p.headers.get('n')}:${text}`);
  }
  t.equal(seen.length, 3);
  t.equal(seen[0], '1:read');
  t.ok(seen[1] !== '2:' && '2:partly read'.startsWith(seen[1] as string) && seen[1] !== '2:partly read', `a prefix: ${seen[1]}`);
  t.equal(seen[2], '3:last');
});

t.test('reading a body after the next part was requested is a programming error', async (t) => {
  const parts: MultipartPart[] = [];
  for await (const p of readMultipart(chunksOf(Buffer.from('--b\r\n\r\nA\r\n--b\r\n\r\nB\r\n--b--')), 'b', LIMITS)) parts.push(p);
  const first = parts[0] as MultipartPart;
  await t.rejects(first.body[Symbol.asyncIterator]().next(), { name: 'Error', message: /must be read before the next part/ });
});

t.test('using the reader concurrently is refused', async (t) => {
  const gen = readMultipart(chunksOf(Buffer.from('--b\r\n\r\nAAAA\r\n--b\r\n\r\nB\r\n--b--'), 1), 'b', LIMITS);
  const first = await gen.next();
  const part = first.value as MultipartPart;
  const body = part.body[Symbol.asyncIterator]();
  const pending = body.next();
  await t.rejects(gen.next(), { message: /used concurrently/ });
  const chunk = ((await pending).value as Buffer).toString();
  t.ok(chunk.length > 0 && 'AAAA'.startsWith(chunk), 'the first read was not disturbed');
});

t.test('truncation: the body errors, then the next iteration throws the same 400', async (t) => {
  const gen = readMultipart(chunksOf(Buffer.from('--b\r\nContent-Type: a/b\r\n\r\npartial data'), 4), 'b', LIMITS);
  const first = await gen.next();
  t.equal(first.done, false);
  const part = first.value as MultipartPart;
  const got: string[] = [];
  let bodyError: unknown;
  try {
    for await (const c of part.body) got.push(c.toString());
  } catch (e) {
    bodyError = e;
  }
  t.ok(bodyError instanceof AppError);
  t.match(bodyError, { code: 'BAD_REQUEST', status: 400, message: TRUNCATED_MESSAGE });
  t.equal(got.join(''), 'partial data', 'the bytes before the end were delivered');
  const again = await gen.next().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.equal(again, bodyError, 'the same error from the part iteration');
  const bodyAgain = await part.body[Symbol.asyncIterator]()
    .next()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  t.equal(bodyAgain, bodyError, 'and again from the body');
});

t.test('truncation anywhere is 400 "ended before the closing boundary"', async (t) => {
  const cuts = [
    '--b\r\n',
    '--b\r\nContent-Type: a/b',
    '--b\r\nContent-Type: a/b\r\n',
    '--b\r\nContent-Type: a/b\r\n\r\n',
    '--b\r\n\r\ndata',
    '--b\r\n\r\ndata\r',
    '--b\r\n\r\ndata\r\n--b',
    '--b\r\n\r\ndata\r\n--b-',
    '--b\r\n\r\ndata\r\n--b   ',
    '--b\r\n\r\ndata\r\n--b\r',
    '--b\r\n\r\ndata\r\n--b\r\n',
    '--b\r\n\r\ndata\r\n--b\r\nX: y\r\n\r\nmore',
  ];
  for (const body of cuts) {
    await rejectsWith(t, read(body, 'b'), 'BAD_REQUEST', TRUNCATED_MESSAGE);
    await rejectsWith(t, read(body, 'b', LIMITS, 1), 'BAD_REQUEST', TRUNCATED_MESSAGE);
  }
});

t.test('no opening boundary: a body that is only a preamble, or empty, is 400', async (t) => {
  await rejectsWith(t, read('just some text\r\nwithout a boundary', 'b'), 'BAD_REQUEST', 'multipart body has no opening boundary');
  await rejectsWith(t, read('', 'b'), 'BAD_REQUEST', 'multipart body has no opening boundary');
  await rejectsWith(t, read('--c\r\n\r\nx\r\n--c--', 'b'), 'BAD_REQUEST', 'multipart body has no opening boundary');
  await rejectsWith(t, read('\r\n--b', 'b'), 'BAD_REQUEST', 'multipart body has no opening boundary');
  await rejectsWith(t, read('--b--\r\n', 'b'), 'BAD_REQUEST', 'multipart body has no parts');
  // the preamble may be as long as maxPartHeaderBytes (1024 here), whatever the chunking
  const long = `${'p'.repeat(1024)}\r\n--b\r\n\r\nx\r\n--b--`;
  for (const size of [undefined, 1, 100, 1025]) {
    t.equal((await read(long, 'b', LIMITS, size))[0]?.body.toString(), 'x', `1024-byte preamble, chunks of ${size ?? 'all'}`);
    await rejectsWith(t, read(`p${long}`, 'b', LIMITS, size), 'BAD_REQUEST', 'no multipart boundary in the first 1024 bytes of the body');
  }
  await rejectsWith(t, read('q'.repeat(5000), 'b', LIMITS, 100), 'BAD_REQUEST', 'no multipart boundary in the first 1024 bytes of the body');
});

t.test('nested multipart inside a part is just bytes', async (t) => {
  const inner = '--inner\r\nContent-Type: application/dicom\r\n\r\nX\r\n--inner--';
  const body = `--outer\r\nContent-Type: multipart/related; boundary=inner\r\n\r\n${inner}\r\n--outer--`;
  const parts = await read(body, 'outer');
  t.equal(parts.length, 1);
  t.equal(parts[0]?.contentType, 'multipart/related; boundary=inner');
  t.equal(parts[0]?.body.toString(), inner);
});

t.test('sources: Node Readable, Uint8Array chunks, empty chunks', async (t) => {
  const body = '--b\r\nContent-Type: a/b\r\n\r\nhello\r\n--b--';
  const fromReadable = await toParts(readMultipart(Readable.from([Buffer.from(body.slice(0, 10)), Buffer.from(body.slice(10))]), 'b', LIMITS));
  t.equal(fromReadable[0]?.body.toString(), 'hello');
  const u8 = async function* () {
    yield new Uint8Array(0);
    yield new TextEncoder().encode(body);
  };
  t.equal((await toParts(readMultipart(u8(), 'b', LIMITS)))[0]?.body.toString(), 'hello');
  const wrong = async function* () {
    yield 'a string' as unknown as Buffer;
  };
  await t.rejects(toParts(readMultipart(wrong(), 'b', LIMITS)), TypeError);
});

t.test('a failing source becomes 400 with the cause kept; an AppError from the source passes through', async (t) => {
  const aborted = new Error('aborted');
  const failing = async function* () {
    yield Buffer.from('--b\r\n\r\nsome');
    throw aborted;
  };
  await t.rejects(toParts(readMultipart(failing(), 'b', LIMITS)), { name: 'AppError', code: 'BAD_REQUEST', cause: aborted });
  const limited = new AppError('PAYLOAD_TOO_LARGE', 'upstream limit');
  const failing2 = async function* () {
    yield Buffer.from('--b\r\n\r\nsome');
    throw limited;
  };
  await t.rejects(toParts(readMultipart(failing2(), 'b', LIMITS)), limited);
});

t.test('readMultipart checks its arguments at once', async (t) => {
  const none = async function* () {};
  t.throws(() => readMultipart(none(), '', LIMITS), { code: 'BAD_REQUEST' });
  t.throws(() => readMultipart(none(), 'b'.repeat(201), LIMITS), { code: 'BAD_REQUEST' });
  t.throws(() => readMultipart(none(), 'a\r\nb', LIMITS), { code: 'BAD_REQUEST' });
  t.throws(() => readMultipart(none(), 'b', { ...LIMITS, maxParts: 0 }), RangeError);
  t.throws(() => readMultipart(none(), 'b', { ...LIMITS, maxTotalBytes: 1.5 }), RangeError);
  const b200 = 'b'.repeat(200);
  const parts = await read(`--${b200}\r\n\r\nx\r\n--${b200}--`, b200);
  t.equal(parts[0]?.body.toString(), 'x', 'a 200-character boundary works');
});

t.test('stopping early leaves the source to its owner', async (t) => {
  const source = Readable.from([Buffer.from('--b\r\n\r\nA\r\n--b\r\n\r\nB\r\n--b--')]);
  for await (const p of readMultipart(source, 'b', LIMITS)) {
    t.equal(p.index, 0);
    break;
  }
  t.equal(source.destroyed, false, 'the reader never destroys the request stream');
});
