// The admin API (issue 5 item 6) under {base}/admin: the principal registry, the policies (read, validate,
// replace, reload, dry-run a decision) and the policy attributes an administrator sets on a study (labels,
// confidentiality). Every route needs the `admin` action on the Archive; anyone else gets 403 (these URLs name
// no study, so refusing openly reveals nothing). Share links are listed and revoked through {base}/shares,
// where an admin sees every link (routes/shares.ts).

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { parseBody } from '../request-body.js';
import type { IndexStore } from '../../index/index-store.js';
import { foldPersonName } from '../../index/query/normalize.js';
import { ACTIONS } from '../../policy/actions.js';
import type { PolicyAdmin } from '../../policy/access.js';
import type { StudyAttributes } from '../../policy/study-attributes.js';
import type { Principal } from '../../security/principal.js';
import { auditedStudy } from '../../audit/auditor.js';
import { uidParam } from '../route-paths.js';

export interface PrincipalDirectory {
  /** The configured registry entries, for display (no secrets). */
  list(): unknown[];
}

export interface AdminRouteOptions {
  index: IndexStore;
  policy: PolicyAdmin;
  principals: PrincipalDirectory;
}

const MAX_POLICY_BYTES = 1024 * 1024;
const label = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'labels are 1-64 characters: letters, digits and . _ : -');

const attributesSchema = z
  .strictObject({
    institution: z.string().default(''),
    referringPhysician: z.string().default(''),
    npi: z.string().default(''),
    sites: z.array(z.string()).default([]),
  })
  .prefault({});

/** A decision to dry-run: a hypothetical principal, an action, and a stored study (or the archive). */
const decideSchema = z.strictObject({
  principal: z.strictObject({
    id: z.string().min(1),
    kind: z.enum(['certificate', 'token']).default('certificate'),
    roles: z.array(z.string()).default([]),
    attributes: attributesSchema,
  }),
  action: z.enum(ACTIONS),
  /** Absent: the decision is about the archive (action admin). */
  studyInstanceUID: z.string().optional(),
  breakGlassReason: z.string().max(500).default(''),
});

function requireAdmin(request: FastifyRequest): void {
  if (!request.access?.allowsOnArchive('admin')) throw new AppError('FORBIDDEN', 'the admin action is required');
}


function policyText(body: unknown): string {
  if (typeof body !== 'string') throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the policies as text/plain');
  return body;
}

/** The study an admin request names, as an audit object (with its patient) when it exists. */
function auditNamedStudy(request: FastifyRequest, index: IndexStore, studyInstanceUID: string): void {
  const study = index.studyAttributes(studyInstanceUID);
  if (study) request.audit.study(auditedStudy(study));
}

export async function adminRoutes(app: FastifyInstance, options: AdminRouteOptions): Promise<void> {
  const { policy, index } = options;
  app.addHook('preHandler', async (request) => requireAdmin(request));

  app.get('/admin/principals', async () => ({ principals: options.principals.list() }));

  app.get('/admin/policies', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ file: policy.file, version: policy.version, text: policy.text() }),
  );

  // Validates without changing anything.
  app.post('/admin/policies/validate', { bodyLimit: MAX_POLICY_BYTES }, async (request) => {
    const errors = policy.validateText(policyText(request.body));
    return { valid: errors.length === 0, errors };
  });

  // Replaces the policy file (validated first: invalid text changes nothing and answers 400 with the errors).
  app.put('/admin/policies', { bodyLimit: MAX_POLICY_BYTES }, async (request, reply) => {
    // Audit (every configuration change, refused ones too): 110113 Security Alert, 110129 Security Configuration.
    request.audit.event('security-config', { description: 'policies replaced' });
    const result = policy.replace(policyText(request.body));
    if (!result.ok) return reply.code(400).send({ error: 'BAD_REQUEST', message: 'the policies were not replaced', errors: result.errors });
    request.audit.event('security-config', { description: `policies replaced: version ${result.version}` });
    request.log.warn({ security: true, event: 'policy.replaced', version: result.version }, 'policies replaced');
    return { version: result.version };
  });

  // Re-reads the file (after an operator edited it); a bad file keeps the policies in force (409 with why).
  app.post('/admin/policies/reload', async (request, reply) => {
    request.audit.event('security-config', { description: 'policies reloaded' });
    const result = policy.reload();
    if (!result.ok) return reply.code(409).send({ error: 'CONFLICT', message: 'the policy file is not valid; the policies in force are unchanged', errors: result.errors });
    request.audit.event('security-config', { description: `policies reloaded: version ${result.version}` });
    request.log.warn({ security: true, event: 'policy.reloaded', version: result.version }, 'policies reloaded');
    return { version: result.version };
  });

  // Dry run: what would the policies decide for this principal, action and study? Nothing is accessed.
  app.post('/admin/policies/decide', async (request) => {
    const input = parseBody(decideSchema, request.body);
    const principal: Principal = {
      kind: input.principal.kind,
      id: input.principal.id,
      roles: input.principal.roles,
      attributes: { ...input.principal.attributes, referringPhysician: foldPersonName(input.principal.attributes.referringPhysician) },
    };
    let resource: { study: StudyAttributes } | 'archive' = 'archive';
    if (input.studyInstanceUID !== undefined) {
      const study = index.studyAttributes(uidParam(input.studyInstanceUID, 'studyInstanceUID'));
      if (!study) throw new AppError('NOT_FOUND', 'no such study');
      resource = { study };
    }
    const decision = policy.decide(principal, input.action, resource, { breakGlassReason: input.breakGlassReason });
    return { decision: decision.allowed ? 'allow' : 'deny', policies: decision.policies };
  });

  // Labels and confidentiality: the policy attributes that are not in the DICOM objects (Orthanc's labels).
  app.put<{ Params: { study: string } }>('/admin/studies/:study/labels', async (request) => {
    request.audit.event('security-config', { description: 'study labels set' });
    const study = uidParam(request.params.study, 'StudyInstanceUID');
    const { labels } = parseBody(z.strictObject({ labels: z.array(label).max(100) }), request.body);
    const sorted = [...new Set(labels)].sort();
    auditNamedStudy(request, index, study);
    if (!index.setStudyLabels(study, sorted)) throw new AppError('NOT_FOUND', 'no such study');
    request.audit.event('security-config', { description: `study labels set: ${sorted.join(', ') || '(none)'}` });
    request.log.info({ event: 'study.labels', count: sorted.length }, 'study labels set');
    return { labels: sorted };
  });

  app.put<{ Params: { study: string } }>('/admin/studies/:study/confidentiality', async (request) => {
    request.audit.event('security-config', { description: 'study confidentiality set' });
    const study = uidParam(request.params.study, 'StudyInstanceUID');
    const { confidentiality } = parseBody(z.strictObject({ confidentiality: z.string().max(64) }), request.body);
    auditNamedStudy(request, index, study);
    if (!index.setStudyConfidentiality(study, confidentiality)) throw new AppError('NOT_FOUND', 'no such study');
    request.audit.event('security-config', { description: `study confidentiality set: ${confidentiality || '(none)'}` });
    return { confidentiality };
  });
}
