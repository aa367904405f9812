// The one place that decides how the DICOMweb listeners speak TLS (SECURITY.md 7, HIPAA
// 164.312(e) transmission security). Every connection to the mTLS listener is mutually authenticated:
// OpenSSL checks the client chain, validity dates and the clientAuth EKU before a single HTTP byte is
// read. The optional web listener (browsers) uses the same protocol settings without client certificates.

import { constants } from 'node:crypto';
import type https from 'node:https';

/**
 * TLS 1.2 suites allowed by NIST SP 800-52r2 section 3.3.1.1: ephemeral ECDH (forward secrecy)
 * with AES-GCM only — no CBC, no static RSA key transport, no ChaCha20 (not FIPS-approved).
 * ECDSA suites first (3.3.1.1.1), then RSA (3.3.1.1.2); AES-128 before AES-256 within each, the
 * order the publication lists them in. Node's default list would add CBC and ChaCha20 suites.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
] as const;

/**
 * TLS 1.3 suites allowed by SP 800-52r2 section 3.3.1.2 that OpenSSL enables: the AES-GCM pair.
 * Naming any `TLS_` suite in `ciphers` makes Node replace OpenSSL's 1.3 default list (which
 * includes TLS_CHACHA20_POLY1305_SHA256) instead of extending it.
 */
export const TLS13_CIPHERSUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384'] as const;

/**
 * Key-exchange groups in preference order. P-256 and P-384 are the curves SP 800-52r2 3.3.1 has
 * servers support; X25519 leads because current clients send a key share for it first (no extra
 * round trip). A deployment claiming FIPS validation removes it.
 */
export const ECDH_CURVES = 'X25519:P-256:P-384';

/**
 * TLS session lifetime in seconds. Resumption skips certificate verification, so this bounds how
 * long a session of a certificate revoked since keeps working on *this* context; a context rebuilt
 * with a new CRL (server.setSecureContext) gets new ticket keys and refuses older tickets.
 */
export const TLS_SESSION_TIMEOUT_SECONDS = 300;

export interface TlsMaterial {
  /** PEM: the CA(s) whose client certificates are accepted. This is the whole trust decision. */
  ca: string | Buffer;
  /** PEM: the server certificate (chain: leaf first, then intermediates). */
  cert: string | Buffer;
  key: string | Buffer;
  /**
   * PEM CRL(s). When set, OpenSSL checks every certificate in the chain: each CA needs a current
   * CRL, and one expired CRL rejects every client (SECURITY.md 7) — refresh well before nextUpdate.
   */
  crl?: string | Buffer | undefined;
}

/** What both listeners share: protocol versions, suites, groups, renegotiation, session lifetime. */
function protocolOptions(): https.ServerOptions {
  return {
    // SP 800-52r2 3.1: TLS 1.2 required, TLS 1.3 supported; 1.0/1.1 (and SSL) disabled.
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: [...TLS13_CIPHERSUITES, ...TLS12_CIPHERS].join(':'),
    ecdhCurve: ECDH_CURVES,
    // Our order, not the client's: a client preferring a weaker allowed suite does not get it.
    honorCipherOrder: true,
    // TLS 1.2 renegotiation is a CPU-amplification lever for a client and buys us nothing.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    sessionTimeout: TLS_SESSION_TIMEOUT_SECONDS,
  };
}

export function buildTlsServerOptions(material: TlsMaterial): https.ServerOptions {
  const options: https.ServerOptions = {
    ...protocolOptions(),
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    // Ask for a client certificate and end the handshake when it is missing or fails verification
    // (chain to `ca`, validity, EKU clientAuth). There is no unauthenticated path on this listener.
    requestCert: true,
    rejectUnauthorized: true,
    // Deliberately no `ticketKeys`: with fixed keys (e.g. shared across workers) a session of a
    // revoked certificate was measured to resume as `authorized` after a CRL reload (SECURITY.md 7).
    // Per-context random keys (Node's default) make a reload invalidate every ticket.
  };
  if (material.crl !== undefined) options.crl = material.crl;
  return options;
}

/**
 * The web listener (issue 5: browsers, OHIF): the same protocol versions, suites and groups, but no client
 * certificate is asked for — a browser would show a certificate picker, or fail. Callers authenticate with an
 * OIDC bearer token or a share-link session instead (http/plugins/authenticate.ts webResolver), so no CA and no
 * CRL are given: nothing on this listener is verified by the TLS layer.
 */
export function buildWebTlsServerOptions(material: Pick<TlsMaterial, 'cert' | 'key'>): https.ServerOptions {
  return {
    ...protocolOptions(),
    cert: material.cert,
    key: material.key,
    requestCert: false,
    rejectUnauthorized: false,
  };
}
