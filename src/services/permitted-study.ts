// The study-level check every retrieval makes before it touches anything else (issue 5): a study the principal
// may not read answers exactly like one that does not exist: same status, same message, and no other lookup
// (transfer syntax negotiation, frame numbers, bulk paths) happens first that could tell the two apart.

import { AppError } from '../errors.js';
import type { IndexStore, RetrieveScope } from '../index/index-store.js';
import type { Access } from '../policy/access.js';
import type { StudyAttributes } from '../policy/study-attributes.js';

/** What is asked of the study: read it (view: metadata, frames, rendered, bulk) or download whole objects. */
export type ReadPurpose = 'view' | 'download';

export const levelOfScope = (scope: RetrieveScope): string =>
  scope.sopInstanceUID !== undefined ? 'instance' : scope.seriesInstanceUID !== undefined ? 'series' : 'study';

export interface PermittedStudyOptions {
  /**
   * Was this scope purged (issue 6: LifecycleStore.isPurged, a tombstone)? Then a scope that is not there answers
   * 410 Gone instead of 404 (PS3.18 has no code for it; RFC 9110 15.5.11: gone for good, as dcm4chee answers for
   * deleted studies). Asked only when nothing live answers: a study the principal may not read is still a 404.
   */
  isPurged?: (scope: RetrieveScope) => boolean;
}

/** The error for a scope with nothing live in it: 410 when it was purged (isPurged), else 404 naming the level only. */
export function missingScope(scope: RetrieveScope, options: PermittedStudyOptions = {}): AppError {
  if (options.isPurged?.(scope)) return new AppError('GONE', `the ${levelOfScope(scope)} was deleted for good`);
  return new AppError('NOT_FOUND', `no such ${levelOfScope(scope)}`);
}

/** The study's attributes when the principal may read it; otherwise NOT_FOUND worded like a missing `scope` (GONE when purged). */
export function permittedStudy(
  index: IndexStore,
  access: Access,
  scope: RetrieveScope,
  purpose: ReadPurpose = 'view',
  options: PermittedStudyOptions = {},
): StudyAttributes {
  const study = index.studyAttributes(scope.studyInstanceUID);
  if (study === undefined) throw missingScope(scope, options);
  const allowed = purpose === 'download' ? access.allowsDownload(study) : access.allows('read', study);
  if (!allowed) throw new AppError('NOT_FOUND', `no such ${levelOfScope(scope)}`);
  return study;
}
