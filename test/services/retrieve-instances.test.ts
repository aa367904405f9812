// The retrieve use case without HTTP: transfer-syntax decisions, and that bodies stream one blob at a time
// (a study of many gigabytes must never be held in memory or keep every file open).
import { Readable } from 'node:stream';
import t from 'tap';
import type { StoredInstanceRef } from '../../src/index/index-store.js';
import { MemoryIndexStore } from '../../src/index/memory/memory-index-store.js';
import { multipartResponse } from '../../src/http/multipart-writer.js';
import { findInstancesToRetrieve, nameableTransferSyntaxes, prepareRetrieve, transcoderSource } from '../../src/services/retrieve-instances.js';
import type { BlobStore } from '../../src/storage/blob-store.js';
import { CodecPool } from '../../src/transcode/codec-pool.js';
import { Transcoder } from '../../src/transcode/transcoder.js';
import { IMPLICIT_LE, iel, part10, TEST_LIMITS } from '../dicom/synthetic.js';
import { reencodedFile } from '../helpers/reencoded.js';
import { adminAccess } from '../helpers/access.js';

const CHUNK = 64 * 1024;
const CHUNKS_PER_BLOB = 16; // 1 MiB per blob

/** A blob store whose blobs are generated on read, recording opens and closes. */
function countingBlobs() {
  const events: string[] = [];
  let open = 0;
  let maxOpen = 0;
  const blobs = {
    async createReadStream(key: string) {
      open++;
      maxOpen = Math.max(maxOpen, open);
      events.push(`open ${key}`);
      let n = 0;
      const stream = new Readable({
        read() {
          this.push(n++ < CHUNKS_PER_BLOB ? Buffer.alloc(CHUNK, key.charCodeAt(key.length - 1)) : null);
        },
      });
      stream.on('close', () => {
        open--;
        events.push(`close ${key}`);
      });
      return stream;
    },
  } as unknown as BlobStore;
  return { blobs, events, stats: () => ({ open, maxOpen }) };
}

const ref = (n: number, transferSyntaxUID = '1.2.840.10008.1.2.1'): StoredInstanceRef => ({
  studyInstanceUID: '2.25.1',
  seriesInstanceUID: '2.25.1.1',
  sopInstanceUID: `2.25.1.1.${n}`,
  sopClassUID: '1.2.840.10008.5.1.4.1.1.2',
  transferSyntaxUID,
  blobKey: `blob-${n}`,
  size: CHUNK * CHUNKS_PER_BLOB,
  sha256: 'x',
});

t.test('bodies open lazily, one blob at a time, and close when the client goes away', async (t) => {
  const { blobs, events, stats } = countingBlobs();
  const refs = [1, 2, 3, 4, 5].map((n) => ref(n));
  const instances = prepareRetrieve({ index: new MemoryIndexStore(), blobs, limits: TEST_LIMITS }, refs, undefined);
  t.same(events, [], 'preparing opens nothing');
  const bodies = await Promise.all(instances.map((i) => i.open()));
  t.same(events, [], 'opening a stored instance for its size opens no blob');
  const { stream } = multipartResponse(
    'application/dicom',
    bodies.map((b) => ({ contentType: 'application/dicom', contentLength: b.size, body: b.chunks() })),
  );
  t.same(events, [], 'building the response opens nothing');
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  t.ok(bytes > 5 * CHUNK * CHUNKS_PER_BLOB, `all ${bytes} bytes streamed`);
  t.same(stats(), { open: 0, maxOpen: 1 }, 'never more than one blob open');
  t.same(events.slice(0, 4), ['open blob-1', 'close blob-1', 'open blob-2', 'close blob-2']);

  const again = countingBlobs();
  const parts = prepareRetrieve({ index: new MemoryIndexStore(), blobs: again.blobs, limits: TEST_LIMITS }, refs, '*');
  const partBodies = await Promise.all(parts.map((i) => i.open()));
  const early = multipartResponse('application/dicom', partBodies.map((b) => ({ contentType: 'application/dicom', body: b.chunks() }))).stream;
  let read = 0;
  for await (const chunk of early) {
    read += (chunk as Buffer).length;
    if (read > CHUNK * 20) break; // the client disconnects in the second blob
  }
  await new Promise((resolve) => setImmediate(resolve));
  t.same(again.events, ['open blob-1', 'close blob-1', 'open blob-2', 'close blob-2'], 'the open blob is closed, no further one opened');
});

