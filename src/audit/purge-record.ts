// The purge's audit records (issue 6 item 4; SECURITY.md 2 and 5): one PS3.15 A.5.3.8 "DICOM Study Deleted"
// (110105, action D) per study a purge run removed instances of. The active participant is the removing process
// (the purger: 'retention-sweep' or a principal id, the requestor); the participant objects are the study (its SOP
// classes and instance counts as the description; who removed the instances, with which code and reason, as
// details) and its patient. Records carry the PatientID (PHI): the audit log only.

import {
  type AuditRecord,
  type AuditSource,
  AuditEventId,
  auditRecord,
  patientObject,
  type ParticipantObject,
  studyDescription,
  studyObject,
} from './audit-record.js';
import type { PurgedStudy } from '../services/purge.js';

/** ParticipantObjectDetail types of the study object. */
export const PURGE_DETAIL = { removedBy: 'RemovedBy', removalCode: 'RemovalCode', removalReason: 'RemovalReason', keyDestroyed: 'StudyKeyDestroyed' } as const;

export function studyDeletedRecord(study: PurgedStudy, purger: string, source: AuditSource, now = new Date()): AuditRecord {
  const details: NonNullable<ParticipantObject['details']> = [];
  for (const r of study.removals) {
    details.push({ type: PURGE_DETAIL.removedBy, value: r.by }, { type: PURGE_DETAIL.removalCode, value: r.code });
    if (r.reason !== undefined) details.push({ type: PURGE_DETAIL.removalReason, value: r.reason });
  }
  details.push({ type: PURGE_DETAIL.keyDestroyed, value: study.keyDestroyed ? 'true' : 'false' });
  const objects: ParticipantObject[] = [{ ...studyObject(study.studyInstanceUID, studyDescription(study.sopClasses)), details }];
  if (study.patientId !== '') objects.push(patientObject(study.patientId));
  return auditRecord(
    {
      eventId: AuditEventId.studyDeleted,
      action: 'D',
      outcome: 0,
      participants: [{ userId: purger, userIsRequestor: true }],
      objects,
    },
    source,
    now,
  );
}

/** One record per study of a purge report (a dry run purged nothing: no records). */
export function purgeRecords(report: { dryRun: boolean; studies: PurgedStudy[] }, purger: string, source: AuditSource, now = new Date()): AuditRecord[] {
  return report.dryRun ? [] : report.studies.map((s) => studyDeletedRecord(s, purger, source, now));
}
