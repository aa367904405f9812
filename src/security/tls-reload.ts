// Certificate and CRL rotation without a restart (issue 8 item 5; SECURITY.md 7 and 8 cases 2 and 4).
//
// The listeners' TLS material (CA, server certificate and key, CRLs) is read here, at start and again on each
// reload (SIGHUP, or a file that changed when tls.reloadIntervalMs polls). A reload validates everything before
// anything is applied: a file that does not parse, a key that does not match its certificate, a CRL whose
// signature is not its CA's or that is not valid yet keep the material in force, say why, and never stop the
// server. A valid set goes to each listener with server.setSecureContext(): new handshakes use it at once.
//
// setSecureContext() does nothing to connections already open: a keep-alive socket stays authorized with a
// certificate revoked since (SECURITY.md 7, measured). So the mTLS listener's sockets are tracked, and after each
// reload every one is checked against the new material: revoked by a CRL, no longer issued by a trusted CA, or
// issued by a CA whose CRL has expired or is missing (OpenSSL refuses those clients now) -> the socket is
// destroyed. The rebuilt context also has fresh session-ticket keys and an empty session cache (tls-options.ts:
// no fixed ticketKeys), so a session from before the reload cannot resume: the client goes through a full
// handshake, which checks the new CRL.
//
// Case 4: an expired CRL fails closed (OpenSSL answers CRL_HAS_EXPIRED to every client of that CA); an expired
// CRL on reload is applied all the same (the listener behaves as it would after a restart with that file), and
// logged as an error. Before it comes to that, the earliest nextUpdate is a Prometheus gauge and a warning is
// logged once it is within tls.crlWarningMs.
//
// No HTTP here: the listeners are node:tls servers, the audit trail and the metrics are optional observers.

import 'reflect-metadata'; // @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata API
import { X509Certificate as PeculiarCertificate } from '@peculiar/x509';
import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type https from 'node:https';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import { type CrlParseRequest, parseCrls, pemBlocks } from './crl-parse.js';
import type { CrlWorkerReply } from './crl-worker.js';
import { AuditEventType } from '../audit/audit-record.js';
import type { Auditor } from '../audit/auditor.js';
import type { Logger } from '../logger.js';
import type { ArchiveMetrics, TLS_CLOSE_REASONS } from '../ops/metrics.js';
import { type LoadedTlsMaterial, loadTlsMaterial } from './pki.js';
import { normalizeFingerprint } from './principal.js';
import { buildTlsServerOptions, buildWebTlsServerOptions } from './tls-options.js';
import { workerEntry } from '../worker-entry.js';

export interface TlsFilePaths {
  ca: string;
  cert: string;
  key: string;
  crl?: string | undefined;
}

/** The web listener's certificate and key files (web.cert/web.key, else the mTLS listener's). */
export interface WebTlsFilePaths {
  cert: string;
  key: string;
}

/** One CRL in force: who issued it, its dates, and the serial numbers it revokes. */
export interface CrlInForce {
  /** The CA of tls.ca that signed it; absent for an intermediate CA's CRL whose CA the clients send themselves. */
  ca: X509Certificate | undefined;
  /** Its issuer name (RFC 4514 string, as @peculiar/x509 writes it): matched against certificates when `ca` is absent. */
  issuer: string;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** Serial numbers, lowercase hex without leading zeros (normalizeSerial). */
  revoked: Set<string>;
}

/** A validated set of files: what a listener gets, and what the socket checks compare against. */
export interface TlsMaterialSet {
  options: https.ServerOptions;
  webOptions?: https.ServerOptions;
  cas: X509Certificate[];
  crls: CrlInForce[];
  serverNotAfter: Date;
  webNotAfter?: Date;
  /** SHA-256 of each file's content, by name (ca, cert, key, crl, webCert, webKey): what changed on a reload. */
  digests: Record<string, string>;
}

