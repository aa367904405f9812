// One audit message as DICOM Audit Message XML: PS3.15 A.5.1, the RFC 3881-derived RELAX NG schema
// (https://dicom.nema.org/medical/dicom/current/output/html/part15.html#sect_A.5.1), the payload that A.6
// sends in the MSG part of an RFC 5424 syslog message (syslog.ts).
//
// Element order follows the schema: EventIdentification, ActiveParticipant+, AuditSourceIdentification,
// ParticipantObjectIdentification*. Coded values use the DICOM attribute names `csd-code`, `codeSystemName`,
// `originalText` (the Code Meaning), as dcm4che's AuditMessages writer does.
//
// Every value is escaped (SECURITY.md case 34: a PatientName of `</AuditMessage><x>`, `]]>`, CR/LF or NUL must
// leave the document well-formed). Characters XML 1.0 section 2.2 does not allow (C0 controls other than tab, CR,
// LF; lone surrogates; U+FFFE/U+FFFF) cannot be written even as references, so they become U+FFFD.
//
// AuditMessageInput is the minimal input this writer needs, defined here because src/audit/audit-record.ts (the
// JSON model, written in parallel) did not exist when this file was started. It is shaped so that an AuditRecord
// is assignable to it (test/audit/audit-xml.test.ts checks that at compile time); the extra optional fields
// (SOP classes, accession numbers, life cycle, sensitivity) are what the record may grow into.

export interface CodedValue {
  code: string;
  /** Coding scheme designator, e.g. `DCM`, or `IHE Transactions`. */
  codeSystem: string;
  /** Code meaning: written as `originalText`, which the schema requires. */
  displayName: string;
}

/** PS3.15 A.5.3.1 / RFC 3881 5.1.1: Create, Read, Update, Delete, Execute. */
export type EventActionCode = 'C' | 'R' | 'U' | 'D' | 'E';
/** 0 success, 4 minor failure, 8 serious failure, 12 major failure. */
export type EventOutcomeIndicator = 0 | 4 | 8 | 12;

export interface AuditParticipantInput {
  userId: string;
  alternativeUserId?: string | undefined;
  userName?: string | undefined;
  userIsRequestor: boolean;
  roleIdCode?: CodedValue | CodedValue[] | undefined;
  /** NetworkAccessPointTypeCode: 1 machine (DNS) name, 2 IP address, 5 URI. */
  networkAccessPoint?: { id: string; typeCode: 1 | 2 | 5 } | undefined;
}

export interface AuditSourceInput {
  id: string;
  enterpriseSiteId?: string | undefined;
  /** RFC 3881 5.4.3 audit source type, as its code ('4') or a full coded value; default 4 "Application Server Process". */
  typeCode?: string | CodedValue | undefined;
}

export interface ParticipantObjectInput {
  id: string;
  /** 1 Person, 2 System Object, 3 Organization, 4 Other. */
  typeCode: 1 | 2 | 3 | 4;
  /** ParticipantObjectTypeCodeRole (RFC 3881 5.5.2), e.g. 1 Patient, 3 Report, 24 Query. */
  roleCode?: number | undefined;
  dataLifeCycle?: number | undefined;
  sensitivity?: string | undefined;
  /** e.g. (2, RFC-3881, "Patient Number"), (110180, DCM, "Study Instance UID"), (110181, DCM, "SOP Class UID"). */
  idTypeCode: CodedValue;
  /** Patient name; mutually exclusive with `query` in the schema (query wins when both are given). */
  name?: string | undefined;
  /**
   * ParticipantObjectQuery (xs:base64Binary). A string is taken as already base64 (as AuditRecord stores it) and
   * written as given, escaped; bytes (the query as sent) are base64-encoded here.
   */
  query?: string | Uint8Array | undefined;
  /** ParticipantObjectDetail type/value pairs; the value follows the same rule as `query`. */
  details?: Array<{ type: string; value: string | Uint8Array }> | undefined;
  description?: string | undefined;
  sopClasses?: Array<{ uid: string; numberOfInstances?: number | undefined }> | undefined;
  accessionNumbers?: string[] | undefined;
}

export interface AuditMessageInput {
  eventId: CodedValue;
  action?: EventActionCode | undefined;
  /** xs:dateTime; a Date is written as ISO 8601 UTC with milliseconds. */
  dateTime: Date | string;
  outcome: EventOutcomeIndicator;
  outcomeDescription?: string | undefined;
  eventTypes?: CodedValue[] | undefined;
  participants: AuditParticipantInput[];
  source: AuditSourceInput;
  objects?: ParticipantObjectInput[] | undefined;
}

export const AUDIT_SOURCE_APPLICATION_SERVER: CodedValue = { code: '4', codeSystem: 'DCM', displayName: 'Application Server Process' };

// XML 1.0 section 2.2 Char, complemented: what must not appear in a document at all.
// eslint-disable-next-line no-control-regex
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Replaces what XML 1.0 forbids with U+FFFD, then escapes markup. Safe for character data and for attribute values. */
export function escapeXml(value: string): string {
  return value.replace(NOT_XML_CHAR, '\uFFFD').replace(/[&<>"'\t\n\r]/g, (c) => {
    switch (c) {
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;'; // also breaks `]]>` in character data
      case '"': return '&quot;';
      case "'": return '&apos;';
      // Attribute-value normalization (XML 1.0 3.3.3) would turn literal tab/CR/LF into spaces: references keep them.
      case '\t': return '&#9;';
      case '\n': return '&#10;';
      default: return '&#13;';
    }
  });
}

