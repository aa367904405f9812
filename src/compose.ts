// Picks the implementations (the only importer of the SQLite index, the blob stores and the key file) and
// prepares what the server needs before it listens: data folders, TLS material, the crash sweeper.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rendererFor, transcoderFor, type AppDeps } from './app.js';
import { AUDIT_DIR, AuditKeyError, loadOrCreateAuditKeys } from './audit/audit-keys.js';
import { type AuditExport, AuditExportError, openAuditExport } from './audit/audit-export.js';
import { AuditLogError } from './audit/audit-log.js';
import { AuditLogThread } from './audit/audit-log-thread.js';
import { Auditor } from './audit/auditor.js';
import type { Config } from './config/schema.js';
import { ParsePool } from './dicom/parse-pool.js';
import { mtlsResolver, webResolver } from './http/plugins/authenticate.js';
import type { IndexStore } from './index/index-store.js';
import { INDEX_DB_FILE, loadOrCreateIndexKey } from './index/sqlite/index-key.js';
import { IndexKeyError } from './index/sqlite/open-cipher.js';
import { SqliteIndexStore } from './index/sqlite/sqlite-index-store.js';
import { SqliteStudyKeyring } from './index/sqlite/sqlite-study-keyring.js';
import type { Logger } from './logger.js';
import { ArchiveMetrics } from './ops/metrics.js';
import type { ShareStore } from './index/share-store.js';
import { SqliteShareStore } from './index/sqlite/sqlite-share-store.js';
import type { LifecycleStore } from './index/lifecycle-store.js';
import { SqliteLifecycleStore } from './index/sqlite/sqlite-lifecycle-store.js';
import { CedarPolicyEngine, PolicyLoadError } from './policy/policy-engine.js';
import { ShareLinks } from './policy/share-links.js';
import { createDevPki, devPkiExists } from './security/pki.js';
import { OidcVerifier } from './security/oidc.js';
import { PrincipalRegistry } from './security/principal-registry.js';
import { TlsReloader } from './security/tls-reload.js';
import type { BlobStore } from './storage/blob-store.js';
import { EncryptedBlobStore } from './storage/encrypted-blob-store.js';
import { FsBlobStore } from './storage/fs-blob-store.js';
import { KeyFileError } from './storage/keys/kek-file.js';
import { KeyIntegrityError, KeyUnavailableError } from './storage/keys/key-provider.js';
import { dataDirHasData, openKeyProvider } from './storage/keys/open-key-provider.js';
import type { StudyKeyring } from './storage/keys/study-keyring.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

export interface TlsPaths {
  ca: string;
  cert: string;
  key: string;
  crl?: string;
  /** True when the development PKI was created by this start. */
  created: boolean;
  /** Set for the development PKI: where the client certificate the README's curl line uses lives. */
  devDir?: string;
}

/** Production: the configured files, all required (the schema already refused a missing one). Development: certs/dev. */
export async function resolveTlsPaths(config: Config): Promise<TlsPaths> {
  const { tls } = config;
  if (tls.ca && tls.cert && tls.key) return { ca: tls.ca, cert: tls.cert, key: tls.key, crl: tls.crl, created: false };
  if (config.profile === 'production') throw new StartupError('tls.ca, tls.cert and tls.key are required in the production profile');
  const dir = tls.devDir;
  let created = false;
  if (!(await devPkiExists(dir))) {
    await createDevPki(dir);
    created = true;
  }
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key'), crl: tls.crl, created, devDir: dir };
}

/**
 * The TLS material of both listeners, read and validated now (a file that is missing or does not parse stops the
 * start) and reloaded later without a restart (security/tls-reload.ts: SIGHUP, tls.reloadIntervalMs). The web
 * listener's certificate: web.cert + web.key when both are set, else the mTLS listener's (in the development
 * profile the development server certificate). Browsers must trust its issuer.
 */
export async function openTlsReloader(config: Config, paths: TlsPaths, logger: Logger, metrics?: ArchiveMetrics): Promise<TlsReloader> {
  const { cert, key } = config.web;
  if ((cert === undefined) !== (key === undefined)) throw new StartupError('web.cert and web.key go together: set both or neither');
  try {
    return await TlsReloader.open({
      paths,
      web: config.web.enabled ? { cert: cert ?? paths.cert, key: key ?? paths.key } : undefined,
      log: logger,
      metrics,
      crlWarningMs: config.tls.crlWarningMs,
    });
  } catch (e) {
    throw new StartupError(`TLS: ${(e as Error).message}`);
  }
}

