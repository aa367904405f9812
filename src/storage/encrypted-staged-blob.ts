// A blob being staged through the encrypted store (encrypted-blob-store.ts): plaintext arrives in whatever
// chunks the multipart parser produced, is cut at segment boundaries and encrypted before it reaches the
// inner store, so no plaintext is ever on disk, not even in staging.
//
// Why the object key is random and not HKDF(study key, SOP Instance UID) as issue 4 first put it: STOW
// streams a part before anyone knows which study it belongs to (the scan reads it back after finish()), so
// at staging time there is no study key to derive from. The object key is therefore random, lives in memory
// only while staged, and is bound to the study key and the blob's identity at commit() by wrapping it under
// the study key (segment-crypto.ts). The property that matters is the same: destroying the study key makes
// every object key of the study unrecoverable.

import { createHash, randomBytes } from 'node:crypto';
import type { BlobOwner, OverwritableStagedBlob, StagedBlob } from './blob-store.js';
import {
  encodeSlot,
  FIXED_LENGTH,
  KEY_LENGTH,
  NONCE_PREFIX_LENGTH,
  NONCE_PREFIX_OFFSET,
  newHeader,
  SALT_LENGTH,
  SegmentLayout,
} from './encrypted-blob-format.js';
import type { StudyKeyring } from './keys/study-keyring.js';
import { SegmentCache } from './segment-cache.js';
import { deriveSegmentKey, SegmentCipher, wrapObjectKey } from './segment-crypto.js';

/** Leading segments kept in plaintext from write to release: what STOW's scan reads first. */
const RETAINED_SEGMENTS = 2;
/**
 * Sealed segments are written together once this much ciphertext is waiting (or at finish): a 0.5 MiB instance
 * (three 256 KiB segments) is one write instead of three (issue 8: each write is a thread-pool round trip). Bounds
 * what a part in flight holds beyond its segment buffer.
 */
const WRITE_BATCH_BYTES = 1024 * 1024;

type State = 'writing' | 'finished' | 'released' | 'committed' | 'discarded';

export class EncryptedStagedBlob implements StagedBlob {
  private state: State = 'writing';
  private readonly hash = createHash('sha256');
  private size = 0;
  /** Plaintext not yet encrypted: at most one segment, held back until we know whether it is the last. */
  private pending: Buffer | undefined;
  private fill = 0;
  private index = 0;
  private layout: SegmentLayout | undefined;
  /** Sealed segments (ciphertext and tag, the header before the first) not yet written, in file order. */
  private unwritten: Buffer[] = [];
  private unwrittenBytes = 0;
  /** Scans read windows that straddle segments: keep the last two decrypted ones. */
  private readonly cache = new SegmentCache(RETAINED_SEGMENTS + 2);

  private constructor(
    private readonly inner: OverwritableStagedBlob,
    private readonly keyring: StudyKeyring,
    private readonly objectKey: Buffer,
    private readonly header: Buffer,
    private readonly cipher: SegmentCipher,
    private readonly segmentSize: number,
  ) {}

  get key(): string {
    return this.inner.key;
  }

