// The audit record (issue 6 item 5; SECURITY.md 2): DICOM PS3.15 A.5 "Audit Message" fields
// (https://dicom.nema.org/medical/dicom/current/output/html/part15.html#sect_A.5) as JSON, one object per
// event. The audit log (audit-log.ts) stores it encrypted and hash-chained; a syslog exporter turns the same
// object into the A.5 XML. Records carry PHI (patient IDs and names): they never go to the application log.
// The builders write members in RFC 8785 order (sorted by name) rather than in A.5's: the audit log's
// canonical form (canonical-json.ts) then has nothing to sort, on every request.

/** A coded value (PS3.15 A.5 "EventID", "EventTypeCode", "RoleIDCode", ...). */
export interface Code {
  code: string;
  codeSystem: string;
  displayName: string;
}

/** A DCM code (PS3.16 CID 400-405 / PS3.15 A.5.3). */
export interface DcmCode extends Code {
  codeSystem: 'DCM';
}

/** EventActionCode: Create, Read, Update, Delete, Execute. */
export type EventAction = 'C' | 'R' | 'U' | 'D' | 'E';
/** EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure, 12 major failure. */
export type EventOutcome = 0 | 4 | 8 | 12;

/** NetworkAccessPointTypeCode: 1 machine name, 2 IP address. */
export interface NetworkAccessPoint {
  typeCode: 1 | 2;
  id: string;
}

/** ActiveParticipant (PS3.15 A.5.2): the requesting principal, the server itself, the peer node. */
export interface ActiveParticipant {
  /** The unique principal id (certificate fingerprint / SAN, or OIDC `sub`): HIPAA 164.312(a)(2)(i). */
  userId: string;
  alternativeUserId?: string;
  userName?: string;
  userIsRequestor: boolean;
  roleIdCode?: DcmCode;
  networkAccessPoint?: NetworkAccessPoint;
}

/** AuditSourceIdentification: TypeCode 4 = application server process. */
export interface AuditSource {
  id: string;
  enterpriseSiteId?: string;
  typeCode: '4';
}

/** ParticipantObjectTypeCode: 1 person, 2 system object, 3 organization, 4 other. */
export type ParticipantObjectType = 1 | 2 | 3 | 4;

/** ParticipantObjectIdentification (PS3.15 A.5.2.5): a patient, a study, a query, ... */
export interface ParticipantObject {
  typeCode: ParticipantObjectType;
  /** ParticipantObjectTypeCodeRole: 1 patient, 3 report (study), 24 query, ... */
  roleCode?: number;
  idTypeCode: Code;
  id: string;
  /** ParticipantObjectName: the patient's name (PHI). */
  name?: string;
  /** ParticipantObjectQuery: the query, base64. */
  query?: string;
  /** ParticipantObjectDescription (for a study: SOP classes and instance counts, accession numbers). */
  description?: string;
  details?: { type: string; value: string }[];
}

/** One audit event: PS3.15 A.5 EventIdentification + participants + source + objects. */
export interface AuditRecord {
  eventId: DcmCode;
  action: EventAction;
  /** EventDateTime, ISO 8601 with offset (UTC "Z"). */
  dateTime: string;
  outcome: EventOutcome;
  /** EventOutcomeDescription (why it failed: no PHI needed here). */
  outcomeDescription?: string;
  eventTypes?: Code[];
  participants: ActiveParticipant[];
  source: AuditSource;
  objects: ParticipantObject[];
}

const dcm = (code: string, displayName: string): DcmCode => ({ code, codeSystem: 'DCM', displayName });

/** EventID values (SECURITY.md 2, the trigger table; PS3.15 A.5.3.x). */
export const AuditEventId = {
  applicationActivity: dcm('110100', 'Application Activity'),
  auditLogUsed: dcm('110101', 'Audit Log Used'),
  beginTransferringInstances: dcm('110102', 'Begin Transferring DICOM Instances'),
  instancesAccessed: dcm('110103', 'DICOM Instances Accessed'),
  instancesTransferred: dcm('110104', 'DICOM Instances Transferred'),
  studyDeleted: dcm('110105', 'DICOM Study Deleted'),
  export: dcm('110106', 'Export'),
  query: dcm('110112', 'Query'),
  securityAlert: dcm('110113', 'Security Alert'),
  userAuthentication: dcm('110114', 'User Authentication'),
} as const satisfies Record<string, DcmCode>;

/** EventTypeCode values (SECURITY.md 2; PS3.16 CID 401 and CID 403). */
export const AuditEventType = {
  applicationStart: dcm('110120', 'Application Start'),
  applicationStop: dcm('110121', 'Application Stop'),
  login: dcm('110122', 'Login'),
  logout: dcm('110123', 'Logout'),
  nodeAuthentication: dcm('110126', 'Node Authentication'),
  emergencyOverrideStarted: dcm('110127', 'Emergency Override Started'),
  securityConfiguration: dcm('110129', 'Security Configuration'),
  objectSecurityAttributesChanged: dcm('110135', 'Object Security Attributes Changed'),
  useOfRestrictedFunction: dcm('110132', 'Use of a restricted function'),
  securityRolesChanged: dcm('110136', 'Security Roles Changed'),
  userSecurityAttributesChanged: dcm('110137', 'User security Attributes Changed'),
  emergencyOverrideStopped: dcm('110138', 'Emergency Override Stopped'),
} as const satisfies Record<string, DcmCode>;

/** RoleIDCode values of ActiveParticipant (PS3.16 CID 402). */
export const AuditRoleId = {
  application: dcm('110150', 'Application'),
  destination: dcm('110152', 'Destination Role ID'),
  source: dcm('110153', 'Source Role ID'),
} as const satisfies Record<string, DcmCode>;

