// Deletion, rejection, restore, retention and legal holds over HTTP (issue 6; docs/retention.md). Routes translate
// HTTP <-> services/remove-instances.ts, restore-instances.ts, keep-until.ts and legal-holds.ts, and tell the audit
// trail what happened (request.audit, audit/request-audit.ts).
//
//   DELETE {base}/studies/{s}[/series/{x}[/instances/{i}]]          204 (Azure, Google and dcm4chee offer it; PS3.18
//                                                                     defines no delete)
//   POST   {base}/studies/{s}[/series/{x}]/reject/{code}^DCM         204 (dcm4chee's IOCM rejection, what OHIF sends
//                                                                     with supportsReject: "113001%5EDCM")
//   GET    {base}/admin/studies/{s}/retention                        keep-until, its rules, why (recomputed now), holds
//   PUT    {base}/admin/studies/{s}/retention {keepUntil, reason}    extend only (earlier: 409); rule "manual"
//   POST   {base}/admin/holds {name, scope, target, reason}          201 the hold
//   GET    {base}/admin/holds[?scope&target&includeLifted]           holds, newest first
//   POST   {base}/admin/holds/{id}/lift {reason}                     the lifted hold
//   GET    {base}/admin/bin[?limit]                                  studies with instances in the bin
//   POST   {base}/admin/studies/{s}[/series/{x}[/instances/{i}]]/restore   the instances back out of the bin
//
// Refused deletions are 403 with the reason and a Security Alert (110132 Use of a restricted function) besides the
// remove event. The admin routes need the `admin` action on the archive (as routes/admin.ts).

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AuditEventType } from '../../audit/audit-record.js';
import type { RequestAudit } from '../../audit/request-audit.js';
import { AppError } from '../../errors.js';
import { parseBody } from '../request-body.js';
import type { IndexStore, RetrieveScope } from '../../index/index-store.js';
import type { KeepUntil, LifecycleStore, RemovalCode } from '../../index/lifecycle-store.js';
import { parseDicomDate, type RetentionConfig } from '../../policy/retention.js';
import { explainKeepUntil, extendKeepUntil, formatKeepUntil, isExpired } from '../../services/keep-until.js';
import { liftHold, listHolds, placeHold } from '../../services/legal-holds.js';
import { RemovalRefusedError, removeInstances } from '../../services/remove-instances.js';
import { restoreInstances } from '../../services/restore-instances.js';
import { retrieveScope, uidParam } from '../route-paths.js';

export interface LifecycleRouteOptions {
  index: IndexStore;
  lifecycle: LifecycleStore;
  retention: RetentionConfig;
  now?: () => Date;
}

type ScopeParams = { study: string; series?: string; instance?: string };

/**
 * IOCM rejection note titles (PS3.16 CID 7011) a client may name, as dcm4chee spells them: `{code}^DCM`.
 * 113039 "Data Retention Period Expired" is accepted like the others, and like them only once the study expired.
 */
export const REJECTION_CODES: Record<string, { code: RemovalCode; meaning: string }> = {
  '113001^DCM': { code: '113001', meaning: 'Rejected for Quality Reasons' },
  '113037^DCM': { code: '113037', meaning: 'Rejected for Patient Safety Reasons' },
  '113038^DCM': { code: '113038', meaning: 'Incorrect Modality Worklist Entry' },
  '113039^DCM': { code: '113039', meaning: 'Data Retention Period Expired' },
};

function rejectionCode(param: string): RemovalCode {
  const known = Object.hasOwn(REJECTION_CODES, param) ? REJECTION_CODES[param] : undefined;
  if (!known) throw new AppError('BAD_REQUEST', `unknown rejection code; use one of ${Object.keys(REJECTION_CODES).join(', ')} (URL-encode ^ as %5E)`);
  return known.code;
}


const reasonText = z.string().trim().min(1, 'a reason is required').max(500);

