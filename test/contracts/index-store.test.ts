import { randomBytes } from 'node:crypto';
import path from 'node:path';
import t from 'tap';
import { MemoryIndexStore } from '../../src/index/memory/memory-index-store.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { runIndexStoreContract } from './index-store.contract.js';

runIndexStoreContract(t, 'MemoryIndexStore', () => new MemoryIndexStore());
// A real file in a temp dir (WAL, synchronous=FULL), not :memory:, so the pragmas are exercised.
runIndexStoreContract(t, 'SqliteIndexStore', (t) => new SqliteIndexStore(path.join(tempDir(t), 'index.sqlite')));
// The same file encrypted (AEGIS-256, raw 32-byte key): encryption must not change any answer.
runIndexStoreContract(t, 'SqliteIndexStore (encrypted)', (t) =>
  new SqliteIndexStore(path.join(tempDir(t), 'index.sqlite'), { key: randomBytes(32) }),
);
