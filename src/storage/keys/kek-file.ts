// The local key file (issue 4): the KEK versions of local-keyfile.ts, as JSON.
//
//   {
//     "format": "dicomvault-kek", "formatVersion": 1,
//     "current": "v2-5d0c9e1a",
//     "versions": [
//       { "id": "v1-9f3b2a71", "state": "retired", "createdAt": "...", "retiredAt": "..." },
//       { "id": "v2-5d0c9e1a", "state": "active", "createdAt": "...", "key": "<32 bytes, base64>", "probe": "<base64>" }
//     ]
//   }
//
// States: active (exactly one, the `current`: wraps and unwraps), decrypt-only (unwraps; a rotation is
// re-wrapping what it wrapped), retired (its key removed from the file: nothing it wrapped can be unwrapped).
// `probe` is an AES-256-GCM wrap of nothing under the version's key: a key that does not unwrap it was
// altered, and the file is refused. Version ids carry a random suffix, so a key file of another archive
// never matches by accident.
//
// The file holds keys in clear: mode 0600 in a 0700 folder, refused when group or others can read it (fail
// closed, DESIGN.md). It is replaced atomically (temp file, fsync, rename, fsync folder). JSON strings cannot
// be zeroed; the Buffers made from them are, when no longer needed.

import { randomBytes } from 'node:crypto';
import { fsyncDirectorySync, replaceFileDurably, writeSyncedTemp } from '../durable-file.js';
import fs from 'node:fs';
import path from 'node:path';
import { KEK_BYTES, aeadUnwrap, aeadWrap } from './aead-wrap.js';

export type KekState = 'active' | 'decrypt-only' | 'retired';

export interface KekVersion {
  id: string;
  state: KekState;
  createdAt: string;
  retiredAt?: string;
  /** 32 bytes; absent once retired. */
  key?: Buffer;
}

export interface KekFileContent {
  current: string;
  versions: KekVersion[];
}

/** The key file is missing, unsafe or malformed: the server does not start (the message says why). */
export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

const FORMAT = 'dicomvault-kek';
const FORMAT_VERSION = 1;
const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const STATES: readonly string[] = ['active', 'decrypt-only', 'retired'];

const probeContext = (id: string) => `dicomvault kek-probe|${id}`;

/** A new version id: its number in the file, then 8 random hex digits (v3-0c1f9e2a). */
export function newVersionId(existing: readonly KekVersion[]): string {
  const numbers = existing.map((v) => Number(/^v(\d+)-/.exec(v.id)?.[1] ?? 0));
  return `v${Math.max(0, ...numbers) + 1}-${randomBytes(4).toString('hex')}`;
}

export function newKekVersion(existing: readonly KekVersion[], now = new Date()): KekVersion {
  const key = Buffer.alloc(KEK_BYTES);
  const random = randomBytes(KEK_BYTES);
  random.copy(key);
  random.fill(0);
  return { id: newVersionId(existing), state: 'active', createdAt: now.toISOString(), key };
}

/** Zeroes every key of the content (after use, or when a reload replaced it). */
export function zeroKeys(content: KekFileContent): void {
  for (const v of content.versions) v.key?.fill(0);
}

const refuse = (file: string, why: string) => new KeyFileError(`key file ${file}: ${why}`);

/** Identity of the file on disk, to notice a replacement (rotation) cheaply. */
export function fileStamp(file: string): string | null {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return null;
  }
}

/** Reads, checks (permissions, format, probes) and decodes the key file. Throws KeyFileError. */
export function readKekFile(file: string): KekFileContent {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw refuse(file, code === 'ENOENT' ? 'does not exist' : `cannot be opened (${code ?? 'error'})`);
  }
  let text: Buffer;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw refuse(file, 'is not a regular file');
    // POSIX permissions only; on Windows the mode bits say nothing about ACLs.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw refuse(
        file,
        `is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); it holds the archive's master keys: run chmod 600 ${file}`,
      );
    }
    text = fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    return decode(file, text);
  } finally {
    text.fill(0);
  }
}

