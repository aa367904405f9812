// A KeyProvider in memory for tests (the real one reads a KEK file: src/storage/keys/). Real AES-256-GCM
// wraps (aead-wrap.ts: random nonce, the context as AAD) under random KEKs; rotate() adds a version,
// retire() forgets one, so tests can play a KEK rotation end to end.
import { randomBytes } from 'node:crypto';
import { aeadUnwrap, aeadWrap, KEK_BYTES } from '../../src/storage/keys/aead-wrap.js';
import { KeyIntegrityError, type KeyProvider, KeyUnavailableError, type WrappedKey } from '../../src/storage/keys/key-provider.js';

export class MemoryKeyProvider implements KeyProvider {
  private readonly keks = new Map<string, Buffer>();
  private current = '';
  private versions = 0;

  constructor() {
    this.rotate();
  }

  currentVersion(): string {
    return this.current;
  }

  /** A new current version; older ones still unwrap until retired. Returns the new version. */
  rotate(): string {
    this.current = `v${++this.versions}`;
    this.keks.set(this.current, randomBytes(KEK_BYTES));
    return this.current;
  }

  retire(version: string): void {
    this.keks.get(version)?.fill(0);
    this.keks.delete(version);
  }

  async wrap(key: Buffer, context: string): Promise<WrappedKey> {
    return { kekVersion: this.current, wrapped: aeadWrap(this.keks.get(this.current)!, key, context) };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    const kek = this.keks.get(wrapped.kekVersion);
    if (!kek) throw new KeyUnavailableError(`KEK version ${wrapped.kekVersion} is not available`);
    const key = aeadUnwrap(kek, wrapped.wrapped, context);
    if (!key) throw new KeyIntegrityError(`the wrapped key does not authenticate under KEK version ${wrapped.kekVersion}`);
    return key;
  }
}
