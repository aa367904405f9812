// The audit log's keys (issue 6 item 5; SECURITY.md 2 and 4), made once per data folder like the index key
// (index/sqlite/index-key.ts): a random 256-bit audit key (AES-256-GCM over every record: records hold PHI)
// and an Ed25519 key pair that signs the checkpoints. Both are wrapped by the KEK (key-provider.ts) into
// <dataDir>/audit.key.json:
//   {"version": 1, "auditKey": {"kekVersion", "wrapped"}, "signingKey": {"kekVersion", "wrapped"}}
// and the public key is also written in clear to <dataDir>/audit-signing.pub.pem, so a verifier off-box can
// check the checkpoints it received without any secret. Back up audit.key.json with the KEK: without it the
// audit log cannot be read.

import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { replaceFileDurably } from '../storage/durable-file.js';
import type { KeyProvider, WrappedKey } from '../storage/keys/key-provider.js';

export const AUDIT_KEY_FILE = 'audit.key.json';
export const AUDIT_PUBLIC_KEY_FILE = 'audit-signing.pub.pem';
/** The audit log's folder inside the data folder. */
export const AUDIT_DIR = 'audit';
export const AUDIT_KEY_BYTES = 32;

const AUDIT_KEY_CONTEXT = 'dicomvault audit-key|v1';
const SIGNING_KEY_CONTEXT = 'dicomvault audit-signing-key|v1';

/** Missing, malformed or non-unwrapping audit keys: the server must not start (fail closed). */
export class AuditKeyError extends Error {
  override name = 'AuditKeyError';
}

export interface AuditKeys {
  /** AES-256-GCM key of the records. Zeroed by close(). */
  auditKey: Buffer;
  /** Ed25519 private key of the checkpoints. */
  signingKey: KeyObject;
  publicKey: KeyObject;
  /** Zeroes the audit key. */
  close(): void;
}

interface AuditKeyFile {
  version: 1;
  auditKey: WrappedKey;
  signingKey: WrappedKey;
}

/**
 * The audit keys of `dataDir`, created (and wrapped under the KEK's current version) when the folder has no
 * audit key file and no audit log yet. An audit log without its key file, or keys that do not unwrap, is an
 * AuditKeyError: a new key would start a second chain and leave the old records unreadable.
 */
export async function loadOrCreateAuditKeys(dataDir: string, provider: KeyProvider): Promise<AuditKeys> {
  const keyFile = path.join(dataDir, AUDIT_KEY_FILE);
  if (fs.existsSync(keyFile)) return loadAuditKeys(dataDir, provider);
  if (auditLogExists(dataDir)) {
    throw new AuditKeyError(
      `${keyFile} is missing but the audit log ${path.join(dataDir, AUDIT_DIR)} exists: restore the key file from the backup ` +
        '(without it the audit log cannot be read or continued)',
    );
  }
  const auditKey = randomBytes(AUDIT_KEY_BYTES);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    const content: AuditKeyFile = {
      version: 1,
      auditKey: await provider.wrap(auditKey, AUDIT_KEY_CONTEXT),
      signingKey: await provider.wrap(der, SIGNING_KEY_CONTEXT),
    };
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // The public key first: a key file without its public key is repaired by loadAuditKeys, not the reverse.
    writePublicKey(dataDir, publicKey);
    writeKeyFile(keyFile, content);
  } finally {
    der.fill(0);
  }
  return keysOf(auditKey, privateKey, publicKey);
}

