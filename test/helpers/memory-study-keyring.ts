// A StudyKeyring in memory for tests (the real one, wrapped by the KEK and stored in the index, is
// src/storage/keys/). Real random keys; destroy() zeroes and forgets the key, so reads fail like after a
// crypto-shred. An id it never issued is reported as erased: once a key's row is gone the two look alike.
// Erasure behaves as in SqliteStudyKeyring: remembered (isErased), final (forStudy refuses the study).
import { randomBytes } from 'node:crypto';
import { KeyUnavailableError } from '../../src/storage/keys/key-provider.js';
import { type StudyKey, type StudyKeyring, StudyKeyErasedError } from '../../src/storage/keys/study-keyring.js';

export class MemoryStudyKeyring implements StudyKeyring {
  private readonly byStudy = new Map<string, StudyKey>();
  private readonly byHexId = new Map<string, Buffer>();
  private readonly erased = new Set<string>();
  /** Set to make every call fail as if the key provider were down. */
  unavailable = false;

  async forStudy(studyInstanceUID: string): Promise<StudyKey> {
    if (this.unavailable) throw new KeyUnavailableError('key provider unavailable');
    if (this.erased.has(studyInstanceUID)) throw new StudyKeyErasedError('the study key was destroyed: the study was erased');
    let entry = this.byStudy.get(studyInstanceUID);
    if (!entry) {
      entry = { id: randomBytes(16), key: randomBytes(32) };
      this.byStudy.set(studyInstanceUID, entry);
      this.byHexId.set(entry.id.toString('hex'), entry.key);
    }
    return { id: Buffer.from(entry.id), key: Buffer.from(entry.key) }; // the caller's copy, as the interface says
  }

  async byId(id: Buffer): Promise<Buffer> {
    if (this.unavailable) throw new KeyUnavailableError('key provider unavailable');
    const key = this.byHexId.get(id.toString('hex'));
    if (!key) throw new StudyKeyErasedError('study key erased');
    return Buffer.from(key);
  }

  async destroy(studyInstanceUID: string): Promise<void> {
    this.erased.add(studyInstanceUID);
    const entry = this.byStudy.get(studyInstanceUID);
    if (!entry) return;
    entry.key.fill(0);
    this.byStudy.delete(studyInstanceUID);
    this.byHexId.delete(entry.id.toString('hex'));
  }

  isErased(studyInstanceUID: string): boolean {
    return this.erased.has(studyInstanceUID);
  }
}