t.test('transfer-syntax decisions', (t) => {
  const deps = { index: new MemoryIndexStore(), blobs: countingBlobs().blobs, limits: TEST_LIMITS };
  const rle = ref(1, '1.2.840.10008.1.2.5');
  const implicit = ref(2, '1.2.840.10008.1.2');
  const explicit = ref(3);
  const bigEndian = ref(5, '1.2.840.10008.1.2.2');
  t.same(nameableTransferSyntaxes([rle, implicit, explicit, ref(4)]), ['1.2.840.10008.1.2.5', '1.2.840.10008.1.2.1'], 'distinct, as sent');
  t.same(nameableTransferSyntaxes([implicit, bigEndian]), ['1.2.840.10008.1.2.1'], 're-encoded objects are offered as Explicit VR LE');
  t.same(prepareRetrieve(deps, [rle, explicit], undefined).map((i) => i.transferSyntaxUID), ['1.2.840.10008.1.2.5', '1.2.840.10008.1.2.1'], 'absent: as stored');
  for (const requested of [undefined, '*', '1.2.840.10008.1.2.1']) {
    t.same(
      prepareRetrieve(deps, [implicit, bigEndian, explicit], requested).map((i) => i.transferSyntaxUID),
      ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1'],
      `${requested ?? 'absent'}: Implicit VR LE and Big Endian go as Explicit VR LE`,
    );
  }
  t.same(prepareRetrieve(deps, [rle, implicit], '*').map((i) => i.transferSyntaxUID), ['1.2.840.10008.1.2.5', '1.2.840.10008.1.2.1'], '* takes anything');
  t.throws(() => prepareRetrieve(deps, [rle, explicit], '1.2.840.10008.1.2.5'), { code: 'NOT_ACCEPTABLE', message: /stored as 1\.2\.840\.10008\.1\.2\.1 \(Explicit VR Little Endian\)/ }, 'a mixed scope cannot all be sent in one named syntax');
  t.throws(() => prepareRetrieve(deps, [rle, implicit], '1.2.840.10008.1.2.1'), { code: 'NOT_ACCEPTABLE', message: /^stored as 1\.2\.840\.10008\.1\.2\.5 \(RLE Lossless\); transcoding/ }, 'the RLE one cannot be sent as Explicit VR LE');
  for (const forbidden of ['1.2.840.10008.1.2', '1.2.840.10008.1.2.2']) {
    t.throws(
      () => prepareRetrieve(deps, [implicit, bigEndian], forbidden),
      { code: 'NOT_ACCEPTABLE', message: /not allowed in a response \(PS3\.18 8\.7\.3\.5\.2\): ask with transfer-syntax=1\.2\.840\.10008\.1\.2\.1 or transfer-syntax=\*/ },
      `naming ${forbidden} is refused even for objects stored in it`,
    );
  }
  t.throws(() => prepareRetrieve(deps, [implicit], '1.2.840.10008.1.2.4.50'), { code: 'NOT_ACCEPTABLE', message: /stored as 1\.2\.840\.10008\.1\.2 \(Implicit VR Little Endian\)/ }, 'another syntax names the stored one');
  t.throws(() => findInstancesToRetrieve(deps.index, adminAccess(), { studyInstanceUID: '2.25.1' }, 'download'), { code: 'NOT_FOUND', message: 'no such study' });
  t.throws(() => findInstancesToRetrieve(deps.index, adminAccess(), { studyInstanceUID: '2.25.1', seriesInstanceUID: '2.25.1.1' }, 'download'), { message: 'no such series' });
  t.throws(() => findInstancesToRetrieve(deps.index, adminAccess(), { studyInstanceUID: '2.25.1', seriesInstanceUID: '2.25.1.1', sopInstanceUID: '2.25.1.1.1' }, 'download'), {
    message: 'no such instance',
  });
  t.end();
});