  static async start(inner: OverwritableStagedBlob, keyring: StudyKeyring, segmentSize: number): Promise<EncryptedStagedBlob> {
    const objectKey = randomBytes(KEY_LENGTH);
    const salt = randomBytes(SALT_LENGTH);
    const header = newHeader(segmentSize, salt, randomBytes(NONCE_PREFIX_LENGTH));
    const fixed = header.subarray(0, FIXED_LENGTH);
    const cipher = new SegmentCipher(inner.key, deriveSegmentKey(objectKey, salt, inner.key), fixed.subarray(NONCE_PREFIX_OFFSET), fixed);
    // The header goes out with the first segment (one write fewer per object); its key slot stays zero until commit().
    const blob = new EncryptedStagedBlob(inner, keyring, objectKey, header, cipher, segmentSize);
    return blob;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.state !== 'writing') throw new Error(`cannot write a ${this.state} blob`);
    this.hash.update(chunk);
    this.size += chunk.length;
    const s = this.segmentSize;
    let pos = 0;
    while (pos < chunk.length) {
      // A full segment is sealed as "not last" only now that more bytes follow it.
      if (this.fill === s) {
        await this.seal(this.pending!, false);
        this.fill = 0;
      }
      const rest = chunk.length - pos;
      if (this.fill === 0 && rest > s) {
        await this.seal(chunk.subarray(pos, pos + s), false); // straight from the caller's chunk, no copy
        pos += s;
        continue;
      }
      const n = Math.min(s - this.fill, rest);
      this.pending ??= Buffer.allocUnsafe(s);
      chunk.copy(this.pending, this.fill, pos, pos + n);
      this.fill += n;
      pos += n;
    }
  }

  private async seal(plain: Buffer, last: boolean): Promise<void> {
    // STOW's scan starts with a 256 KiB window at the dataset's start, which reaches into segment 1: keep
    // segments 0 and 1 in plaintext so the scan need not read and decrypt them again. Zeroed at release/discard
    // like every cached segment. Our own segment buffer is handed over to the cache (write() takes a new one);
    // a segment cut straight from the caller's chunk is copied (the caller may reuse its chunk).
    if (this.index < RETAINED_SEGMENTS && !last) {
      if (plain === this.pending) {
        this.cache.set(this.index, plain);
        this.pending = undefined;
      } else {
        this.cache.set(this.index, Buffer.from(plain));
      }
    }
    const [body, tag] = this.cipher.sealParts(this.index, last, plain);
    // Vectored writes of whole segments, the header with the first (no concatenation), several segments at a time.
    if (this.index === 0) this.unwritten.push(this.header);
    this.unwritten.push(body, tag);
    this.unwrittenBytes += body.length + tag.length;
    this.index++;
    if (last || this.unwrittenBytes >= WRITE_BATCH_BYTES) await this.writeSealed();
  }

  private async writeSealed(): Promise<void> {
    const chunks = this.unwritten;
    this.unwritten = [];
    this.unwrittenBytes = 0;
    await this.inner.writev(chunks);
  }

  async finish(): Promise<{ size: number; sha256: string }> {
    if (this.state !== 'writing') throw new Error(`cannot finish a ${this.state} blob`);
    this.state = 'finished';
    const last = (this.pending ?? Buffer.alloc(0)).subarray(0, this.fill);
    await this.seal(last, true);
    // The scan reads the object's start first: a small object is one segment, already here in plaintext.
    this.cache.set(this.index - 1, last);
    this.pending = undefined;
    this.layout = new SegmentLayout(this.segmentSize, this.size);
    await this.inner.finish();
    return { size: this.size, sha256: this.hash.digest('hex') };
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.state !== 'finished') throw new Error(`cannot read a ${this.state} staged blob`);
    const layout = this.layout!;
    if (offset < 0 || length < 0 || offset + length > layout.plainSize) throw new RangeError('read outside the staged blob');
    const out = Buffer.allocUnsafe(length);
    if (length === 0) return out;
    const { first, last } = layout.covering(offset, offset + length);
    for (let i = first; i <= last; i++) {
      let plain = this.cache.get(i);
      if (!plain) {
        const sealed = await this.inner.read(layout.cipherOffset(i), layout.cipherLength(i));
        plain = this.cipher.open(i, i === layout.segments - 1, sealed);
        this.cache.set(i, plain);
      }
      const base = i * this.segmentSize;
      const from = Math.max(offset, base) - base;
      const to = Math.min(offset + length, base + plain.length) - base;
      plain.copy(out, base + from - offset, from, to);
    }
    return out;
  }

  async release(options?: { keepOpen?: boolean }): Promise<void> {
    if (this.state !== 'finished') throw new Error(`cannot release a ${this.state} blob`);
    this.state = 'released';
    this.cache.clear();
    await this.inner.release(options);
  }

  /** Refused without an owner: an object key must never be stored unwrapped or under no study (fail closed). */
  async commit(owner?: BlobOwner): Promise<void> {
    if (this.state !== 'finished' && this.state !== 'released') throw new Error(`cannot commit a ${this.state} blob`);
    if (!owner) throw new Error('the encrypted blob store commits only with the owner (study) of the blob');
    const studyKey = await this.keyring.forStudy(owner.studyInstanceUID);
    let slot;
    try {
      slot = wrapObjectKey(studyKey, this.objectKey, this.header.subarray(0, FIXED_LENGTH), this.key);
    } finally {
      studyKey.key.fill(0); // our copy (StudyKeyring hands out copies)
    }
    await this.inner.writeAt(FIXED_LENGTH, encodeSlot(slot));
    await this.inner.commit(owner);
    this.state = 'committed';
    this.forget();
  }

  async discard(): Promise<void> {
    if (this.state === 'committed' || this.state === 'discarded') return;
    this.state = 'discarded';
    this.forget();
    await this.inner.discard();
  }

  private forget(): void {
    this.objectKey.fill(0);
    this.cipher.zero();
    this.cache.clear();
    this.pending?.fill(0);
    this.pending = undefined;
    this.unwritten = [];
    this.unwrittenBytes = 0;
  }
}
