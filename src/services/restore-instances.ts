// Restore out of the bin (issue 6 item 3): what a DELETE or a rejection removed comes back exactly as it was
// (same records, same blobs, same study key) until the purge has removed it. The grace period (retention.gracePeriod)
// is how long the purge waits at least; an instance the purge has not reached yet (or that a legal hold keeps in the
// bin) can still be restored. The study's administrator settings (labels, confidentiality) come back with it: a
// restored confidential study stays confidential.
//
// An instance stored again meanwhile (same SOP Instance UID, live now) is not overwritten: it stays in the bin,
// reported as skipped, and the purge removes it in time. Knows nothing about HTTP; the route allows admins only.

import { AppError } from '../errors.js';
import type { IndexStore, RetrieveScope } from '../index/index-store.js';
import type { LifecycleStore } from '../index/lifecycle-store.js';
import { countSopClasses } from './remove-instances.js';
import { levelOfScope } from './permitted-study.js';

export interface RestoreDeps {
  index: IndexStore;
  lifecycle: LifecycleStore;
}

export interface RestoredStudy {
  studyInstanceUID: string;
  /** PatientID at removal ('' when absent). */
  patientId: string;
  /** SOP Class UID -> instances restored. */
  sopClasses: Map<string, number>;
  restored: number;
  /** SOP Instance UIDs left in the bin: stored again since (the live one wins). */
  skipped: string[];
}

export function restoreInstances(deps: RestoreDeps, scope: RetrieveScope): RestoredStudy {
  return deps.lifecycle.transaction(() => {
    const binned = deps.lifecycle.listBin(scope);
    if (binned.length === 0) throw new AppError('NOT_FOUND', `nothing of this ${levelOfScope(scope)} is in the bin`);
    const studyWasLive = deps.index.studyAttributes(scope.studyInstanceUID) !== undefined;
    // 'reject': an instance stored again meanwhile (other bytes) is never replaced by the old one.
    const outcomes = deps.index.commit(
      binned.map((b) => b.record),
      'reject',
    );
    const restored = binned.filter((_, i) => outcomes[i]?.kind === 'stored');
    const skipped = binned.filter((_, i) => outcomes[i]?.kind !== 'stored').map((b) => b.record.sopInstanceUID);
    deps.lifecycle.removeFromBin(restored.map((b) => b.record.sopInstanceUID));
    if (restored.length > 0) reapplySettings(deps, scope.studyInstanceUID, studyWasLive);
    return {
      studyInstanceUID: scope.studyInstanceUID,
      patientId: binned[0]!.patientId,
      sopClasses: countSopClasses(restored.map((b) => b.record)),
      restored: restored.length,
      skipped,
    };
  });
}

/**
 * The settings kept when the study was removed entirely (LifecycleStore.saveRemovedStudies). A study that came back
 * to life meanwhile (a new STOW) keeps what it has and gains the old labels; its confidentiality is kept unless it
 * has none.
 */
function reapplySettings(deps: RestoreDeps, studyInstanceUID: string, studyWasLive: boolean): void {
  const saved = deps.lifecycle.takeRemovedStudy(studyInstanceUID);
  if (!saved) return;
  const now = deps.index.studyAttributes(studyInstanceUID);
  if (!now) return;
  const labels = studyWasLive ? [...new Set([...now.labels, ...saved.labels])].sort() : [...saved.labels].sort();
  deps.index.setStudyLabels(studyInstanceUID, labels);
  if (!studyWasLive || now.confidentiality === '') deps.index.setStudyConfidentiality(studyInstanceUID, saved.confidentiality);
}
