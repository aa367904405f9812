// Builds the Fastify application from already-built dependencies. No I/O here and nothing at import time:
// tests build it with a temporary index and blob store and drive it with app.inject() (DESIGN.md).

import type { ServerOptions as HttpsServerOptions } from 'node:https';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { AuditEventType } from './audit/audit-record.js';
import type { Auditor } from './audit/auditor.js';
import type { Config } from './config/schema.js';
import type { InstanceReader, ScanLimits } from './dicom/part10.js';
import { registerAuthentication, type PrincipalResolver } from './http/plugins/authenticate.js';
import { registerAuditTrail } from './http/plugins/audit-trail.js';
import { registerAuthorization } from './http/plugins/authorize.js';
import { registerMetrics } from './http/plugins/metrics.js';
import { limitConnections, throttledRefusalLog } from './http/connection-limits.js';
import { adminRoutes, type PrincipalDirectory } from './http/routes/admin.js';
import { registerCapabilities } from './http/routes/capabilities.js';
import { healthRoutes } from './http/routes/health.js';
import { metricsRoutes } from './http/routes/metrics.js';
import { lifecycleRoutes } from './http/routes/lifecycle.js';
import type { LifecycleStore } from './index/lifecycle-store.js';
import { shareRoutes, webBaseUrl } from './http/routes/shares.js';
import type { PolicyAdmin } from './policy/access.js';
import type { ShareLinks } from './policy/share-links.js';
import { registerCors } from './http/plugins/cors.js';
import { registerErrorHandler } from './http/plugins/error-handler.js';
import { registerRequestLog } from './http/plugins/request-log.js';
import { registerSecurityHeaders } from './http/plugins/security-headers.js';
import { registerStreamIntegrityLog } from './http/plugins/stream-integrity-log.js';
import { qidoRoutes } from './http/routes/qido-rs.js';
import { metadataRoutes } from './http/routes/metadata.js';
import { stowRoutes } from './http/routes/stow-rs.js';
import { wadoRoutes } from './http/routes/wado-rs.js';
import { framesRoutes } from './http/routes/frames-rs.js';
import { wadoUriRoutes } from './http/routes/wado-uri.js';
import { renderedRoutes } from './http/routes/rendered-rs.js';
import type { IndexStore, RetrieveScope } from './index/index-store.js';
import type { Logger } from './logger.js';
import { ArchiveMetrics, countingDecider } from './ops/metrics.js';
import { trustedProxyList } from './security/trusted-proxies.js';
import type { BlobStore } from './storage/blob-store.js';
import { CodecPool } from './transcode/codec-pool.js';
import { Transcoder } from './transcode/transcoder.js';
import { Renderer } from './render/renderer.js';
import { RenderPool } from './render/render-pool.js';
import { ThumbnailCache } from './services/thumbnail-cache.js';

