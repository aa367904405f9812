// Every request carries a principal (SECURITY.md 7: "the client certificate is an identity, not just a gate").
// Two listeners, two resolvers (issue 5):
// - mTLS (mtlsResolver): the TLS layer already refused unverified peers; the principal registry names the
//   verified certificate. A verified certificate the registry does not know is refused with 403 (fail closed:
//   a CA that signs too much does not widen access by itself).
// - web (webResolver): no client certificates; an OIDC bearer access token (RFC 6750 2.1 header only: a token
//   in the URL would leak through logs and Referer, RFC 6750 5.3) or a share-link session cookie. Missing or
//   bad credentials: 401 with a `WWW-Authenticate: Bearer` challenge (RFC 6750 3).
// Runs as an onRequest hook, before the body is read: an unauthenticated STOW never streams its upload.
// A route opts out with `{ config: { public: true } }` (share-link landing and exchange); CORS preflights are
// answered before this hook (plugins/cors.ts).

import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { type OidcVerifier, TokenError } from '../../security/oidc.js';
import { type CertificateIdentity, type Principal, certificateIdentity } from '../../security/principal.js';
import type { PrincipalRegistry } from '../../security/principal-registry.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set for every request of a non-public route; null on public routes. */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** No authentication on this route (share-link landing/exchange). The handler must not need a principal. */
    public?: boolean;
  }
}

/** Who is calling: a principal, or undefined when the request presents no credentials (then 401). May throw AuthenticationError. */
export type PrincipalResolver = (request: FastifyRequest) => Promise<Principal | undefined> | Principal | undefined;

/** The realm of our `WWW-Authenticate` challenges (RFC 6750 3, RFC 7235 2.2). */
export const AUTH_REALM = 'dicomvault';

/**
 * The share-link session cookie (SECURITY.md 3 "Our share links"). The `__Host-` prefix (RFC 6265bis 4.1.3.2)
 * makes browsers accept it only with Secure, without Domain and with Path=/: no sibling or parent domain can set
 * or overwrite it (cookie tossing), and it is never sent over plain HTTP. The price is Path=/ — it cannot be
 * narrowed to the base path — which costs nothing: a path never isolated cookies from same-origin scripts, and
 * the value is useless beyond the share's grant. Cookies ignore ports, so the mTLS listener on the same host
 * receives it too and ignores it (mtlsResolver never reads cookies). Set it HttpOnly and SameSite=Strict.
 */
export const SHARE_SESSION_COOKIE = '__Host-dv-share';

/**
 * A refusal with its status and, for 401, the `WWW-Authenticate` challenge to send. The message is shown to the
 * client (as the AppError message) and must not contain credentials.
 */
export class AuthenticationError extends Error {
  override name = 'AuthenticationError';
  constructor(
    readonly status: 401 | 403,
    message: string,
    readonly challenge?: string,
  ) {
    super(message);
  }
}

/** `Bearer realm="dicomvault"`, with an RFC 6750 3.1 error when credentials were presented and refused. */
export function bearerChallenge(error?: { code: string; description: string }): string {
  const base = `Bearer realm="${AUTH_REALM}"`;
  return error ? `${base}, error="${error.code}", error_description="${quotable(error.description)}"` : base;
}

/** RFC 6750 3: error_description is %x20-21 / %x23-5B / %x5D-7E (no `"` or `\`). */
function quotable(text: string): string {
  return text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?');
}

/**
 * The identity of each connection's peer certificate, read once per connection rather than per request (a
 * keep-alive connection carries thousands of QIDO requests, and reading an X509Certificate's fields costs
 * more than the query). Sound because a connection's certificate cannot change: renegotiation is off
 * (security/tls-options.ts, SSL_OP_NO_RENEGOTIATION). The registry still resolves it on every request.
 */
const connectionIdentities = new WeakMap<object, CertificateIdentity>();

/** The verified client certificate of the request's TLS connection, or undefined (plain socket, unverified peer). */
export function peerCertificate(request: FastifyRequest): CertificateIdentity | undefined {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (!socket.authorized || typeof socket.getPeerX509Certificate !== 'function') return undefined;
  const known = connectionIdentities.get(socket);
  if (known) return known;
  const cert = socket.getPeerX509Certificate();
  if (!cert) return undefined;
  const identity = certificateIdentity(cert);
  connectionIdentities.set(socket, identity);
  return identity;
}