/** The archive without its audit log: what `dicomvault verify` opens (it may run beside the server). */
export interface ArchiveStorage {
  index: IndexStore;
  /** Always the encrypted store (issue 4: no plaintext mode in the server). */
  blobs: BlobStore;
  /** The study keys the blobs are encrypted under: erase-study.ts destroys them. */
  keyring: StudyKeyring;
  /** Share links and their sessions, in the same encrypted index file. */
  shareStore: ShareStore;
  /** Retention, legal holds, the bin and tombstones (issue 6), on the index's connection (one transaction with it). */
  lifecycle: LifecycleStore;
  /**
   * Unwraps one stored study key per KEK version in use (the start-up check, again): GET /readyz asks it, so a key
   * service that stopped answering takes the server out of rotation. Throws what the provider throws.
   */
  verifyKeys(): Promise<number>;
  /** The key file's path when this start created it (a new data folder): the operator must back it up. */
  createdKeyFile?: string;
  /** Closes the audit log (Storage: after its final checkpoint), then the index, and zeroes the keys held in memory. */
  close(): Promise<void>;
}

export interface Storage extends ArchiveStorage {
  /**
   * The audit log of <dataDir>/audit (one process at a time appends to it). A torn last line left by a crash
   * is set aside when it opens and listed in `audit.recovered` (composeServer logs it). It is written on a thread
   * of its own (audit-log-thread.ts): the requests' thread pays only for building the records.
   */
  audit: AuditLogThread;
  /**
   * The one Auditor of `audit` (both listeners share it, and its failed flag: audit/auditor.ts). Its source is
   * the mTLS listener's configured URL until server.ts names the URL it listens on.
   */
  auditor: Auditor;
}

/**
 * The storage with its key hierarchy (SECURITY.md 4): KEK from the key file -> index key (the whole SQLite
 * file is encrypted) and study keys (in the index) -> object keys (in each blob's header). Fails closed: a
 * data folder that holds data but whose keys are missing or do not unwrap stops the start.
 */
export async function openStorage(config: Config, options?: { logger?: Logger }): Promise<Storage>;
/** `{audit: false}`: without the audit log (and without creating audit keys), for tools that may run beside the server. */
export async function openStorage(config: Config, options: { audit: false }): Promise<ArchiveStorage>;
/**
 * `logger`: the server's; with it (and audit.syslogHost set) every audit record is also exported to syslog
 * (audit/audit-export.ts), and the exporter logs its connection state there.
 */
