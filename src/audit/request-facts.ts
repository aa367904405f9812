// A request's audit facts as one short JSON text (issue 6: audit writing under 5 % of QIDO and STOW throughput;
// bench/README.md "The audit trail: what it costs"). The thread that serves requests writes them
// (requestFactsText); the PS3.15 records are built from them elsewhere (requestRecords):
//
// - on the writer thread, for a request with Security Alerts (several records);
// - when the log is read (audit-log.ts, readAuditLog), for a request whose facts make exactly one record: an event
//   and no alert, i.e. nearly every QIDO, WADO and STOW. Those facts are stored as that record, as they are, so the
//   writer only hashes, encrypts and writes them. They are an RFC 8785 text (members built in order, JSON.stringify
//   writing the rest): the chain hash H(n) = SHA-256(H(n-1) ‖ JCS(record)) covers them like any record
//   (docs/audit.md "What a record is stored as").
//
// Stored, the form must keep its meaning: FORM names it, and a changed form gets a new name beside this one.

import type { AuditRecord, AuditSource, DcmCode } from './audit-record.js';
import type { Auditor, CollectedRequestAudit, EventOptions, RequestFacts } from './auditor.js';
import type { AuditKind, AuditedStudy } from './request-audit.js';

/** The first element of every facts text: the form's name and version. */
export const FACTS_FORM = 'request/1';

/** A study: [uid, patientId, accession | null, [sopClass, count, ...] | null]. */
type StudyFacts = [string, string, string | null, (string | number)[] | null];

/** [form, kind, options, studies, patients, alerts, facts, time, source, host]; an alert is [type, description, study | null]. */
type FactsValue = [
  typeof FACTS_FORM,
  AuditKind | null,
  EventOptions,
  StudyFacts[],
  string[],
  [DcmCode, string, StudyFacts | null][],
  RequestFacts,
  number,
  AuditSource,
  string,
];

/** What requestRecords() needs of a collected request (CollectedRequestAudit). */
export type CollectedFacts = Pick<CollectedRequestAudit, 'options' | 'studies' | 'patients'>;

function studyFacts(s: AuditedStudy): StudyFacts {
  let sopClasses: (string | number)[] | null = null;
  if (s.sopClasses) {
    sopClasses = [];
    for (const [uid, n] of s.sopClasses) sopClasses.push(uid, n);
  }
  return [s.studyInstanceUID, s.patientId, s.accessionNumber ?? null, sopClasses];
}

function auditedStudyOf([studyInstanceUID, patientId, accessionNumber, sopClasses]: StudyFacts): AuditedStudy {
  const study: AuditedStudy = { studyInstanceUID, patientId };
  if (accessionNumber !== null) study.accessionNumber = accessionNumber;
  if (sopClasses !== null) {
    study.sopClasses = new Map();
    for (let i = 0; i < sopClasses.length; i += 2) study.sopClasses.set(sopClasses[i] as string, sopClasses[i + 1] as number);
  }
  return study;
}

// The objects below are made again with their members in RFC 8785 order (names sorted), whatever order the caller
// built them in, so that JSON.stringify writes the canonical text. Members left undefined are left out by both.
// `satisfies Every<T>` makes a member added to T later a compile error here rather than a fact silently dropped.

/** Every member name of T present, optional ones too (undefined when absent). */
type Every<T> = Record<keyof T, unknown>;

function orderedOptions(o: EventOptions): EventOptions {
  return { bulk: o.bulk, description: o.description, query: o.query, replaced: o.replaced, resource: o.resource } satisfies Every<EventOptions>;
}

function orderedRequestor(r: RequestFacts['requestor']): RequestFacts['requestor'] {
  return { address: r.address, alternativeUserId: r.alternativeUserId, userId: r.userId } satisfies Every<RequestFacts['requestor']>;
}

function orderedFacts(f: RequestFacts): RequestFacts {
  return { outcome: f.outcome, outcomeDescription: f.outcomeDescription, requestor: orderedRequestor(f.requestor), uri: f.uri } satisfies Every<RequestFacts>;
}

function orderedCode(c: DcmCode): DcmCode {
  return { code: c.code, codeSystem: c.codeSystem, displayName: c.displayName } satisfies Every<DcmCode>;
}

function orderedSource(s: AuditSource): AuditSource {
  return { enterpriseSiteId: s.enterpriseSiteId, id: s.id, typeCode: s.typeCode } satisfies Every<AuditSource>;
}

/**
 * The facts of a request as JSON text: its event kind and options, the studies with their patients and SOP class
 * counts, the patients, the alerts, who asked and how it ended, when, and the server as source and host.
 */
export function requestFactsText(
  collected: Pick<CollectedRequestAudit, 'kind' | 'alerts'> & CollectedFacts,
  request: RequestFacts,
  now: number,
  server: AuditSource,
  host: string,
): string {
  const studies: StudyFacts[] = [];
  for (const s of collected.studies.values()) studies.push(studyFacts(s));
  const alerts: FactsValue[5] = [];
  for (const a of collected.alerts) alerts.push([orderedCode(a.type), a.description, a.study ? studyFacts(a.study) : null]);
  const value: FactsValue = [FACTS_FORM, collected.kind ?? null, orderedOptions(collected.options), studies, [...collected.patients], alerts, orderedFacts(request), now, orderedSource(server), host];
  return JSON.stringify(value);
}

/** True for a stored record that is a request's facts (a JSON array) rather than a record's JCS text (an object). */
export function isFactsText(text: string): boolean {
  return text.charCodeAt(0) === 0x5b; // '['
}

/** The records of a request whose facts requestFactsText() wrote, built by `builder` (its event's, then its alerts'). */
export function requestRecords(text: string, builder: Auditor): AuditRecord[] {
  const value = JSON.parse(text) as FactsValue;
  if (!Array.isArray(value) || value[0] !== FACTS_FORM) throw new Error(`request facts of an unknown form (${JSON.stringify(Array.isArray(value) ? value[0] : typeof value)})`);
  const [, kind, eventOptions, studies, patients, alerts, request, time, server, host] = value;
  const known = builder.source;
  if (known.id !== server.id || known.enterpriseSiteId !== server.enterpriseSiteId || builder.hostName !== host) builder.setSource(server, host);
  const collected: CollectedFacts = { options: eventOptions, studies: new Map(), patients: new Set(patients) };
  for (const s of studies) collected.studies.set(s[0], auditedStudyOf(s));
  const now = new Date(time);
  const records: AuditRecord[] = [];
  if (kind !== null) records.push(builder.eventRecord(kind, collected, request, now));
  for (const [type, description, study] of alerts) records.push(builder.alertRecord(type, description, request, study ? auditedStudyOf(study) : undefined, now));
  return records;
}

/** Whether the facts make exactly one record (an event, no alert), the ones stored as they are. */
export function factsAreOneRecord(collected: Pick<CollectedRequestAudit, 'kind' | 'alerts'>): boolean {
  return collected.kind !== undefined && collected.alerts.length === 0;
}
