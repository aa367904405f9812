// Deletion and rejection (issue 6 item 3, SECURITY.md 5): DELETE of a study, series or instance (as Azure, Google
// and dcm4chee offer) and the IOCM rejection OHIF sends (POST .../reject/{code}^DCM, PS3.16 CID 7011). Both take
// the instances out of the live index at once (QIDO and WADO stop seeing them in the same transaction) and put
// them in the bin, restorable until the purge (purge.ts) removes them for good.
//
// Checks, in this order (each refusal says why; the route audits it as a Security Alert 110132):
// 1. the principal may read the study: else 404 worded like a missing one (permitted-study.ts; 410 when purged);
//    then the scope must have live instances (404 naming the level);
// 2. the policy permits `delete` on the study: else 403 "the policy does not permit delete";
// 3. no active legal hold on the study or its patient: else 403 naming the hold;
// 4. the keep-until date has passed (recomputed first, extend only: a rule made longer since applies now): else
//    403 "retained until YYYY-MM-DD (rule ...)". This holds for every code: the issue allows deletion only after
//    expiry, so 113039 ("Data Retention Period Expired", dcm4chee's A776 for the opposite) is never the way round it.
// Everything is synchronous: nothing can interleave between the checks and the transaction (one event loop, one
// SQLite connection); the hold check is repeated inside the transaction anyway, where the purge re-checks too.

import { AppError } from '../errors.js';
import type { IndexStore, RetrieveScope } from '../index/index-store.js';
import type { BinnedInstance, LegalHold, LifecycleStore, RemovalCode } from '../index/lifecycle-store.js';
import type { Access } from '../policy/access.js';
import { addPeriod } from '../policy/retention.js';
import { formatKeepUntil, isExpired, type KeepUntilDeps, recomputeKeepUntil } from './keep-until.js';
import { levelOfScope, type PermittedStudyOptions, permittedStudy, missingScope } from './permitted-study.js';

export interface RemoveDeps extends KeepUntilDeps {
  index: IndexStore;
  lifecycle: LifecycleStore;
}

export interface RemoveRequest {
  scope: RetrieveScope;
  /** 'delete' (DELETE) or an IOCM rejection code (PS3.16 CID 7011). */
  code: RemovalCode;
  access: Access;
  /** Free text kept with the removal (and in the tombstone). */
  reason?: string;
  now?: Date;
}

/** What was removed: the route passes it to the audit trail (110103 D). */
export interface RemovedStudy {
  studyInstanceUID: string;
  /** PatientID ('' when absent). */
  patientId: string;
  /** SOP Class UID -> instances removed. */
  sopClasses: Map<string, number>;
  instances: number;
  /** True when the study has no live instance left. */
  studyRemoved: boolean;
  /** From when the purge may remove them (now + retention.gracePeriod). */
  purgeAfter: Date;
}

/** A refused deletion: 403 with the reason, and the study for the Security Alert (the route audits it). */
export class RemovalRefusedError extends AppError {
  constructor(
    message: string,
    readonly study: { studyInstanceUID: string; patientId: string },
  ) {
    super('FORBIDDEN', message);
  }
}

/** How a refusal names holds: "legal hold "CASE-1" (id ...)" — names and ids only, never the target. */
export function describeHolds(holds: LegalHold[]): string {
  return holds.map((h) => `"${h.name}" (id ${h.id}, on the ${h.scope})`).join(', ');
}

export function removeInstances(deps: RemoveDeps, request: RemoveRequest): RemovedStudy {
  const { scope, access } = request;
  const now = request.now ?? new Date();
  const gone: PermittedStudyOptions = { isPurged: (s) => deps.lifecycle.isPurged(s) };
  const study = permittedStudy(deps.index, access, scope, 'view', gone);
  if (deps.index.listInstances(scope).length === 0) throw missingScope(scope, gone);
  const subject = { studyInstanceUID: study.studyInstanceUID, patientId: study.patientId };
  if (!access.allows('delete', study)) throw new RemovalRefusedError('the policy does not permit delete', subject);
  refuseIfHeld(deps.lifecycle, subject);
  const retention = recomputeKeepUntil(deps, scope.studyInstanceUID, now);
  if (!retention) throw missingScope(scope, gone);
  if (!isExpired(retention.keepUntil, now)) {
    const until = retention.keepUntil === 'indefinite' ? 'retained indefinitely' : `retained until ${formatKeepUntil(retention.keepUntil)}`;
    const prefix = request.code === '113039' ? 'rejection code 113039 (data retention period expired) before expiry: ' : '';
    throw new RemovalRefusedError(`${prefix}${until} (rule ${retention.rules.join(', ')})`, subject);
  }

  const purgeAfter = addPeriod(now, deps.retention.gracePeriod);
  const removal = { code: request.code, by: access.principal.id, at: now, purgeAfter, ...(request.reason ? { reason: request.reason } : {}) };
  const removed = deps.lifecycle.transaction(() => {
    refuseIfHeld(deps.lifecycle, subject);
    const out = deps.index.removeInstances(scope);
    // The bin holds one removal per SOP Instance UID: an instance removed, stored again and removed again before the
    // purge would otherwise lose track of the first copy's object. Refused; the transaction puts everything back.
    const earlier = deps.lifecycle.alreadyBinned(out.records.map((r) => r.sopInstanceUID));
    if (earlier.length > 0) {
      throw new AppError('CONFLICT', `${earlier.length} of these instances were removed before and are still in the bin: restore or purge that removal first`);
    }
    deps.lifecycle.addToBin(out.records.map((record): BinnedInstance => ({ record, removal, patientId: subject.patientId })));
    if (out.removedStudies.length > 0) deps.lifecycle.saveRemovedStudies(out.removedStudies);
    return out;
  });
  if (removed.records.length === 0) throw new AppError('NOT_FOUND', `no such ${levelOfScope(scope)}`);
  return {
    ...subject,
    sopClasses: countSopClasses(removed.records),
    instances: removed.records.length,
    studyRemoved: removed.removedStudies.some((s) => s.studyInstanceUID === scope.studyInstanceUID),
    purgeAfter,
  };
}

function refuseIfHeld(lifecycle: Pick<LifecycleStore, 'activeHoldsFor'>, subject: { studyInstanceUID: string; patientId: string }): void {
  const holds = lifecycle.activeHoldsFor(subject.studyInstanceUID, subject.patientId);
  if (holds.length > 0) throw new RemovalRefusedError(`under legal hold ${describeHolds(holds)}`, subject);
}

/** SOP Class UID -> number of instances (PS3.15 A.5.3: the study object's description). */
export function countSopClasses(records: readonly { sopClassUID: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.sopClassUID, (counts.get(r.sopClassUID) ?? 0) + 1);
  return counts;
}
