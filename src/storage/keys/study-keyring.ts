// Study keys (issue 4): one random 256-bit key per study, wrapped by the KEK (key-provider.ts) and stored in
// the index; the objects of a study are encrypted under keys that only its study key unwraps
// (encrypted-blob-store.ts). Destroying a study key erases the study everywhere, backups included
// (crypto-shredding), as long as backups of the wrapped keys age out.
//
// Unwrapped keys are cached briefly and zeroed when evicted. Callers get a copy: the cache may evict (and
// zero) its own Buffer at any moment, also while a caller is between its await and its use of the key. The
// caller zeroes its copy when its operation ends.

export interface StudyKey {
  /** Random 16-byte id, written into each encrypted object's header instead of any UID. */
  id: Buffer;
  /** 32 bytes, the caller's copy: zero it (`fill(0)`) when done. */
  key: Buffer;
}

export interface StudyKeyring {
  /** The study's key, created on first use (random, wrapped with the current KEK version, stored). */
  forStudy(studyInstanceUID: string): Promise<StudyKey>;
  /**
   * The key with this id (the caller's copy: zero it when done). Throws StudyKeyErasedError when it was destroyed, KeyUnavailableError when the
   * provider cannot unwrap it now, KeyIntegrityError when the wrapped key fails authentication.
   */
  byId(id: Buffer): Promise<Buffer>;
  /**
   * Destroys the study's key (idempotent): every object of the study becomes unreadable for good, and
   * forStudy() of it throws StudyKeyErasedError from then on (a study erased before it had a key included).
   */
  destroy(studyInstanceUID: string): Promise<void>;
  /** True once destroy() ran for the study (the index's record of the erasure; survives a restart). */
  isErased(studyInstanceUID: string): boolean;
}

/** The key was destroyed: the study was erased. */
export class StudyKeyErasedError extends Error {
  override name = 'StudyKeyErasedError';
}
