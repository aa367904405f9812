// Study keys (issue 4): one random 256-bit key per study, wrapped by the KEK (key-provider.ts) and stored in
// the index; the objects of a study are encrypted under keys that only its study key unwraps
// (encrypted-blob-store.ts). Destroying a study key erases the study everywhere, backups included
// (crypto-shredding), as long as backups of the wrapped keys age out.
//
// Unwrapped keys are cached briefly and zeroed when evicted; callers use a key within one operation and
// keep no reference to it.

export interface StudyKey {
  /** Random 16-byte id, written into each encrypted object's header instead of any UID. */
  id: Buffer;
  /** 32 bytes. Valid until the caller's operation ends; do not keep. */
  key: Buffer;
}

export interface StudyKeyring {
  /** The study's key, created on first use (random, wrapped with the current KEK version, stored). */
  forStudy(studyInstanceUID: string): Promise<StudyKey>;
  /**
   * The key with this id. Throws StudyKeyErasedError when it was destroyed, KeyUnavailableError when the
   * provider cannot unwrap it now, KeyIntegrityError when the wrapped key fails authentication.
   */
  byId(id: Buffer): Promise<Buffer>;
  /** Destroys the study's key (idempotent): every object of the study becomes unreadable for good. */
  destroy(studyInstanceUID: string): Promise<void>;
}

/** The key was destroyed: the study was erased. */
export class StudyKeyErasedError extends Error {
  override name = 'StudyKeyErasedError';
}