export async function openStorage(config: Config, options: { audit?: boolean; logger?: Logger } = {}): Promise<Storage | ArchiveStorage> {
  const dataDir = config.storage.dataDir;
  // Asked before anything is created: only a new data folder may get a new key file.
  const hasData = dataDirHasData(dataDir);
  const keyFile = path.resolve(config.keys.file);
  const keyFileExisted = fs.existsSync(keyFile);
  const provider = startupStep('keys', () => openKeyProvider(config, { dataDirHasData: hasData }));
  let index: SqliteIndexStore | undefined;
  let keyring: SqliteStudyKeyring | undefined;
  let audit: AuditLogThread | undefined;
  let exporter: AuditExport | undefined;
  try {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const indexKey = await startupStepAsync('index key', () => loadOrCreateIndexKey(dataDir, provider));
    try {
      index = startupStep('index', () => new SqliteIndexStore(path.join(dataDir, INDEX_DB_FILE), { key: indexKey }));
    } finally {
      indexKey.fill(0);
    }
    if (options.audit !== false) {
      const auditKeys = await startupStepAsync('audit keys', () => loadOrCreateAuditKeys(dataDir, provider));
      try {
        // The exporter derives its spool key from the audit key and keeps that copy; AuditLog keeps its own copy
        // of the audit key (both zeroed by their close()); ours is zeroed here.
        const logger = options.logger;
        exporter = logger
          ? startupStep('audit export', () => openAuditExport(config, dataDir, auditKeys.auditKey, logger, { header: { procId: String(process.pid) } }))
          : undefined;
        const sink = exporter;
        audit = await startupStepAsync('audit log', () =>
          AuditLogThread.open(path.join(dataDir, AUDIT_DIR), auditKeys.auditKey, auditKeys.signingKey, {
            checkpointEvery: config.audit.checkpointEvery,
            checkpointIntervalMs: config.audit.checkpointIntervalMs,
            maxFileBytes: config.audit.maxFileBytes,
            commitDelayMs: config.audit.commitDelayMs,
            recoverTornTail: true,
            ...(sink ? { onAppended: (record) => void sink.send(record) } : {}),
          }),
        );
      } finally {
        auditKeys.close();
      }
    }
    keyring = new SqliteStudyKeyring(index.database, provider, { cacheTtlMs: config.keys.cacheTtlMs, cacheMaxKeys: config.keys.cacheMaxKeys });
    const ring = keyring;
    await startupStepAsync('study keys', () => ring.verifyUnwrap());
    const blobs = new EncryptedBlobStore(await FsBlobStore.open(path.join(dataDir, 'blobs')), keyring);
    const opened = { index, keyring, audit, exporter };
    let closed: Promise<void> | undefined;
    return {
      index,
      blobs,
      keyring,
      shareStore: new SqliteShareStore(index.database),
      lifecycle: new SqliteLifecycleStore(index.database),
      verifyKeys: () => ring.verifyUnwrap(),
      ...(keyFileExisted ? {} : { createdKeyFile: keyFile }),
      ...(audit ? { audit, auditor: new Auditor(audit, { id: configuredUrl(config), typeCode: '4' }) } : {}),
      close: () =>
        (closed ??= (async () => {
          // The audit log's final checkpoint first; the index and the keys close even if it fails.
          try {
            await opened.audit?.close();
            // After the log: its final records are spooled (and sent if the collector is up).
            await opened.exporter?.close();
          } finally {
            opened.keyring.close();
            provider.close();
            opened.index.close();
          }
        })()),
    };
  } catch (e) {
    await audit?.close().catch(() => undefined);
    await exporter?.close().catch(() => undefined);
    keyring?.close();
    index?.close();
    provider.close();
    throw e;
  }
}

/** The mTLS listener's URL as configured (server.publicUrl, else https://host:port/base). */
export function configuredUrl(config: Config): string {
  const { host, port, basePath, publicUrl } = config.server;
  return publicUrl ?? `https://${host.includes(':') ? `[${host}]` : host}:${port}${basePath}`;
}

/** Key and index failures at start are operator errors: one message, no stack (StartupError). */
function startupStep<T>(what: string, step: () => T): T {
  try {
    return step();
  } catch (e) {
    throw asStartupError(what, e);
  }
}

async function startupStepAsync<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    throw asStartupError(what, e);
  }
}

function asStartupError(what: string, e: unknown): unknown {
  if (
    e instanceof KeyFileError ||
    e instanceof IndexKeyError ||
    e instanceof KeyUnavailableError ||
    e instanceof KeyIntegrityError ||
    e instanceof AuditKeyError ||
    e instanceof AuditLogError ||
    e instanceof AuditExportError
  ) {
    return new StartupError(`${what}: ${e.message}`);
  }
  return e;
}

/**
 * What a crash can leave (DESIGN.md two-phase writes): staged files, and blobs whose index commit never
 * happened (their pending marks). Both are removed before the server accepts requests.
 */
export async function sweepAfterCrash(storage: Storage, log: Logger, now = new Date()): Promise<{ staged: number; pending: number }> {
  const staged = await storage.blobs.sweepStaging();
  const pending = storage.index.listPending(now);
  for (const key of pending) {
    await storage.blobs.delete(key);
    storage.index.removePending(key);
  }
  if (staged + pending.length > 0) log.warn({ staged, pending: pending.length }, 'removed leftovers of an interrupted write');
  return { staged, pending: pending.length };
}

export interface ComposedServer {
  /** The mutual-TLS listener (server.host:server.port). */
  deps: AppDeps;
  /** The web listener (web.host:web.port), when web.enabled. */
  webDeps?: AppDeps;
  tls: TlsPaths;
  storage: Storage;
  /** The principal registry both the mTLS resolver and the admin API (list()) use. */
  registry: PrincipalRegistry;
  /** The policy engine of both listeners: server.ts reloads it on SIGHUP. */
  policy: CedarPolicyEngine;
  /** The listeners' TLS material: server.ts attaches the listeners, reloads it on SIGHUP and starts its poll. */
  tlsReload: TlsReloader;
}

/** The packaged default policies (admin only), beside src/ and dist/ alike. */
export const DEFAULT_POLICY_FILE = fileURLToPath(new URL('../policies/default.cedar', import.meta.url));

