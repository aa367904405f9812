// Failures found by the pre-scan: thrown inside the walk, turned into ParseFailure values by scanPart10.
// Messages are for the client and the log, so they name tags and offsets, never values (no PHI).

import { FailureReason, type FailureReasonCode } from './status-codes.js';

export class ScanError extends Error {
  constructor(
    readonly reason: FailureReasonCode,
    detail: string,
  ) {
    super(detail);
  }
}

/** The object is malformed (PS3.4 C000 "Cannot understand"). */
export const cannot = (detail: string) => new ScanError(FailureReason.CANNOT_UNDERSTAND, detail);
/** The object crosses one of our caps (PS3.4 A700 "Refused: out of resources"). */
export const tooBig = (detail: string) => new ScanError(FailureReason.OUT_OF_RESOURCES, detail);

/** "(GGGG,EEEE)", the way PS3.6 writes a tag. */
export function formatTag(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}