/** ParticipantObjectIDTypeCode values. */
export const ParticipantObjectIdType = {
  /** RFC 3881 "Patient Number". */
  patientNumber: { code: '2', codeSystem: 'RFC-3881', displayName: 'Patient Number' },
  studyInstanceUid: dcm('110180', 'Study Instance UID'),
  sopClassUid: dcm('110181', 'SOP Class UID'),
} as const satisfies Record<string, Code>;

/** The patient as a participant object: type 1 (person), role 1 (patient), IDType 2. */
export function patientObject(patientId: string, patientName?: string): ParticipantObject {
  // One literal per shape, not a conditional spread: a spread costs ~40x the object (bench/README.md, the audit trail).
  return patientName === undefined
    ? { id: patientId, idTypeCode: ParticipantObjectIdType.patientNumber, roleCode: 1, typeCode: 1 }
    : { id: patientId, idTypeCode: ParticipantObjectIdType.patientNumber, name: patientName, roleCode: 1, typeCode: 1 };
}

/** A study: type 2 (system object), role 3 (report), IDType 110180. */
export function studyObject(studyInstanceUid: string, description?: string): ParticipantObject {
  return description === undefined
    ? { id: studyInstanceUid, idTypeCode: ParticipantObjectIdType.studyInstanceUid, roleCode: 3, typeCode: 2 }
    : { description, id: studyInstanceUid, idTypeCode: ParticipantObjectIdType.studyInstanceUid, roleCode: 3, typeCode: 2 };
}

/**
 * A QIDO query (PS3.15 A.5.3.2 Query): type 2, role 24 (query), IDType 110181 with the SOP class UID (or the
 * QIDO resource name, e.g. "SearchForStudies"), the query string as ParticipantObjectQuery in base64.
 */
export function queryObject(sopClassOrResource: string, query: string): ParticipantObject {
  return {
    id: sopClassOrResource,
    idTypeCode: ParticipantObjectIdType.sopClassUid,
    query: Buffer.from(query, 'utf8').toString('base64'),
    roleCode: 24,
    typeCode: 2,
  };
}

/**
 * Application Activity (PS3.15 A.5.3.1): 110100, action E, with the type (Application Start / Stop); the
 * participant is the application itself (RoleIDCode 110150). No objects, no PHI.
 */
export function applicationActivityRecord(type: DcmCode, source: AuditSource, now = new Date()): AuditRecord {
  return {
    action: 'E',
    dateTime: now.toISOString(),
    eventId: AuditEventId.applicationActivity,
    eventTypes: [type],
    objects: [],
    outcome: 0,
    participants: [{ roleIdCode: AuditRoleId.application, userId: 'dicomvault', userIsRequestor: false }],
    source,
  };
}

/** RFC 3881 ParticipantObjectIDTypeCode 12 (URI): the subject of a Security Alert. */
export const URI_ID_TYPE: Code = { code: '12', codeSystem: 'RFC-3881', displayName: 'URI' };

/**
 * A study's ParticipantObjectDescription (PS3.15 A.5.3: SOP classes with their instance counts, accession):
 * "SOP classes: 1.2.840.10008.5.1.4.1.1.2 x3, 1.2.840.10008.5.1.4.1.1.4 x1; accession: A123". Undefined when
 * there is nothing to say.
 */
export function studyDescription(sopClasses?: ReadonlyMap<string, number>, accessionNumber?: string): string | undefined {
  let classes = '';
  if (sopClasses) for (const [uid, n] of sopClasses) classes += `${classes === '' ? 'SOP classes: ' : ', '}${uid} x${n}`;
  if (!accessionNumber) return classes === '' ? undefined : classes;
  return classes === '' ? `accession: ${accessionNumber}` : `${classes}; accession: ${accessionNumber}`;
}

/**
 * The subject of a Security Alert (PS3.15 A.5.3.11 "Alert Subject"): type 2, IDType URI with what was asked
 * for (e.g. "GET /dicomweb/studies/:study"), the alert's description as the "Alert Description" detail.
 */
export function alertSubjectObject(uri: string, description: string): ParticipantObject {
  return { details: [{ type: 'Alert Description', value: description }], id: uri, idTypeCode: URI_ID_TYPE, typeCode: 2 };
}

/** What every audit record has; the builders below and auditor.ts fill it in. */
export interface AuditRecordFields {
  eventId: DcmCode;
  action: EventAction;
  outcome: EventOutcome;
  outcomeDescription?: string;
  eventTypes?: Code[];
  participants: ActiveParticipant[];
  objects?: ParticipantObject[];
}

/** An AuditRecord with its date-time (UTC) and source; optional fields are left out when undefined. */
export function auditRecord(fields: AuditRecordFields, source: AuditSource, now = new Date()): AuditRecord {
  // Members added one by one in RFC 8785 order: optional ones without a conditional spread (see patientObject).
  const record = { action: fields.action, dateTime: now.toISOString(), eventId: fields.eventId } as AuditRecord;
  if (fields.eventTypes !== undefined) record.eventTypes = fields.eventTypes;
  record.objects = fields.objects ?? [];
  record.outcome = fields.outcome;
  if (fields.outcomeDescription !== undefined) record.outcomeDescription = fields.outcomeDescription;
  record.participants = fields.participants;
  record.source = source;
  return record;
}

/** EventOutcomeIndicator from an HTTP status: 2xx/3xx success (0), 4xx minor failure (4), 5xx serious failure (8). */
export function outcomeOfStatus(status: number): EventOutcome {
  if (status >= 500) return 8;
  if (status >= 400) return 4;
  return 0;
}
