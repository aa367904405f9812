// The default KeyProvider (issue 4): KEK versions in a local key file (kek-file.ts), AES-256-GCM wraps
// (aead-wrap.ts). A KMS or Vault transit provider is another file implementing key-provider.ts.
//
// Rotation happens in another process (`dicomvault keys rotate`) while the server runs: wrap() and unwrap()
// notice a replaced file (its inode, size and mtime: one stat) and re-read it first, so new study keys use a
// new version as soon as it exists and a retired version's key leaves memory too; unwrap() of a version
// this process does not know re-reads the file once more before KeyUnavailableError.
// Never logs or returns key material; keys replaced by a reload and all keys at close() are zeroed.

import { KEK_BYTES, aeadUnwrap, aeadWrap } from './aead-wrap.js';
import { KeyFileError, type KekFileContent, type KekState, fileStamp, newKekVersion, readKekFile, writeKekFile, zeroKeys } from './kek-file.js';
import { KeyIntegrityError, KeyUnavailableError, type KeyProvider, type WrappedKey } from './key-provider.js';

/** A version as `keys status` shows it: no key material. */
export interface KekVersionInfo {
  id: string;
  state: KekState;
  createdAt: string;
  retiredAt?: string;
}

export class LocalKeyfileProvider implements KeyProvider {
  private content: KekFileContent;
  private stamp: string | null;
  private closed = false;

  private constructor(
    readonly file: string,
    content: KekFileContent,
  ) {
    this.content = content;
    this.stamp = fileStamp(file);
  }

  /** Opens an existing key file; KeyFileError when it is missing, readable by others, malformed or altered. */
  static open(file: string): LocalKeyfileProvider {
    return new LocalKeyfileProvider(file, readKekFile(file));
  }

  currentVersion(): string {
    return this.content.current;
  }

  versions(): KekVersionInfo[] {
    return this.content.versions.map(({ id, state, createdAt, retiredAt }) => ({
      id,
      state,
      createdAt,
      ...(retiredAt === undefined ? {} : { retiredAt }),
    }));
  }

  async wrap(key: Buffer, context: string): Promise<WrappedKey> {
    this.reloadIfReplaced();
    const kek = this.keyOf(this.content.current);
    if (!kek) throw new KeyUnavailableError('the current key version has no key');
    return { kekVersion: this.content.current, wrapped: aeadWrap(kek, key, context) };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    this.reloadIfReplaced();
    let kek = this.keyOf(wrapped.kekVersion);
    if (!kek) {
      // A version we do not know (yet): a rotation may have written it since we read the file.
      if (!this.closed) this.tryReload();
      kek = this.keyOf(wrapped.kekVersion);
    }
    if (!kek) {
      const known = this.content.versions.find((v) => v.id === wrapped.kekVersion);
      throw new KeyUnavailableError(
        known ? `key version ${wrapped.kekVersion} is retired` : `key version ${wrapped.kekVersion} is not in the key file`,
      );
    }
    const key = aeadUnwrap(kek, wrapped.wrapped, context);
    if (!key) throw new KeyIntegrityError(`a key wrapped by version ${wrapped.kekVersion} failed authentication`);
    return key;
  }

  /** Re-reads the file now (KeyFileError when it became unreadable: the keys in memory stay). */
  reload(): void {
    const next = readKekFile(this.file);
    const stamp = fileStamp(this.file);
    zeroKeys(this.content);
    this.content = next;
    this.stamp = stamp;
  }

  /**
   * Rotation step 1: a new active version; the versions that were active become decrypt-only. Re-reads the
   * file first and replaces it atomically. Returns the new version's id.
   */
  addVersion(now = new Date()): string {
    this.reload();
    const next: KekFileContent = {
      current: '',
      versions: this.content.versions.map((v) => ({ ...v, state: v.state === 'active' ? 'decrypt-only' : v.state })),
    };
    const added = newKekVersion(next.versions, now);
    next.versions.push(added);
    next.current = added.id;
    writeKekFile(this.file, next);
    added.key!.fill(0);
    this.reload();
    return next.current;
  }

  /** Rotation's last step: the versions' keys leave the file for good (never the active version). */
  retire(ids: readonly string[], now = new Date()): void {
    this.reload();
    if (ids.includes(this.content.current)) throw new Error(`refusing to retire the active key version ${this.content.current}`);
    const next: KekFileContent = {
      current: this.content.current,
      versions: this.content.versions.map((v) =>
        ids.includes(v.id) && v.state !== 'retired'
          ? { id: v.id, state: 'retired' as const, createdAt: v.createdAt, retiredAt: now.toISOString() }
          : v,
      ),
    };
    writeKekFile(this.file, next);
    this.reload();
  }

  /** Zeroes every key in memory; the provider is unusable afterwards. */
  close(): void {
    this.closed = true;
    zeroKeys(this.content);
    this.content = { current: this.content.current, versions: [] };
  }

  private keyOf(id: string): Buffer | undefined {
    const key = this.content.versions.find((v) => v.id === id && v.state !== 'retired')?.key;
    return key && key.length === KEK_BYTES ? key : undefined;
  }

  private reloadIfReplaced(): void {
    if (this.closed) throw new KeyUnavailableError('the key provider is closed');
    if (fileStamp(this.file) !== this.stamp) this.tryReload();
  }

  /** A reload during serving: a file that became unreadable keeps the keys already loaded (and the caller 503s). */
  private tryReload(): void {
    try {
      this.reload();
    } catch (e) {
      if (!(e instanceof KeyFileError)) throw e;
    }
  }
}
