// The audit trail's writer (issue 6 item 5; SECURITY.md 2, the trigger table; docs/audit.md): turns what a
// request did (request-audit.ts, gathered by http/plugins/audit-trail.ts) and the events that are not requests
// (start/stop, purge, TLS failures) into PS3.15 A.5.3 records and appends them to the AuditLog.
//
// One Auditor per AuditLog (compose.ts puts it on Storage): both listeners share it, and with it the failed flag.
// Fail closed: writes are not awaited by responses, but the first append that fails marks the Auditor failed,
// logs one error (no PHI: the record is not logged) and from then on the plugin answers every request 503.

import type { AuditLog } from './audit-log.js';
import type { AppendSettled } from './audit-log-thread.js';
import {
  type ActiveParticipant,
  type AuditRecord,
  type AuditSource,
  type DcmCode,
  type EventAction,
  type EventOutcome,
  type ParticipantObject,
  AuditEventId,
  AuditEventType,
  AuditRoleId,
  type AuditRecordFields,
  alertSubjectObject,
  applicationActivityRecord,
  auditRecord,
  patientObject,
  queryObject,
  studyDescription,
  studyObject,
} from './audit-record.js';
import { purgeRecords } from './purge-record.js';
import { type CollectedFacts, factsAreOneRecord, requestFactsText } from './request-facts.js';
import type { AuditKind, AuditedStudy, RequestAudit } from './request-audit.js';
import type { PurgedStudy } from '../services/purge.js';
import type { StudyAttributes } from '../policy/study-attributes.js';
import type { Principal } from '../security/principal.js';

/** Where a failed append is reported (a pino logger fits). */
export interface AuditFailureLog {
  error(obj: object, msg: string): void;
}

/** Who acted: the requesting principal, or what is known of a caller that did not authenticate. */
export interface Requestor {
  userId: string;
  /** Certificate fingerprint (SHA-256, hex), token subject. */
  alternativeUserId?: string;
  /** The remote IP address (NetworkAccessPoint type 2). */
  address?: string;
}

/** The requesting principal as a Requestor: certificate fingerprint or token subject as alternativeUserId. */
export function requestorOf(principal: Principal, address: string | undefined): Requestor {
  const alternativeUserId = principal.certificate?.fingerprint256 ?? principal.token?.subject;
  const requestor: Requestor = { userId: principal.id };
  if (alternativeUserId !== undefined) requestor.alternativeUserId = alternativeUserId;
  if (address !== undefined) requestor.address = address;
  return requestor;
}

/** A study the policy engine knows, as an audited study (patient, accession; SOP class counts when known). */
export function auditedStudy(study: StudyAttributes, sopClasses?: Map<string, number>): AuditedStudy {
  const audited: AuditedStudy = { studyInstanceUID: study.studyInstanceUID, patientId: study.patientId, accessionNumber: study.accessionNumber };
  if (sopClasses !== undefined) audited.sopClasses = sopClasses;
  return audited;
}

/** SOP Class UID -> number of instances. */
export function sopClassCounts(sopClassUIDs: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const uid of sopClassUIDs) counts.set(uid, (counts.get(uid) ?? 0) + 1);
  return counts;
}

export type EventOptions = Parameters<RequestAudit['event']>[1] & {};

interface KindRule {
  eventId: DcmCode;
  action: (options: EventOptions) => EventAction;
  type?: DcmCode;
  /** The server's RoleIDCode (the requestor gets the other one); absent: the server is the Application (110150). */
  server?: 'source' | 'destination';
}

const always = (a: EventAction) => () => a;