function decode(file: string, text: Buffer): KekFileContent {
  let raw: unknown;
  try {
    raw = JSON.parse(text.toString('utf8'));
  } catch {
    throw refuse(file, 'is not JSON');
  }
  const obj = raw as Record<string, unknown> | null;
  if (typeof obj !== 'object' || obj === null || obj.format !== FORMAT) throw refuse(file, `is not a ${FORMAT} file`);
  if (obj.formatVersion !== FORMAT_VERSION) throw refuse(file, `format version ${String(obj.formatVersion)} is not supported (expected ${FORMAT_VERSION})`);
  if (!Array.isArray(obj.versions) || obj.versions.length === 0) throw refuse(file, 'has no key versions');
  const versions: KekVersion[] = [];
  try {
    for (const item of obj.versions as unknown[]) versions.push(decodeVersion(file, item, versions));
    const active = versions.filter((v) => v.state === 'active');
    if (active.length !== 1) throw refuse(file, `must have exactly one active version, has ${active.length}`);
    if (obj.current !== active[0]!.id) throw refuse(file, '"current" must name the active version');
    return { current: active[0]!.id, versions };
  } catch (e) {
    for (const v of versions) v.key?.fill(0);
    throw e;
  }
}

function decodeVersion(file: string, item: unknown, before: readonly KekVersion[]): KekVersion {
  const v = item as Record<string, unknown> | null;
  if (typeof v !== 'object' || v === null) throw refuse(file, 'a version is not an object');
  const { id, state, createdAt, retiredAt, key, probe } = v;
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw refuse(file, `version id ${JSON.stringify(id)} is not valid`);
  if (before.some((b) => b.id === id)) throw refuse(file, `version ${id} appears twice`);
  if (typeof state !== 'string' || !STATES.includes(state)) throw refuse(file, `version ${id}: state must be one of ${STATES.join(', ')}`);
  if (typeof createdAt !== 'string') throw refuse(file, `version ${id}: createdAt is missing`);
  const version: KekVersion = { id, state: state as KekState, createdAt };
  if (typeof retiredAt === 'string') version.retiredAt = retiredAt;
  if (state === 'retired') {
    if (key !== undefined || probe !== undefined) throw refuse(file, `version ${id} is retired but still holds key material`);
    return version;
  }
  if (typeof key !== 'string' || typeof probe !== 'string') throw refuse(file, `version ${id}: key and probe are required`);
  const bytes = strictBase64(key);
  if (bytes === null || bytes.length !== KEK_BYTES) {
    bytes?.fill(0);
    throw refuse(file, `version ${id}: key must be ${KEK_BYTES} bytes in base64`);
  }
  const probeBytes = strictBase64(probe);
  const ok = probeBytes !== null && aeadUnwrap(bytes, probeBytes, probeContext(id));
  if (!ok) {
    bytes.fill(0);
    throw refuse(file, `version ${id}: the key does not unwrap its probe (the file was altered or damaged)`);
  }
  ok.fill(0);
  version.key = bytes;
  return version;
}

/** Base64 that decodes and re-encodes to itself (Node's decoder silently skips junk), in a non-pooled Buffer. */
function strictBase64(text: string): Buffer | null {
  const decoded = Buffer.from(text, 'base64');
  const same = decoded.toString('base64') === text;
  const out = same ? Buffer.alloc(decoded.length) : null;
  if (out) decoded.copy(out);
  decoded.fill(0);
  return out;
}

function encode(content: KekFileContent): Buffer {
  const doc = {
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    current: content.current,
    versions: content.versions.map((v) => ({
      id: v.id,
      state: v.state,
      createdAt: v.createdAt,
      ...(v.retiredAt === undefined ? {} : { retiredAt: v.retiredAt }),
      ...(v.state === 'retired' || !v.key
        ? {}
        : { key: v.key.toString('base64'), probe: aeadWrap(v.key, Buffer.alloc(0), probeContext(v.id)).toString('base64') }),
    })),
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
}

/** Writes `content` to a synced 0600 temp file next to `file`; returns the temp path. */
function writeTemp(file: string, content: KekFileContent): string {
  const bytes = encode(content);
  try {
    return writeSyncedTemp(file, bytes);
  } finally {
    bytes.fill(0);
  }
}

/** Replaces the key file atomically: a crash leaves the old file or the new one, never a mix. */
export function writeKekFile(file: string, content: KekFileContent): void {
  const bytes = encode(content);
  try {
    replaceFileDurably(file, bytes);
  } finally {
    bytes.fill(0);
  }
}

/**
 * Creates the key file with one active version (folder 0700 when it is new, file 0600). Refuses to replace an
 * existing file (another process may have created it a moment ago): link() fails when the name exists.
 */
export function createKekFile(file: string, now = new Date()): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const first = newKekVersion([], now);
  const content: KekFileContent = { current: first.id, versions: [first] };
  try {
    const tmp = writeTemp(file, content);
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw refuse(file, 'already exists');
      throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    fsyncDirectorySync(dir);
  } finally {
    zeroKeys(content);
  }
}
