// A data folder with a real key file and a real SQLite index, for the key tests.
import path from 'node:path';
import type { Test } from 'tap';
import { SqliteIndexStore } from '../../../src/index/sqlite/sqlite-index-store.js';
import { SqliteStudyKeyring, type SqliteStudyKeyringOptions } from '../../../src/index/sqlite/sqlite-study-keyring.js';
import { StudyKeyTable } from '../../../src/index/sqlite/study-key-table.js';
import { LocalKeyfileProvider } from '../../../src/storage/keys/local-keyfile.js';
import { openKeyProvider } from '../../../src/storage/keys/open-key-provider.js';
import { tempDir } from '../../helpers/temp-dir.js';

export interface KeysFixture {
  dir: string;
  keyFile: string;
  dataDir: string;
  provider: LocalKeyfileProvider;
  /** Another process's view: a second provider on the same file. */
  openProvider(): LocalKeyfileProvider;
  /** A keyring on its own connection to the index (closed at teardown). */
  keyring(options?: Partial<SqliteStudyKeyringOptions>, provider?: LocalKeyfileProvider): SqliteStudyKeyring;
  /** The study_keys table on its own connection. */
  table(): StudyKeyTable;
  /** A connection to the index. */
  database(): SqliteIndexStore['database'];
}

export function keysFixture(t: Test): KeysFixture {
  const dir = tempDir(t);
  const keyFile = path.join(dir, 'keys/kek.json');
  const dataDir = path.join(dir, 'data');
  const provider = openKeyProvider({ keys: { file: keyFile }, storage: { dataDir } }, { dataDirHasData: false });
  const dbFile = path.join(dir, 'index.sqlite');
  const open = () => {
    const index = new SqliteIndexStore(dbFile);
    t.teardown(() => index.close());
    return index;
  };
  return {
    dir,
    keyFile,
    dataDir,
    provider,
    openProvider: () => LocalKeyfileProvider.open(keyFile),
    keyring(options = {}, p = provider) {
      const keyring = new SqliteStudyKeyring(open().database, p, { cacheTtlMs: 60_000, cacheMaxKeys: 100, ...options });
      t.teardown(() => keyring.close());
      return keyring;
    },
    table: () => new StudyKeyTable(open().database),
    database: () => open().database,
  };
}
