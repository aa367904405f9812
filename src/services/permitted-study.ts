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

/** The study's attributes when the principal may read it; otherwise NOT_FOUND worded like a missing `scope`. */
export function permittedStudy(index: IndexStore, access: Access, scope: RetrieveScope, purpose: ReadPurpose = 'view'): StudyAttributes {
  const study = index.studyAttributes(scope.studyInstanceUID);
  const allowed = study !== undefined && (purpose === 'download' ? access.allowsDownload(study) : access.allows('read', study));
  if (!allowed) throw new AppError('NOT_FOUND', `no such ${levelOfScope(scope)}`);
  return study;
}
