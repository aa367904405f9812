// Path parameters of the Studies Service (PS3.18 10.3): UIDs are checked before any lookup, so a value such
// as "../.." or a 200-character string is a 400, never a filesystem or index probe (SECURITY.md case 12).

import { AppError } from '../errors.js';
import { isValidUid } from '../dicom/uid.js';

export function uidParam(value: string | undefined, name: string): string {
  if (value === undefined || !isValidUid(value)) throw new AppError('INVALID_UID', `${name} is not a valid UID`);
  return value;
}
