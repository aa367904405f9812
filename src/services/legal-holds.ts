// Legal holds (issue 6 item 2, SECURITY.md 5): a named hold on a patient (PatientID: all their studies, future ones
// too) or on one study blocks every deletion path (DELETE, rejection, the purge) whatever the dates say, until it is
// lifted. Holds are never deleted: a lifted hold keeps who lifted it, when and why. Every change is audited by the
// route (110103 U, kind 'retention'). Knows nothing about HTTP; the admin API allows admins only.

import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';
import { isValidUid } from '../dicom/uid.js';
import type { HoldScope, LegalHold, LifecycleStore } from '../index/lifecycle-store.js';

export interface HoldsDeps {
  lifecycle: Pick<LifecycleStore, 'placeHold' | 'liftHold' | 'getHold' | 'listHolds'>;
}

export interface PlaceHoldRequest {
  name: string;
  scope: HoldScope;
  /** PatientID (scope patient) or StudyInstanceUID (scope study). */
  target: string;
  reason: string;
  by: string;
  now?: Date;
}

/** 128 random bits, URL-safe: a hold id says nothing about its target. */
export const newHoldId = (): string => randomBytes(16).toString('base64url');

/** PatientID is LO (PS3.5 6.2: at most 64 characters, no backslash or control characters). */
const PATIENT_ID = /^[^\\\u0000-\u001f]{1,64}$/;

export function placeHold(deps: HoldsDeps, request: PlaceHoldRequest): LegalHold {
  if (request.scope === 'study' && !isValidUid(request.target)) throw new AppError('INVALID_UID', 'target: a study hold needs a StudyInstanceUID');
  if (request.scope === 'patient' && !PATIENT_ID.test(request.target)) throw new AppError('BAD_REQUEST', 'target: a patient hold needs a PatientID (1-64 characters)');
  const hold: LegalHold = {
    id: newHoldId(),
    name: request.name,
    scope: request.scope,
    target: request.target,
    reason: request.reason,
    placedBy: request.by,
    placedAt: request.now ?? new Date(),
  };
  deps.lifecycle.placeHold(hold);
  return hold;
}

/** Lifts an active hold: 404 when there is no such hold, 409 when it was lifted before. */
export function liftHold(deps: HoldsDeps, id: string, by: string, reason: string, now: Date = new Date()): LegalHold {
  const lifted = deps.lifecycle.liftHold(id, by, reason, now);
  if (lifted) return lifted;
  const hold = deps.lifecycle.getHold(id);
  if (!hold) throw new AppError('NOT_FOUND', 'no such legal hold');
  throw new AppError('CONFLICT', `the legal hold was already lifted on ${hold.liftedAt?.toISOString() ?? 'an earlier date'}`);
}

export function listHolds(deps: HoldsDeps, filter: { scope?: HoldScope; target?: string; includeLifted?: boolean } = {}): LegalHold[] {
  return deps.lifecycle.listHolds(filter);
}
