// Erasure of a study by crypto-shredding (issue 4, item 5; SECURITY.md 4): destroying the study key makes every
// object of the study unreadable for good (each object key is wrapped by the study key, encrypted-staged-blob.ts),
// wherever the ciphertext lives, backups included. The index records the erasure (study_keys.destroyed_at), so
// reads answer 410 Gone and a STOW of the study is refused, also after a restart and in other processes.
//
// Knows nothing about HTTP. Retention and DELETE (a later issue) call it; they also remove the study's index
// rows and blobs, which this operation leaves in place: until then QIDO and Retrieve Metadata, which read the
// index and no blob, still answer for the study.

import { AppError } from '../errors.js';
import { isValidUid } from '../dicom/uid.js';
import type { StudyKeyring } from '../storage/keys/study-keyring.js';

export interface EraseStudyDeps {
  keyring: Pick<StudyKeyring, 'destroy' | 'isErased'>;
}

export interface EraseStudyResult {
  /** True when the study had been erased before this call (the operation is idempotent). */
  alreadyErased: boolean;
}

/**
 * Destroys the study's key. A study the archive has never seen is erased too (a tombstone): a later STOW of it
 * is refused instead of silently starting it again. Throws what the keyring throws (the key service down:
 * KeyUnavailableError), and fails loudly if the keyring does not report the study erased afterwards.
 */
export async function destroyStudyKey(deps: EraseStudyDeps, studyInstanceUID: string): Promise<EraseStudyResult> {
  if (!isValidUid(studyInstanceUID)) throw new AppError('INVALID_UID', 'StudyInstanceUID is not a valid UID (PS3.5 9.1)');
  const alreadyErased = deps.keyring.isErased(studyInstanceUID);
  await deps.keyring.destroy(studyInstanceUID);
  if (!deps.keyring.isErased(studyInstanceUID)) throw new Error('the study key was destroyed but the keyring does not report the study erased');
  return { alreadyErased };
}
