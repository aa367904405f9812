// Every configuration key and its default, in one place (DESIGN.md "Config"). Parsed once at start by
// load.ts; nothing below config/ reads process.env. README.md "Configuration" documents each key:
// test/config/readme-keys.test.ts keeps the two in step.

import { z } from 'zod';
import { retentionConfigSchema } from '../policy/retention.js';
import { trustedProxyList } from '../security/trusted-proxies.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();

/** An IPv4/IPv6 address or CIDR range, checked the way the server will use it. */
const ipOrCidr = z.string().refine(
  (s) => {
    try {
      trustedProxyList([s]);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be an IP address or CIDR range such as 10.0.0.0/8 or ::1' },
);

/**
 * A web origin as browsers send it in `Origin` (RFC 6454 6.2, Fetch "serialization of an origin"):
 * http(s) scheme, lowercase host, port only when not the default, no path and no trailing /.
 * `*` and `null` are refused: responses carry PHI and are fetched with credentials.
 */
const webOrigin = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === s;
    } catch {
      return false;
    }
  },
  { message: 'must be an origin such as https://viewer.example.org (scheme, lowercase host, optional port; no path, no trailing /, no *)' },
);

/**
 * Where OIDC key material comes from: https, or http on a loopback address (a local development IdP, the tests).
 * Keys fetched over plain HTTP from elsewhere could be swapped on the way. (security/oidc.ts checks it again.)
 */
const keyUrl = z.url().refine(
  (s) => {
    const u = new URL(s);
    return u.protocol === 'https:' || (u.protocol === 'http:' && (u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(u.hostname)));
  },
  { message: 'must be an https URL (http only on localhost/127.0.0.1/::1)' },
);

const principalAttributes = z
  .strictObject({
    institution: z.string().default(''),
    /** A person name as DICOM writes it (FAMILY^GIVEN); folded like QIDO folds names before policies see it. */
    referringPhysician: z.string().default(''),
    npi: z.string().default(''),
    sites: z.array(z.string().min(1)).default([]),
  })
  .prefault({});

/** One way to recognise a certificate; exactly one per entry (see principals below). */
const certificateMatch = z.union([
  z.strictObject({ fingerprint256: z.string().regex(/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, 'must be a SHA-256 fingerprint (64 hex digits, colons allowed)') }),
  z.strictObject({ sanUri: z.string().min(1) }),
  z.strictObject({ sanDns: z.string().min(1) }),
  z.strictObject({ sanEmail: z.string().min(1) }),
  /** `issuer` exactly as Node prints it (one TYPE=value per line); `subject` the same with `*` matching any run of characters inside one value. */
  z.strictObject({ issuer: z.string().min(1), subject: z.string().min(1) }),
]);

const principalEntry = z.strictObject({
  /** The principal id policies and the audit trail see, e.g. `gateway-site-a`. */
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, 'must be 1-128 characters: letters, digits and . _ : @ -'),
  match: certificateMatch,
  roles: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)).default([]),
  attributes: principalAttributes,
});

