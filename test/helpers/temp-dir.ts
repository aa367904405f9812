import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';

/** A fresh directory removed when the test ends. */
export function tempDir(t: Test, prefix = 'dicomvault-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Configuration variables for a fresh data folder and its own key file, side by side in one temporary
 * directory: the key file's default (keys/kek.json in the working directory) would be shared by every test.
 */
export function storageEnv(root: string): { DICOMVAULT_STORAGE_DATA_DIR: string; DICOMVAULT_KEYS_FILE: string } {
  return { DICOMVAULT_STORAGE_DATA_DIR: path.join(root, 'data'), DICOMVAULT_KEYS_FILE: path.join(root, 'keys', 'kek.json') };
}