/** The mTLS listener: the verified certificate, named by the registry; unknown certificates are refused (403). */
export function mtlsResolver(registry: PrincipalRegistry): PrincipalResolver {
  return (request) => {
    const identity = peerCertificate(request);
    if (!identity) return undefined;
    const principal = registry.resolve(identity);
    if (!principal) {
      // The fingerprint finds the certificate (and its registry entry to add); the subject may name a person.
      request.log.warn({ fingerprint256: identity.fingerprint256 }, 'client certificate is not registered');
      throw new AuthenticationError(403, 'client certificate is not registered');
    }
    return principal;
  };
}

export interface WebResolverOptions {
  /** Absent: bearer tokens are refused (invalid_token). */
  oidc?: OidcVerifier | undefined;
  /** The principal of a share-link session cookie value; undefined for an unknown or expired session. */
  shareSession?: ((cookieValue: string) => Promise<Principal | undefined> | Principal | undefined) | undefined;
  /** Default SHARE_SESSION_COOKIE. */
  cookieName?: string;
}

/** RFC 6750 2.1: `Bearer` 1*SP b64token (the scheme is case-insensitive, RFC 7235 2.1). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const BEARER_SCHEME = /^Bearer(?: |$)/i;

/** The web listener: `Authorization: Bearer` (wins when both are present), else the share-session cookie, else 401. */
export function webResolver(options: WebResolverOptions): PrincipalResolver {
  const cookieName = options.cookieName ?? SHARE_SESSION_COOKIE;
  return async (request) => {
    const authorization = request.headers.authorization;
    // Another scheme (Basic, Negotiate) is not ours to judge: it is ignored, as if absent.
    if (typeof authorization === 'string' && BEARER_SCHEME.test(authorization)) return bearerPrincipal(authorization, options.oidc);
    if (options.shareSession) {
      const value = cookieValue(request.headers.cookie, cookieName);
      if (value !== undefined) {
        const principal = await options.shareSession(value);
        if (principal) return principal;
      }
    }
    throw new AuthenticationError(401, 'authentication is required: a bearer access token or a share-link session', bearerChallenge());
  };
}

async function bearerPrincipal(authorization: string, oidc: OidcVerifier | undefined): Promise<Principal> {
  const m = BEARER.exec(authorization);
  if (!m) throw invalidToken('the Authorization header is not a valid Bearer credential');
  if (!oidc) throw invalidToken('bearer tokens are not accepted by this server');
  try {
    return await oidc.verify(m[1]!);
  } catch (e) {
    if (e instanceof TokenError) throw invalidToken(e.description, e.error);
    throw e;
  }
}

function invalidToken(description: string, code = 'invalid_token'): AuthenticationError {
  return new AuthenticationError(401, description, bearerChallenge({ code, description }));
}

/**
 * One cookie's value from a Cookie header (RFC 6265 5.4 / 4.2.1: `name=value` pairs joined by `; `). A name that
 * appears more than once gives no value: with `__Host-` it cannot legitimately happen, so it is an attack or a bug.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let found: string | undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    if (found !== undefined) return undefined;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    found = value;
  }
  return found === '' ? undefined : found;
}

export function registerAuthentication(app: FastifyInstance, resolve: PrincipalResolver): void {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.routeOptions.config?.public === true) return;
    let principal: Principal | undefined;
    try {
      principal = await resolve(request);
    } catch (e) {
      if (!(e instanceof AuthenticationError)) throw e;
      // Set here, before the error handler writes the body: it keeps the reply's headers (RFC 6750 3: every 401 challenges).
      if (e.challenge) reply.header('www-authenticate', e.challenge);
      throw new AppError(e.status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN', e.message);
    }
    if (!principal) throw new AppError('UNAUTHENTICATED', 'a verified client certificate is required');
    request.principal = principal;
    // The principal id identifies the caller in the application log (not PHI, never token text).
    request.log = request.log.child({ principal: principal.id });
  });
}
