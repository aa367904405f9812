// The Prometheus metrics of one server process (issue 8 item 5), in their own prom-client Registry: both
// listeners share one (compose.ts), and tests build as many apps as they like without the global registry
// refusing a metric registered twice. Labels are bounded sets fixed by the code (transaction names, status
// codes, PS3.4 failure reasons, policy actions): never a UID, a path or a principal, so nothing here is PHI
// and the series count cannot grow with traffic.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FailureReason } from '../dicom/status-codes.js';
import type { PolicyDecider } from '../policy/access.js';
import { ACTIONS } from '../policy/actions.js';

/** A FailureReason (0008,1197) as the conformance statement writes it: 4 upper-case hex digits. */
export const failureReasonLabel = (code: number): string => code.toString(16).toUpperCase().padStart(4, '0');

/**
 * Why the TLS reloader closed an open connection (security/tls-reload.ts): revoked by a CRL, issued by no CA of
 * tls.ca, issued by a CA whose CRL has expired or that has no CRL.
 */
export const TLS_CLOSE_REASONS = ['revoked', 'untrusted', 'crl-expired', 'crl-missing'] as const;

export interface MetricsOptions {
  /** prom-client's default Node process metrics (CPU, memory, event loop lag, GC, handles). One per process. */
  processMetrics?: boolean;
}

export class ArchiveMetrics {
  readonly registry = new Registry();
  /** Seconds from the request's arrival to the end of its response, by transaction and status code. */
  readonly requestSeconds = new Histogram({
    name: 'dicomvault_http_request_duration_seconds',
    help: 'Time from request to the end of the response, by DICOMweb transaction and HTTP status',
    labelNames: ['transaction', 'status'] as const,
    // From a cached QIDO (milliseconds) to a large STOW or a whole-study retrieve (minutes).
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly responseBytes = new Histogram({
    name: 'dicomvault_http_response_size_bytes',
    help: 'Bytes of each response, by DICOMweb transaction (Content-Length, or bytes written for streamed bodies)',
    labelNames: ['transaction'] as const,
    // 1 KiB .. 4 GiB by factors of 4: a QIDO page to a whole study.
    buckets: Array.from({ length: 12 }, (_, i) => 1024 * 4 ** i),
    registers: [this.registry],
  });
  readonly stowFailures = new Counter({
    name: 'dicomvault_stow_failed_instances_total',
    help: 'Instances a STOW-RS request did not store, by FailureReason (0008,1197), hex (PS3.18 Table I.2-1)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly policyDenials = new Counter({
    name: 'dicomvault_policy_denials_total',
    help: 'Policy decisions that refused an action (a 403, or a study answered as not found), by action',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });

  /** Connections a listener refused at accept (http/connection-limits.ts): over the per-IP cap or the total. */
  readonly connectionsRefused = new Counter({
    name: 'dicomvault_connections_refused_total',
    help: 'TCP connections refused at accept, by listener (mtls, web) and reason (per_ip: server.maxConnectionsPerIp, total: server.maxConnections)',
    labelNames: ['listener', 'reason'] as const,
    registers: [this.registry],
  });
  readonly connectionsOpen = new Gauge({
    name: 'dicomvault_connections_open',
    help: 'TCP connections open now, by listener (mtls, web)',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  // TLS material (security/tls-reload.ts): what to alert on before a CRL or a certificate runs out (SECURITY.md 8 case 4).
  readonly tlsCrlNextUpdate = new Gauge({
    name: 'dicomvault_tls_crl_next_update_timestamp_seconds',
    help: 'Earliest nextUpdate of the CRLs in force (Unix time); past it OpenSSL refuses every client of that CA. 0: no CRL',
    registers: [this.registry],
  });
  readonly tlsCertificateNotAfter = new Gauge({
    name: 'dicomvault_tls_certificate_not_after_timestamp_seconds',
    help: 'notAfter of the server certificate in force (Unix time), by listener',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  readonly tlsReloads = new Counter({
    name: 'dicomvault_tls_reloads_total',
    help: 'TLS material reloads (SIGHUP or a changed file), by result: applied, unchanged, failed (the material in force kept)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly tlsConnectionsClosed = new Counter({
    name: 'dicomvault_tls_connections_closed_total',
    help: 'Open mutual-TLS connections closed because the reloaded material refuses their certificate, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    // Every known reason and action at 0 from the start: a rate() over a series that appears late misses its first increase.
    for (const code of Object.values(FailureReason)) this.stowFailures.labels(failureReasonLabel(code)).inc(0);
    for (const action of ACTIONS) this.policyDenials.labels(action).inc(0);
    for (const result of ['applied', 'unchanged', 'failed']) this.tlsReloads.labels(result).inc(0);
    for (const reason of TLS_CLOSE_REASONS) this.tlsConnectionsClosed.labels(reason).inc(0);
    for (const listener of ['mtls', 'web']) for (const reason of ['per_ip', 'total']) this.connectionsRefused.labels(listener, reason).inc(0);
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** The exposition text (Prometheus text format 0.0.4) and its Content-Type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * The decider the authorization plugin hands to each request's Access, counting refusals. Wrapping the decider
 * counts every refusal wherever a route turns it into a 403 or a 404 (a study the principal may not see is
 * answered as absent), without each route having to remember to.
 */
export function countingDecider(decider: PolicyDecider, metrics: ArchiveMetrics): PolicyDecider {
  const denied = new Map(ACTIONS.map((a) => [a, metrics.policyDenials.labels(a)]));
  return {
    decide(principal, action, resource, context) {
      const decision = decider.decide(principal, action, resource, context);
      if (!decision.allowed) denied.get(action)?.inc();
      return decision;
    },
    studyCondition: (principal, action, context) => decider.studyCondition(principal, action, context),
  };
}
