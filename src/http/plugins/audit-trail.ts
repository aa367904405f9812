// The audit trail's HTTP half (issue 6 item 5; SECURITY.md 2; docs/audit.md). Every request gets a RequestAudit
// (request.audit) that the route fills in (which event, which studies); when the response has gone out the
// Auditor (audit/auditor.ts) writes the records, with the principal, the remote address and the outcome from
// the status. Written here without the route's help:
// - 401 (a missing, bad or expired credential): 110114 User Authentication, Login, outcome 4; the user is the
//   token's unverified `sub` when there is one, else "unknown";
// - 403 before a principal exists (the mTLS resolver's unregistered certificate): 110114, outcome 4, the
//   certificate's id and fingerprint;
// - any other 403: 110113 Security Alert, 110132 Use of a restricted function, outcome 4.
// A whole-study or whole-series retrieval also gets 110102 Begin Transferring when its body starts; a body cut
// mid-way (a stored object failing its check, the client gone) ends as 110104 with outcome 8.
// Fail closed: once an append failed, every request but a CORS preflight is answered 503 before anything else.
// Public routes that name no event (the share-link landing page), health and unknown routes leave no record.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuditEventType, outcomeOfStatus } from '../../audit/audit-record.js';
import { type Auditor, type RequestFacts, type Requestor, CollectedRequestAudit, auditedStudy, requestorOf, sopClassCounts } from '../../audit/auditor.js';
import type { RequestAudit } from '../../audit/request-audit.js';
import { AppError } from '../../errors.js';
import type { IndexStore } from '../../index/index-store.js';
import { peerCertificate } from './authenticate.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** What the route tells the audit trail (audit/request-audit.ts). */
    audit: RequestAudit;
  }
}

/**
 * Adds a study the request touched to its audit: patient and accession from the index (the study was already
 * found permitted, or just stored), SOP class counts from the instances sent or stored.
 */
export function auditStudy(request: FastifyRequest, index: Pick<IndexStore, 'studyAttributes'>, studyInstanceUID: string, sopClassUIDs: Iterable<string>): void {
  const study = index.studyAttributes(studyInstanceUID);
  request.audit.study(study ? auditedStudy(study, sopClassCounts(sopClassUIDs)) : { studyInstanceUID, patientId: '', sopClasses: sopClassCounts(sopClassUIDs) });
}

const isPreflight = (request: FastifyRequest): boolean =>
  request.method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined;

/** The `sub` of a bearer JWT, unverified (it names who tried, not who is): only for the failed-login record. */
export function unverifiedSubject(authorization: string | undefined): string | undefined {
  const m = /^Bearer +([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/i.exec(authorization ?? '');
  if (!m) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(m[2]!, 'base64url').toString('utf8'));
    const sub = claims !== null && typeof claims === 'object' ? (claims as { sub?: unknown }).sub : undefined;
    return typeof sub === 'string' && sub !== '' ? `unverified:${sub.slice(0, 256)}` : undefined;
  } catch {
    return undefined;
  }
}

/** What the plugin keeps of a request besides what the route said: it is the request's `audit` itself. */
class RequestAuditState extends CollectedRequestAudit {
  written = false;
  /** The message of the error that made the response (4xx messages are the client's to see: no PHI). */
  error: string | undefined;
}

const stateOf = (request: FastifyRequest): RequestAuditState | undefined => (request.audit instanceof RequestAuditState ? request.audit : undefined);

export function registerAuditTrail(app: FastifyInstance, auditor: Auditor): void {
  app.decorateRequest('audit', null as unknown as RequestAudit);

  // Callback-style hooks, not async ones: they run on every request, and a promise per hook per request is
  // measurable on a QIDO (bench/README.md, "The audit trail: what it costs").
  app.addHook('onRequest', (request, _reply, done) => {
    request.audit = new RequestAuditState();
    if (auditor.failed && !isPreflight(request)) {
      done(new AppError('SERVICE_UNAVAILABLE', 'the audit trail is unavailable: the server does not serve until it is restarted'));
      return;
    }
    done();
  });

  app.addHook('onError', (request, _reply, error, done) => {
    const state = stateOf(request);
    if (state) state.error = error.message;
    done();
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    const state = stateOf(request);
    if (state && !auditor.failed) {
      if (state.kind === 'retrieve' && state.options.bulk === true && reply.statusCode < 300) {
        auditor.write(auditor.beginTransferRecord(state, requestorFor(request, state)), request.log);
      }
      // A body cut mid-way ends with 'close' before 'finish', and Fastify then runs no onResponse hook: a stream,
      // or a Buffer the socket had not taken whole yet (small frame and instance answers go as one Buffer).
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) finish(request, reply, true);
      });
    }
    done(null, payload);
  });

  app.addHook('onResponse', (request, reply, done) => {
    finish(request, reply, false);
    done();
  });

  function finish(request: FastifyRequest, reply: FastifyReply, broken: boolean): void {
    const state = stateOf(request);
    if (!state || state.written || auditor.failed || isPreflight(request)) return;
    state.written = true;
    const status = reply.statusCode;
    const override = state.outcomeOverride;
    const facts: RequestFacts = {
      requestor: requestorFor(request, state),
      uri: `${request.method} ${request.routeOptions.url ?? 'unmatched'}`,
      outcome: broken ? 8 : (override?.outcome ?? outcomeOfStatus(status)),
    };
    const outcomeDescription = broken ? 'the response was cut off before it was complete' : override?.description || undefined;
    if (outcomeDescription !== undefined) facts.outcomeDescription = outcomeDescription;
    auditor.request(state, facts, request.log);
    if (state.kind !== undefined || request.routeOptions.config?.public === true) return;
    if (!request.principal && (status === 401 || status === 403)) {
      auditor.write(auditor.authenticationFailureRecord(unauthenticated(request, status), state.error ?? 'authentication failed'), request.log);
    } else if (request.principal && status === 403) {
      auditor.write(
        auditor.alertRecord(AuditEventType.useOfRestrictedFunction, state.error ?? 'access refused', { ...facts, outcome: 4 }),
        request.log,
      );
    }
  }
}

/** The principal, or on a public route whoever the route named (else "unknown"). */
function requestorFor(request: FastifyRequest, collected: CollectedRequestAudit): Requestor {
  return request.principal ? requestorOf(request.principal, request.ip) : { userId: collected.actorId ?? 'unknown', address: request.ip };
}

/** Who failed to authenticate: the unregistered certificate (403), or the token's unverified subject (401). */
function unauthenticated(request: FastifyRequest, status: number): Requestor {
  const address = request.ip;
  if (status === 403) {
    const cert = peerCertificate(request);
    if (cert) return { userId: cert.id, alternativeUserId: cert.fingerprint256, address };
  }
  return { userId: unverifiedSubject(request.headers.authorization) ?? 'unknown', address };
}