export type ReloadResult =
  | { outcome: 'applied'; changed: string[]; closed: number }
  | { outcome: 'unchanged' }
  | { outcome: 'failed'; error: string };

export type ClosedReason = (typeof TLS_CLOSE_REASONS)[number];

export interface TlsReloaderOptions {
  paths: TlsFilePaths;
  web?: WebTlsFilePaths | undefined;
  log: Logger;
  metrics?: ArchiveMetrics | undefined;
  /** A warning is logged once the earliest CRL nextUpdate is this close (ms); 0: only when it has passed. */
  crlWarningMs: number;
  /** Clock (tests). */
  now?: () => number;
}

export interface AttachOptions {
  /** The mutual-TLS listener: its sockets are tracked and checked after each reload. */
  mtls: tls.Server;
  /** The web listener (no client certificates): only its certificate is replaced. */
  web?: tls.Server | undefined;
  /** Reloads (110113 / 110129 Security Configuration) and closed connections (110126) go to the audit trail. */
  auditor?: Pick<Auditor, 'securityAlert' | 'source'> | undefined;
}

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_CHAIN_DEPTH = 10;
/** CRL files up to this size (PEM bytes, about 1,300 entries) are parsed on the event loop, larger ones in a worker. */
export const CRL_INLINE_MAX_BYTES = 64 * 1024;

/**
 * Hex serial -> one spelling: the number, lowercase, without leading zeros. Node writes upper case by octets
 * ("0ABC"), @peculiar lower case with DER's sign octet ("00ff..."), openssl with colons.
 */
export function normalizeSerial(serial: string): string {
  return serial.replaceAll(':', '').toLowerCase().replace(/^0+(?=[0-9a-f])/, '');
}

