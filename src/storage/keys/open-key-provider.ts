// Start-up of the key provider (issue 4 item 7, fail closed, DESIGN.md): the key file is created only for a
// new data folder. When the folder already holds data, a missing, unsafe, malformed or altered key file stops
// the start with one message: without its keys the stored studies cannot be read, and a fresh key would only
// hide that until the first retrieve.

import fs from 'node:fs';
import path from 'node:path';
import { KeyFileError, createKekFile } from './kek-file.js';
import { LocalKeyfileProvider } from './local-keyfile.js';

export interface KeysConfig {
  keys: { file: string };
  storage: { dataDir: string };
}

export interface OpenKeyProviderOptions {
  /** True when the data folder already holds an index or blobs (see dataDirHasData). */
  dataDirHasData: boolean;
}

/** True when `dataDir` exists and is not empty: then its key file must exist too. */
export function dataDirHasData(dataDir: string): boolean {
  try {
    return fs.readdirSync(dataDir).length > 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * The provider of `keys.file` (relative paths: to the working directory). Creates the file (0600, folder 0700)
 * only when it is missing and the data folder is new; otherwise throws KeyFileError with a message for the
 * operator.
 */
export function openKeyProvider(config: KeysConfig, options: OpenKeyProviderOptions): LocalKeyfileProvider {
  const file = path.resolve(config.keys.file);
  if (!fs.existsSync(file)) {
    if (options.dataDirHasData) {
      throw new KeyFileError(
        `key file ${file} does not exist but the data folder ${path.resolve(config.storage.dataDir)} holds data: ` +
          'restore the key file from its backup (keys.file / DICOMVAULT_KEYS_FILE); without it the stored studies cannot be read',
      );
    }
    try {
      createKekFile(file);
    } catch (e) {
      // Another process created it in the meantime: use theirs.
      if (!(e instanceof KeyFileError)) throw new KeyFileError(`key file ${file}: cannot be created (${(e as Error).message})`);
    }
  }
  return LocalKeyfileProvider.open(file);
}
