// An audit record (audit-record.ts, the JSON model the log stores) as the DICOM Audit Message XML that the
// syslog export sends (PS3.15 A.5.1 via audit-xml.ts, A.6). Field by field, so that the two models may drift
// apart (the XML input has room for SOP classes and accession numbers the record does not carry yet) without
// this mapping silently passing a field through or dropping one.

import type { AuditRecord, ParticipantObject } from './audit-record.js';
import { type AuditMessageInput, type ParticipantObjectInput, auditMessageToXml } from './audit-xml.js';

function objectInput(o: ParticipantObject): ParticipantObjectInput {
  return {
    id: o.id,
    typeCode: o.typeCode,
    roleCode: o.roleCode,
    idTypeCode: o.idTypeCode,
    name: o.name,
    // Stored as base64 already: audit-xml.ts writes a string query or detail value as given.
    query: o.query,
    details: o.details?.map((d) => ({ type: d.type, value: d.value })),
    description: o.description,
  };
}

export function auditRecordToMessage(record: AuditRecord): AuditMessageInput {
  return {
    eventId: record.eventId,
    action: record.action,
    dateTime: record.dateTime,
    outcome: record.outcome,
    outcomeDescription: record.outcomeDescription,
    eventTypes: record.eventTypes,
    participants: record.participants.map((p) => ({
      userId: p.userId,
      alternativeUserId: p.alternativeUserId,
      userName: p.userName,
      userIsRequestor: p.userIsRequestor,
      roleIdCode: p.roleIdCode,
      networkAccessPoint: p.networkAccessPoint,
    })),
    source: { id: record.source.id, enterpriseSiteId: record.source.enterpriseSiteId, typeCode: record.source.typeCode },
    objects: record.objects.map(objectInput),
  };
}

/** The record as one PS3.15 A.5 XML document (every value escaped by audit-xml.ts). */
export function auditRecordToXml(record: AuditRecord): string {
  return auditMessageToXml(auditRecordToMessage(record));
}