t.test('re-encoded instances are planned one at a time, when the writer reaches their part', async (t) => {
  // A small Implicit VR LE object (PS3.10 framing, one Pixel Data element) under every key.
  const file = part10(IMPLICIT_LE, Buffer.concat([iel(0x00080016, Buffer.from('1.2\0')), iel(0x00080018, Buffer.from('1.3\0')), iel(0x7fe00010, Buffer.alloc(64, 7))]));
  const events: string[] = [];
  const blobs = {
    async read(key: string, offset: number, length: number) {
      if (!events.includes(`read ${key}`)) events.push(`read ${key}`);
      return file.subarray(offset, offset + length);
    },
    async createReadStream(key: string) {
      events.push(`stream ${key}`);
      return Readable.from([file]);
    },
  } as unknown as BlobStore;
  const refs = [1, 2, 3].map((n) => ({ ...ref(n, IMPLICIT_LE), size: file.length }));
  const instances = prepareRetrieve({ index: new MemoryIndexStore(), blobs, limits: TEST_LIMITS }, refs, undefined);
  t.same(events, [], 'preparing reads nothing');
  t.same(instances.map((i) => i.transferSyntaxUID), Array(3).fill('1.2.840.10008.1.2.1'));
  async function* parts() {
    for (const i of instances) {
      const body = await i.open();
      yield { contentType: 'application/dicom', contentLength: body.size, body: body.chunks() };
    }
  }
  const stream = multipartResponse('application/dicom', parts()).stream;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    if (chunks.length === 1) t.same(events, ['read blob-1'], 'the first part head is written after planning the first instance only');
  }
  t.same(events, ['read blob-1', 'read blob-2', 'read blob-3'], 'each blob read when its turn came; the stored stream never opened');
  const expected = await reencodedFile(file);
  t.equal(Buffer.concat(chunks).toString('latin1').split(expected.toString('latin1')).length - 1, 3, 'three re-encoded bodies in the response');
});

t.test('transcoderSource: reads served from a few cached blocks equal the blob, and count fewer store reads', async (t) => {
  // A 1.5 MiB blob of position-dependent bytes; the store counts its reads.
  const size = 1536 * 1024 + 77;
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 2654435761) >>> 24;
  let reads = 0;
  const blobs = {
    async read(_key: string, offset: number, length: number) {
      reads++;
      return Buffer.from(data.subarray(offset, offset + length));
    },
  } as unknown as BlobStore;
  const source = transcoderSource({ blobs }, { ...ref(1), size });
  const block = 256 * 1024;
  // Within a block, across one and two block boundaries, the tail, empty, and one large read straight through.
  const cases: [number, number][] = [[0, 132], [10, 4], [block - 3, 10], [block - 1, block + 2], [size - 5, 5], [size - 1, 1], [77, 0], [5, 600 * 1024]];
  for (const [offset, length] of cases) {
    const got = await source.read(offset, length);
    t.ok(got.equals(data.subarray(offset, offset + length)), `read(${offset}, ${length})`);
    got.fill(0); // the caller owns its copy: the cache must not change
  }
  t.ok((await source.read(0, 132)).equals(data.subarray(0, 132)), 'a cached block survives a caller writing to its copy');
  const before = reads;
  for (let i = 0; i < 1000; i++) await source.read(1000 + i * 8, 8);
  t.equal(reads, before, '1000 small reads of a cached block: no store read');
});

t.test('with a transcoder: a named syntax transcodes what has pixels, the rest goes as it is', async (t) => {
  // A real Transcoder; its workers start only when a codec runs, which nothing here asks for.
  const pool = new CodecPool({ workers: 1, timeoutMs: 10_000, memoryMb: 64 });
  t.teardown(() => pool.close());
  const deps = { index: new MemoryIndexStore(), blobs: countingBlobs().blobs, limits: TEST_LIMITS, transcoder: new Transcoder({ pool, scanLimits: TEST_LIMITS }) };
  const image = { ...ref(1), layout: { pixelData: { offset: 1000, length: 512, encapsulated: false } } };
  const report = { ...ref(2), layout: {} };
  const rle = { ...ref(3, '1.2.840.10008.1.2.5'), layout: { pixelData: { offset: 1000, length: 512, encapsulated: true } } };
  const RLE = '1.2.840.10008.1.2.5';
  t.same(prepareRetrieve(deps, [image, report, rle], RLE).map((i) => i.transferSyntaxUID), [RLE, '1.2.840.10008.1.2.1', RLE], 'the image transcoded, the report as it is, the RLE one as stored');
  t.same(prepareRetrieve(deps, [image, rle], '1.2.840.10008.1.2.1').map((i) => i.transferSyntaxUID), ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1']);
  t.same(prepareRetrieve(deps, [image, rle], undefined).map((i) => i.transferSyntaxUID), ['1.2.840.10008.1.2.1', RLE], 'absent: as stored, no transcoding');
  t.throws(() => prepareRetrieve(deps, [image], '1.2.840.10008.1.2.4.92'), { code: 'NOT_ACCEPTABLE', message: /not one this server writes/ }, 'a syntax nothing here encodes');
  t.throws(() => prepareRetrieve(deps, [image], '1.2.840.10008.1.2'), { code: 'NOT_ACCEPTABLE', message: /not allowed in a response/ });
  t.equal(pool.started, 0, 'no codec ran: transcoding happens when a part is opened');
});