export const configSchema = z
  .strictObject({
    /**
     * development: missing TLS paths mean "use certs/dev, creating a development CA there if absent".
     * production: TLS paths are required and no certificate is ever generated (fail closed).
     */
    profile: z.enum(['development', 'production']).default('development'),

    server: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(8443),
        /** Path prefix of every DICOMweb resource: https://host:port/dicomweb/studies */
        basePath: z
          .string()
          .regex(/^(\/[A-Za-z0-9._~-]+)*$/, 'must be empty or start with / and contain no trailing /')
          .default('/dicomweb'),
        /** Absolute base URL used in RetrieveURL values, e.g. https://pacs.example.org/dicomweb. Default: from host and port. */
        publicUrl: z.url().optional(),
        /**
         * Reverse proxies or gateways (IP addresses or CIDR ranges) whose Forwarded / X-Forwarded-Proto /
         * X-Forwarded-Host headers say which URL the client used. Empty: those headers are never believed.
         */
        trustedProxies: z.array(ipOrCidr).default([]),
        /** Whole-request limit; STOW of large studies needs minutes, a slowloris does not get them (SECURITY.md 8.18). */
        requestTimeoutMs: positiveInt.default(10 * 60 * 1000),
        headersTimeoutMs: positiveInt.default(30 * 1000),
        keepAliveTimeoutMs: positiveInt.default(5 * 1000),
        /** Open TLS connections accepted at once, per listener (over it: refused at accept, counted in /metrics). */
        maxConnections: positiveInt.default(1024),
        /**
         * Open connections from one peer address at once, per listener, counted before the TLS handshake (SECURITY.md
         * 8.18). A hospital gateway may hold many; trustedProxies are exempt (they carry many clients).
         */
        maxConnectionsPerIp: positiveInt.default(64),
        /** Requests served on one keep-alive connection before it is closed (0: no limit). */
        maxRequestsPerSocket: z.number().int().min(0).default(0),
        /**
         * On SIGTERM/SIGINT: how long in-flight requests (uploads) may take to finish after the listeners stop
         * accepting; then their connections are cut and the server stops anyway (set below the supervisor's kill
         * timeout: systemd TimeoutStopSec, Kubernetes terminationGracePeriodSeconds).
         */
        shutdownTimeoutMs: positiveInt.default(60 * 1000),
      })
      .prefault({}),

    tls: z
      .strictObject({
        /** PEM file of the CA(s) whose client certificates are accepted. */
        ca: z.string().min(1).optional(),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
        /** PEM CRL(s); every CA in the chain then needs one (SECURITY.md 7). */
        crl: z.string().min(1).optional(),
        /** Where the development PKI lives (profile development only). */
        devDir: z.string().min(1).default('certs/dev'),
        /**
         * How often (ms) the TLS files are looked at; one whose mtime, size or inode changed reloads them all
         * (security/tls-reload.ts), as SIGHUP does. 0: SIGHUP only.
         */
        reloadIntervalMs: z
          .number()
          .int()
          .refine((v) => v === 0 || v >= 1000, 'must be 0 (SIGHUP only) or at least 1000')
          .default(60_000),
        /** A warning is logged once a CRL's nextUpdate is this close (ms): past it every client of its CA is refused. */
        crlWarningMs: z.number().int().min(0).default(24 * 60 * 60 * 1000),
      })
      .prefault({}),

    storage: z
      .strictObject({
        /** SQLite index (index.sqlite) and blobs (blobs/) live here; created on first start. */
        dataDir: z.string().min(1).default('data'),
      })
      .prefault({}),

    keys: z
      .strictObject({
        /**
         * The local key file (KEK versions, storage/keys/kek-file.ts); relative paths are to the working directory.
         * Created (0600, folder 0700) only together with a new data folder; back it up apart from the data.
         */
        file: z.string().min(1).default('keys/kek.json'),
        /** An unwrapped study key unused this long is zeroed and dropped from memory. */
        cacheTtlMs: positiveInt.default(5 * 60 * 1000),
        /** Unwrapped study keys kept in memory at most (least recently used out first). */
        cacheMaxKeys: positiveInt.default(1024),
      })
      .prefault({}),

    /**
     * The audit log (audit/audit-log.ts, <storage.dataDir>/audit): encrypted, hash-chained records; a signed
     * checkpoint every checkpointEvery records or checkpointIntervalMs, and on shutdown.
     */
    audit: z
      .strictObject({
        /** A signed checkpoint after this many records. */
        checkpointEvery: positiveInt.default(1000),
        /** ... or after this long when records were added since the last one (0: only by count and on shutdown). */
        checkpointIntervalMs: z.number().int().min(0).default(60_000),
        /** An audit file rotates (audit-NNNNNN.jsonl) before it would grow past this. */
        maxFileBytes: positiveInt.default(64 * MiB),
        /** Group commit: a record waits at most this long to be written and fdatasync'd with others (0: at once). */
        commitDelayMs: z.number().int().min(0).max(1000).default(10),
        /**
         * Export of every record to a syslog collector over TLS (RFC 5424/5425, DICOM PS3.15 A.6, audit XML), spooled
         * encrypted to <storage.dataDir>/audit-spool while it is unreachable. Off unless syslogHost is set; then
         * syslogCa is required (no unverified mode).
         */
        syslogHost: z.string().min(1).optional(),
        syslogPort: port.default(6514),
        /** PEM CA file the collector's certificate must chain to. */
        syslogCa: z.string().min(1).optional(),
        /** Client certificate and key (PEM files) for collectors that require mutual TLS; default: none. */
        syslogCert: z.string().min(1).optional(),
        syslogKey: z.string().min(1).optional(),
        /** Bound on the spool's size on disk; beyond it new messages are dropped (and counted). */
        syslogSpoolMaxBytes: positiveInt.default(64 * MiB),
      })
      .prefault({}),

    /**
     * The principal registry (issue 5): which verified client certificates are whom. A certificate that matches no
     * entry is refused with 403. Entries are tried in order; the first match wins. Each entry matches by exactly
     * one of: the certificate's SHA-256 fingerprint, a SAN URI, a SAN DNS name, a SAN e-mail, or an issuer plus a
     * subject pattern (a whole department's CA). In the development profile the development client certificate
     * (urn:dicomvault:principal:dev-admin) is an admin unless an entry names it.
     */
    principals: z.array(principalEntry).default([]),

    policy: z
      .strictObject({
        /**
         * The Cedar policy file (policy/cedar-schema.ts is its schema); relative paths are to the working directory.
         * Default: the packaged policies/default.cedar (admins may do everything). Missing or invalid: no start.
         */
        file: z.string().min(1).optional(),
      })
      .prefault({}),

    /**
     * The second, optional listener for browsers (issue 5): TLS without client certificates; accepts only OIDC
     * bearer tokens and share-link sessions. Off unless enabled.
     */
    web: z
      .strictObject({
        enabled: z.boolean().default(false),
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(8444),
        /** Server certificate and key of this listener (PEM files); default: the mTLS listener's. */
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
        /** Absolute base URL browsers use for this listener (BulkDataURI, RetrieveURL, share links); default: from host and port. */
        publicUrl: z.url().optional(),
      })
      .prefault({}),

    /** OIDC bearer tokens on the web listener (web.enabled). */
    oidc: z
      .strictObject({
        /**
         * The issuer (`iss`) tokens must name, exactly as the IdP writes it (Keycloak: https://host/realms/NAME).
         * Absent: bearer tokens are not accepted. https only, except loopback.
         */
        issuer: keyUrl.optional(),
        /**
         * The issuer's JWKS. Default: the jwks_uri of `<issuer>/.well-known/openid-configuration`, fetched at the first
         * token (that document must name the same issuer). https only, except loopback.
         */
        jwksUri: keyUrl.optional(),
        /** Accepted `aud` values; a token must name one (Keycloak: add an audience mapper for this client). Required with an issuer. */
        audience: z.array(z.string().min(1)).default([]),
        /** Accepted signature algorithms (no `none`, no HMAC: the server holds no shared secret). */
        algorithms: z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).default(['RS256', 'PS256', 'ES256', 'EdDSA']),
        /** Allowed clock skew for exp/nbf/iat, in seconds. */
        clockToleranceSec: z.number().int().min(0).max(300).default(30),
        /** Tokens with a longer lifetime (exp - iat) are refused: short lifetimes are the automatic log-off. */
        maxLifetimeSec: positiveInt.default(3600),
        /** Claim naming the principal (prefixed `oidc:`); a string of at most 256 characters. Tokens must also carry `sub`. */
        idClaim: z.string().min(1).default('sub'),
        /** Claim holding the roles: a string array (or space-separated string), dotted path allowed (realm_access.roles). */
        rolesClaim: z.string().min(1).default('roles'),
        /**
         * Claims for the principal attributes; absent claims give '' / []. A name is first looked up as is (URL-style
         * claim names contain dots), then as a dotted path (IHE IUA: extensions.ihe_iua.subject_organization).
         */
        institutionClaim: z.string().min(1).default('institution'),
        referringPhysicianClaim: z.string().min(1).default('referring_physician'),
        npiClaim: z.string().min(1).default('npi'),
        sitesClaim: z.string().min(1).default('sites'),
      })
      .prefault({}),

    shares: z
      .strictObject({
        /** Lifetime of a link when the request names none, and the longest allowed. */
        defaultTtlHours: positiveInt.default(48),
        maxTtlHours: positiveInt.default(24 * 30),
        /** How long the browser session a link is exchanged for lasts (HttpOnly cookie); never past the link's expiry. */
        sessionTtlMinutes: positiveInt.default(60),
        /** Wrong second factors before the link locks. */
        maxFailedAttempts: positiveInt.default(5),
        /**
         * Where a browser goes once it has exchanged a link for a session (303), with `{StudyInstanceUID}` replaced,
         * e.g. https://viewer.example.org/viewer?StudyInstanceUIDs={StudyInstanceUID}. The viewer must be same-site
         * with the web listener (the session cookie is SameSite=Strict). Absent: the exchange answers JSON.
         */
        viewerUrl: z
          .string()
          .refine(
            (s) => {
              try {
                const u = new URL(s.replaceAll('{StudyInstanceUID}', '1.2.3'));
                return (u.protocol === 'https:' || u.protocol === 'http:') && s.includes('{StudyInstanceUID}');
              } catch {
                return false;
              }
            },
            { message: 'must be an http(s) URL containing {StudyInstanceUID}' },
          )
          .optional(),
      })
      .prefault({}),

    stow: z
      .strictObject({
        maxParts: positiveInt.default(10_000),
        maxPartBytes: positiveInt.default(4 * GiB),
        maxPartHeaderBytes: positiveInt.default(16 * 1024),
        maxRequestBytes: positiveInt.default(32 * GiB),
        /** Same SOP Instance UID with other bytes: refuse (0111) or replace the stored instance. */
        duplicatePolicy: z.enum(['reject', 'replace']).default('reject'),
        /** Worker threads decoding uploaded objects (dicom/parse-pool.ts): the event loop never does. */
        parseWorkers: positiveInt.max(64).default(2),
        /** Longest decode of one object; past it the worker is replaced and the instance fails (C000). */
        parseTimeoutMs: positiveInt.default(10_000),
        /** Heap cap of each parse worker, MiB; past it the instance fails (C000). */
        parseMemoryMb: positiveInt.min(32).default(1024),
      })
      .prefault({}),

    /**
     * Transfer syntax transcoding for WADO-RS / WADO-URI (issue 9, docs/transcoding.md): the codec worker pool
     * (transcode/codec-pool.ts) and the decompression-bomb guard (transcode/frame-guard.ts).
     */
    transcode: z
      .strictObject({
        /** Codec worker threads; each codes one frame at a time. */
        workers: positiveInt.max(64).default(2),
        /** Longest decode or encode of one frame; past it the worker is replaced and the request gets 503. */
        timeoutMs: positiveInt.default(10_000),
        /** Heap cap of each codec worker, MiB (WebAssembly memory is bounded by the size limits below). */
        memoryMb: positiveInt.min(32).default(256),
        /** Largest decoded frame; a larger one (as declared by the dataset or the codestream) is refused: 406. */
        maxFrameBytes: positiveInt.default(256 * MiB),
        /** Largest decoded size of the frames of one object in one request; larger: 406. */
        maxDecodedBytes: positiveInt.default(1 * GiB),
      })
      .prefault({}),

    /**
     * Rendered and thumbnail resources (issue 9, docs/rendering.md): the worker pool that turns decoded frames into
     * display pixels (render/render-pool.ts). Decoding shares the transcode pool above.
     */
    render: z
      .strictObject({
        /** Render worker threads; each runs the pixel pipeline of one frame at a time. */
        workers: positiveInt.max(64).default(2),
        /** Longest pipeline run of one frame; past it the worker is replaced and the request gets 503. */
        timeoutMs: positiveInt.default(10_000),
        /** Heap cap of each render worker, MiB. */
        memoryMb: positiveInt.min(32).default(256),
        /** Thumbnails kept in process memory (never on disk), bytes; 0: none. */
        thumbnailCacheBytes: z.number().int().min(0).default(16 * MiB),
      })
      .prefault({}),

    dicom: z
      .strictObject({
        maxSequenceDepth: positiveInt.max(256).default(64),
        maxElements: positiveInt.default(1_000_000),
        maxInflatedBytes: positiveInt.default(1 * GiB),
        maxHeaderBytes: positiveInt.default(256 * MiB),
      })
      .prefault({}),

    /**
     * Retention (issue 6, policy/retention.ts, docs/retention.md): rules giving each study its keep-until date,
     * the grace period of the bin, and the scheduled purge.
     */
    retention: retentionConfigSchema,

    qido: z
      .strictObject({
        /** Results per page when the request has no limit (PS3.18 10.6.3). */
        defaultLimit: positiveInt.default(1000),
        /** Larger limits are clamped to this; the Warning header tells the client more results exist. */
        maxLimit: positiveInt.default(10_000),
      })
      .prefault({}),

    cors: z
      .strictObject({
        /** Browser origins allowed to call the API cross-origin (OHIF), matched exactly. Empty: no CORS headers. */
        origins: z.array(webOrigin).default([]),
      })
      .prefault({}),

    /**
     * Operations (issue 8 item 5; README "Operations"): the readiness probe (GET /readyz) and who may read the
     * Prometheus metrics (GET /metrics).
     */
    ops: z
      .strictObject({
        /** /readyz answers 503 when the data folder's file system has less free space than this (0: not checked). */
        minFreeDiskBytes: z.number().int().min(0).default(1 * GiB),
        /** A readiness check (index, key provider, disk) that takes longer than this counts as failed. */
        readinessTimeoutMs: positiveInt.max(60_000).default(2000),
        /**
         * Principal ids (the registry's, e.g. a Prometheus scraper's certificate entry, which needs no role) allowed
         * to read /metrics besides principals the policies allow the `admin` action.
         */
        metricsPrincipals: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),

    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.qido.defaultLimit > c.qido.maxLimit) {
      ctx.addIssue({ code: 'custom', path: ['qido', 'defaultLimit'], message: 'must not exceed qido.maxLimit' });
    }
    if (c.stow.maxPartBytes > c.stow.maxRequestBytes) {
      ctx.addIssue({ code: 'custom', path: ['stow', 'maxPartBytes'], message: 'must not exceed stow.maxRequestBytes' });
    }
    if (c.oidc.issuer !== undefined && c.oidc.audience.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'audience'], message: 'is required when oidc.issuer is set' });
    }
    if (c.audit.syslogHost !== undefined && c.audit.syslogCa === undefined) {
      ctx.addIssue({ code: 'custom', path: ['audit', 'syslogCa'], message: 'is required when audit.syslogHost is set' });
    }
    if ((c.audit.syslogCert === undefined) !== (c.audit.syslogKey === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['audit', 'syslogCert'], message: 'audit.syslogCert and audit.syslogKey go together' });
    }
    if (c.shares.defaultTtlHours > c.shares.maxTtlHours) {
      ctx.addIssue({ code: 'custom', path: ['shares', 'defaultTtlHours'], message: 'must not exceed shares.maxTtlHours' });
    }
    const ids = c.principals.map((p) => p.id);
    const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
    if (repeated !== undefined) ctx.addIssue({ code: 'custom', path: ['principals'], message: `principal id ${repeated} is listed twice` });
    if (c.profile === 'production') {
      for (const k of ['ca', 'cert', 'key'] as const) {
        if (!c.tls[k]) ctx.addIssue({ code: 'custom', path: ['tls', k], message: 'is required in the production profile' });
      }
    }
  });

export type Config = z.infer<typeof configSchema>;