export interface AppDeps {
  config: Config;
  index: IndexStore;
  blobs: BlobStore;
  readInstance: InstanceReader;
  logger: Logger;
  /**
   * Who is calling (http/plugins/authenticate.ts). The mTLS listener: mtlsResolver(registry) (verified client
   * certificate -> principal registry); the web listener: webResolver (OIDC bearer token or share-link session).
   */
  principalOf: PrincipalResolver;
  /**
   * Which listener this app serves; default 'mtls'. The web listener's app gets a config whose server.publicUrl
   * is web.publicUrl (compose.ts), so URLs in responses name the listener the browser used.
   */
  listener?: 'mtls' | 'web';
  /** Decides who may do what on which study (policy/policy-engine.ts); required: no policy, no access. */
  policy: PolicyAdmin;
  /** Share links (policy/share-links.ts); absent: no /shares routes. */
  shares?: ShareLinks;
  /** The principal registry, shown by the admin API. */
  principals?: PrincipalDirectory;
  /**
   * The audit trail (audit/auditor.ts): one per audit log, shared by both listeners (openStorage makes it:
   * `...storage` passes it). Required: a server that cannot audit does not serve.
   */
  auditor: Auditor;
  /** TLS options of the listener; absent only for app.inject() tests. */
  https?: HttpsServerOptions;
  /**
   * Retention, legal holds, the bin (issue 6: index/lifecycle-store.ts). Absent (tests with memory stores): no
   * DELETE, reject, restore, retention or hold routes, and STOW computes no keep-until dates.
   */
  lifecycle?: LifecycleStore;
  /**
   * The Prometheus metrics (ops/metrics.ts): compose.ts makes one, with the process metrics, for both listeners.
   * Absent (tests): this app gets its own, without the process metrics.
   */
  metrics?: ArchiveMetrics;
  /**
   * Transfer syntax transcoding for WADO-RS / WADO-URI (issue 9): compose.ts makes one for both listeners and
   * closes it with the storage. Absent (tests): this app makes its own from `config.transcode` and closes it
   * with the app; its workers start only when a request needs a codec.
   */
  transcoder?: Transcoder;
  /**
   * Rendered and thumbnail resources, WADO-URI images (issue 9, docs/rendering.md): compose.ts makes one for both
   * listeners (rendererFor) and closes it with the storage. Absent (tests): this app makes its own from
   * `config.render`, on its transcoder, and closes it with the app.
   */
  rendering?: { renderer: Renderer; thumbnails?: ThumbnailCache };
  /** Unwraps a stored key per KEK version in use (compose.ts Storage.verifyKeys), for GET /readyz; absent: not checked. */
  verifyKeys?: () => Promise<unknown>;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config } = deps;
  // Node looks for connections past headersTimeout/requestTimeout every connectionsCheckingInterval (30 s by
  // default): check often enough that a slowloris is cut near its timeout, not up to 30 s after it.
  const connectionsCheckingInterval = Math.max(10, Math.min(1000, Math.floor(config.server.headersTimeoutMs / 2)));
  const app = Fastify({
    loggerInstance: deps.logger,
    // Fastify's own request lines carry the URL (QIDO values are PHI): request-log.ts writes ours instead.
    logController: new LogController({ disableRequestLogging: true }),
    ...(deps.https ? { https: { connectionsCheckingInterval, ...deps.https } } : {}),
    // Fastify's requestTimeout defaults to 0 (no limit): a slow client must not hold a socket forever.
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    return503OnClosing: true,
    // A path parameter may be a frame list (PS3.18 10.4.1.1.4) of up to MAX_FRAMES_PER_REQUEST numbers of up to
    // 5 digits; UIDs are checked at 64 characters by the routes. Longer parameters: 414 from the router.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 8192 },
    // The request id is ours; a client-supplied one could smuggle text into the log.
    requestIdHeader: false,
  }) as unknown as FastifyInstance;
  app.server.headersTimeout = config.server.headersTimeoutMs;
  // A refused handshake never becomes a request, so it would leave no trace: say who was refused and why
  // (OpenSSL's reason, and the address while Node still has it; no certificate content), and audit it:
  // 110113 Security Alert, 110126 Node Authentication, outcome 4.
  app.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: { remoteAddress?: string; authorizationError?: Error | string }) => {
    const reason = socket.authorizationError ? String(socket.authorizationError) : (err.code ?? err.message);
    deps.logger.warn({ remoteAddress: socket.remoteAddress, reason }, 'TLS handshake refused');
    const address = socket.remoteAddress;
    const node = { userId: address ?? 'unknown', ...(address === undefined ? {} : { address }) };
    void deps.auditor.securityAlert(AuditEventType.nodeAuthentication, `TLS handshake refused: ${reason}`, node, {}, deps.logger);
  });
  app.server.maxConnections = config.server.maxConnections;
  app.server.maxRequestsPerSocket = config.server.maxRequestsPerSocket;
  const metrics = deps.metrics ?? new ArchiveMetrics();
  if (deps.https) {
    const listener = deps.listener ?? 'mtls';
    const logRefusal = throttledRefusalLog((fields) => deps.logger.warn({ listener, ...fields }, 'connection refused: over the connection cap'));
    limitConnections(app.server, {
      maxPerIp: config.server.maxConnectionsPerIp,
      ...(config.server.trustedProxies.length > 0 ? { exempt: trustedProxyList(config.server.trustedProxies) } : {}),
      onRefused: (reason, address) => {
        metrics.connectionsRefused.labels(listener, reason).inc();
        logRefusal(reason, address);
      },
      onOpenChange: (delta) => (delta > 0 ? metrics.connectionsOpen.labels(listener).inc() : metrics.connectionsOpen.labels(listener).dec()),
    });
  }

  registerErrorHandler(app);
  registerSecurityHeaders(app);
  // Before authentication: CORS preflights carry no credentials (plugins/cors.ts).
  registerCors(app, { origins: config.cors.origins });
  // Before authentication: a 401 is audited too, and a failed audit trail answers 503 before anything else.
  registerAuditTrail(app, deps.auditor);
  registerAuthentication(app, deps.principalOf);
  registerAuthorization(app, countingDecider(deps.policy, metrics));
  registerRequestLog(app);
  // Before the routes: it labels each route with its transaction when the route is registered.
  registerMetrics(app, metrics, { basePath: config.server.basePath });
  registerStreamIntegrityLog(app);

  const urls = {
    basePath: config.server.basePath,
    publicUrl: config.server.publicUrl,
    trustedProxies: config.server.trustedProxies.length > 0 ? trustedProxyList(config.server.trustedProxies) : undefined,
  };
  const limits = {
    maxSequenceDepth: config.dicom.maxSequenceDepth,
    maxElements: config.dicom.maxElements,
    maxInflatedBytes: config.dicom.maxInflatedBytes,
    maxHeaderBytes: config.dicom.maxHeaderBytes,
  };
  app.register(stowRoutes, {
    prefix: config.server.basePath,
    urls,
    limits: {
      maxParts: config.stow.maxParts,
      maxPartBytes: config.stow.maxPartBytes,
      maxPartHeaderBytes: config.stow.maxPartHeaderBytes,
      maxTotalBytes: config.stow.maxRequestBytes,
    },
    store: {
      index: deps.index,
      blobs: deps.blobs,
      readInstance: deps.readInstance,
      limits,
      duplicatePolicy: config.stow.duplicatePolicy,
      log: deps.logger,
      ...(deps.lifecycle ? { retention: { lifecycle: deps.lifecycle, retention: config.retention } } : {}),
    },
  });
  app.register(qidoRoutes, {
    prefix: config.server.basePath,
    index: deps.index,
    urls,
    defaultLimit: config.qido.defaultLimit,
    maxLimit: config.qido.maxLimit,
  });
  // A scope the purge removed answers 410 Gone (issue 6; its tombstone), not 404.
  const lifecycle = deps.lifecycle;
  const isPurged = lifecycle ? (scope: RetrieveScope) => lifecycle.isPurged(scope) : undefined;
  let transcoder = deps.transcoder;
  if (!transcoder) {
    const own = transcoderFor(config, limits, deps.logger);
    app.addHook('onClose', () => own.close());
    transcoder = own.transcoder;
  }
  let rendering = deps.rendering;
  if (!rendering) {
    const own = rendererFor(config, transcoder, limits);
    app.addHook('onClose', () => own.close());
    rendering = own;
  }
  const { renderer, thumbnails } = rendering;
  const retrieve = { index: deps.index, blobs: deps.blobs, limits, transcoder, ...(isPurged ? { isPurged } : {}) };
  app.register(wadoRoutes, { prefix: config.server.basePath, ...retrieve, urls });
  app.register(wadoUriRoutes, { prefix: config.server.basePath, ...retrieve, renderer });
  app.register(renderedRoutes, { prefix: config.server.basePath, ...retrieve, renderer, thumbnails, urls });
  app.register(framesRoutes, { prefix: config.server.basePath, ...retrieve, urls });
  app.register(metadataRoutes, { prefix: config.server.basePath, index: deps.index, urls, ...(isPurged ? { isPurged } : {}) });
  if (deps.lifecycle) app.register(lifecycleRoutes, { prefix: config.server.basePath, index: deps.index, lifecycle: deps.lifecycle, retention: config.retention });
  app.register(adminRoutes, { prefix: config.server.basePath, index: deps.index, policy: deps.policy, principals: deps.principals ?? { list: () => [] } });
  if (deps.shares) {
    app.register(shareRoutes, {
      prefix: config.server.basePath,
      shares: deps.shares,
      accessOf: (request) => request.access,
      index: deps.index,
      webBaseUrl: webBaseUrl(config),
      basePath: config.server.basePath,
      // The recipient's landing page and exchange exist where browsers come: the web listener.
      landing: deps.listener === 'web',
      viewerUrl: config.shares.viewerUrl,
    });
  }
  // Outside the base path (README "Operations"): liveness, readiness and the Prometheus metrics.
  app.register(healthRoutes, {
    readiness: {
      index: deps.index,
      verifyKeys: deps.verifyKeys,
      auditFailed: () => deps.auditor.failed,
      dataDir: config.storage.dataDir,
      minFreeDiskBytes: config.ops.minFreeDiskBytes,
      timeoutMs: config.ops.readinessTimeoutMs,
    },
  });
  app.register(metricsRoutes, { metrics, principals: config.ops.metricsPrincipals });
  // Last: Retrieve Capabilities (PS3.18 8.9) describes, and answers OPTIONS on, every route registered above.
  registerCapabilities(app, { urls });
  return app;
}

/** A Transcoder with its codec pool, from `config.transcode` (docs/transcoding.md); `close` stops the workers. */
export function transcoderFor(config: Config, scanLimits: ScanLimits, log?: Logger) {
  const { workers, timeoutMs, memoryMb, maxFrameBytes, maxDecodedBytes } = config.transcode;
  const pool = new CodecPool({ workers, timeoutMs, memoryMb, ...(log ? { log } : {}) });
  return { transcoder: new Transcoder({ pool, scanLimits, pixelLimits: { maxFrameBytes, maxDecodedBytes } }), close: () => pool.close() };
}

/** A Renderer with its render pool, on `transcoder` (which decodes), from `config.render` (docs/rendering.md). */
export function rendererFor(config: Config, transcoder: Transcoder, scanLimits: ScanLimits) {
  const { workers, timeoutMs, memoryMb, thumbnailCacheBytes } = config.render;
  const pool = new RenderPool({ workers, timeoutMs, memoryMb });
  const thumbnails = new ThumbnailCache(thumbnailCacheBytes);
  return { renderer: new Renderer({ transcoder, pool, scanLimits }), thumbnails, close: () => pool.close() };
}
