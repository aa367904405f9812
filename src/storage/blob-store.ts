// The blob store port (DESIGN.md "ports"). Keys are assigned by the store, never derived from client UIDs.
// Writes are staged: bytes go to a temporary place, can be read back (STOW scans them), and become durable
// only on commit (fsync, rename, fsync of the directory for the filesystem store).
// Implementations: fs-blob-store.ts; the encrypted decorator (issue 4) wraps any of them.
// test/contracts/blob-store.contract.ts runs one suite against every implementation.

import type { Readable } from 'node:stream';

/** The instance a blob holds. */
export interface BlobOwner {
  studyInstanceUID: string;
  sopInstanceUID: string;
}

export interface StagedBlob {
  readonly key: string;
  /** Append bytes; resolves when they may be overwritten by the caller. */
  write(chunk: Buffer): Promise<void>;
  /** All bytes written; size and SHA-256 (hex) of what was written. */
  finish(): Promise<{ size: number; sha256: string }>;
  /** Read back finished bytes (for scanning before commit). */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Done reading: let go of open resources (file handles) while the blob waits for commit. A STOW request
   * of thousands of parts must not hold a descriptor per part. read() is refused afterwards. `keepOpen`: the
   * descriptor stays for commit() (which would otherwise open the file again); for the first few parts only.
   */
  release(options?: { keepOpen?: boolean }): Promise<void>;
  /**
   * Make the blob durable under its key. After this resolves, a crash keeps it. `owner` says which instance
   * the bytes turned out to be (known only after the scan): the encrypted store binds the object's key to it
   * and to the study's key; the filesystem store ignores it.
   */
  commit(owner?: BlobOwner): Promise<void>;
  /** Throw the staged bytes away (idempotent; safe after a failed write). */
  discard(): Promise<void>;
}

/**
 * What the encrypted decorator needs of the store it wraps: overwriting bytes already written, after finish()
 * (also after release()) and before commit(), which makes them durable too. It fills its header's key slot
 * this way once commit() tells it the owner. Not part of StagedBlob: the encrypted store itself cannot offer
 * it (rewriting a GCM segment under the same nonce would leak), and nothing else needs it.
 */
export interface OverwritableStagedBlob extends StagedBlob {
  writeAt(offset: number, bytes: Buffer): Promise<void>;
  /** write() of the buffers in order, as one system call where it can (a sealed segment is ciphertext and tag). */
  writev(chunks: Buffer[]): Promise<void>;
}

export interface OverwritableBlobStore extends BlobStore {
  /**
   * `digest: false` skips the SHA-256 of the written bytes (finish() then reports an empty sha256): the
   * encrypted store hashes the plaintext itself, and a hash of its ciphertext would cost a second pass.
   */
  stage(options?: { digest?: boolean }): Promise<OverwritableStagedBlob>;
}

/** A committed blob that does not exist (never committed, or deleted). */
export class BlobNotFoundError extends Error {
  override name = 'BlobNotFoundError';
  constructor(readonly key: string) {
    super(`blob ${key} does not exist`);
  }
}

export interface BlobStore {
  /** Start a new blob under a fresh server-assigned key. */
  stage(): Promise<StagedBlob>;
  /** Stream a committed blob, or a byte range of it (`end` exclusive). */
  createReadStream(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Read a byte range of a committed blob into memory. */
  read(key: string, offset: number, length: number): Promise<Buffer>;
  /** Size of a committed blob, or undefined if it does not exist. */
  size(key: string): Promise<number | undefined>;
  /** Remove a committed blob (idempotent). */
  delete(key: string): Promise<void>;
  /** Remove staging leftovers of a previous run (temporary files); returns how many were removed. */
  sweepStaging(): Promise<number>;
}