type Attrs = Array<[string, string | number | boolean | undefined]>;

function attrs(list: Attrs): string {
  let out = '';
  for (const [name, value] of list) {
    if (value === undefined) continue;
    out += ` ${name}="${escapeXml(String(value))}"`;
  }
  return out;
}

function codeAttrs(code: CodedValue): Attrs {
  return [['csd-code', code.code], ['codeSystemName', code.codeSystem], ['originalText', code.displayName]];
}

function coded(element: string, code: CodedValue): string {
  return `<${element}${attrs(codeAttrs(code))}/>`;
}

/** xs:base64Binary content: strings are already base64 (escaped all the same), bytes are encoded. */
function base64(value: string | Uint8Array): string {
  return typeof value === 'string' ? escapeXml(value) : Buffer.from(value).toString('base64');
}

/** RFC 3881 5.4.3 / PS3.15 A.5.2.4 audit source type codes. */
const AUDIT_SOURCE_TYPES: Record<string, string> = {
  '1': 'End-user display device, diagnostic device',
  '2': 'Data acquisition device or instrument',
  '3': 'Web Server Process or Thread',
  '4': 'Application Server Process',
  '5': 'Database Server Process',
  '6': 'Security server',
  '7': 'ISO level 1-3 network component',
  '8': 'ISO level 4-6 operating software',
  '9': 'External source, other or unknown type',
};

function sourceType(typeCode: string | CodedValue | undefined): CodedValue {
  if (typeCode === undefined) return AUDIT_SOURCE_APPLICATION_SERVER;
  if (typeof typeCode !== 'string') return typeCode;
  return { code: typeCode, codeSystem: 'DCM', displayName: AUDIT_SOURCE_TYPES[typeCode] ?? typeCode };
}

function dateTime(value: Date | string): string {
  return typeof value === 'string' ? value : value.toISOString();
}

function participant(p: AuditParticipantInput): string {
  const roles = p.roleIdCode === undefined ? [] : Array.isArray(p.roleIdCode) ? p.roleIdCode : [p.roleIdCode];
  const open = `<ActiveParticipant${attrs([
    ['UserID', p.userId],
    ['AlternativeUserID', p.alternativeUserId],
    ['UserName', p.userName],
    ['UserIsRequestor', p.userIsRequestor],
    ['NetworkAccessPointID', p.networkAccessPoint?.id],
    ['NetworkAccessPointTypeCode', p.networkAccessPoint?.typeCode],
  ])}`;
  return roles.length === 0 ? `${open}/>` : `${open}>${roles.map((r) => coded('RoleIDCode', r)).join('')}</ActiveParticipant>`;
}

function participantObject(o: ParticipantObjectInput): string {
  let body = coded('ParticipantObjectIDTypeCode', o.idTypeCode);
  // Schema: ( ParticipantObjectName | ParticipantObjectQuery )?
  if (o.query !== undefined) body += `<ParticipantObjectQuery>${base64(o.query)}</ParticipantObjectQuery>`;
  else if (o.name !== undefined) body += `<ParticipantObjectName>${escapeXml(o.name)}</ParticipantObjectName>`;
  for (const d of o.details ?? []) body += `<ParticipantObjectDetail${attrs([['type', d.type], ['value', base64(d.value)]])}/>`;
  if (o.description !== undefined) body += `<ParticipantObjectDescription>${escapeXml(o.description)}</ParticipantObjectDescription>`;
  for (const s of o.sopClasses ?? []) body += `<SOPClass${attrs([['UID', s.uid], ['NumberOfInstances', s.numberOfInstances]])}/>`;
  for (const a of o.accessionNumbers ?? []) body += `<Accession${attrs([['Number', a]])}/>`;
  return `<ParticipantObjectIdentification${attrs([
    ['ParticipantObjectID', o.id],
    ['ParticipantObjectTypeCode', o.typeCode],
    ['ParticipantObjectTypeCodeRole', o.roleCode],
    ['ParticipantObjectDataLifeCycle', o.dataLifeCycle],
    ['ParticipantObjectSensitivity', o.sensitivity],
  ])}>${body}</ParticipantObjectIdentification>`;
}

/**
 * The audit message as one XML document (UTF-8 declaration, no insignificant whitespace). Throws when a
 * structurally required part is missing (no active participant), because the schema requires it.
 */
export function auditMessageToXml(message: AuditMessageInput): string {
  if (message.participants.length === 0) throw new Error('an audit message needs at least one ActiveParticipant (PS3.15 A.5.1)');
  let event = coded('EventID', message.eventId);
  for (const type of message.eventTypes ?? []) event += coded('EventTypeCode', type);
  if (message.outcomeDescription !== undefined) event += `<EventOutcomeDescription>${escapeXml(message.outcomeDescription)}</EventOutcomeDescription>`;
  const source = message.source;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<AuditMessage>' +
    `<EventIdentification${attrs([
      ['EventActionCode', message.action],
      ['EventDateTime', dateTime(message.dateTime)],
      ['EventOutcomeIndicator', message.outcome],
    ])}>${event}</EventIdentification>` +
    message.participants.map(participant).join('') +
    `<AuditSourceIdentification${attrs([['AuditEnterpriseSiteID', source.enterpriseSiteId], ['AuditSourceID', source.id]])}>` +
    coded('AuditSourceTypeCode', sourceType(source.typeCode)) +
    '</AuditSourceIdentification>' +
    (message.objects ?? []).map(participantObject).join('') +
    '</AuditMessage>'
  );
}