/** The policy file, validated against the schema (fail closed: a missing or invalid file stops the start). */
export function openPolicy(config: Config, logger?: Logger): CedarPolicyEngine {
  try {
    return CedarPolicyEngine.fromFile(config.policy.file ? path.resolve(config.policy.file) : DEFAULT_POLICY_FILE, logger);
  } catch (e) {
    if (e instanceof PolicyLoadError) throw new StartupError(`policy: ${e.message}`);
    throw e;
  }
}

export function shareLinks(config: Config, storage: Storage, logger: Logger): ShareLinks {
  return new ShareLinks({ store: storage.shareStore, index: storage.index, settings: config.shares, log: logger });
}

export async function composeServer(config: Config, logger: Logger): Promise<ComposedServer> {
  const tls = await resolveTlsPaths(config);
  // One metrics registry for the process (both listeners), with the Node process metrics; the TLS gauges from the start.
  const metrics = new ArchiveMetrics({ processMetrics: true });
  const tlsReload = await openTlsReloader(config, tls, logger, metrics);
  const https = tlsReload.serverOptions;
  const registry = new PrincipalRegistry(config);
  let oidc: OidcVerifier | undefined;
  try {
    oidc = OidcVerifier.fromConfig(config);
  } catch (e) {
    throw new StartupError(`oidc: ${(e as Error).message}`);
  }
  const webHttps = tlsReload.webServerOptions;
  const policy = openPolicy(config, logger);
  const storage = await openStorage(config, { logger });
  for (const torn of storage.audit.recovered) {
    // File names and sizes only: the line itself is encrypted and stays in movedTo for an operator.
    logger.warn(
      { file: path.basename(torn.file), offset: torn.offset, bytes: torn.bytes, movedTo: path.basename(torn.movedTo) },
      'audit log: set aside a torn last line (a crash during a write?); run dicomvault audit verify',
    );
  }
  await sweepAfterCrash(storage, logger);
  // Shared by both listeners: one policy engine (one reload point), one share-link service.
  const shares = shareLinks(config, storage, logger);
  // Uploaded objects are decoded in worker threads (dicom/parse-pool.ts); closed with the storage (server.ts closes
  // it after the listeners, so in-flight uploads finish first).
  const { parseWorkers, parseTimeoutMs, parseMemoryMb } = config.stow;
  const parsePool = new ParsePool({ workers: parseWorkers, timeoutMs: parseTimeoutMs, memoryMb: parseMemoryMb, log: logger });
  // One transcoder (codec worker pool) for both listeners, closed with the storage like the parse pool.
  const transcoding = transcoderFor(config, config.dicom, logger);
  // One renderer (render worker pool) on that transcoder, for both listeners, closed the same way.
  const rendering = rendererFor(config, transcoding.transcoder, config.dicom);
  const shared = {
    transcoder: transcoding.transcoder,
    rendering,
    index: storage.index,
    // Retention, holds, the bin and purged-study answers (issue 6): without it the server would have no DELETE or
    // reject routes and STOW would not compute keep-until (test/e2e/serve-lifecycle.test.ts).
    lifecycle: storage.lifecycle,
    blobs: storage.blobs,
    readInstance: parsePool.reader(),
    logger,
    policy,
    shares,
    principals: registry,
    auditor: storage.auditor,
    metrics,
    verifyKeys: storage.verifyKeys,
  };
  const deps: AppDeps = { ...shared, config, principalOf: mtlsResolver(registry), https, listener: 'mtls' };
  let webDeps: AppDeps | undefined;
  if (webHttps) {
    if (!oidc) logger.warn('web listener without oidc.issuer: it accepts share-link sessions only');
    webDeps = {
      ...shared,
      // The web app's own URLs (RetrieveURL, BulkDataURI) name the web listener.
      config: { ...config, server: { ...config.server, publicUrl: config.web.publicUrl } },
      principalOf: webResolver({ oidc, shareSession: (cookie) => shares.sessionPrincipal(cookie) }),
      https: webHttps,
      listener: 'web',
    };
  }
  const withPool: Storage = {
    ...storage,
    // allSettled: the storage closes even if a pool fails to.
    close: () => Promise.allSettled([parsePool.close(), transcoding.close(), rendering.close()]).then(() => storage.close()),
  };
  return { tls, storage: withPool, registry, policy, tlsReload, deps, ...(webDeps ? { webDeps } : {}) };
}
