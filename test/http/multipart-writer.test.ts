import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import t from 'tap';
import { parseMultipartContentType, readMultipart, type MultipartLimits } from '../../src/http/multipart.js';
import { multipartBody, multipartBuffer, multipartContentType, multipartResponse, newBoundary, type OutgoingPart } from '../../src/http/multipart-writer.js';

const LIMITS: MultipartLimits = { maxParts: 1000, maxPartBytes: 1 << 24, maxPartHeaderBytes: 4096, maxTotalBytes: 1 << 26 };

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of it) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

async function* streamOf(...chunks: string[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield Buffer.from(c);
}

t.test('exact framing: first delimiter, headers, CRLF before each boundary, closing delimiter', async (t) => {
  const bytes = await collect(
    multipartBody(
      [
        { contentType: 'application/dicom', contentLocation: '/studies/1.2/series/3.4/instances/5.6', body: Buffer.from('DICM') },
        { contentType: 'application/dicom+xml', body: streamOf('<a>', '</a>') },
        { contentType: 'application/octet-stream', body: Buffer.alloc(0) },
      ],
      'BND',
    ),
  );
  t.equal(
    bytes.toString('latin1'),
    '--BND\r\nContent-Type: application/dicom\r\nContent-Location: /studies/1.2/series/3.4/instances/5.6\r\nContent-Length: 4\r\n\r\nDICM' +
      '\r\n--BND\r\nContent-Type: application/dicom+xml\r\n\r\n<a></a>' +
      '\r\n--BND\r\nContent-Type: application/octet-stream\r\nContent-Length: 0\r\n\r\n' +
      '\r\n--BND--\r\n',
  );
});

t.test('Content-Type of the response and the boundary', async (t) => {
  t.equal(multipartContentType('application/dicom', 'abc'), 'multipart/related; type="application/dicom"; boundary=abc');
  const b = newBoundary();
  t.match(b, /^dicomvault-[0-9a-f]{32}$/);
  t.not(newBoundary(), b, 'random');
  const parsed = parseMultipartContentType(multipartContentType('application/dicom+xml', b));
  t.equal(parsed.boundary, b);
  t.equal(parsed.type, 'application/dicom+xml');
});

t.test('Uint8Array bodies and chunks are written like Buffers; empty chunks are skipped', async (t) => {
  async function* chunks() {
    yield new Uint8Array([0x61, 0x62]);
    yield new Uint8Array(0);
    yield Buffer.from('c');
  }
  const bytes = await collect(
    multipartBody(
      [
        { contentType: 'a/b', body: new TextEncoder().encode('xyz') },
        { contentType: 'a/b', body: chunks() },
        { contentType: 'a/b', body: [new Uint8Array([0x64])] },
      ],
      'u',
    ),
  );
  t.equal(
    bytes.toString(),
    '--u\r\nContent-Type: a/b\r\nContent-Length: 3\r\n\r\nxyz\r\n--u\r\nContent-Type: a/b\r\n\r\nabc\r\n--u\r\nContent-Type: a/b\r\n\r\nd\r\n--u--\r\n',
  );
  let pieces = 0;
  for await (const c of multipartBody([{ contentType: 'a/b', body: chunks() }], 'u')) {
    t.ok(Buffer.isBuffer(c) && c.length > 0, 'every piece is a non-empty Buffer');
    pieces++;
  }
  t.equal(pieces, 4, 'head, "ab", "c", closing delimiter');
});

t.test('a stream body with a declared contentLength gets the header, and is checked', async (t) => {
  const ok = await collect(multipartBody([{ contentType: 'a/b', contentLength: 6, body: streamOf('abc', 'def') }], 'x'));
  t.equal(ok.toString(), '--x\r\nContent-Type: a/b\r\nContent-Length: 6\r\n\r\nabcdef\r\n--x--\r\n');
  await t.rejects(collect(multipartBody([{ contentType: 'a/b', contentLength: 5, body: streamOf('abc', 'def') }], 'x')), /longer than its contentLength 5/);
  await t.rejects(collect(multipartBody([{ contentType: 'a/b', contentLength: 7, body: streamOf('abc', 'def') }], 'x')), /is 6 bytes, not its contentLength 7/);
  await t.rejects(collect(multipartBody([{ contentType: 'a/b', contentLength: 3, body: Buffer.from('ab') }], 'x')), /is 2 bytes, not its contentLength 3/);
  await t.rejects(collect(multipartBody([{ contentType: 'a/b', contentLength: -1, body: streamOf('') }], 'x')), RangeError);
});

t.test('multipartBuffer: the bytes multipartBody writes, in one Buffer, with the same checks', async (t) => {
  const parts = [
    { contentType: 'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1', contentLocation: '/i/frames/1', contentLength: 5, body: Buffer.from('frame') },
    { contentType: 'application/octet-stream', body: new TextEncoder().encode('xy') },
    { contentType: 'application/octet-stream', body: Buffer.alloc(0) },
    { contentType: 'application/octet-stream', body: randomBytes(70_000) },
  ];
  const one = multipartBuffer('application/octet-stream', parts, 'BND');
  t.ok(Buffer.isBuffer(one.body));
  t.ok(one.body.equals(await collect(multipartBody(parts, 'BND'))), 'byte-equal to the streamed form');
  t.equal(one.contentType, 'multipart/related; type="application/octet-stream"; boundary=BND');
  t.equal(one.boundary, 'BND');
  const fresh = multipartBuffer('a/b', [parts[0]!]);
  t.match(fresh.boundary, /^dicomvault-[0-9a-f]{32}$/, 'a random boundary by default');
  t.equal(parseMultipartContentType(fresh.contentType).boundary, fresh.boundary);
  const back: string[] = [];
  for await (const p of readMultipart(Readable.from([fresh.body]), fresh.boundary, LIMITS)) back.push((await collect(p.body)).toString());
  t.same(back, ['frame'], 'the reader reads it back');
  t.throws(() => multipartBuffer('a/b', []), /at least one part/);
  t.throws(() => multipartBuffer('a/b', [{ contentType: 'a/b', contentLength: 4, body: Buffer.from('abc') }], 'x'), /not its contentLength 4/);
  t.throws(() => multipartBuffer('a/b', [{ contentType: 'a/b\r\nX-Evil: 1', body: Buffer.from('abc') }], 'x'), /control character/);
  t.throws(() => multipartBuffer('a/b', parts, 'bad boundary '), RangeError);
});

t.test('refuses what would corrupt the response', async (t) => {
  await t.rejects(collect(multipartBody([], 'x')), /at least one part/);
  await t.rejects(collect(multipartBody([{ contentType: 'a/b\r\nX-Injected: 1', body: Buffer.from('') }], 'x')), TypeError);
  await t.rejects(collect(multipartBody([{ contentType: 'a/b', contentLocation: '/x\n--x--', body: Buffer.from('') }], 'x')), TypeError);
  await t.rejects(collect(multipartBody([{ contentType: 'a/b', body: Buffer.from('') }], 'bad;boundary')), RangeError);
  await t.rejects(collect(multipartBody([{ contentType: 'a/b', body: Buffer.from('') }], '')), RangeError);
  await t.rejects(collect(multipartBody([{ contentType: 'a/b', body: ['not bytes'] as unknown as Iterable<Uint8Array> }], 'x')), TypeError);
});

t.test('bodies stream: the next part is not requested before the previous one is written', async (t) => {
  const requested: number[] = [];
  async function* parts(): AsyncGenerator<OutgoingPart> {
    for (let i = 0; i < 3; i++) {
      requested.push(i);
      yield { contentType: 'application/octet-stream', body: streamOf(`part${i}-a`, `part${i}-b`) };
    }
  }
  const it = multipartBody(parts(), 'x')[Symbol.asyncIterator]();
  const head = await it.next();
  t.match(head.value?.toString(), /^--x\r\nContent-Type: application\/octet-stream\r\n\r\n$/);
  t.same(requested, [0]);
  t.equal((await it.next()).value?.toString(), 'part0-a');
  t.equal((await it.next()).value?.toString(), 'part0-b');
  t.same(requested, [0], 'part 1 not yet opened');
  await it.next();
  t.same(requested, [0, 1]);
  await it.return(undefined);
});

t.test('writer output read back by the reader: the same parts, whatever the chunking', async (t) => {
  const boundary = newBoundary();
  const payloads = [
    randomBytes(70_000),
    Buffer.alloc(0),
    Buffer.from(`\r\n--${boundary.slice(0, 20)}\r\n--${boundary}X\r\n`),
    Buffer.from('\r\n'),
    randomBytes(3),
  ];
  const outgoing = (): OutgoingPart[] =>
    payloads.map((p, i) => ({
      contentType: i % 2 ? 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1' : 'application/octet-stream',
      contentLocation: `/bulk/${i}`,
      body: i === 0 ? Readable.from([p.subarray(0, 1000), p.subarray(1000)]) : p,
    }));
  const bytes = await collect(multipartBody(outgoing(), boundary));
  for (const size of [bytes.length, 65536, 4096, 77, 7]) {
    async function* chunks() {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    }
    const back: Array<{ contentType?: string; contentLocation?: string; body: Buffer }> = [];
    for await (const p of readMultipart(chunks(), boundary, LIMITS)) {
      back.push({ contentType: p.contentType, contentLocation: p.contentLocation, body: await collect(p.body) });
    }
    t.equal(back.length, payloads.length, `chunks of ${size}: part count`);
    let same = true;
    back.forEach((p, i) => {
      if (!p.body.equals(payloads[i] as Buffer)) same = false;
      if (p.contentLocation !== `/bulk/${i}`) same = false;
      if (p.contentType !== (i % 2 ? 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1' : 'application/octet-stream')) same = false;
    });
    t.ok(same, `chunks of ${size}: same bodies and headers`);
  }
});

t.test('multipartResponse: a Readable with backpressure; closing it closes the part body being read', async (t) => {
  let destroyed = false;
  let reads = 0;
  const body = new Readable({
    read() {
      reads++;
      this.push(Buffer.alloc(16 * 1024, 'a'));
    },
    destroy(err, cb) {
      destroyed = true;
      cb(err);
    },
  });
  const r = multipartResponse('application/octet-stream', [{ contentType: 'application/octet-stream', body }], 'fixed');
  t.equal(r.contentType, 'multipart/related; type="application/octet-stream"; boundary=fixed');
  t.equal(r.boundary, 'fixed');
  const first = await new Promise<Buffer>((resolve) => r.stream.once('data', resolve));
  t.match(first.toString(), /^--fixed\r\n/);
  r.stream.pause();
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.ok(reads < 50, `an endless body is not read ahead without limit (${reads} reads)`);
  r.stream.destroy();
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.ok(destroyed, 'the part body stream was destroyed');

  const whole = multipartResponse('application/dicom', [{ contentType: 'application/dicom', body: Buffer.from('x') }]);
  t.match(whole.boundary, /^dicomvault-/);
  t.equal((await collect(whole.stream)).toString(), `--${whole.boundary}\r\nContent-Type: application/dicom\r\nContent-Length: 1\r\n\r\nx\r\n--${whole.boundary}--\r\n`);
});
