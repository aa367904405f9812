// The Store Instances Response Module (PS3.18 10.5.3, Annex I / Table I.2-1) and the STOW-RS status code
// (PS3.18 10.5.3 Table 10.5.3-1) computed from per-instance outcomes.

import type { DicomJsonDataset } from '../dicom/json-model.js';
import type { FailureReasonCode, WarningReasonCode } from '../dicom/status-codes.js';
import * as T from '../dicom/tags.js';
import type { ResourceUrls } from './resource-urls.js';

export type InstanceOutcome =
  | {
      status: 'stored';
      sopClassUID: string;
      sopInstanceUID: string;
      studyInstanceUID: string;
      seriesInstanceUID: string;
      /** True when the same bytes were already stored (idempotent re-STOW: success, nothing written). */
      alreadyStored: boolean;
      /** True when it replaced an instance stored with other bytes (duplicate policy 'replace'; audit: action U). */
      replaced?: true;
      /** Its preamble held a program header and was stored as zeros (SECURITY.md 8 case 26). */
      preambleZeroed?: 'executable';
      warning?: WarningReasonCode;
    }
  | {
      status: 'failed';
      sopClassUID?: string;
      sopInstanceUID?: string;
      reason: FailureReasonCode;
      /** PHI-free explanation (tags and offsets, never values). */
      detail: string;
    };

/**
 * Private block for the failure detail, as the Google Healthcare API does with (0009,0097): an integration
 * engineer needs to know *why* a part failed, and FailureReason alone says little ("C000 cannot understand").
 */
export const PRIVATE_CREATOR = 'DICOMVAULT';

/**
 * 200 all stored; 202 some stored or stored with warnings; 409 none stored (PS3.18 10.5.3: "none of the
 * instances were stored" with a conflict such as a Study UID mismatch or unsupported class).
 * A request without any instance is a 400 decided by the caller before it gets here.
 */
export function storeStatus(outcomes: InstanceOutcome[]): 200 | 202 | 409 {
  const stored = outcomes.filter((o) => o.status === 'stored');
  if (stored.length === 0) return 409;
  if (stored.length < outcomes.length || stored.some((o) => o.status === 'stored' && o.warning !== undefined)) return 202;
  return 200;
}

const uiOrEmpty = (v: string | undefined) => (v ? { vr: 'UI', Value: [v] } : { vr: 'UI' });

export function storeResponse(outcomes: InstanceOutcome[], urls: ResourceUrls, requestStudy?: string): DicomJsonDataset {
  const referenced: DicomJsonDataset[] = [];
  const failed: DicomJsonDataset[] = [];
  for (const o of outcomes) {
    if (o.status === 'stored') {
      const item: DicomJsonDataset = {
        [T.ReferencedSOPClassUID]: { vr: 'UI', Value: [o.sopClassUID] },
        [T.ReferencedSOPInstanceUID]: { vr: 'UI', Value: [o.sopInstanceUID] },
        [T.RetrieveURL]: { vr: 'UR', Value: [urls.instance(o.studyInstanceUID, o.seriesInstanceUID, o.sopInstanceUID)] },
      };
      if (o.warning !== undefined) item[T.WarningReason] = { vr: 'US', Value: [o.warning] };
      referenced.push(item);
    } else {
      // Keys in ascending tag order (PS3.18 F.2.1): group 0008 before the private group 0009.
      failed.push({
        [T.ReferencedSOPClassUID]: uiOrEmpty(o.sopClassUID),
        [T.ReferencedSOPInstanceUID]: uiOrEmpty(o.sopInstanceUID),
        [T.FailureReason]: { vr: 'US', Value: [o.reason] },
        '00090010': { vr: 'LO', Value: [PRIVATE_CREATOR] },
        '00091001': { vr: 'LT', Value: [o.detail] },
      });
    }
  }
  // RetrieveURL (0008,1190) is type 2: the study's URL when the stored instances belong to one study.
  const studies = new Set(outcomes.flatMap((o) => (o.status === 'stored' ? [o.studyInstanceUID] : [])));
  const study = requestStudy ?? (studies.size === 1 ? [...studies][0] : undefined);
  const response: DicomJsonDataset = {
    [T.RetrieveURL]: study && (studies.size > 0 || requestStudy) ? { vr: 'UR', Value: [urls.study(study)] } : { vr: 'UR' },
  };
  if (failed.length > 0) response[T.FailedSOPSequence] = { vr: 'SQ', Value: failed };
  if (referenced.length > 0) response[T.ReferencedSOPSequence] = { vr: 'SQ', Value: referenced };
  return response;
}
