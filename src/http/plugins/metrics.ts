// The HTTP half of the Prometheus metrics (ops/metrics.ts): per-transaction latency and response size, and
// STOW-RS failures by reason. The transaction is decided once per route, when it is registered, from its
// pattern (never from a request URL, which carries UIDs and query values); per request the hooks only look up
// pre-labelled series and observe numbers, so the overhead is two Map lookups and two observations.

import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { type ArchiveMetrics, failureReasonLabel } from '../../ops/metrics.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The metrics' transaction label of the route (set by this plugin when the route is registered). */
    transaction?: string;
  }
  interface FastifyRequest {
    /** Bytes the connection had written when the request arrived (-1: not counted); this plugin's. */
    metricsBytesBefore: number;
    /** The FailureReason of each instance a STOW request did not store (routes/stow-rs.ts tells it). */
    stowFailureReasons: number[] | null;
  }
}

export const HEALTH_PATHS = { liveness: '/healthz', readiness: '/readyz' } as const;
export const METRICS_PATH = '/metrics';

/**
 * The transaction a route serves, from its method and pattern relative to the base path (PS3.18: 10.6 QIDO-RS,
 * 10.4 WADO-RS with its metadata, frames and bulk data resources, 10.5 STOW-RS, 9 WADO-URI, 8.9 capabilities).
 */
export function transactionOf(method: string, url: string, basePath: string): string {
  if (url === HEALTH_PATHS.liveness || url === HEALTH_PATHS.readiness) return 'health';
  if (url === METRICS_PATH) return 'metrics';
  if (!url.startsWith(basePath)) return 'other';
  const path = url.slice(basePath.length);
  const m = method === 'HEAD' ? 'GET' : method;
  if (m === 'OPTIONS') return 'capabilities';
  if (path.startsWith('/admin')) return 'admin';
  if (path.startsWith('/shares') || path.startsWith('/share/')) return 'shares';
  if (path === '/wado') return 'wado-uri';
  if (m === 'POST' && (path === '/studies' || path === '/studies/:study')) return 'stow';
  if (m === 'DELETE' || path.includes('/reject/')) return 'delete';
  if (m !== 'GET') return 'other';
  if (path.endsWith('/metadata')) return 'metadata';
  // Before frames: .../frames/{f}/rendered is a rendered resource (PS3.18 10.4, issue 9).
  if (path.endsWith('/rendered')) return 'rendered';
  if (path.endsWith('/thumbnail')) return 'thumbnail';
  if (path.includes('/frames/')) return 'frames';
  if (path.includes('/bulk/')) return 'bulk';
  // The search resources end in a level name (PS3.18 10.6.1); the retrieve resources in a UID parameter.
  if (path === '/studies' || path.endsWith('/series') || path.endsWith('/instances')) return 'qido';
  if (path.startsWith('/studies/')) return 'wado-rs';
  return 'other';
}

/**
 * The log level of a route polled every few seconds (probes, scrapes): warn, so their request lines stay out
 * of the log, unless the configured level is quieter still (a route's logLevel replaces the logger's own).
 */
export function quietLevel(app: FastifyInstance): LogLevel {
  const configured = LOG_LEVELS.indexOf(app.log.level as LogLevel);
  return configured > LOG_LEVELS.indexOf('warn') ? LOG_LEVELS[configured]! : 'warn';
}

/** pino's levels, most verbose first. */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

type Observer = { observe(value: number): void };

export function registerMetrics(app: FastifyInstance, metrics: ArchiveMetrics, options: { basePath: string }): void {
  const durations = new Map<string, Map<number, Observer>>();
  const sizes = new Map<string, Observer>();
  const durationOf = (transaction: string, status: number): Observer => {
    let byStatus = durations.get(transaction);
    if (!byStatus) durations.set(transaction, (byStatus = new Map()));
    let observer = byStatus.get(status);
    if (!observer) byStatus.set(status, (observer = metrics.requestSeconds.labels(transaction, String(status))));
    return observer;
  };
  const sizeOf = (transaction: string): Observer => {
    let observer = sizes.get(transaction);
    if (!observer) sizes.set(transaction, (observer = metrics.responseBytes.labels(transaction)));
    return observer;
  };
  app.decorateRequest('metricsBytesBefore', -1);
  app.decorateRequest('stowFailureReasons', null);

  app.addHook('onRoute', (route: RouteOptions) => {
    const transaction = route.config?.methodNotAllowed === true ? 'other' : transactionOf([route.method].flat()[0]!, route.url, options.basePath);
    route.config = { ...route.config, transaction };
  });

  app.addHook('onRequest', (request, _reply, done) => {
    // Bytes the connection had written before this response: a streamed body has no Content-Length to read.
    const written = (request.raw.socket as Partial<Socket> | null)?.bytesWritten;
    request.metricsBytesBefore = typeof written === 'number' ? written : -1;
    done();
  });

  app.addHook('onResponse', (request, reply, done) => {
    const transaction = request.routeOptions.config?.transaction ?? 'unmatched';
    for (const reason of request.stowFailureReasons ?? []) metrics.stowFailures.labels(failureReasonLabel(reason)).inc();
    durationOf(transaction, reply.statusCode).observe(reply.elapsedTime / 1000);
    const bytes = responseBytes(request, reply);
    if (bytes !== undefined) sizeOf(transaction).observe(bytes);
    done();
  });
}

function responseBytes(request: FastifyRequest, reply: FastifyReply): number | undefined {
  const length = Number(reply.getHeader('content-length'));
  if (Number.isFinite(length) && length >= 0) return length;
  const written = (request.raw.socket as Partial<Socket> | null)?.bytesWritten;
  return typeof written === 'number' && request.metricsBytesBefore >= 0 ? written - request.metricsBytesBefore : undefined;
}
