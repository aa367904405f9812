// Path parameters of the Studies Service (PS3.18 10.3): UIDs are checked before any lookup, so a value such
// as "../.." or a 200-character string is a 400, never a filesystem or index probe (SECURITY.md case 12).

import { AppError } from '../errors.js';
import { isValidUid } from '../dicom/uid.js';
import type { RetrieveScope } from '../index/index-store.js';

export function uidParam(value: string | undefined, name: string): string {
  if (value === undefined || !isValidUid(value)) throw new AppError('INVALID_UID', `${name} is not a valid UID`);
  return value;
}

/** The validated {study}/{series}/{instance} of a Studies Service URL (PS3.18 10.4.1): what a retrieve names. */
export function retrieveScope(params: { study?: string; series?: string; instance?: string }): RetrieveScope {
  const scope: RetrieveScope = { studyInstanceUID: uidParam(params.study, 'StudyInstanceUID') };
  if (params.series !== undefined) scope.seriesInstanceUID = uidParam(params.series, 'SeriesInstanceUID');
  if (params.instance !== undefined) scope.sopInstanceUID = uidParam(params.instance, 'SOPInstanceUID');
  return scope;
}

/** The same for the instance-level resources (frames, bulk data), where all three UIDs are in the path. */
export function instanceScope(params: { study: string; series: string; instance: string }): Required<RetrieveScope> {
  return retrieveScope(params) as Required<RetrieveScope>;
}
