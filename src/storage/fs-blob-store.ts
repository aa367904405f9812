// Blobs as files: <root>/objects/ab/cd/<key> with keys the server makes up (random UUIDs), never client UIDs.
// A write is staged in <root>/staging and made durable by commit: fsync(file) -> rename -> fsync(dir)
// (DESIGN.md "Writes are two-phase"); what a crash leaves in staging is removed by sweepStaging at start.

import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, type OverwritableBlobStore, type OverwritableStagedBlob } from './blob-store.js';

export { BlobNotFoundError } from './blob-store.js';

const KEY_PATTERN = /^[0-9a-f]{32}$/;

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class FsBlobStore implements OverwritableBlobStore {
  private readonly objectsDir: string;
  private readonly stagingDir: string;
  /** Fan-out directories already known to exist (saves a mkdir per write). */
  private readonly knownDirs = new Set<string>();

  private constructor(root: string) {
    this.objectsDir = path.join(root, 'objects');
    this.stagingDir = path.join(root, 'staging');
  }

  static async open(root: string): Promise<FsBlobStore> {
    const store = new FsBlobStore(root);
    await fsp.mkdir(store.objectsDir, { recursive: true, mode: 0o700 });
    await fsp.mkdir(store.stagingDir, { recursive: true, mode: 0o700 });
    return store;
  }

  /** objects/ab/cd/<key>: two levels of 256 keep directories small at millions of objects. */
  private pathOf(key: string): string {
    if (!KEY_PATTERN.test(key)) throw new Error('malformed blob key');
    return path.join(this.objectsDir, key.slice(0, 2), key.slice(2, 4), key);
  }

  async stage(options: { digest?: boolean } = {}): Promise<OverwritableStagedBlob> {
    const key = randomUUID().replaceAll('-', '');
    const stagingPath = path.join(this.stagingDir, `${key}.tmp`);
    const finalPath = this.pathOf(key);
    const handle = await fsp.open(stagingPath, 'wx+', 0o600);
    const hash = options.digest === false ? undefined : createHash('sha256');
    let size = 0;
    let state: 'writing' | 'finished' | 'released' | 'committed' | 'discarded' = 'writing';
    /** The handle kept open by release({ keepOpen }) or opened by writeAt after release, for commit's fsync. */
    let reopened: fsp.FileHandle | undefined;
    const store = this;

    return {
      key,
      async write(chunk) {
        if (state !== 'writing') throw new Error(`cannot write a ${state} blob`);
        hash?.update(chunk);
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, off, chunk.length - off, size + off);
          off += bytesWritten;
        }
        size += chunk.length;
      },
      async writev(chunks) {
        if (state !== 'writing') throw new Error(`cannot write a ${state} blob`);
        // A regular file takes the whole vector unless the disk fills up; what it did not take goes piece by piece.
        let unattributed = (await handle.writev(chunks, size)).bytesWritten;
        let at = size;
        for (const c of chunks) {
          hash?.update(c);
          let off = Math.min(unattributed, c.length);
          unattributed -= off;
          while (off < c.length) {
            const { bytesWritten } = await handle.write(c, off, c.length - off, at + off);
            off += bytesWritten;
          }
          at += c.length;
        }
        size = at;
      },
      async finish() {
        if (state !== 'writing') throw new Error(`cannot finish a ${state} blob`);
        state = 'finished';
        return { size, sha256: hash ? hash.digest('hex') : '' };
      },
      async writeAt(offset, bytes) {
        if (state !== 'finished' && state !== 'released') throw new Error(`cannot overwrite a ${state} blob`);
        if (offset < 0 || offset + bytes.length > size) throw new RangeError('overwrite outside the staged blob');
        // A released blob has no open handle unless release kept it: reopen it, and keep that handle for commit's fsync,
        // which covers these bytes either way (the encrypted store writes its key slot just before commit).
        if (state === 'released') reopened ??= await fsp.open(stagingPath, 'r+');
        const target = state === 'finished' ? handle : reopened!;
        let off = 0;
        while (off < bytes.length) {
          const { bytesWritten } = await target.write(bytes, off, bytes.length - off, offset + off);
          off += bytesWritten;
        }
      },
      async read(offset, length) {
        if (state !== 'finished') throw new Error(`cannot read a ${state} staged blob`);
        if (offset < 0 || length < 0 || offset + length > size) throw new RangeError('read outside the staged blob');
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await handle.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) throw new Error('staged blob shorter than written');
          got += bytesRead;
        }
        return buf;
      },
      async release(options = {}) {
        if (state !== 'finished') throw new Error(`cannot release a ${state} blob`);
        state = 'released';
        if (options.keepOpen) reopened = handle;
        else await handle.close();
      },
      async commit() {
        if (state !== 'finished' && state !== 'released') throw new Error(`cannot commit a ${state} blob`);
        if (state === 'finished') {
          await handle.sync();
          await handle.close();
        } else {
          const again = reopened ?? (await fsp.open(stagingPath, 'r'));
          reopened = undefined;
          try {
            await again.sync();
          } finally {
            await again.close();
          }
        }
        const dir = path.dirname(finalPath);
        if (!store.knownDirs.has(dir)) {
          await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
          store.knownDirs.add(dir);
        }
        await fsp.rename(stagingPath, finalPath);
        await fsyncDirectory(dir);
        state = 'committed';
      },
      async discard() {
        if (state === 'committed' || state === 'discarded') return;
        state = 'discarded';
        await handle.close().catch(() => undefined);
        if (reopened !== handle) await reopened?.close().catch(() => undefined);
        await fsp.rm(stagingPath, { force: true });
      },
    };
  }

  async createReadStream(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const file = this.pathOf(key);
    // Open first so a missing blob is an error here, not an 'error' event after headers went out.
    const handle = await fsp.open(file, 'r').catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new BlobNotFoundError(key) : e;
    });
    if (range && range.end <= range.start) {
      await handle.close();
      const { Readable } = await import('node:stream');
      return Readable.from([]);
    }
    return fs.createReadStream('', {
      fd: handle,
      autoClose: true,
      ...(range ? { start: range.start, end: range.end - 1 } : {}),
      highWaterMark: 256 * 1024,
    });
  }

  async read(key: string, offset: number, length: number): Promise<Buffer> {
    const handle = await fsp.open(this.pathOf(key), 'r').catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new BlobNotFoundError(key) : e;
    });
    try {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new RangeError('read past the end of the blob');
        got += bytesRead;
      }
      return buf;
    } finally {
      await handle.close();
    }
  }

  async size(key: string): Promise<number | undefined> {
    try {
      return (await fsp.stat(this.pathOf(key))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await fsp.rm(this.pathOf(key), { force: true });
  }

  async sweepStaging(): Promise<number> {
    const names = await fsp.readdir(this.stagingDir);
    await Promise.all(names.map((n) => fsp.rm(path.join(this.stagingDir, n), { force: true })));
    return names.length;
  }
}
