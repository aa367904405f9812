// Accounting of disclosures (HIPAA 45 CFR 164.528; SECURITY.md 2): every audit record that names a patient
// (a participant object of type 1 person, role 1 patient, PS3.15 A.5.2.5) within a time range, as one row:
// when, what (EventID), action, outcome, who (the requesting participants), from where (their network access
// points), which studies (study participant objects) and how (the EventTypeCodes). `dicomvault audit report`
// prints it; reading the log for it is itself audited (auditLogUsedRecord: 110101 Audit Log Used, action R).

import { pathToFileURL } from 'node:url';
import { type AuditRecord, type AuditSource, AuditEventId, patientObject } from './audit-record.js';
import { readAuditLog } from './audit-log.js';

export interface DisclosureQuery {
  patientId: string;
  /** ISO date-times, inclusive. */
  since?: string | undefined;
  until?: string | undefined;
}

export interface Disclosure {
  /** The record's number in the log. */
  n: number;
  time: string;
  eventId: string;
  event: string;
  action: AuditRecord['action'];
  outcome: AuditRecord['outcome'];
  who: { userId: string; alternativeUserId?: string }[];
  from: string[];
  studies: string[];
  how: string[];
}

const STUDY_UID_TYPE = '110180';

/** The rows of the report, in log order. Throws AuditLogError on a log that cannot be read. */
export async function accountingOfDisclosures(auditDir: string, key: Buffer, query: DisclosureQuery): Promise<Disclosure[]> {
  const rows: Disclosure[] = [];
  const filter = { patientId: query.patientId, ...(query.since ? { since: query.since } : {}), ...(query.until ? { until: query.until } : {}) };
  for await (const { n, record } of readAuditLog(auditDir, key, filter)) {
    if (!record.objects.some((o) => o.typeCode === 1 && o.roleCode === 1 && o.id === query.patientId)) continue;
    rows.push(disclosureOf(n, record));
  }
  return rows;
}

function disclosureOf(n: number, r: AuditRecord): Disclosure {
  const requestors = r.participants.filter((p) => p.userIsRequestor);
  const who = requestors.length > 0 ? requestors : r.participants;
  return {
    n,
    time: r.dateTime,
    eventId: r.eventId.code,
    event: r.eventId.displayName,
    action: r.action,
    outcome: r.outcome,
    who: who.map((p) => ({ userId: p.userId, ...(p.alternativeUserId === undefined ? {} : { alternativeUserId: p.alternativeUserId }) })),
    from: unique(who.flatMap((p) => (p.networkAccessPoint ? [p.networkAccessPoint.id] : []))),
    studies: unique(r.objects.filter((o) => o.idTypeCode.code === STUDY_UID_TYPE).map((o) => o.id)),
    how: (r.eventTypes ?? []).map((c) => c.displayName),
  };
}

const unique = (values: string[]): string[] => [...new Set(values)];

const ACTIONS: Record<AuditRecord['action'], string> = { C: 'create', R: 'read', U: 'update', D: 'delete', E: 'execute' };
const OUTCOMES: Record<AuditRecord['outcome'], string> = { 0: 'success', 4: 'minor failure', 8: 'serious failure', 12: 'major failure' };

/** Control characters (a terminal's escape sequences) from a certificate name or the like become "?". */
// eslint-disable-next-line no-control-regex
const printable = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** Aligned columns under a header, one line per row; "no records" when there are none. */
export function formatDisclosuresText(rows: Disclosure[]): string {
  if (rows.length === 0) return 'no records\n';
  const header = ['TIME', 'EVENT', 'ACTION', 'OUTCOME', 'WHO', 'FROM', 'STUDIES', 'HOW'];
  const lines = rows.map((r) =>
    [
      r.time,
      r.event,
      ACTIONS[r.action] ?? r.action,
      OUTCOMES[r.outcome] ?? String(r.outcome),
      r.who.map((w) => (w.alternativeUserId === undefined ? w.userId : `${w.userId} (${w.alternativeUserId})`)).join(', '),
      r.from.join(', '),
      r.studies.join(', '),
      r.how.join(', '),
    ].map((cell) => printable(cell) || '-'),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[header, ...lines].map(format).join('\n')}\n`;
}

export interface AuditLogUse {
  /** The operating-system user who ran the report. */
  user: string;
  host: string;
  source: AuditSource;
  auditDir: string;
  query: DisclosureQuery;
}

/**
 * 110101 Audit Log Used (PS3.15 A.5.3.2), action R: the user as the requesting participant (from the host), the
 * audit log as participant object (type 2, role 13 security resource, IDType 12 URI) with the report's
 * parameters as its query, and the patient the report was about.
 */
export function auditLogUsedRecord(use: AuditLogUse, now = new Date()): AuditRecord {
  const params = new URLSearchParams({ patient: use.query.patientId });
  if (use.query.since) params.set('from', use.query.since);
  if (use.query.until) params.set('to', use.query.until);
  return {
    eventId: AuditEventId.auditLogUsed,
    action: 'R',
    dateTime: now.toISOString(),
    outcome: 0,
    participants: [{ userId: use.user, userIsRequestor: true, networkAccessPoint: { typeCode: 1, id: use.host } }],
    source: use.source,
    objects: [
      {
        typeCode: 2,
        roleCode: 13,
        idTypeCode: { code: '12', codeSystem: 'RFC-3881', displayName: 'URI' },
        id: pathToFileURL(use.auditDir).href,
        description: 'accounting of disclosures',
        query: Buffer.from(params.toString(), 'utf8').toString('base64'),
      },
      patientObject(use.query.patientId),
    ],
  };
}
