// What a route tells the audit trail about its request (issue 6 item 5; SECURITY.md 2, the trigger table).
// Every request gets a RequestAudit (plugins/audit-trail.ts decorates it); the route says which event the request
// is and which studies/patients it touched; the plugin writes the record(s) when the response has gone out, with
// the principal, the remote address and the outcome taken from the status code. Services stay HTTP-free: they
// return what they touched and the route passes it on.

import type { DcmCode } from './audit-record.js';

/**
 * The kinds of DICOMweb and admin events, each one PS3.15 A.5.3 message (docs/audit.md has the full table):
 * - query: QIDO-RS, 110112 Query E (object: the query, base64; patients of the returned page)
 * - retrieve: WADO-RS/WADO-URI (instances, metadata, frames, bulk data, rendered), 110104 Instances Transferred R,
 *   the server as source; a whole study or series of instances also 110102 Begin Transferring when it starts
 * - store: STOW-RS, 110104 Instances Transferred C (U when an instance was replaced), the server as destination
 * - remove: DELETE or reject (to the bin), 110103 Instances Accessed D
 * - restore: out of the bin, 110103 Instances Accessed U
 * - retention: keep-until change, legal hold placed/lifted, 110103 Instances Accessed U
 * - purge: 110105 Study Deleted D (written by the purge, not a request: see Auditor.purged)
 * - export: share-link creation, 110106 Export R
 * - share-login: share-link exchange for a session, 110114 User Authentication E (Login)
 * - security-config: policy, label, confidentiality, principal, key changes, 110113 Security Alert E (110129)
 * - audit-read: reading the audit log, 110101 Audit Log Used R
 */
export type AuditKind =
  | 'query'
  | 'retrieve'
  | 'store'
  | 'remove'
  | 'restore'
  | 'retention'
  | 'export'
  | 'share-login'
  | 'security-config'
  | 'audit-read';

/** A study a request touched. */
export interface AuditedStudy {
  studyInstanceUID: string;
  /** PatientID ('' when the study has none: no patient object then). */
  patientId: string;
  /** SOP classes and instance counts (PS3.15 A.5.3: the study object's description). */
  sopClasses?: Map<string, number>;
  accessionNumber?: string;
}

export interface RequestAudit {
  /**
   * Names this request's event; unset = the request is not audited by a route (see the plugin for 401/403s).
   * `description`: what changed, for security-config (the Security Alert subject's "Alert Description").
   */
  event(kind: AuditKind, options?: { query?: string; resource?: string; replaced?: boolean; bulk?: boolean; description?: string }): void;
  /** Adds a study (and its patient) as participant objects; repeated calls for one study merge. */
  study(study: AuditedStudy): void;
  /** Adds a patient without a study (a legal hold on a patient). */
  patient(patientId: string): void;
  /** A Security Alert (110113) to write besides the event: break-glass (110127), restricted function (110132)... */
  alert(type: DcmCode, description: string, study?: AuditedStudy): void;
  /** Overrides the outcome the status code gives (e.g. STOW 202 with some failures: 4). */
  outcome(outcome: 0 | 4 | 8 | 12, description?: string): void;
  /** Who acts when the request has no principal (a public route: the share-link exchange names `share:<id>`). */
  actor(userId: string): void;
}
