// A stored object's blob as the DICOM layer reads it (a ByteSource).
// Shared by the retrieve services that look inside stored bytes: re-encoding (retrieve-instances.ts) and
// inflated or byte-swapped frames and bulk data (retrieve-frames.ts).

import type { ByteSource } from '../dicom/part10.js';
import type { StoredInstanceRef } from '../index/index-store.js';
import type { BlobStore } from '../storage/blob-store.js';

/** Positional reads of a committed blob. */
export function blobSource(blobs: BlobStore, ref: StoredInstanceRef): ByteSource {
  return { size: ref.size, read: (offset, length) => blobs.read(ref.blobKey, offset, length) };
}
