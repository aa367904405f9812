// Encryption at rest (issue 4, SECURITY.md 4): a decorator around any BlobStore that can overwrite staged
// bytes (OverwritableBlobStore), always on in the server. Layout: encrypted-blob-format.ts; crypto and the
// reasons for the nonce, AAD and HKDF choices: segment-crypto.ts; staging: encrypted-staged-blob.ts.
//
// Reads decrypt only the segments covering the asked range (a frame, a bulk range, an HTTP Range), and yield
// a segment's plaintext only after its tag verified. A failed segment is a BlobIntegrityError (a
// KeyIntegrityError: 500, security log) carrying the blob key only. The keyring's StudyKeyErasedError and
// KeyUnavailableError pass through unchanged (410 / 503 are the error handler's call, never plaintext).
// Key errors surface before a stream is returned, so a response has not started when they happen.

import { Readable } from 'node:stream';
import { BlobNotFoundError, type BlobStore, type OverwritableBlobStore, type StagedBlob } from './blob-store.js';
import {
  BlobIntegrityError,
  DEFAULT_SEGMENT_SIZE,
  HEADER_LENGTH,
  MAX_SEGMENT_SIZE,
  MIN_SEGMENT_SIZE,
  parseHeader,
  SegmentLayout,
} from './encrypted-blob-format.js';
import { EncryptedStagedBlob } from './encrypted-staged-blob.js';
import type { StudyKeyring } from './keys/study-keyring.js';
import { decryptSegments } from './segment-stream.js';
import { deriveSegmentKey, SegmentCipher, unwrapObjectKey } from './segment-crypto.js';

export interface EncryptedBlobStoreOptions {
  /** Plaintext bytes per segment of new blobs (readers take it from each blob's header). Default 256 KiB. */
  segmentSize?: number;
}

interface OpenedBlob {
  layout: SegmentLayout;
  cipher: SegmentCipher;
}

export class EncryptedBlobStore implements BlobStore {
  private readonly segmentSize: number;

  constructor(
    private readonly inner: OverwritableBlobStore,
    private readonly keyring: StudyKeyring,
    options: EncryptedBlobStoreOptions = {},
  ) {
    this.segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    if (!Number.isInteger(this.segmentSize) || this.segmentSize < MIN_SEGMENT_SIZE || this.segmentSize > MAX_SEGMENT_SIZE) {
      throw new RangeError(`segment size must be an integer in [${MIN_SEGMENT_SIZE}, ${MAX_SEGMENT_SIZE}]`);
    }
  }

  async stage(): Promise<StagedBlob> {
    // The plaintext's SHA-256 is ours to compute; one of the ciphertext would be a second pass for nothing.
    return EncryptedStagedBlob.start(await this.inner.stage({ digest: false }), this.keyring, this.segmentSize);
  }

  /** Header and layout, no key needed: enough for size(). `known`: the size and header bytes if already read. */
  private async layoutOf(key: string, known?: { cipherSize: number; header?: Buffer | undefined }) {
    const cipherSize = known ? known.cipherSize : await this.inner.size(key);
    if (cipherSize === undefined) throw new BlobNotFoundError(key);
    if (cipherSize < HEADER_LENGTH) throw new BlobIntegrityError(key, 'shorter than its header');
    const header = parseHeader(key, known?.header ?? (await this.inner.read(key, 0, HEADER_LENGTH)));
    return { header, layout: SegmentLayout.fromCipherSize(key, header.segmentSize, cipherSize) };
  }

  /** The blob's segment cipher; the caller zeroes it when done. */
  private async open(key: string, known?: { cipherSize: number; header?: Buffer | undefined }): Promise<OpenedBlob> {
    const { header, layout } = await this.layoutOf(key, known);
    const studyKey = await this.keyring.byId(header.keyId);
    let objectKey: Buffer;
    try {
      objectKey = unwrapObjectKey(studyKey, header, header.fixed, key);
    } finally {
      studyKey.fill(0); // our copy (StudyKeyring hands out copies)
    }
    try {
      return { layout, cipher: new SegmentCipher(key, deriveSegmentKey(objectKey, header.salt, key), header.noncePrefix, header.fixed) };
    } finally {
      objectKey.fill(0);
    }
  }

  async createReadStream(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const { layout, cipher } = await this.open(key);
    const start = Math.max(0, range?.start ?? 0);
    const end = Math.min(range?.end ?? layout.plainSize, layout.plainSize);
    if (end <= start) {
      cipher.zero();
      return Readable.from([]);
    }
    const { first, last } = layout.covering(start, end);
    let source: Readable;
    try {
      source = await this.inner.createReadStream(key, { start: layout.cipherOffset(first), end: layout.cipherOffset(last) + layout.cipherLength(last) });
    } catch (e) {
      cipher.zero();
      throw e;
    }
    const plain = Readable.from(decryptSegments(key, source, layout, cipher, start, end), { objectMode: false });
    plain.once('close', () => cipher.zero());
    return plain;
  }

  /**
   * Where a read of [offset, offset + length) that starts in the first segment ends in the file, if the blob has
   * this store's segment size: the header and those segments are then one read of the file, not two (issue 8:
   * each file operation costs the event loop ~0.1 ms; a frame or the DICOM header lies in the first segments).
   * Only a guess: the header read decides the layout, and a blob of another segment size reads again.
   */
  private readsWithHeader(cipherSize: number, offset: number, length: number): number | undefined {
    let guess: SegmentLayout;
    try {
      guess = SegmentLayout.fromCipherSize('', this.segmentSize, cipherSize);
    } catch {
      return undefined; // not a length this segment size gives: read as usual, which reports it
    }
    if (offset < 0 || length <= 0 || offset + length > guess.plainSize) return undefined;
    const { first, last } = guess.covering(offset, offset + length);
    return first === 0 ? guess.cipherOffset(last) + guess.cipherLength(last) : undefined;
  }

  async read(key: string, offset: number, length: number): Promise<Buffer> {
    const cipherSize = await this.inner.size(key);
    if (cipherSize === undefined) throw new BlobNotFoundError(key);
    const upTo = cipherSize >= HEADER_LENGTH ? this.readsWithHeader(cipherSize, offset, length) : undefined;
    const early = upTo === undefined ? undefined : await this.inner.read(key, 0, upTo);
    const { layout, cipher } = await this.open(key, { cipherSize, header: early?.subarray(0, HEADER_LENGTH) });
    try {
      if (offset < 0 || length < 0 || offset + length > layout.plainSize) throw new RangeError('read past the end of the blob');
      if (length === 0) return Buffer.alloc(0);
      const { first, last } = layout.covering(offset, offset + length);
      const from = layout.cipherOffset(first);
      const to = layout.cipherOffset(last) + layout.cipherLength(last);
      const sealed = early !== undefined && to <= early.length ? early.subarray(from, to) : await this.inner.read(key, from, to - from);
      const out = Buffer.allocUnsafe(length);
      let at = 0;
      for await (const piece of decryptSegments(key, [sealed], layout, cipher, offset, offset + length)) {
        piece.copy(out, at);
        at += piece.length;
      }
      return out;
    } finally {
      cipher.zero();
    }
  }

  /** The plaintext size, from the ciphertext size and the header's segment size (no decryption). */
  async size(key: string): Promise<number | undefined> {
    try {
      return (await this.layoutOf(key)).layout.plainSize;
    } catch (e) {
      if (e instanceof BlobNotFoundError) return undefined;
      throw e;
    }
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  sweepStaging(): Promise<number> {
    return this.inner.sweepStaging();
  }
}
