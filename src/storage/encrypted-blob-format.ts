// The on-disk layout of an encrypted blob (issue 4, SECURITY.md 4): a fixed header, then segments in the
// layout of Tink's AES-GCM-HKDF streaming AEAD (https://developers.google.com/tink/streaming-aead/aes_gcm_hkdf_streaming).
// Pure layout: no crypto and no I/O here (segment-crypto.ts encrypts, encrypted-blob-store.ts does I/O).
//
//   offset len  field
//        0   4  magic "DVEB"
//        4   1  format version (1)
//        5   4  segment size S, plaintext bytes, big-endian
//        9  32  salt (random per blob; HKDF salt of the segment key)
//       41   7  nonce prefix (random per blob)
//   ---- 48: end of the fixed part, written at stage(); every segment authenticates it as AAD ----
//       48  16  study key id (StudyKeyring; never a UID)          \
//       64  12  wrap nonce (random)                                } the key slot, written at commit()
//       76  32  object key, AES-256-GCM under the study key        } (all zero while staged)
//      108  16  wrap tag                                          /
//      124      segment 0, segment 1, ...: each ciphertext (S bytes, the last 1..S; 0 only for an empty
//               blob) followed by its 16-byte GCM tag

import { KeyIntegrityError } from './keys/key-provider.js';

export const MAGIC = Buffer.from('DVEB', 'latin1');
export const FORMAT_VERSION = 1;
export const DEFAULT_SEGMENT_SIZE = 256 * 1024;
/** Sizes a header may declare: small enough to decrypt in memory, large enough to keep the tag overhead low. */
export const MIN_SEGMENT_SIZE = 4 * 1024;
export const MAX_SEGMENT_SIZE = 16 * 1024 * 1024;

export const SALT_LENGTH = 32;
export const NONCE_PREFIX_LENGTH = 7;
export const KEY_ID_LENGTH = 16;
export const WRAP_NONCE_LENGTH = 12;
export const KEY_LENGTH = 32;
export const TAG_LENGTH = 16;

export const NONCE_PREFIX_OFFSET = 41;
export const FIXED_LENGTH = 48;
export const SLOT_LENGTH = KEY_ID_LENGTH + WRAP_NONCE_LENGTH + KEY_LENGTH + TAG_LENGTH;
export const HEADER_LENGTH = FIXED_LENGTH + SLOT_LENGTH;

/** An encrypted blob failed authentication or is malformed. Carries no plaintext and no UID; 500, security log. */
export class BlobIntegrityError extends KeyIntegrityError {
  override name = 'BlobIntegrityError';
  constructor(readonly blobKey: string, what: string) {
    super(`encrypted blob ${blobKey}: ${what}`);
  }
}

export interface BlobHeader {
  segmentSize: number;
  salt: Buffer;
  noncePrefix: Buffer;
  /** Bytes 0..48, the AAD of every segment. */
  fixed: Buffer;
}

export interface KeySlot {
  keyId: Buffer;
  wrapNonce: Buffer;
  wrappedKey: Buffer;
  wrapTag: Buffer;
}

/** The fixed part of a new header followed by an all-zero key slot. */
export function newHeader(segmentSize: number, salt: Buffer, noncePrefix: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH);
  MAGIC.copy(header, 0);
  header.writeUInt8(FORMAT_VERSION, 4);
  header.writeUInt32BE(segmentSize, 5);
  salt.copy(header, 9);
  noncePrefix.copy(header, NONCE_PREFIX_OFFSET);
  return header;
}

export function parseHeader(blobKey: string, header: Buffer): BlobHeader & KeySlot {
  if (header.length < HEADER_LENGTH || !header.subarray(0, 4).equals(MAGIC)) {
    throw new BlobIntegrityError(blobKey, 'not an encrypted blob');
  }
  if (header.readUInt8(4) !== FORMAT_VERSION) throw new BlobIntegrityError(blobKey, 'unknown format version');
  const segmentSize = header.readUInt32BE(5);
  if (segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) {
    throw new BlobIntegrityError(blobKey, 'segment size out of bounds');
  }
  const keyId = header.subarray(48, 64);
  // A committed blob always has its slot filled: an empty one was never committed (or was zeroed).
  if (keyId.every((b) => b === 0)) throw new BlobIntegrityError(blobKey, 'no key slot');
  return {
    segmentSize,
    salt: header.subarray(9, 41),
    noncePrefix: header.subarray(NONCE_PREFIX_OFFSET, FIXED_LENGTH),
    fixed: header.subarray(0, FIXED_LENGTH),
    keyId,
    wrapNonce: header.subarray(64, 76),
    wrappedKey: header.subarray(76, 108),
    wrapTag: header.subarray(108, 124),
  };
}

export function encodeSlot(slot: KeySlot): Buffer {
  return Buffer.concat([slot.keyId, slot.wrapNonce, slot.wrappedKey, slot.wrapTag], SLOT_LENGTH);
}

/** Where segments are and how long: the plaintext size follows from the ciphertext size. */
export class SegmentLayout {
  readonly segments: number;

  constructor(
    readonly segmentSize: number,
    readonly plainSize: number,
  ) {
    this.segments = plainSize === 0 ? 1 : Math.ceil(plainSize / segmentSize);
  }

  /**
   * The layout of a stored blob of `cipherSize` bytes, or an integrity error when no plaintext size gives
   * that length (a truncation or extension that cut a tag). Whether the last segment really is the last is
   * checked when it is decrypted (its nonce's last-segment flag).
   */
  static fromCipherSize(blobKey: string, segmentSize: number, cipherSize: number): SegmentLayout {
    const body = cipherSize - HEADER_LENGTH;
    const stride = segmentSize + TAG_LENGTH;
    if (body < TAG_LENGTH) throw new BlobIntegrityError(blobKey, 'shorter than one segment');
    const full = Math.floor(body / stride);
    const rest = body % stride;
    if (rest === 0) return new SegmentLayout(segmentSize, full * segmentSize);
    if (rest < TAG_LENGTH || (rest === TAG_LENGTH && full > 0)) throw new BlobIntegrityError(blobKey, 'bad length');
    return new SegmentLayout(segmentSize, full * segmentSize + rest - TAG_LENGTH);
  }

  plainLength(index: number): number {
    return index < this.segments - 1 ? this.segmentSize : this.plainSize - (this.segments - 1) * this.segmentSize;
  }

  cipherOffset(index: number): number {
    return HEADER_LENGTH + index * (this.segmentSize + TAG_LENGTH);
  }

  cipherLength(index: number): number {
    return this.plainLength(index) + TAG_LENGTH;
  }

  /** The segments holding plaintext bytes [start, end), end exclusive and > start. */
  covering(start: number, end: number): { first: number; last: number } {
    return { first: Math.floor(start / this.segmentSize), last: Math.floor((end - 1) / this.segmentSize) };
  }
}
