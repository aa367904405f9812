// The index key (issue 4, SECURITY.md 4 envelope encryption): one random 256-bit key encrypts the SQLite
// index (open-cipher.ts); the KEK (key-provider.ts) wraps it, and the wrapped form lives beside the database
// in <dataDir>/index.key.json: {"kekVersion": "...", "wrapped": "<base64>"}. The file alone is useless
// without the KEK; the KEK alone is useless without the file: back up both (the key file with the index).
//
// KEK rotation re-wraps this key (rewrapIndexKey) and leaves the database alone: the pages stay encrypted
// under the same index key, only its wrapping changes. PRAGMA rekey (re-encrypting every page under a new
// index key) would be needed only if the index key itself leaked; it rewrites the whole file and
// SQLite3 Multiple Ciphers refuses it in WAL mode, so it is not part of rotation.

import { randomBytes } from 'node:crypto';
import { replaceFileDurably } from '../../storage/durable-file.js';
import fs from 'node:fs';
import path from 'node:path';
import type { KeyProvider, WrappedKey } from '../../storage/keys/key-provider.js';
import { INDEX_KEY_BYTES, IndexKeyError } from './open-cipher.js';

/** The index database's file name in the data directory. */
export const INDEX_DB_FILE = 'index.sqlite';
export const INDEX_KEY_FILE = 'index.key.json';
/** Additional authenticated data of the wrap: the wrapped key unwraps as an index key and nothing else. */
const WRAP_CONTEXT = 'dicomvault index-key|v1';

/**
 * The index key of `dataDir`. A new data directory (no database yet) gets a new random key, wrapped and
 * written before the database is created. An existing database without its key file, or a key that does
 * not unwrap, is an IndexKeyError: the server must not start (it would otherwise create an empty index).
 */
export async function loadOrCreateIndexKey(dataDir: string, provider: KeyProvider): Promise<Buffer> {
  const keyFile = path.join(dataDir, INDEX_KEY_FILE);
  const stored = readKeyFile(keyFile);
  if (stored !== undefined) return unwrapIndexKey(keyFile, stored, provider);
  const dbFile = path.join(dataDir, INDEX_DB_FILE);
  if (fs.existsSync(dbFile)) {
    throw new IndexKeyError(
      `${keyFile} is missing but the index ${dbFile} exists: restore the key file from the backup ` +
        '(without it the index cannot be read)',
    );
  }
  const key = randomBytes(INDEX_KEY_BYTES);
  writeKeyFile(keyFile, await provider.wrap(key, WRAP_CONTEXT));
  return key;
}

/** KEK rotation: the same index key, wrapped again under the provider's current version. */
export async function rewrapIndexKey(dataDir: string, provider: KeyProvider): Promise<{ from: string; to: string }> {
  const keyFile = path.join(dataDir, INDEX_KEY_FILE);
  const stored = readKeyFile(keyFile);
  if (stored === undefined) throw new IndexKeyError(`${keyFile} is missing: there is no index key to re-wrap`);
  const key = await unwrapIndexKey(keyFile, stored, provider);
  try {
    const rewrapped = await provider.wrap(key, WRAP_CONTEXT);
    writeKeyFile(keyFile, rewrapped);
    return { from: stored.kekVersion, to: rewrapped.kekVersion };
  } finally {
    key.fill(0);
  }
}

async function unwrapIndexKey(keyFile: string, stored: WrappedKey, provider: KeyProvider): Promise<Buffer> {
  let key: Buffer;
  try {
    key = await provider.unwrap(stored, WRAP_CONTEXT);
  } catch (e) {
    throw new IndexKeyError(
      `the index key in ${keyFile} does not unwrap with KEK version ${stored.kekVersion}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  if (key.length !== INDEX_KEY_BYTES) throw new IndexKeyError(`the index key in ${keyFile} is not ${INDEX_KEY_BYTES} bytes`);
  return key;
}

/** The stored wrapped key, or undefined when the file does not exist. */
function readKeyFile(file: string): WrappedKey | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const { kekVersion, wrapped } = (parsed ?? {}) as { kekVersion?: unknown; wrapped?: unknown };
  if (typeof kekVersion !== 'string' || kekVersion === '' || typeof wrapped !== 'string' || wrapped === '') {
    throw new IndexKeyError(`${file} is not an index key file (expected {"kekVersion": string, "wrapped": base64})`);
  }
  return { kekVersion, wrapped: Buffer.from(wrapped, 'base64') };
}

/** Atomic, durable replace (storage/durable-file.ts), mode 0600. */
function writeKeyFile(file: string, wrapped: WrappedKey): void {
  const body = `${JSON.stringify({ kekVersion: wrapped.kekVersion, wrapped: wrapped.wrapped.toString('base64') }, null, 2)}\n`;
  replaceFileDurably(file, Buffer.from(body, 'utf8'));
}
