// The key-encryption key (KEK) port (issue 4, SECURITY.md 4 "envelope encryption"): the only thing that can
// wrap and unwrap the keys below it (study keys, the index key). Implementations: local-keyfile.ts (default,
// a key file on disk); a KMS or Vault transit provider is one new file implementing this interface.
//
// Versions: wrap() always uses the current version; unwrap() accepts every version not yet retired, so a
// rotation (`dicomvault keys rotate`) can re-wrap keys one by one while the server keeps serving.

/** A key wrapped by one KEK version. `wrapped` is opaque to everyone but the provider. */
export interface WrappedKey {
  kekVersion: string;
  wrapped: Buffer;
}

export interface KeyProvider {
  /** The version new wraps use. */
  currentVersion(): string;
  /**
   * Wraps `key` (AEAD with a random nonce, or AES key wrap), bound to `context` (e.g. "study-key|<id>"): an
   * unwrap with another context fails, so a wrapped key copied to another row is useless.
   */
  wrap(key: Buffer, context: string): Promise<WrappedKey>;
  /** The key, or KeyUnavailableError (provider down, retired or unknown version) / KeyIntegrityError. */
  unwrap(wrapped: WrappedKey, context: string): Promise<Buffer>;
}

/** The provider cannot answer now (KMS down, version retired or missing): the request answers 503. */
export class KeyUnavailableError extends Error {
  override name = 'KeyUnavailableError';
}

/** A wrapped key or an encrypted object failed authentication: tampering or the wrong key. 500, security log. */
export class KeyIntegrityError extends Error {
  override name = 'KeyIntegrityError';
}
