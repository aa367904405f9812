// Ciphertext of consecutive segments in, verified plaintext of a range out (encrypted-blob-store.ts).
// The source yields chunks of any size (a file stream's 64-256 KiB, or one buffer): they are gathered to
// whole segments in one reused buffer, and each segment is yielded only after its tag verified, so no
// plaintext of a failed segment ever reaches the caller.

import { BlobIntegrityError, type SegmentLayout, TAG_LENGTH } from './encrypted-blob-format.js';
import type { SegmentCipher } from './segment-crypto.js';

/** Plaintext bytes [start, end) of the blob; `source` holds exactly the segments covering them. */
export async function* decryptSegments(
  blobKey: string,
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  layout: SegmentLayout,
  cipher: SegmentCipher,
  start: number,
  end: number,
): AsyncGenerator<Buffer> {
  const { first, last } = layout.covering(start, end);
  let index = first;
  let want = layout.cipherLength(index);
  let gathered: Buffer | undefined;
  let fill = 0;
  const emit = (sealed: Buffer): Buffer => {
    const plain = cipher.open(index, index === layout.segments - 1, sealed);
    const base = index * layout.segmentSize;
    return plain.subarray(Math.max(start, base) - base, Math.min(end, base + plain.length) - base);
  };
  for await (const chunk of source) {
    let pos = 0;
    while (pos < chunk.length) {
      if (index > last) throw new BlobIntegrityError(blobKey, 'more ciphertext than its length says');
      if (fill === 0 && chunk.length - pos >= want) {
        yield emit(chunk.subarray(pos, pos + want)); // a whole segment in this chunk: no copy
        pos += want;
      } else {
        gathered ??= Buffer.allocUnsafe(layout.segmentSize + TAG_LENGTH);
        const n = Math.min(want - fill, chunk.length - pos);
        chunk.copy(gathered, fill, pos, pos + n);
        fill += n;
        pos += n;
        if (fill < want) continue;
        fill = 0;
        yield emit(gathered.subarray(0, want));
      }
      index++;
      if (index <= last) want = layout.cipherLength(index);
    }
  }
  if (index <= last) throw new BlobIntegrityError(blobKey, 'ciphertext ended early');
}