/** SECURITY.md 2, the trigger table: one PS3.15 A.5.3 message per kind (docs/audit.md). */
export const AUDIT_KINDS: Record<AuditKind, KindRule> = {
  query: { eventId: AuditEventId.query, action: always('E'), server: 'destination' },
  retrieve: { eventId: AuditEventId.instancesTransferred, action: always('R'), server: 'source' },
  store: { eventId: AuditEventId.instancesTransferred, action: (o) => (o.replaced ? 'U' : 'C'), server: 'destination' },
  remove: { eventId: AuditEventId.instancesAccessed, action: always('D') },
  restore: { eventId: AuditEventId.instancesAccessed, action: always('U') },
  retention: { eventId: AuditEventId.instancesAccessed, action: always('U') },
  export: { eventId: AuditEventId.export, action: always('R'), server: 'source' },
  'share-login': { eventId: AuditEventId.userAuthentication, action: always('E'), type: AuditEventType.login },
  'security-config': { eventId: AuditEventId.securityAlert, action: always('E'), type: AuditEventType.securityConfiguration },
  'audit-read': { eventId: AuditEventId.auditLogUsed, action: always('R') },
};

/** The other side of a transfer. */
const OTHER: Record<'source' | 'destination', DcmCode> = { source: AuditRoleId.destination, destination: AuditRoleId.source };

/**
 * What a request told the audit trail (the RequestAudit the plugin hands to routes). HTTP-free: the plugin
 * reads it when the response has gone out.
 */
export class CollectedRequestAudit implements RequestAudit {
  kind: AuditKind | undefined;
  options: EventOptions = {};
  readonly studies = new Map<string, AuditedStudy>();
  readonly patients = new Set<string>();
  readonly alerts: { type: DcmCode; description: string; study?: AuditedStudy }[] = [];
  outcomeOverride: { outcome: EventOutcome; description?: string } | undefined;
  actorId: string | undefined;

  event(kind: AuditKind, options: EventOptions = {}): void {
    this.kind = kind;
    this.options = { ...this.options, ...options };
  }

  study(study: AuditedStudy): void {
    const known = this.studies.get(study.studyInstanceUID);
    if (!known) {
      // A copy (the merges below change it), made without spreads: a QIDO page adds up to a hundred studies.
      const copy: AuditedStudy = { studyInstanceUID: study.studyInstanceUID, patientId: study.patientId };
      if (study.accessionNumber !== undefined) copy.accessionNumber = study.accessionNumber;
      if (study.sopClasses) copy.sopClasses = new Map(study.sopClasses);
      this.studies.set(study.studyInstanceUID, copy);
      return;
    }
    if (known.patientId === '' && study.patientId !== '') known.patientId = study.patientId;
    if (!known.accessionNumber && study.accessionNumber) known.accessionNumber = study.accessionNumber;
    if (study.sopClasses) {
      known.sopClasses ??= new Map();
      for (const [uid, n] of study.sopClasses) known.sopClasses.set(uid, (known.sopClasses.get(uid) ?? 0) + n);
    }
  }

  patient(patientId: string): void {
    if (patientId !== '') this.patients.add(patientId);
  }

  alert(type: DcmCode, description: string, study?: AuditedStudy): void {
    // One alert per distinct (type, description, study): a policy asked twice in one request is one event.
    const same = this.alerts.some((a) => a.type.code === type.code && a.description === description && a.study?.studyInstanceUID === study?.studyInstanceUID);
    if (!same) this.alerts.push({ type, description, ...(study ? { study } : {}) });
  }

  outcome(outcome: EventOutcome, description?: string): void {
    this.outcomeOverride = { outcome, ...(description === undefined ? {} : { description }) };
  }

  actor(userId: string): void {
    this.actorId = userId;
  }
}

/** Study objects, then one patient object per distinct patient (PS3.15 A.5.3). */
export function studyAndPatientObjects(studies: Iterable<AuditedStudy>, patients: Iterable<string> = []): ParticipantObject[] {
  const objects: ParticipantObject[] = [];
  const patientIds = new Set<string>();
  for (const s of studies) {
    objects.push(studyObject(s.studyInstanceUID, studyDescription(s.sopClasses, s.accessionNumber)));
    if (s.patientId !== '') patientIds.add(s.patientId);
  }
  for (const p of patients) if (p !== '') patientIds.add(p);
  for (const p of patientIds) objects.push(patientObject(p));
  return objects;
}

/** What the plugin knows of the request when it writes: who, from where, what was asked, how it ended. */
export interface RequestFacts {
  requestor: Requestor;
  /** "METHOD /route/pattern": the subject of Security Alerts. */
  uri: string;
  outcome: EventOutcome;
  outcomeDescription?: string;
}

