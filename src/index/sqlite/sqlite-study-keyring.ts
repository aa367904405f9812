// The default StudyKeyring (storage/keys/study-keyring.ts): study keys in the index's study_keys table
// (migration V3, study-key-table.ts), wrapped by the KeyProvider, unwrapped keys cached briefly (key-cache.ts).
//
// - forStudy() creates a key atomically: two STOW requests of one study, in this process or another, race on
//   INSERT ... ON CONFLICT (study_uid) DO NOTHING; the loser zeroes its key and reads the winner's.
// - Erasure is final: destroy() nulls the wrapped key and sets destroyed_at in one statement (a study without
//   a key yet gets a tombstone), evicts and zeroes the cached key. From then on byId() and forStudy() of the
//   study throw StudyKeyErasedError: forStudy() never creates a new key for an erased Study Instance UID, so a
//   STOW of it fails instead of silently starting the study again. isErased() says whether a study was erased.
// - Every call reads the row first (an indexed lookup), so an erasure by another process (the CLI) takes
//   effect at once even for a cached key.
// - secure_delete is switched on for the connection: the bytes of an erased wrapped key are overwritten in the
//   database file instead of lingering in a free block. Copies in backups and in WAL frames not yet
//   checkpointed remain decryptable with the KEK version that wrapped them until a rotation retires it
//   (`dicomvault keys rotate`): only then is the erasure complete everywhere.

import { randomBytes } from 'node:crypto';
import type { Database } from 'better-sqlite3-multiple-ciphers';
import { KeyCache } from '../../storage/keys/key-cache.js';
import { KeyUnavailableError, type KeyProvider } from '../../storage/keys/key-provider.js';
import { type StudyKey, type StudyKeyring, StudyKeyErasedError } from '../../storage/keys/study-keyring.js';
import { type StudyKeyRow, StudyKeyTable, isClosedKekVersionError, studyKeyContext } from './study-key-table.js';

export interface SqliteStudyKeyringOptions {
  /** A cached key unused this long is zeroed and dropped (config keys.cacheTtlMs). */
  cacheTtlMs: number;
  /** Most keys cached at once, least recently used out first (config keys.cacheMaxKeys). */
  cacheMaxKeys: number;
  /** Clock for created_at / destroyed_at and the cache, for tests. */
  now?: () => Date;
}

const ID_BYTES = 16;
const KEY_BYTES = 32;

function newStudyKeyBytes(): Buffer {
  // Outside Node's shared pool, so fill(0) erases the only copy.
  const key = Buffer.alloc(KEY_BYTES);
  const random = randomBytes(KEY_BYTES);
  random.copy(key);
  random.fill(0);
  return key;
}

export class SqliteStudyKeyring implements StudyKeyring {
  private readonly table: StudyKeyTable;
  private readonly cache: KeyCache;
  /** Unwraps in progress by hex id: concurrent first reads of a study share one unwrap. */
  private readonly unwrapping = new Map<string, Promise<Buffer>>();
  private readonly now: () => Date;

  constructor(
    db: Database,
    private readonly provider: KeyProvider,
    options: SqliteStudyKeyringOptions,
  ) {
    db.pragma('secure_delete = ON');
    this.table = new StudyKeyTable(db);
    this.now = options.now ?? (() => new Date());
    this.cache = new KeyCache({ ttlMs: options.cacheTtlMs, maxKeys: options.cacheMaxKeys, now: () => this.now().getTime() });
  }

  async forStudy(studyInstanceUID: string): Promise<StudyKey> {
    // Twice at most: read, else create; a lost creation race reads the winner's row.
    for (let attempt = 0; attempt < 2; attempt++) {
      const row = this.table.byStudy(studyInstanceUID);
      if (row) return { id: row.id, key: await this.keyOf(row) };
      const created = await this.create(studyInstanceUID);
      if (created) return created;
    }
    const row = this.table.byStudy(studyInstanceUID);
    if (!row) throw new Error('study key row vanished after its creation');
    return { id: row.id, key: await this.keyOf(row) };
  }