export async function lifecycleRoutes(app: FastifyInstance, options: LifecycleRouteOptions): Promise<void> {
  const now = options.now ?? (() => new Date());
  const deps = { index: options.index, lifecycle: options.lifecycle, retention: options.retention };

  const remove = (request: FastifyRequest, scope: RetrieveScope, code: RemovalCode) => {
    const audit = request.audit;
    audit.event('remove');
    try {
      const removed = removeInstances(deps, { scope, code, access: request.access, now: now() });
      audit.study({ studyInstanceUID: removed.studyInstanceUID, patientId: removed.patientId, sopClasses: removed.sopClasses });
      // UIDs and PatientIDs stay out of the application log: counts and the code only.
      request.log.info({ event: 'instances.removed', code, instances: removed.instances, studyRemoved: removed.studyRemoved }, 'instances moved to the bin');
    } catch (err) {
      if (err instanceof RemovalRefusedError) {
        audit.study(err.study);
        audit.alert(AuditEventType.useOfRestrictedFunction, `${code === 'delete' ? 'delete' : `reject ${code}`} refused: ${err.message}`, err.study);
      }
      throw err;
    }
  };

  const deletePaths = ['/studies/:study', '/studies/:study/series/:series', '/studies/:study/series/:series/instances/:instance'];
  for (const url of deletePaths) {
    app.delete<{ Params: ScopeParams }>(url, async (request, reply) => {
      remove(request, retrieveScope(request.params), 'delete');
      return reply.code(204).send();
    });
  }
  for (const url of ['/studies/:study/reject/:code', '/studies/:study/series/:series/reject/:code']) {
    app.post<{ Params: ScopeParams & { code: string } }>(url, async (request, reply) => {
      const scope = retrieveScope(request.params);
      remove(request, scope, rejectionCode(request.params.code));
      return reply.code(204).send();
    });
  }

  app.register(async (admin) => {
    admin.addHook('preHandler', async (request) => {
      if (!request.access?.allowsOnArchive('admin')) throw new AppError('FORBIDDEN', 'the admin action is required');
    });
    lifecycleAdminRoutes(admin, options, now);
  });
}

const keepUntilInput = z.union([
  z.literal('indefinite'),
  z.string().refine((s) => dateOf(s) !== undefined, { message: 'must be "indefinite", a date YYYY-MM-DD or an ISO 8601 date-time' }),
]);

/** YYYY-MM-DD (UTC midnight: the first instant the study may go) or a full ISO 8601 date-time. */
function dateOf(text: string): Date | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return parseDicomDate(text.replaceAll('-', ''));
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

const holdBody = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(100),
  scope: z.enum(['patient', 'study']),
  target: z.string().min(1).max(64),
  reason: reasonText,
});

const holdQuery = z.strictObject({
  scope: z.enum(['patient', 'study']).optional(),
  target: z.string().min(1).max(64).optional(),
  includeLifted: z.enum(['true', 'false']).optional(),
});

