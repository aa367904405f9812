// Blobs as files: <root>/objects/ab/cd/<key> with keys the server makes up (random), never client UIDs.
// A write is staged in <root>/staging and made durable by commit: fsync(file) -> rename -> fsync(dir)
// (DESIGN.md "Writes are two-phase"; SECURITY.md summary item 4 and section 8); what a crash leaves in staging is
// removed by sweepStaging at start.
//
// Issue 8 (fewer file operations per STOW instance): consecutive keys share their fan-out directory "ab/cd" for a
// while (OBJECTS_PER_DIRECTORY_TURN), so its mkdir is paid once per turn, and commits that overlap in time rename
// into the same directory: its fsync is shared by those whose renames finished together (DirectorySync), on one
// descriptor kept open while they come, instead of an open, fsync and close each.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, type OverwritableBlobStore, type OverwritableStagedBlob } from './blob-store.js';

export { BlobNotFoundError } from './blob-store.js';

const KEY_PATTERN = /^[0-9a-f]{32}$/;
/**
 * Keys staged into one fan-out directory before another is picked at random. Over time every directory gets
 * turns alike, so directories stay as small as with a random directory per key (a few thousand entries at
 * hundreds of millions of objects).
 */
const OBJECTS_PER_DIRECTORY_TURN = 256;
/** How long a fan-out directory's descriptor stays open after its last fsync (it is likely the next one's). */
const DIRECTORY_LINGER_MS = 1000;

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * The fsyncs of one directory after renames into it. sync() resolves once an fsync that started after the call has
 * completed (the caller's rename is done by then, so it is covered), and rejects with that fsync's error. Callers in
 * one turn of the event loop share one fsync (renames finish in batches: libuv reports the thread pool's completed
 * work together); a caller never waits for an fsync already running, which may predate its rename, but starts the
 * next at once (a commit waits one fsync, as before). The descriptor stays open while callers come and for
 * DIRECTORY_LINGER_MS after; an error drops it (the next fsync reopens: after a failed fsync, a later one on the
 * same descriptor may report success for data that was lost).
 */
class DirectorySync {
  private handle: Promise<fsp.FileHandle> | undefined;
  private users = 0;
  private linger: NodeJS.Timeout | undefined;
  /** The fsync of this turn's callers, not started yet. */
  private gathering: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private readonly onIdle: (self: DirectorySync) => void,
  ) {}

  async sync(): Promise<void> {
    this.users++;
    if (this.linger) clearTimeout(this.linger);
    this.linger = undefined;
    try {
      this.gathering ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.gathering = undefined;
        return this.fsyncOnce();
      });
      await this.gathering;
    } finally {
      if (--this.users === 0) {
        this.linger = setTimeout(() => void this.close(), DIRECTORY_LINGER_MS);
        this.linger.unref();
      }
    }
  }

  private async fsyncOnce(): Promise<void> {
    const opening = (this.handle ??= fsp.open(this.dir, 'r'));
    try {
      await (await opening).sync();
    } catch (e) {
      // Closed once the other fsyncs on it are done (FileHandle.close waits for its pending operations).
      if (this.handle === opening) this.handle = undefined;
      await opening.then((h) => h.close()).catch(() => undefined);
      throw e;
    }
  }

  private async close(): Promise<void> {
    this.linger = undefined;
    if (this.users > 0) return;
    this.onIdle(this);
    const opening = this.handle;
    this.handle = undefined;
    await opening?.then((h) => h.close()).catch(() => undefined);
  }
}

export class FsBlobStore implements OverwritableBlobStore {
  private readonly objectsDir: string;
  private readonly stagingDir: string;
  /** Fan-out directories known to exist durably, or being made so (saves a mkdir per write). */
  private readonly readyDirs = new Map<string, Promise<void>>();
  /** Directories being fsynced after renames, or recently (DirectorySync). */
  private readonly dirSyncs = new Map<string, DirectorySync>();
  /** The fan-out prefix ("abcd") of the keys staged now, and how many more keys get it. */
  private turnPrefix = '';
  private turnLeft = 0;

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

  /** 32 hex digits: the turn's fan-out prefix (4), then the last 28 of a random UUID v4 (106 random bits). */
  private newKey(): string {
    if (this.turnLeft === 0) {
      this.turnPrefix = randomBytes(2).toString('hex');
      this.turnLeft = OBJECTS_PER_DIRECTORY_TURN;
    }
    this.turnLeft--;
    return this.turnPrefix + randomUUID().replaceAll('-', '').slice(4);
  }

  /**
   * The fan-out directory of a blob about to be renamed into it. A directory it had to create is made durable in
   * its parent (fsync of the parent; once per directory, rare with turns): the blob's own directory fsync covers its
   * entry, not the directory's.
   */
  private ensureDirectory(dir: string): Promise<void> {
    // Shared: a commit into the directory another one is creating must wait for the parent's fsync too.
    let ready = this.readyDirs.get(dir);
    if (!ready) {
      ready = (async () => {
        const first = await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
        if (first === undefined) return;
        // Created: `first` and every level below it down to `dir`; each one's parent gets an fsync.
        for (let d = dir; ; d = path.dirname(d)) {
          await fsyncDirectory(path.dirname(d));
          if (d === first || path.dirname(d) === d) break;
        }
      })();
      this.readyDirs.set(dir, ready);
      ready.catch(() => this.readyDirs.delete(dir));
    }
    return ready;
  }

  /** fsync of `dir` after a rename into it, shared with the commits that renamed into it meanwhile. */
  private syncDirectory(dir: string): Promise<void> {
    let syncer = this.dirSyncs.get(dir);
    if (!syncer) {
      syncer = new DirectorySync(dir, (idle) => {
        if (this.dirSyncs.get(dir) === idle) this.dirSyncs.delete(dir);
      });
      this.dirSyncs.set(dir, syncer);
    }
    return syncer.sync();
  }

  async stage(options: { digest?: boolean } = {}): Promise<OverwritableStagedBlob> {
    const key = this.newKey();
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
        await store.ensureDirectory(dir);
        await fsp.rename(stagingPath, finalPath);
        await store.syncDirectory(dir);
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