let builder: Auditor | undefined;

/**
 * An Auditor that builds records and writes none (its log refuses): for request facts made into records where they
 * are read or on the writer thread (request-facts.ts). It takes each facts' source and host as its own.
 */
export function recordBuilder(): Auditor {
  builder ??= new Auditor({ append: () => Promise.reject(new Error('a record builder does not write')) }, { id: '', typeCode: '4' });
  return builder;
}

export interface AuditorOptions {
  /** Where the first failed append is reported when the caller gives no log of its own. */
  log?: AuditFailureLog;
  /** The server's NetworkAccessPoint (machine name); default: the host of the source id when it is a URL. */
  host?: string;
}

export class Auditor {
  private sourceValue: AuditSource;
  private host: string;
  private failedValue: Error | null = null;
  private pendingCount = 0;
  private idle: (() => void)[] = [];
  private readonly serverParticipants = new Map<string, ActiveParticipant>();
  /** The log of the latest request record written without waiting: where a failure of one of them is reported. */
  private detachedLog: AuditFailureLog | undefined;
  /** One callback for every record written without waiting (no promise and no closure per request). */
  private readonly detachedSettled: AppendSettled = (result) => {
    if (result instanceof Error) this.failWith(result, this.detachedLog);
    this.settled(!(result instanceof Error));
  };

  constructor(
    /**
     * An AuditLog, or the server's AuditLogThread, whose appendDetached() saves every request a promise, and whose
     * appendRequestDetached() (when it has no onAppended hook, which would need the records here) takes a
     * request's facts and builds its records on the writer thread, and whose answerNow() asks for the results of
     * records written without waiting, which it otherwise gives lazily.
     */
    private readonly log: Pick<AuditLog, 'append'> & {
      appendDetached?: (record: AuditRecord, settled: AppendSettled) => void;
      appendRequestDetached?: ((factsText: string, settled: AppendSettled, oneRecord: boolean) => void) | undefined;
      answerNow?: () => void;
    },
    source: AuditSource,
    private readonly options: AuditorOptions = {},
  ) {
    this.sourceValue = source;
    this.host = options.host ?? hostOf(source.id);
  }

  get source(): AuditSource {
    return this.sourceValue;
  }

  /** The server's NetworkAccessPoint in its participant. */
  get hostName(): string {
    return this.host;
  }

  /** The listener's URL is known only once it listens (server.ts): records from then on name it. */
  setSource(source: AuditSource, host = this.options.host ?? hostOf(source.id)): void {
    this.sourceValue = source;
    this.host = host;
    this.serverParticipants.clear();
  }

  /** True once an append failed: the server must not serve (the plugin answers 503). */
  get failed(): boolean {
    return this.failedValue !== null;
  }

