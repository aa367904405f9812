// Principal, StudyAttributes and RequestContext as the Cedar entities and context of policy/cedar-schema.ts.
// Every attribute is always present (SECURITY.md 6: '' / 0 / [] rather than absent), so a policy never errors
// on a missing attribute and a compiled SQL condition never meets NULL.

import type { Context, EntityJson, EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { Principal } from '../security/principal.js';
import type { RequestContext } from './access.js';
import { ARCHIVE_ENTITY_ID } from './cedar-schema.js';
import type { StudyAttributes } from './study-attributes.js';

export function userUid(principal: Principal): EntityUidJson {
  return { type: 'User', id: principal.id };
}

export function studyUid(study: StudyAttributes): EntityUidJson {
  return { type: 'Study', id: study.studyInstanceUID };
}

export const ARCHIVE_UID: EntityUidJson = Object.freeze({ type: 'Archive', id: ARCHIVE_ENTITY_ID });

export function actionUid(action: string): EntityUidJson {
  return { type: 'Action', id: action };
}

/** The principal as a `User` entity whose parents are its roles (`principal in Role::"radiology"`). */
export function userEntity(principal: Principal): EntityJson {
  const a = principal.attributes;
  return {
    uid: userUid(principal),
    attrs: {
      institution: a.institution,
      referringPhysician: a.referringPhysician,
      npi: a.npi,
      sites: [...a.sites],
      kind: principal.kind,
    },
    parents: [...new Set(principal.roles)].map((role) => ({ type: 'Role', id: role })),
  };
}

/** The study as a `Study` entity, id = its StudyInstanceUID. */
export function studyEntity(study: StudyAttributes): EntityJson {
  return {
    uid: studyUid(study),
    attrs: {
      studyInstanceUID: study.studyInstanceUID,
      institution: study.institution,
      referringPhysician: study.referringPhysician,
      modalities: [...study.modalities],
      accessionNumber: study.accessionNumber,
      patientId: study.patientId,
      studyDate: study.studyDate,
      labels: [...study.labels],
      confidentiality: study.confidentiality,
    },
    parents: [],
  };
}

export function archiveEntity(): EntityJson {
  return { uid: ARCHIVE_UID, attrs: {}, parents: [] };
}

/** The Cedar context: break-glass is on exactly when a reason was given. */
export function cedarContext(context: RequestContext): Context {
  return { breakGlass: context.breakGlassReason !== '', breakGlassReason: context.breakGlassReason };
}
