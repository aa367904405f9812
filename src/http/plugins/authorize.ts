// The policy enforcement point's HTTP half (SECURITY.md 6): after authentication, every request gets an Access
// bound to its principal and context; routes hand it to the services, which ask it per study. Nothing here
// decides anything.
//
// Break-glass (emergency access): the client states a reason in the Break-Glass-Reason header; policies may
// allow more when `context.breakGlass` is true, and every decision that used it is logged as a security event
// and written to the audit trail (110113 Security Alert, 110127 Emergency Override Started, with the study). The
// reason is what makes an emergency access accountable, so it is logged, capped at 500 characters; the study's
// UID is not (no DICOM values in this log; the encrypted audit trail has it).

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuditEventType } from '../../audit/audit-record.js';
import { AppError } from '../../errors.js';
import { Access, type BreakGlassListener, type PolicyDecider, type RequestContext } from '../../policy/access.js';

declare module 'fastify' {
  interface FastifyRequest {
    access: Access;
  }
}

export const BREAK_GLASS_HEADER = 'break-glass-reason';
const MAX_REASON_LENGTH = 500;

function contextOf(request: FastifyRequest): RequestContext {
  const raw = request.headers[BREAK_GLASS_HEADER];
  if (raw === undefined) return { breakGlassReason: '' };
  const reason = (Array.isArray(raw) ? raw.join(' ') : raw).trim();
  if (reason === '') throw new AppError('BAD_REQUEST', `${BREAK_GLASS_HEADER} must state a reason`);
  if (reason.length > MAX_REASON_LENGTH) throw new AppError('BAD_REQUEST', `${BREAK_GLASS_HEADER} is longer than ${MAX_REASON_LENGTH} characters`);
  return { breakGlassReason: reason };
}

export function registerAuthorization(app: FastifyInstance, decider: PolicyDecider): void {
  app.decorateRequest('access', null as unknown as Access);
  app.addHook('preHandler', async (request) => {
    // Public routes (share-link landing) have no principal and get no Access.
    if (!request.principal) return;
    const onBreakGlass: BreakGlassListener = (e) => {
      request.log.warn(
        { security: true, event: 'break-glass', principal: e.principal.id, action: e.action, policies: e.policies, reason: e.reason },
        'break-glass access',
      );
      // The audit trail: 110113 Security Alert, 110127 Emergency Override Started (the study and reason there).
      const study = e.studyInstanceUID === undefined ? undefined : { studyInstanceUID: e.studyInstanceUID, patientId: '' };
      request.audit.alert(AuditEventType.emergencyOverrideStarted, `break-glass ${e.action}: ${e.reason}`, study);
    };
    request.access = new Access(decider, request.principal, contextOf(request), onBreakGlass);
  });
}
