// Every configuration key and its default, in one place (DESIGN.md "Config"). Parsed once at start by
// load.ts; nothing below config/ reads process.env. README.md "Configuration" documents each key:
// test/config/readme-keys.test.ts keeps the two in step.

import { z } from 'zod';
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
        /** Open TLS connections accepted at once. */
        maxConnections: positiveInt.default(1024),
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

    stow: z
      .strictObject({
        maxParts: positiveInt.default(10_000),
        maxPartBytes: positiveInt.default(4 * GiB),
        maxPartHeaderBytes: positiveInt.default(16 * 1024),
        maxRequestBytes: positiveInt.default(32 * GiB),
        /** Same SOP Instance UID with other bytes: refuse (0111) or replace the stored instance. */
        duplicatePolicy: z.enum(['reject', 'replace']).default('reject'),
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
    if (c.profile === 'production') {
      for (const k of ['ca', 'cert', 'key'] as const) {
        if (!c.tls[k]) ctx.addIssue({ code: 'custom', path: ['tls', k], message: 'is required in the production profile' });
      }
    }
  });

export type Config = z.infer<typeof configSchema>;