function lifecycleAdminRoutes(app: FastifyInstance, options: LifecycleRouteOptions, now: () => Date): void {
  const { index, lifecycle, retention } = options;
  const keepDeps = { index, lifecycle, retention };
  const patientOf = (study: string) => index.studyAttributes(study)?.patientId ?? lifecycle.listBin({ studyInstanceUID: study })[0]?.patientId ?? '';

  app.get<{ Params: { study: string } }>('/admin/studies/:study/retention', async (request, reply) => {
    const study = uidParam(request.params.study, 'StudyInstanceUID');
    const at = now();
    const stored = lifecycle.getRetention(study);
    const decision = explainKeepUntil(keepDeps, study, at);
    if (!stored && !decision) throw new AppError('NOT_FOUND', 'no such study');
    const keepUntil: KeepUntil = stored?.keepUntil ?? decision!.keepUntil;
    const patientId = patientOf(study);
    return reply.header('cache-control', 'no-store').send({
      studyInstanceUID: study,
      keepUntil,
      rules: stored?.rules ?? decision!.rules,
      computedAt: stored?.computedAt ?? null,
      expired: isExpired(keepUntil, at),
      // The rules as they stand now (a study no longer live: none): reasons may carry dates derived from the birth date.
      current: decision ?? null,
      holds: lifecycle.activeHoldsFor(study, patientId),
      binned: lifecycle.listBin({ studyInstanceUID: study }).length,
    });
  });

  app.put<{ Params: { study: string } }>('/admin/studies/:study/retention', async (request) => {
    const study = uidParam(request.params.study, 'StudyInstanceUID');
    const input = parseBody(z.strictObject({ keepUntil: keepUntilInput, reason: reasonText }), request.body ?? {});
    const audit = request.audit;
    audit.event('retention');
    if (!index.studyAttributes(study) && !lifecycle.getRetention(study)) throw new AppError('NOT_FOUND', 'no such study');
    audit.study({ studyInstanceUID: study, patientId: patientOf(study) });
    const wanted: KeepUntil = input.keepUntil === 'indefinite' ? 'indefinite' : dateOf(input.keepUntil)!;
    const result = extendKeepUntil(keepDeps, study, wanted, now());
    if (!result.ok) {
      throw new AppError(
        'CONFLICT',
        `keep-until may only be extended: the study is retained until ${formatKeepUntil(result.current)}, and ${formatKeepUntil(wanted)} is earlier`,
      );
    }
    audit.outcome(0, `keep-until set to ${formatKeepUntil(result.retention.keepUntil)}: ${input.reason}`);
    return { studyInstanceUID: study, keepUntil: result.retention.keepUntil, rules: result.retention.rules, computedAt: result.retention.computedAt };
  });

  app.post('/admin/holds', async (request, reply) => {
    const input = parseBody(holdBody, request.body ?? {});
    const audit = request.audit;
    audit.event('retention');
    const hold = placeHold({ lifecycle }, { ...input, by: request.access.principal.id, now: now() });
    auditHoldTarget(audit, hold.scope, hold.target, patientOf);
    audit.outcome(0, `legal hold "${hold.name}" placed: ${hold.reason}`);
    return reply.code(201).send({ hold });
  });

  app.get('/admin/holds', async (request, reply) => {
    const parsed = holdQuery.safeParse(request.query);
    if (!parsed.success) throw new AppError('BAD_REQUEST', `invalid query: ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? ''}`);
    const { includeLifted, ...filter } = parsed.data;
    return reply.header('cache-control', 'no-store').send({ holds: listHolds({ lifecycle }, { ...filter, includeLifted: includeLifted === 'true' }) });
  });

  app.post<{ Params: { id: string } }>('/admin/holds/:id/lift', async (request) => {
    const { reason } = parseBody(z.strictObject({ reason: reasonText }), request.body ?? {});
    const audit = request.audit;
    audit.event('retention');
    const hold = liftHold({ lifecycle }, request.params.id, request.access.principal.id, reason, now());
    auditHoldTarget(audit, hold.scope, hold.target, patientOf);
    audit.outcome(0, `legal hold "${hold.name}" lifted: ${reason}`);
    return { hold };
  });

  app.get<{ Querystring: { limit?: string } }>('/admin/bin', async (request, reply) => {
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new AppError('BAD_REQUEST', 'limit must be a whole number from 1 to 10000');
    return reply.header('cache-control', 'no-store').send({ studies: lifecycle.binnedStudies(limit) });
  });

  for (const url of ['/admin/studies/:study/restore', '/admin/studies/:study/series/:series/restore', '/admin/studies/:study/series/:series/instances/:instance/restore']) {
    app.post<{ Params: ScopeParams }>(url, async (request) => {
      const scope = retrieveScope(request.params);
      const audit = request.audit;
      audit.event('restore');
      const restored = restoreInstances({ index, lifecycle }, scope);
      audit.study({ studyInstanceUID: restored.studyInstanceUID, patientId: restored.patientId, sopClasses: restored.sopClasses });
      request.log.info({ event: 'instances.restored', instances: restored.restored, skipped: restored.skipped.length }, 'instances restored from the bin');
      return { restored: restored.restored, skipped: restored.skipped };
    });
  }
}

function auditHoldTarget(audit: RequestAudit, scope: 'patient' | 'study', target: string, patientOf: (study: string) => string): void {
  if (scope === 'patient') audit.patient(target);
  else audit.study({ studyInstanceUID: target, patientId: patientOf(target) });
}