function digest(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** crl-parse.ts in a worker thread of its own, ended when it has answered. */
function parseCrlsInWorker(request: CrlParseRequest): Promise<CrlWorkerReply> {
  const { entry, eval: isEval } = workerEntry(import.meta.url, 'crl-worker');
  return new Promise((resolve) => {
    const worker = new Worker(entry, { eval: isEval, workerData: request });
    let settled = false;
    const settle = (reply: CrlWorkerReply) => {
      if (settled) return;
      settled = true;
      resolve(reply);
      void worker.terminate();
    };
    worker.once('message', settle);
    worker.once('error', (err) => settle({ ok: false, error: `the CRL reader failed (${message(err)})` }));
    worker.once('exit', (code) => settle({ ok: false, error: `the CRL reader stopped (exit code ${code})` }));
  });
}

/**
 * The CRLs of the file, checked against the CA bundle (crl-parse.ts parseCrls; in a worker thread for a large
 * file): a CRL whose
 * issuer is a CA of the bundle must verify with that CA's key, and must already be valid. A CRL of an issuer
 * outside the bundle (an intermediate CA the clients send in their chain) cannot be verified here: it is kept,
 * with a warning, and OpenSSL checks its signature at each handshake. An expired CRL passes: see the header
 * comment. Throws an Error naming the file when one is not usable.
 */
export async function readCrls(crlPem: Buffer, cas: X509Certificate[], file: string, now: number, log?: Logger): Promise<CrlInForce[]> {
  const request: CrlParseRequest = { pem: crlPem.toString('latin1'), cas: cas.map((ca) => new Uint8Array(ca.raw)), file, now };
  // A small file (about a thousand entries: tens of milliseconds) is read here; a worker costs more to start.
  const reply: CrlWorkerReply =
    crlPem.length <= CRL_INLINE_MAX_BYTES
      ? await parseCrls(request).then(
          (crls) => ({ ok: true as const, crls }),
          (err: unknown) => ({ ok: false as const, error: message(err) }),
        )
      : await parseCrlsInWorker(request);
  if (!reply.ok) throw new Error(reply.error);
  return reply.crls.map((crl) => {
    if (crl.caIndex === undefined) {
      log?.warn({ security: true, event: 'tls.crl.unverified', issuer: crl.issuer }, 'a CRL of an issuer outside tls.ca: its signature is checked by OpenSSL at each handshake only');
    }
    return {
      ca: crl.caIndex === undefined ? undefined : cas[crl.caIndex],
      issuer: crl.issuer,
      thisUpdate: new Date(crl.thisUpdate),
      nextUpdate: crl.nextUpdate === undefined ? undefined : new Date(crl.nextUpdate),
      revoked: new Set(crl.serials.map(normalizeSerial)),
    };
  });
}

/**
 * Reads and validates the whole set (both listeners), or throws naming the file at fault. OpenSSL gets the last
 * word: tls.createSecureContext() is built from the options, so what it would refuse is refused here, not by
 * setSecureContext() half-way through applying a set.
 */
export async function loadTlsMaterialSet(paths: TlsFilePaths, web: WebTlsFilePaths | undefined, now: number, log?: Logger): Promise<TlsMaterialSet> {
  const material = await loadTlsMaterial({ caPath: paths.ca, certPath: paths.cert, keyPath: paths.key, crlPath: paths.crl });
  const cas = pemBlocks(material.ca.toString('latin1'), 'CERTIFICATE').map((pem) => new X509Certificate(pem));
  if (cas.length === 0) throw new Error(`TLS CA certificate file ${paths.ca} holds no PEM certificate`);
  const crls = material.crl && paths.crl ? await readCrls(material.crl, cas, paths.crl, now, log) : [];
  const options = buildTlsServerOptions(material);
  tls.createSecureContext(options);
  const digests: Record<string, string> = { ca: digest(material.ca), cert: digest(material.cert), key: digest(material.key) };
  if (material.crl) digests.crl = digest(material.crl);
  const set: TlsMaterialSet = { options, cas, crls, serverNotAfter: notAfter(material), digests };
  if (web) {
    const webMaterial = await loadTlsMaterial({ caPath: paths.ca, certPath: web.cert, keyPath: web.key });
    set.webOptions = buildWebTlsServerOptions(webMaterial);
    tls.createSecureContext(set.webOptions);
    set.webNotAfter = notAfter(webMaterial);
    digests.webCert = digest(webMaterial.cert);
    digests.webKey = digest(webMaterial.key);
  }
  return set;
}

function notAfter(material: LoadedTlsMaterial): Date {
  return new Date(new X509Certificate(material.cert).validTo);
}

/** The CAs of the bundle that have no CRL: with a CRL configured, OpenSSL refuses their clients (UNABLE_TO_GET_CRL). */
function casWithoutCrl(set: TlsMaterialSet): X509Certificate[] {
  if (set.crls.length === 0) return [];
  return set.cas.filter((ca) => !set.crls.some((c) => c.ca === ca));
}

function issuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

/** The peer's chain as the handshake gave it: leaf first, up to its root (or MAX_CHAIN_DEPTH). */
function peerChain(socket: tls.TLSSocket): X509Certificate[] {
  const leaf = socket.getPeerX509Certificate();
  const chain: X509Certificate[] = [];
  for (let c: X509Certificate | undefined = leaf; c && chain.length < MAX_CHAIN_DEPTH; c = c.issuerCertificate) {
    chain.push(c);
    if (c.checkIssued(c)) break; // self-issued: the root
  }
  return chain;
}

/**
 * Would OpenSSL refuse this peer's chain under `set` now? Issued by no CA of the bundle; or, with CRLs configured
 * (CRL_CHECK_ALL: every certificate of the chain is checked), revoked by its issuer's CRL, issued by a CA whose
 * CRL has expired, or issued by a CA that has no CRL. Undefined: it would be accepted.
 */
export function refusalOf(chain: X509Certificate[], set: TlsMaterialSet, now: number): ClosedReason | undefined {
  if (chain.length === 0) return 'untrusted';
  const trusted = chain.some((c) => set.cas.some((ca) => c.fingerprint256 === ca.fingerprint256 || issuedBy(c, ca)));
  if (!trusted) return 'untrusted';
  if (set.crls.length === 0) return undefined;
  for (const cert of chain) {
    let issuerName: string | undefined;
    let covered = false;
    for (const crl of set.crls) {
      if (crl.ca) {
        if (!issuedBy(cert, crl.ca)) continue;
      } else if ((issuerName ??= new PeculiarCertificate(cert.raw).issuer) !== crl.issuer) {
        continue;
      }
      covered = true;
      if (crl.revoked.has(normalizeSerial(cert.serialNumber))) return 'revoked';
      if (crl.nextUpdate && crl.nextUpdate.getTime() <= now) return 'crl-expired';
    }
    if (!covered) return 'crl-missing';
  }
  return undefined;
}

export class TlsReloader {
  private readonly sockets = new Set<tls.TLSSocket>();
  private servers: AttachOptions | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private pollTimer: NodeJS.Timeout | undefined;
  private crlTimer: NodeJS.Timeout | undefined;
  /** File stat signature last looked at by the poll, so one bad change is reported once, not at every tick. */
  private seenSignature = '';
  private readonly now: () => number;

  private constructor(
    private readonly options: TlsReloaderOptions,
    private current: TlsMaterialSet,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Loads and validates the material at start; throws (the caller refuses to start) when it is not usable. */
  static async open(options: TlsReloaderOptions): Promise<TlsReloader> {
    const now = (options.now ?? Date.now)();
    // Looked at before reading: a file replaced while it is read is seen as changed by the first poll.
    const signature = await fileSignature(options);
    const reloader = new TlsReloader(options, await loadTlsMaterialSet(options.paths, options.web, now, options.log));
    reloader.seenSignature = signature;
    reloader.observe();
    return reloader;
  }

  /** The mTLS listener's options (buildApp's `https`). */
  get serverOptions(): https.ServerOptions {
    return this.current.options;
  }

  get webServerOptions(): https.ServerOptions | undefined {
    return this.current.webOptions;
  }

  get material(): TlsMaterialSet {
    return this.current;
  }

  /** Open connections of the mTLS listener being tracked. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** The listeners to apply reloads to; from now on the mTLS listener's authorized sockets are tracked. */
  attach(servers: AttachOptions): void {
    this.servers = servers;
    servers.mtls.on('secureConnection', (socket: tls.TLSSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Polls the files every `intervalMs` (0: never) and reloads when one changed; unref'd, so it never keeps the process up. */
  start(intervalMs: number): void {
    if (intervalMs <= 0 || this.pollTimer) return;
    this.pollTimer = setInterval(() => void this.reloadIfChanged(), intervalMs);
    this.pollTimer.unref();
  }

  stop(): void {
    clearInterval(this.pollTimer);
    clearTimeout(this.crlTimer);
    this.pollTimer = undefined;
    this.crlTimer = undefined;
  }

  /** What the poll runs: a reload when a file's mtime, size or inode changed since the last look. */
  reloadIfChanged(): Promise<ReloadResult | undefined> {
    return this.serialized<ReloadResult | undefined>(async () => {
      const signature = await this.signature();
      if (signature === this.seenSignature) return undefined;
      this.seenSignature = signature;
      return this.reloadNow('interval');
    });
  }

  /** Re-reads every file (SIGHUP). One reload at a time: a second one waits for the first. */
  reload(trigger: string): Promise<ReloadResult> {
    return this.serialized<ReloadResult>(async () => {
      this.seenSignature = await this.signature();
      return this.reloadNow(trigger);
    });
  }

  /**
   * One reload at a time, and never a rejection (SIGHUP and the poll do not await): anything unexpected is a
   * failed reload, logged, with the material in force kept.
   */
  private serialized<T extends ReloadResult | undefined>(work: () => Promise<T>): Promise<T | ReloadResult> {
    const guarded = async (): Promise<T | ReloadResult> => {
      try {
        return await work();
      } catch (err) {
        this.options.log.error({ security: true, event: 'tls.reload.failed', err }, 'TLS reload failed');
        return { outcome: 'failed', error: message(err) };
      }
    };
    const run = this.queue.then(guarded);
    this.queue = run;
    return run;
  }

  private async reloadNow(trigger: string): Promise<ReloadResult> {
    const { log, metrics } = this.options;
    let next: TlsMaterialSet;
    let changed: string[];
    try {
      next = await loadTlsMaterialSet(this.options.paths, this.options.web, this.now(), log);
      changed = Object.keys({ ...this.current.digests, ...next.digests }).filter((k) => this.current.digests[k] !== next.digests[k]);
      if (changed.length > 0 && this.servers) {
        // Validated above with tls.createSecureContext(), so neither call is expected to throw; if one did, the mTLS
        // listener is first: a web listener left on its old certificate is the lesser harm.
        this.servers.mtls.setSecureContext(next.options);
        if (this.servers.web && next.webOptions) this.servers.web.setSecureContext(next.webOptions);
      }
    } catch (err) {
      const error = message(err);
      metrics?.tlsReloads.labels('failed').inc();
      // Fail safe, not open: the listeners keep the material in force (still what OpenSSL checks).
      log.error({ security: true, event: 'tls.reload.failed', trigger, error }, 'TLS reload refused: the certificates and CRLs in force are kept');
      this.audit(AuditEventType.securityConfiguration, `TLS reload refused (${trigger}): ${error}; the material in force is kept`, 4);
      return { outcome: 'failed', error };
    }
    if (changed.length === 0) {
      metrics?.tlsReloads.labels('unchanged').inc();
      log.info({ event: 'tls.reload.unchanged', trigger }, 'TLS reload: no file changed');
      return { outcome: 'unchanged' };
    }
    this.current = next;
    metrics?.tlsReloads.labels('applied').inc();
    log.warn({ security: true, event: 'tls.reloaded', trigger, changed }, 'TLS material reloaded: new connections use it');
    this.audit(AuditEventType.securityConfiguration, `TLS material reloaded (${trigger}): ${changed.join(', ')} changed`, 0);
    const closed = this.closeRefused();
    this.observe();
    return { outcome: 'applied', changed, closed };
  }

  /**
   * Destroys each open mTLS connection whose certificate the material in force would refuse now. Returns how
   * many. A destroyed socket takes its cached identity with it (authenticate.ts keys it by the socket).
   */
  closeRefused(): number {
    const now = this.now();
    let closed = 0;
    for (const socket of this.sockets) {
      // Already going (its 'close' has not fired yet): nothing to check, and its certificate is no longer readable.
      if (socket.destroyed) continue;
      let chain: X509Certificate[];
      try {
        chain = peerChain(socket);
      } catch {
        chain = [];
      }
      const reason = refusalOf(chain, this.current, now);
      if (!reason) continue;
      const address = socket.remoteAddress;
      const fingerprint = chain[0] ? normalizeFingerprint(chain[0].fingerprint256) : undefined;
      socket.destroy();
      this.sockets.delete(socket);
      closed++;
      this.options.metrics?.tlsConnectionsClosed.labels(reason).inc();
      this.options.log.warn({ security: true, event: 'tls.connection.closed', reason, remoteAddress: address, fingerprint }, 'closed a connection whose client certificate the TLS material in force refuses');
      void this.servers?.auditor?.securityAlert(
        AuditEventType.nodeAuthentication,
        `connection closed after a TLS material change: client certificate ${reason}`,
        { userId: address ?? 'unknown', ...(fingerprint ? { alternativeUserId: fingerprint } : {}), ...(address ? { address } : {}) },
        {},
        this.options.log,
      );
    }
    return closed;
  }

  private audit(type: (typeof AuditEventType)[keyof typeof AuditEventType], description: string, outcome: 0 | 4): void {
    const auditor = this.servers?.auditor;
    if (!auditor) return;
    // The server itself is the participant that detected the change (PS3.15 A.5.3.11).
    void auditor.securityAlert(type, description, { userId: auditor.source.id }, { outcome }, this.options.log);
  }

  /** Metrics and the CRL expiry warning of the material in force; re-armed at each change. */
  private observe(): void {
    const { metrics } = this.options;
    const set = this.current;
    metrics?.tlsCertificateNotAfter.labels('mtls').set(set.serverNotAfter.getTime() / 1000);
    if (set.webNotAfter) metrics?.tlsCertificateNotAfter.labels('web').set(set.webNotAfter.getTime() / 1000);
    const next = this.earliestNextUpdate();
    // 0: no CRL configured (or none with a nextUpdate). Alert on `... > 0 and ... - time() < margin`.
    metrics?.tlsCrlNextUpdate.set(next ? next.getTime() / 1000 : 0);
    for (const ca of casWithoutCrl(set)) {
      this.options.log.warn({ security: true, event: 'tls.crl.missing', ca: ca.subject.replaceAll('\n', ', ') }, 'a CA of tls.ca has no CRL in tls.crl: OpenSSL refuses every client it issued (UNABLE_TO_GET_CRL)');
    }
    this.checkCrlExpiry();
  }

  private earliestNextUpdate(): Date | undefined {
    let earliest: Date | undefined;
    for (const c of this.current.crls) if (c.nextUpdate && (!earliest || c.nextUpdate < earliest)) earliest = c.nextUpdate;
    return earliest;
  }

  /**
   * Logs where the earliest nextUpdate stands and sets a timer for its next milestone: the warning margin, then
   * nextUpdate itself (when open connections of that CA's clients are closed, as new handshakes fail from then).
   */
  private checkCrlExpiry(): void {
    clearTimeout(this.crlTimer);
    this.crlTimer = undefined;
    const next = this.earliestNextUpdate();
    if (!next) return;
    const now = this.now();
    const left = next.getTime() - now;
    const fields = { security: true, nextUpdate: next.toISOString() };
    let wakeIn: number;
    if (left <= 0) {
      this.options.log.error({ ...fields, event: 'tls.crl.expired' }, 'a CRL in force has expired: OpenSSL refuses every client of its CA (CRL_HAS_EXPIRED) until a new CRL is loaded');
      this.closeRefused();
      return;
    } else if (left <= this.options.crlWarningMs) {
      this.options.log.warn({ ...fields, event: 'tls.crl.expiring' }, 'a CRL in force expires soon: publish a new one and reload (SIGHUP) before nextUpdate, or every client of its CA is refused');
      wakeIn = left;
    } else {
      wakeIn = left - this.options.crlWarningMs;
    }
    this.crlTimer = setTimeout(() => this.checkCrlExpiry(), Math.min(wakeIn, MAX_TIMER_MS));
    this.crlTimer.unref();
  }

  private signature(): Promise<string> {
    return fileSignature(this.options);
  }
}

/** mtime, size and inode of every file, in one string (a missing file is part of it). */
async function fileSignature({ paths, web }: Pick<TlsReloaderOptions, 'paths' | 'web'>): Promise<string> {
  const files = [paths.ca, paths.cert, paths.key, paths.crl, web?.cert, web?.key].filter((f): f is string => f !== undefined);
  const parts = await Promise.all(
    files.map(async (f) => {
      try {
        const s = await fs.stat(f);
        return `${f}:${s.mtimeMs}:${s.size}:${s.ino}`;
      } catch (err) {
        return `${f}:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
      }
    }),
  );
  return parts.join('|');
}
