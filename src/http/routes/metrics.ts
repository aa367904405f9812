// GET /metrics: the Prometheus exposition (text format 0.0.4) of ops/metrics.ts, at the root of each listener
// (Prometheus' default metrics_path), outside the DICOMweb base path.
//
// Who may read it: a principal the policies allow the `admin` action on the archive, or one whose id is listed in
// ops.metricsPrincipals. The list exists so that a scraper gets its own certificate and registry entry with no
// role at all (least privilege: it can read metrics and nothing else), instead of an admin certificate on every
// monitoring host. The metrics hold no PHI (labels are transaction names, status codes, failure reasons and policy
// actions), but they do describe the archive's traffic, so they are not public. Anyone else: 403, which the audit
// trail records as a security alert (110113, Use of a restricted function); an allowed read names no event and
// leaves no record.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import type { ArchiveMetrics } from '../../ops/metrics.js';
import { METRICS_PATH, quietLevel } from '../plugins/metrics.js';

export interface MetricsRouteOptions {
  metrics: ArchiveMetrics;
  /** ops.metricsPrincipals. */
  principals: readonly string[];
}

export async function metricsRoutes(app: FastifyInstance, options: MetricsRouteOptions): Promise<void> {
  const listed = new Set(options.principals);
  // The list first: a listed scraper never reaches the policy engine, so its scrapes count no denial.
  const mayRead = (request: FastifyRequest): boolean => listed.has(request.principal.id) || request.access.allowsOnArchive('admin');

  // Scrapes come every few seconds: no request line for each (a refusal is in the audit trail).
  app.get(METRICS_PATH, { logLevel: quietLevel(app) }, async (request, reply) => {
    if (!mayRead(request)) throw new AppError('FORBIDDEN', `reading the metrics needs the admin action or an entry in ops.metricsPrincipals`);
    const { contentType, body } = await options.metrics.exposition();
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });
}