  /** Waits for every append started so far (tests, shutdown). Never rejects: failures are in `failed`. */
  async flush(): Promise<void> {
    while (this.pendingCount > 0) {
      // A log on a writer thread answers for records nobody waits for lazily: ask for the results now.
      this.log.answerNow?.();
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
  }

  /**
   * Appends without making the caller wait; a failure marks the Auditor failed and is logged once. Returns the
   * append's promise, settled either way (resolves true when the record is on disk).
   */
  write(record: AuditRecord, log: AuditFailureLog | undefined = this.options.log): Promise<boolean> {
    if (this.failedValue) return Promise.resolve(false);
    this.pendingCount++;
    return this.log.append(record).then(
      () => this.settled(true),
      (err: unknown) => {
        this.failWith(err, log);
        return this.settled(false);
      },
    );
  }

  /** write() for a caller that does not wait: through appendDetached() when the log has it. */
  private writeDetached(record: AuditRecord, log: AuditFailureLog | undefined = this.options.log): void {
    if (!this.log.appendDetached) {
      void this.write(record, log);
      return;
    }
    if (this.failedValue) return;
    this.pendingCount++;
    this.detachedLog = log;
    this.log.appendDetached(record, this.detachedSettled);
  }

  /** The first failure marks the Auditor failed and is logged once. */
  private failWith(err: unknown, log: AuditFailureLog | undefined): void {
    if (this.failedValue) return;
    this.failedValue = err instanceof Error ? err : new Error(String(err));
    // The error only: the record holds PHI and never goes to the application log.
    log?.error({ err: this.failedValue, security: true }, 'cannot write to the audit log: refusing requests (503) until restarted');
  }

  /** One append less in flight; wakes flush() when none is left. */
  private settled(written: boolean): boolean {
    if (--this.pendingCount === 0) for (const wake of this.idle.splice(0)) wake();
    return written;
  }

  /**
   * The server as a participant: its listener URL, the machine name, and its role in this event. One object per
   * role, made again only when the source changes: records are serialised, never mutated, so they can share it.
   */
  serverParticipant(role: DcmCode = AuditRoleId.application): ActiveParticipant {
    let participant = this.serverParticipants.get(role.code);
    if (!participant) {
      participant = { networkAccessPoint: { id: this.host, typeCode: 1 }, roleIdCode: role, userId: this.sourceValue.id, userIsRequestor: false };
      this.serverParticipants.set(role.code, participant);
    }
    return participant;
  }

  /** The requestor as a participant (UserIsRequestor, NetworkAccessPoint type 2 = its IP address). */
  requestorParticipant(requestor: Requestor, role?: DcmCode): ActiveParticipant {
    // Members added in RFC 8785 order (audit-record.ts), optional ones without a conditional spread.
    const participant = {} as ActiveParticipant;
    if (requestor.alternativeUserId !== undefined) participant.alternativeUserId = requestor.alternativeUserId;
    if (requestor.address !== undefined) participant.networkAccessPoint = { id: requestor.address, typeCode: 2 };
    if (role !== undefined) participant.roleIdCode = role;
    participant.userId = requestor.userId;
    participant.userIsRequestor = true;
    return participant;
  }

  private participants(requestor: Requestor, server?: 'source' | 'destination'): ActiveParticipant[] {
    if (!server) return [this.requestorParticipant(requestor), this.serverParticipant()];
    return [this.requestorParticipant(requestor, OTHER[server]), this.serverParticipant(AuditRoleId[server])];
  }

  /** The record of a route's event (AUDIT_KINDS), with its objects: query first, then studies, then patients. */
  eventRecord(kind: AuditKind, collected: CollectedFacts, facts: RequestFacts, now = new Date()): AuditRecord {
    const rule = AUDIT_KINDS[kind];
    const { options } = collected;
    const objects: ParticipantObject[] = [];
    if (kind === 'query') objects.push(queryObject(options.resource ?? 'SearchForStudies', options.query ?? ''));
    if (kind === 'security-config') objects.push(alertSubjectObject(facts.uri, options.description ?? rule.type!.displayName));
    objects.push(...studyAndPatientObjects(collected.studies.values(), collected.patients));
    const fields: AuditRecordFields = { eventId: rule.eventId, action: rule.action(options), outcome: facts.outcome, participants: this.participants(facts.requestor, rule.server), objects };
    if (facts.outcomeDescription !== undefined) fields.outcomeDescription = facts.outcomeDescription;
    if (rule.type) fields.eventTypes = [rule.type];
    return auditRecord(fields, this.sourceValue, now);
  }

  /** 110102 Begin Transferring DICOM Instances (PS3.15 A.5.3.3): a whole study or series starts going out. */
  beginTransferRecord(collected: CollectedRequestAudit, requestor: Requestor, now = new Date()): AuditRecord {
    return auditRecord(
      {
        eventId: AuditEventId.beginTransferringInstances,
        action: 'E',
        outcome: 0,
        participants: this.participants(requestor, 'source'),
        objects: studyAndPatientObjects(collected.studies.values(), collected.patients),
      },
      this.sourceValue,
      now,
    );
  }

  /** 110113 Security Alert E of `type`, the subject being what was asked for (and the study, when one is named). */
  alertRecord(type: DcmCode, description: string, facts: RequestFacts, study?: AuditedStudy, now = new Date()): AuditRecord {
    return auditRecord(
      {
        eventId: AuditEventId.securityAlert,
        action: 'E',
        outcome: facts.outcome,
        eventTypes: [type],
        participants: [this.requestorParticipant(facts.requestor), this.serverParticipant()],
        objects: [alertSubjectObject(facts.uri, description), ...(study ? studyAndPatientObjects([study]) : [])],
      },
      this.sourceValue,
      now,
    );
  }

  /** 110114 User Authentication E, Login, for a refused credential (outcome 4 by default). */
  authenticationFailureRecord(requestor: Requestor, description: string, outcome: EventOutcome = 4, now = new Date()): AuditRecord {
    return auditRecord(
      {
        eventId: AuditEventId.userAuthentication,
        action: 'E',
        outcome,
        outcomeDescription: description,
        eventTypes: [AuditEventType.login],
        participants: [this.requestorParticipant(requestor), this.serverParticipant()],
      },
      this.sourceValue,
      now,
    );
  }

  /** Writes a request's records: its event (if the route named one) and each alert. */
  request(collected: CollectedRequestAudit, facts: RequestFacts, log?: AuditFailureLog): void {
    if (collected.kind === undefined && collected.alerts.length === 0) return;
    if (this.log.appendRequestDetached) {
      // This thread, which serves requests, pays only for a short JSON text (a QIDO page's hundred studies: their
      // UIDs and patient IDs, not a hundred objects). Facts that make one record are stored as it; others are
      // built into records on the writer thread (request-facts.ts).
      if (this.failedValue) return;
      this.pendingCount++;
      this.detachedLog = log ?? this.options.log;
      this.log.appendRequestDetached(this.requestFactsText(collected, facts), this.detachedSettled, factsAreOneRecord(collected));
      return;
    }
    if (collected.kind !== undefined) this.writeDetached(this.eventRecord(collected.kind, collected, facts), log ?? this.options.log);
    for (const a of collected.alerts) this.writeDetached(this.alertRecord(a.type, a.description, facts, a.study), log ?? this.options.log);
  }

  /** What requestRecords() builds this request's records from, as JSON text (request-facts.ts). */
  requestFactsText(collected: CollectedRequestAudit, facts: RequestFacts, now = Date.now()): string {
    return requestFactsText(collected, facts, now, this.sourceValue, this.host);
  }

  /** A Security Alert that is not a request's (TLS handshake refused: 110126, outcome 4). */
  securityAlert(type: DcmCode, description: string, requestor: Requestor, options: { outcome?: EventOutcome; subject?: string } = {}, log?: AuditFailureLog): Promise<boolean> {
    const facts: RequestFacts = { requestor, uri: options.subject ?? this.sourceValue.id, outcome: options.outcome ?? 4 };
    return this.write(this.alertRecord(type, description, facts), log);
  }

  /**
   * 110105 DICOM Study Deleted D (PS3.15 A.5.3.8), one record per purged study (purge-record.ts builds them: the
   * purger, the study with its tombstone's SOP classes and counts, its patient). A dry run writes nothing.
   */
  purged(report: { dryRun: boolean; studies: PurgedStudy[] }, purger: string, log?: AuditFailureLog): Promise<boolean[]> {
    return Promise.all(purgeRecords(report, purger, this.sourceValue).map((r) => this.write(r, log)));
  }

  /** Application Start (110100/110120). Awaited by server.ts: a server that cannot audit does not serve. */
  applicationStart(): Promise<void> {
    return this.appendNow(applicationActivityRecord(AuditEventType.applicationStart, this.sourceValue));
  }

  /** Application Stop (110100/110121), after the listeners closed. */
  applicationStop(): Promise<void> {
    return this.appendNow(applicationActivityRecord(AuditEventType.applicationStop, this.sourceValue));
  }

  /** An awaited append that rejects on failure (and marks the Auditor failed like write()). */
  private async appendNow(record: AuditRecord): Promise<void> {
    if (this.failedValue) throw this.failedValue;
    if (!(await this.write(record, undefined))) throw this.failedValue ?? new Error('the audit log is unavailable');
  }
}

function hostOf(id: string): string {
  try {
    return new URL(id).hostname.replace(/^\[|\]$/g, '') || id;
  } catch {
    return id;
  }
}
