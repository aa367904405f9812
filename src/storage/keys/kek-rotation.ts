// KEK rotation (issue 4; SECURITY.md 4: "KEK rotation only rewraps"), run by `dicomvault keys rotate` while the
// server keeps serving:
//
//   1. a new KEK version becomes active, the versions that were active become decrypt-only (key file replaced
//      atomically; the server re-reads it when it meets the new version, and before every wrap when it changed);
//   2. the index refuses keys wrapped under the decrypt-only versions from now on (closed_kek_versions), so no
//      new work appears behind the rotation;
//   3. the other keys the KEK wraps (the index key) are re-wrapped;
//   4. every study key still under a decrypt-only version is re-wrapped, in batches, one transaction each;
//   5. once none is left, the decrypt-only versions are retired: their keys leave the key file.
//
// Resumable and safe to interrupt anywhere: each step is atomic and idempotent, and a run that finds
// decrypt-only versions continues that rotation instead of starting another. A lock file next to the key
// file keeps two rotations from running at once (a lock left by a dead process is taken over).

import fs from 'node:fs';
import type { KeyProvider } from './key-provider.js';
import type { LocalKeyfileProvider } from './local-keyfile.js';

/** The store of wrapped study keys (the index: study-key-table.ts). */
export interface WrappedKeyRows {
  /** From now on no key may be written wrapped under these versions. */
  closeVersions(versions: readonly string[]): void;
  countUnder(versions: readonly string[]): number;
  /** Re-wraps up to `limit` keys under `versions` with the provider's current version; how many it read (0: done). */
  rewrapBatch(versions: readonly string[], provider: KeyProvider, limit: number): Promise<number>;
}

export interface RotationProgress {
  done: number;
  total: number;
}

export interface RotateOptions {
  /** Study keys re-wrapped per transaction (default 500). */
  batchSize?: number;
  /** Stop after this many batches, leaving the rotation to a later run (tests; maintenance windows). */
  maxBatches?: number;
  onProgress?: (progress: RotationProgress) => void;
  /** Re-wraps the other keys under the KEK (the index key: index-key.ts rewrapIndexKey). */
  rewrapOthers?: (provider: KeyProvider) => Promise<void>;
}

export interface RotationResult {
  /** True when this run added the new version; false when it continued an interrupted rotation. */
  started: boolean;
  current: string;
  /** The versions being retired. */
  from: string[];
  rewrapped: number;
  /** Study keys still under `from` (0 when complete). */
  remaining: number;
  complete: boolean;
}

export const DEFAULT_BATCH_SIZE = 500;

export async function rotateKek(
  provider: LocalKeyfileProvider,
  rows: WrappedKeyRows | null,
  options: RotateOptions = {},
): Promise<RotationResult> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  return withRotationLock(`${provider.file}.lock`, async () => {
    provider.reload();
    let from = decryptOnly(provider);
    const started = from.length === 0;
    if (started) {
      provider.addVersion();
      from = decryptOnly(provider);
    }
    const current = provider.currentVersion();
    if (from.includes(current)) throw new Error(`key version ${current} is both current and being retired`);

    rows?.closeVersions(from);
    await options.rewrapOthers?.(provider);

    const total = rows?.countUnder(from) ?? 0;
    let done = 0;
    options.onProgress?.({ done, total });
    for (let batch = 0; rows && (options.maxBatches === undefined || batch < options.maxBatches); batch++) {
      const n = await rows.rewrapBatch(from, provider, batchSize);
      if (n === 0) break;
      done += n;
      options.onProgress?.({ done: Math.min(done, total), total: Math.max(total, done) });
    }
    const remaining = rows?.countUnder(from) ?? 0;
    if (remaining === 0 && from.length > 0) provider.retire(from);
    return { started, current, from, rewrapped: done, remaining, complete: remaining === 0 };
  });
}

function decryptOnly(provider: LocalKeyfileProvider): string[] {
  return provider.versions().filter((v) => v.state === 'decrypt-only').map((v) => v.id);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

async function withRotationLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const pid = Number.parseInt(fs.readFileSync(lockFile, 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new Error(`another key rotation is running (process ${pid}; lock ${lockFile})`);
      }
      fs.rmSync(lockFile, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockFile, { force: true });
  }
}
