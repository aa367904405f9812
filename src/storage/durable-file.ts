// Small files that must survive a crash whole (the key file, the wrapped index key): written to a 0600
// temporary file beside the target and fsynced, then renamed (or linked) into place, then the folder fsynced so
// the rename itself is durable. A crash leaves the old file or the new one, never a mix.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Writes `bytes` to a fresh 0600 temporary file next to `file` and fsyncs it; returns its path. */
export function writeSyncedTemp(file: string, bytes: Uint8Array): string {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return tmp;
}

/** Makes a rename or link in `dir` durable. Windows cannot open a folder for fsync; its rename is durable enough. */
export function fsyncDirectorySync(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces (or creates) `file` with `bytes` atomically and durably, mode 0600. */
export function replaceFileDurably(file: string, bytes: Uint8Array): void {
  const tmp = writeSyncedTemp(file, bytes);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDirectorySync(path.dirname(file));
}
