// Liveness and readiness (issue 8 item 5), at the root of each listener, outside the DICOMweb base path:
// - GET /healthz: the process answers (no dependency is asked): a failure means "restart me".
// - GET /readyz: the archive can serve (services/readiness.ts): 200 when every check is ok, else 503, so a
//   load balancer or an orchestrator stops sending requests until it recovers.
// Both are public routes (`config.public`): no principal is resolved, so no policy is asked and no study is
// named. On the mTLS listener the TLS layer still demands a client certificate the configured CA issued (any
// one: a container HEALTHCHECK uses the one the operator gives it); on the web listener, when enabled, they need
// none. They name no audit event, so the audit trail writes no record for them. The answers hold check names
// and fixed texts only: never PHI, file paths or sizes.
//
// One exception to "no dependency": once the audit trail has failed, every request is answered 503 before it
// is routed (plugins/audit-trail.ts, fail closed), /healthz included. That is the liveness answer wanted then:
// only a restart brings such a server back.

import type { FastifyInstance } from 'fastify';
import { checkReadiness, type ReadinessDeps } from '../../services/readiness.js';
import { HEALTH_PATHS, quietLevel } from '../plugins/metrics.js';

export interface HealthRouteOptions {
  readiness: ReadinessDeps;
}

export async function healthRoutes(app: FastifyInstance, options: HealthRouteOptions): Promise<void> {
  // Probes come every few seconds: their request lines would drown the log. A failed readiness is logged below.
  const probe = { config: { public: true }, logLevel: quietLevel(app) };
  app.get(HEALTH_PATHS.liveness, probe, async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));

  app.get(HEALTH_PATHS.readiness, probe, async (request, reply) => {
    const report = await checkReadiness(options.readiness);
    if (!report.ready) {
      const failed = Object.entries(report.checks).flatMap(([name, c]) => (c.state === 'failed' ? [name] : []));
      // The causes (their messages name files or hosts, never DICOM values) for the operator, not for the prober.
      const errors = Object.fromEntries(Object.entries(report.errors).map(([name, e]) => [name, e instanceof Error ? `${e.name}: ${e.message}` : String(e)]));
      request.log.warn({ failed, errors }, 'not ready');
    }
    return reply
      .code(report.ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({ status: report.ready ? 'ready' : 'not ready', checks: report.checks });
  });
}
