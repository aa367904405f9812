// Keys a new SQLite connection (issue 4: the index holds names, IDs and dates, so the file is encrypted).
//
// SQLite3 Multiple Ciphers (bundled by better-sqlite3-multiple-ciphers) encrypts every page on its way to
// the database file and to the WAL; the -shm file holds only the WAL index (page numbers, checksums).
//
// Cipher: AEGIS-256 (cipher 'aegis', algorithm 'aegis-256', both pinned: the file format must not follow a
// library default). An AEAD built on the AES round function (hardware AES-NI / ARMv8 AES), 256-bit key; per
// page a random 256-bit nonce and a 256-bit tag in the page's 64 reserved bytes, the page number bound in,
// so a changed, swapped or stale page fails the read (SQLITE_CORRUPT) instead of returning altered rows.
// Measured (bench/index-cipher.mjs, 20,000 instances in commits of 20): STOW commits cost x2.2 with
// 'sqlcipher' (SQLCipher 4: AES-256-CBC + HMAC-SHA512) and x1.8 with the library default 'chacha20'
// (ChaCha20-Poly1305); x1.03 with AEGIS-256. perf showed why: a commit writes ~110 WAL frames and the
// checkpoint decrypts and re-encrypts each page again, and SQLCipher spends that time in a software
// SHA-512 (the per-page HMAC). The price: only SQLite3 Multiple Ciphers tools (its sqlite3mc shell) open
// the file, not the sqlcipher tool. QIDO reads are served from the page cache and cost nothing measurable.
//
// Key form: the raw key, PRAGMA key = "x'<64 hex>'". The library then uses the bytes as the key and skips
// the password KDF (Argon2id for AEGIS), so an open costs no KDF: the key is already random, 32 bytes,
// from index-key.ts. The hex string holds [0-9a-f] only, so interpolating it cannot inject SQL.
//
// Bytes 16-23 of the file header (page size, format versions, reserved bytes) stay in clear, as SQLite
// needs them before decrypting; the first 16 bytes are the KDF salt (random, unused with a raw key).

import type { Database } from 'better-sqlite3-multiple-ciphers';

export const INDEX_KEY_BYTES = 32;

/** The index cannot be opened with what was given: wrong key, no key, or not a SQLite file. Fail closed. */
export class IndexKeyError extends Error {
  override name = 'IndexKeyError';
}

/** SQLITE_NOTADB: what SQLite says when page 1 does not decrypt (or is not SQLite at all). */
const isNotADatabase = (e: unknown) => (e as { code?: unknown } | null)?.code === 'SQLITE_NOTADB';

/**
 * Must run before any other statement on the connection. With a key: cipher settings, the key, then a read
 * that proves it (SQLite reads nothing until the first statement, so a wrong key would otherwise surface
 * later, or look like an empty database). Without a key: the same read, so an encrypted file gets a clear
 * message instead of "file is not a database" from a pragma.
 */
export function openCipher(db: Database, path: string, key: Buffer | undefined): void {
  if (key !== undefined) {
    if (key.length !== INDEX_KEY_BYTES) throw new IndexKeyError(`the index key must be ${INDEX_KEY_BYTES} bytes`);
    db.pragma("cipher = 'aegis'");
    db.pragma("algorithm = 'aegis-256'");
    db.pragma(`key = "x'${key.toString('hex')}'"`);
    // Temporary tables and sort spills are not encrypted: keep them in memory.
    db.pragma('temp_store = MEMORY');
  }
  try {
    db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get();
  } catch (e) {
    if (!isNotADatabase(e)) throw e;
    throw new IndexKeyError(
      key === undefined
        ? `index database ${path} is encrypted (or is not a SQLite database): it needs its index key`
        : `index database ${path} does not open with this index key (wrong key, an unencrypted file, or not a SQLite database)`,
      { cause: e },
    );
  }
}
