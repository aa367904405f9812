// The crypto of encrypted blobs (issue 4, SECURITY.md 4; layout in encrypted-blob-format.ts):
// - segment key = HKDF-SHA256(object key, salt = the header's random salt, info = label | blob key): a fresh
//   key per blob even if an object key were ever reused, and bound to the server-assigned blob key;
// - segment i = AES-256-GCM(segment key, nonce = prefix(7) ‖ BE32(i) ‖ last(1), AAD = the header's fixed
//   part): a reordered segment fails (i), a truncated or extended blob fails (the last flag), an edited
//   header fails (AAD), a segment of another blob fails (another key);
// - the object key is wrapped by the study key with AES-256-GCM, random 96-bit nonce, AAD = label ‖ fixed
//   header ‖ study key id ‖ blob key: a slot copied into another blob, or a whole file moved under another
//   blob key, does not unwrap. Not the SOP Instance UID: reads know only the blob key (BlobStore port), and
//   the header must carry no UID; the blob key is server-assigned and unique, and the index (itself
//   encrypted) is what maps it to the instance.
// A random nonce per wrap is safe for the 2^32 wraps per study key that SP 800-38D allows; a study has far fewer objects.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { BlobIntegrityError, KEY_LENGTH, type KeySlot, TAG_LENGTH, WRAP_NONCE_LENGTH } from './encrypted-blob-format.js';

const ALGORITHM = 'aes-256-gcm';
const SEGMENT_KEY_INFO = 'dicomvault/blob-segment-key/v1|';
const WRAP_AAD_LABEL = Buffer.from('dicomvault/blob-object-key/v1|', 'latin1');
/** Nonces carry a 32-bit segment index. */
export const MAX_SEGMENTS = 2 ** 32;

export function deriveSegmentKey(objectKey: Buffer, salt: Buffer, blobKey: string): Buffer {
  return Buffer.from(hkdfSync('sha256', objectKey, salt, SEGMENT_KEY_INFO + blobKey, KEY_LENGTH));
}

/** Encrypts and decrypts the segments of one blob. zero() when done: the key is not needed any more. */
export class SegmentCipher {
  private readonly nonce = Buffer.alloc(12);

  constructor(
    private readonly blobKey: string,
    private readonly key: Buffer,
    noncePrefix: Buffer,
    private readonly aad: Buffer,
  ) {
    noncePrefix.copy(this.nonce, 0);
  }

  /** createCipheriv copies the nonce, so one buffer serves every segment. */
  private nonceOf(index: number, last: boolean): Buffer {
    if (index >= MAX_SEGMENTS) throw new RangeError('blob too large for its segment size');
    this.nonce.writeUInt32BE(index, 7);
    this.nonce[11] = last ? 1 : 0;
    return this.nonce;
  }

  /** Ciphertext ‖ tag of segment `index`. */
  seal(index: number, last: boolean, plain: Buffer): Buffer {
    return Buffer.concat(this.sealParts(index, last, plain));
  }

  /** Ciphertext and tag of segment `index`, apart: a vectored write takes them without a copy into one buffer. */
  sealParts(index: number, last: boolean, plain: Buffer): [Buffer, Buffer] {
    const cipher = createCipheriv(ALGORITHM, this.key, this.nonceOf(index, last), { authTagLength: TAG_LENGTH });
    cipher.setAAD(this.aad);
    const body = cipher.update(plain);
    cipher.final();
    return [body, cipher.getAuthTag()];
  }

  /** The plaintext of segment `index`, only once its tag verified: nothing of a failed segment escapes. */
  open(index: number, last: boolean, sealed: Buffer): Buffer {
    if (sealed.length < TAG_LENGTH) throw new BlobIntegrityError(this.blobKey, `segment ${index} truncated`);
    const decipher = createDecipheriv(ALGORITHM, this.key, this.nonceOf(index, last), { authTagLength: TAG_LENGTH });
    decipher.setAAD(this.aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
    const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_LENGTH));
    try {
      decipher.final();
    } catch {
      plain.fill(0);
      throw new BlobIntegrityError(this.blobKey, `segment ${index} failed authentication`);
    }
    return plain;
  }

  zero(): void {
    this.key.fill(0);
  }
}

function wrapAad(fixedHeader: Buffer, keyId: Buffer, blobKey: string): Buffer {
  return Buffer.concat([WRAP_AAD_LABEL, fixedHeader, keyId, Buffer.from(blobKey, 'latin1')]);
}

export function wrapObjectKey(studyKey: { id: Buffer; key: Buffer }, objectKey: Buffer, fixedHeader: Buffer, blobKey: string): KeySlot {
  const wrapNonce = randomBytes(WRAP_NONCE_LENGTH);
  const cipher = createCipheriv(ALGORITHM, studyKey.key, wrapNonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(wrapAad(fixedHeader, studyKey.id, blobKey));
  const wrappedKey = Buffer.concat([cipher.update(objectKey), cipher.final()]);
  return { keyId: Buffer.from(studyKey.id), wrapNonce, wrappedKey, wrapTag: cipher.getAuthTag() };
}

/** The object key (caller zeroes it), or BlobIntegrityError: wrong study key, other blob key, edited header. */
export function unwrapObjectKey(studyKey: Buffer, slot: KeySlot, fixedHeader: Buffer, blobKey: string): Buffer {
  const decipher = createDecipheriv(ALGORITHM, studyKey, slot.wrapNonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(wrapAad(fixedHeader, slot.keyId, blobKey));
  decipher.setAuthTag(slot.wrapTag);
  const objectKey = decipher.update(slot.wrappedKey);
  try {
    decipher.final();
  } catch {
    objectKey.fill(0);
    throw new BlobIntegrityError(blobKey, 'object key failed authentication');
  }
  return objectKey;
}