/** The existing audit keys (never creates them: for the CLI and for verification). */
export async function loadAuditKeys(dataDir: string, provider: KeyProvider): Promise<AuditKeys> {
  const keyFile = path.join(dataDir, AUDIT_KEY_FILE);
  const stored = readKeyFile(keyFile);
  const auditKey = await unwrap(provider, keyFile, stored.auditKey, AUDIT_KEY_CONTEXT, 'audit key');
  if (auditKey.length !== AUDIT_KEY_BYTES) throw new AuditKeyError(`the audit key in ${keyFile} is not ${AUDIT_KEY_BYTES} bytes`);
  const der = await unwrap(provider, keyFile, stored.signingKey, SIGNING_KEY_CONTEXT, 'audit signing key');
  let signingKey: KeyObject;
  try {
    signingKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (e) {
    auditKey.fill(0);
    throw new AuditKeyError(`the audit signing key in ${keyFile} is not a private key: ${(e as Error).message}`);
  } finally {
    der.fill(0);
  }
  if (signingKey.asymmetricKeyType !== 'ed25519') {
    auditKey.fill(0);
    throw new AuditKeyError(`the audit signing key in ${keyFile} is not an Ed25519 key`);
  }
  const publicKey = createPublicKey(signingKey);
  const pemFile = path.join(dataDir, AUDIT_PUBLIC_KEY_FILE);
  if (!fs.existsSync(pemFile)) writePublicKey(dataDir, publicKey);
  else if (!readAuditPublicKey(pemFile).equals(publicKey)) {
    auditKey.fill(0);
    throw new AuditKeyError(`${pemFile} is not the public key of the audit signing key in ${keyFile}: restore it (or delete it to rewrite it)`);
  }
  return keysOf(auditKey, signingKey, publicKey);
}

/** KEK rotation: the same audit keys, wrapped again under the provider's current version. */
export async function rewrapAuditKeys(dataDir: string, provider: KeyProvider): Promise<{ from: string; to: string } | null> {
  const keyFile = path.join(dataDir, AUDIT_KEY_FILE);
  if (!fs.existsSync(keyFile)) return null;
  const stored = readKeyFile(keyFile);
  const auditKey = await unwrap(provider, keyFile, stored.auditKey, AUDIT_KEY_CONTEXT, 'audit key');
  const der = await unwrap(provider, keyFile, stored.signingKey, SIGNING_KEY_CONTEXT, 'audit signing key');
  try {
    const content: AuditKeyFile = {
      version: 1,
      auditKey: await provider.wrap(auditKey, AUDIT_KEY_CONTEXT),
      signingKey: await provider.wrap(der, SIGNING_KEY_CONTEXT),
    };
    writeKeyFile(keyFile, content);
    return { from: stored.auditKey.kekVersion, to: content.auditKey.kekVersion };
  } finally {
    auditKey.fill(0);
    der.fill(0);
  }
}

/** An Ed25519 public key in PEM (SPKI), e.g. the off-box copy of audit-signing.pub.pem. */
export function readAuditPublicKey(file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new AuditKeyError(`${file}: not a public key (${(e as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AuditKeyError(`${file}: not an Ed25519 public key`);
  return key;
}

function auditLogExists(dataDir: string): boolean {
  try {
    return fs.readdirSync(path.join(dataDir, AUDIT_DIR)).length > 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

function keysOf(auditKey: Buffer, signingKey: KeyObject, publicKey: KeyObject): AuditKeys {
  return { auditKey, signingKey, publicKey, close: () => auditKey.fill(0) };
}

async function unwrap(provider: KeyProvider, keyFile: string, wrapped: WrappedKey, context: string, what: string): Promise<Buffer> {
  try {
    return await provider.unwrap(wrapped, context);
  } catch (e) {
    throw new AuditKeyError(`the ${what} in ${keyFile} does not unwrap with KEK version ${wrapped.kekVersion}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

function readKeyFile(file: string): AuditKeyFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new AuditKeyError(`${file} is missing: there are no audit keys`);
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const p = (parsed ?? {}) as { version?: unknown; auditKey?: unknown; signingKey?: unknown };
  const auditKey = wrappedOf(p.auditKey);
  const signingKey = wrappedOf(p.signingKey);
  if (p.version !== 1 || !auditKey || !signingKey) {
    throw new AuditKeyError(`${file} is not an audit key file (expected {"version": 1, "auditKey": {...}, "signingKey": {...}})`);
  }
  return { version: 1, auditKey, signingKey };
}

function wrappedOf(value: unknown): WrappedKey | undefined {
  const { kekVersion, wrapped } = (value ?? {}) as { kekVersion?: unknown; wrapped?: unknown };
  if (typeof kekVersion !== 'string' || kekVersion === '' || typeof wrapped !== 'string' || wrapped === '') return undefined;
  return { kekVersion, wrapped: Buffer.from(wrapped, 'base64') };
}

function writeKeyFile(file: string, content: AuditKeyFile): void {
  const json = {
    version: content.version,
    auditKey: { kekVersion: content.auditKey.kekVersion, wrapped: content.auditKey.wrapped.toString('base64') },
    signingKey: { kekVersion: content.signingKey.kekVersion, wrapped: content.signingKey.wrapped.toString('base64') },
  };
  replaceFileDurably(file, Buffer.from(`${JSON.stringify(json, null, 2)}\n`, 'utf8'));
}

function writePublicKey(dataDir: string, publicKey: KeyObject): void {
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  replaceFileDurably(path.join(dataDir, AUDIT_PUBLIC_KEY_FILE), Buffer.from(pem, 'utf8'));
}