  async byId(id: Buffer): Promise<Buffer> {
    const row = id.length === ID_BYTES ? this.table.byId(id) : undefined;
    // Rows are never deleted: an id this index never issued looks like an erased key (the memory keyring agrees).
    if (!row) throw new StudyKeyErasedError('no study key with this id (erased, or not from this archive)');
    return this.keyOf(row);
  }

  async destroy(studyInstanceUID: string): Promise<void> {
    const id = this.table.destroy(studyInstanceUID, randomBytes(ID_BYTES), this.now());
    this.cache.delete(id.toString('hex'));
  }

  /** True when the study's key was destroyed: its objects are unreadable for good and it takes no new ones. */
  isErased(studyInstanceUID: string): boolean {
    return this.table.isErased(studyInstanceUID);
  }

  /**
   * Start-up check (fail closed): unwraps one key per KEK version in use, so a key file that does not belong to
   * this index stops the start instead of failing every retrieve. Throws what the provider throws.
   */
  async verifyUnwrap(): Promise<number> {
    let checked = 0;
    for (const { version } of this.table.countByVersion()) {
      if (version === null) continue;
      const row = this.table.anyUnder(version);
      if (!row) continue;
      const key = await this.provider.unwrap({ kekVersion: version, wrapped: row.wrapped! }, studyKeyContext(row.id));
      key.fill(0);
      checked++;
    }
    return checked;
  }

  /** Zeroes every cached key. */
  close(): void {
    this.cache.close();
  }

  private async create(studyUid: string): Promise<StudyKey | null> {
    const id = randomBytes(ID_BYTES);
    const key = newStudyKeyBytes();
    const context = studyKeyContext(id);
    try {
      let inserted: boolean;
      try {
        const w = await this.provider.wrap(key, context);
        inserted = this.table.insert(id, studyUid, w.kekVersion, w.wrapped, this.now());
      } catch (e) {
        if (!isClosedKekVersionError(e)) throw e;
        // A rotation closed the version we wrapped with; the provider re-reads its file on wrap, so once more.
        const w = await this.provider.wrap(key, context);
        try {
          inserted = this.table.insert(id, studyUid, w.kekVersion, w.wrapped, this.now());
        } catch (again) {
          if (isClosedKekVersionError(again)) throw new KeyUnavailableError(`KEK version ${w.kekVersion} was closed by a rotation`);
          throw again;
        }
      }
      if (!inserted) {
        key.fill(0);
        return null;
      }
    } catch (e) {
      key.fill(0);
      throw e;
    }
    this.cache.set(id.toString('hex'), key);
    return { id, key: Buffer.from(key) };
  }

  /**
   * The caller's own copy of the key. The cache zeroes its Buffer on eviction at any moment (another request's
   * get() may expire it, or a concurrent unwrap replace it), so nothing it holds is ever handed out: a cached
   * key is copied synchronously, and a fresh unwrap is shared by concurrent callers as a Buffer the cache never
   * sees, which each copies as soon as it resumes and which is zeroed after they all have (setImmediate runs
   * after the microtasks that resume them).
   */
  private async keyOf(row: StudyKeyRow): Promise<Buffer> {
    if (row.destroyed_at !== null || row.wrapped === null || row.kek_version === null) {
      throw new StudyKeyErasedError('the study key was destroyed: the study was erased');
    }
    const hex = row.id.toString('hex');
    const cached = this.cache.get(hex);
    if (cached) return Buffer.from(cached);
    let pending = this.unwrapping.get(hex);
    if (!pending) {
      pending = this.unwrap(row, hex).finally(() => this.unwrapping.delete(hex));
      pending.then(
        (shared) => setImmediate(() => shared.fill(0)),
        () => undefined,
      );
      this.unwrapping.set(hex, pending);
    }
    return Buffer.from(await pending);
  }

  private async unwrap(row: StudyKeyRow, hex: string): Promise<Buffer> {
    const key = await this.provider.unwrap({ kekVersion: row.kek_version!, wrapped: row.wrapped! }, studyKeyContext(row.id));
    // Erased while we were unwrapping: do not keep it.
    const now = this.table.byId(row.id);
    if (!now || now.destroyed_at !== null) {
      key.fill(0);
      throw new StudyKeyErasedError('the study key was destroyed: the study was erased');
    }
    this.cache.set(hex, Buffer.from(key));
    return key;
  }
}
