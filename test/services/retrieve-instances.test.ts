// The retrieve use case without HTTP: transfer-syntax decisions, and that bodies stream one blob at a time
// (a study of many gigabytes must never be held in memory or keep every file open).
import { Readable } from 'node:stream';
import t from 'tap';
import type { StoredInstanceRef } from '../../src/index/index-store.js';
import { MemoryIndexStore } from '../../src/index/memory/memory-index-store.js';
import { multipartResponse } from '../../src/http/multipart-writer.js';
import { findInstancesToRetrieve, nameableTransferSyntaxes, prepareRetrieve } from '../../src/services/retrieve-instances.js';
import type { BlobStore } from '../../src/storage/blob-store.js';

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
  const instances = prepareRetrieve({ index: new MemoryIndexStore(), blobs }, refs, undefined);
  t.same(events, [], 'preparing opens nothing');
  const { stream } = multipartResponse(
    'application/dicom',
    instances.map((i) => ({ contentType: 'application/dicom', contentLength: i.size, body: i.body() })),
  );
  t.same(events, [], 'building the response opens nothing');
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  t.ok(bytes > 5 * CHUNK * CHUNKS_PER_BLOB, `all ${bytes} bytes streamed`);
  t.same(stats(), { open: 0, maxOpen: 1 }, 'never more than one blob open');
  t.same(events.slice(0, 4), ['open blob-1', 'close blob-1', 'open blob-2', 'close blob-2']);

  const again = countingBlobs();
  const parts = prepareRetrieve({ index: new MemoryIndexStore(), blobs: again.blobs }, refs, '*');
  const early = multipartResponse('application/dicom', parts.map((i) => ({ contentType: 'application/dicom', body: i.body() }))).stream;
  let read = 0;
  for await (const chunk of early) {
    read += (chunk as Buffer).length;
    if (read > CHUNK * 20) break; // the client disconnects in the second blob
  }
  await new Promise((resolve) => setImmediate(resolve));
  t.same(again.events, ['open blob-1', 'close blob-1', 'open blob-2', 'close blob-2'], 'the open blob is closed, no further one opened');
});

t.test('transfer-syntax decisions', (t) => {
  const deps = { index: new MemoryIndexStore(), blobs: countingBlobs().blobs };
  const rle = ref(1, '1.2.840.10008.1.2.5');
  const implicit = ref(2, '1.2.840.10008.1.2');
  const explicit = ref(3);
  t.same(nameableTransferSyntaxes([rle, implicit, explicit, ref(4)]), ['1.2.840.10008.1.2.5', '1.2.840.10008.1.2.1'], 'distinct, forbidden left out');
  t.equal(prepareRetrieve(deps, [rle, explicit], undefined).length, 2, 'absent: as stored');
  t.same(prepareRetrieve(deps, [rle, implicit], '*').map((i) => i.transferSyntaxUID), ['1.2.840.10008.1.2.5', '1.2.840.10008.1.2'], '* takes anything');
  t.throws(() => prepareRetrieve(deps, [rle, explicit], '1.2.840.10008.1.2.5'), { code: 'NOT_ACCEPTABLE', message: /stored as 1\.2\.840\.10008\.1\.2\.1 \(Explicit VR Little Endian\)/ }, 'a mixed scope cannot all be sent in one named syntax');
  t.throws(() => prepareRetrieve(deps, [implicit], undefined), { code: 'NOT_ACCEPTABLE', message: /8\.7\.3.*transfer-syntax=\*/ });
  t.throws(() => prepareRetrieve(deps, [implicit], '1.2.840.10008.1.2'), { code: 'NOT_ACCEPTABLE' }, 'naming Implicit VR LE is not enough');
  t.throws(() => findInstancesToRetrieve(deps.index, { studyInstanceUID: '2.25.1' }), { code: 'NOT_FOUND', message: 'no such study' });
  t.throws(() => findInstancesToRetrieve(deps.index, { studyInstanceUID: '2.25.1', seriesInstanceUID: '2.25.1.1' }), { message: 'no such series' });
  t.throws(() => findInstancesToRetrieve(deps.index, { studyInstanceUID: '2.25.1', seriesInstanceUID: '2.25.1.1', sopInstanceUID: '2.25.1.1.1' }), {
    message: 'no such instance',
  });
  t.end();
});
