// PS3.4 / PS3.18 I.2.2 status codes used as FailureReason (0008,1197) and WarningReason (0008,1196).

export const FailureReason = {
  /** 0110 Processing failure (PS3.7 C.4.2). */
  PROCESSING_FAILURE: 0x0110,
  /** 0111 Duplicate SOP Instance (PS3.7 C). */
  DUPLICATE_SOP_INSTANCE: 0x0111,
  /** 0122 Referenced SOP Class not supported. */
  SOP_CLASS_NOT_SUPPORTED: 0x0122,
  /** 0124 Refused: not authorized. */
  NOT_AUTHORIZED: 0x0124,
  /** A700 Refused: out of resources. */
  OUT_OF_RESOURCES: 0xa700,
  /** A900 Error: data set does not match SOP Class (used for the study UID mismatch too, as Orthanc/MS do with A9xx/0110). */
  DATASET_DOES_NOT_MATCH_SOP_CLASS: 0xa900,
  /** C000 Error: cannot understand. */
  CANNOT_UNDERSTAND: 0xc000,
  /** C122 Referenced Transfer Syntax not supported (PS3.18 I.2.2 / PS3.4 Annex B). */
  TRANSFER_SYNTAX_NOT_SUPPORTED: 0xc122,
} as const;
export type FailureReasonCode = (typeof FailureReason)[keyof typeof FailureReason];

export const WarningReason = {
  /** B000 Coercion of data elements. */
  COERCION: 0xb000,
  /** B006 Elements discarded. */
  ELEMENTS_DISCARDED: 0xb006,
  /** B007 Data set does not match SOP Class. */
  DATASET_DOES_NOT_MATCH_SOP_CLASS: 0xb007,
} as const;
export type WarningReasonCode = (typeof WarningReason)[keyof typeof WarningReason];
