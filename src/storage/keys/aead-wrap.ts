// Key wrapping with AES-256-GCM (SECURITY.md 4: an AEAD with a random 96-bit nonce, never a fixed IV):
// wrapped = nonce(12) ‖ ciphertext ‖ tag(16), the context string as additional authenticated data, so a
// wrapped key only unwraps in the place (row, file) it was made for. NIST SP 800-38D 8.3: at most 2^32
// random-nonce encryptions per key; a KEK version wraps one key per study, far below that.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const KEK_BYTES = 32;

export function aeadWrap(kek: Buffer, key: Buffer, context: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = cipher.update(key);
  const last = cipher.final();
  const wrapped = Buffer.concat([nonce, body, last, cipher.getAuthTag()]);
  body.fill(0);
  return wrapped;
}

/** The key, or null when `wrapped` fails authentication under `kek` and `context` (tampered, wrong key or place). */
export function aeadUnwrap(kek: Buffer, wrapped: Buffer, context: string): Buffer | null {
  if (wrapped.length < NONCE_BYTES + TAG_BYTES) return null;
  const decipher = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG_BYTES));
  const body = decipher.update(wrapped.subarray(NONCE_BYTES, wrapped.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    body.fill(0);
    return null;
  }
  // A copy outside Node's shared allocation pool, so zeroing it later zeroes the only copy.
  const key = Buffer.alloc(body.length);
  body.copy(key);
  body.fill(0);
  return key;
}
