// OIDC / OAuth 2.0 bearer access tokens on the web listener (issue 5; SECURITY.md 3 IHE IUA ITI-72, RFC 6750,
// RFC 9068 "JWT Profile for OAuth 2.0 Access Tokens"). The token is a JWS signed by the configured issuer with
// a key from its JWKS; everything the principal carries comes from the verified claims.
//
// Checks, in jose (jwtVerify) and here:
// - signature with a key of the issuer's JWKS, algorithm in the allow-list (never `none`, never HMAC: the
//   server holds no shared secret, and an HS256 token "signed" with the public key is refused by the list);
// - iss exact, aud one of the configured audiences, exp/nbf/iat with the configured clock tolerance;
// - exp, iat, sub and the id claim present; exp - iat <= maxLifetimeSec (short tokens are the automatic log-off,
//   HIPAA 164.312(a)(2)(iii));
// - typ `at+jwt` (RFC 9068 2.1) or `JWT` (Keycloak, Entra ID) when present; any other type (logout, DPoP proof,
//   SET) is refused.
// Failures are TokenErrors whose description is fixed text: never the token or its claims (credential, PHI).

import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config/schema.js';
import { AppError } from '../errors.js';
import { foldPersonName } from '../index/query/normalize.js';
import type { Principal, PrincipalAttributes } from './principal.js';

export type OidcConfig = Config['oidc'];

/** RFC 6750 3.1 error codes we send. */
export type BearerErrorCode = 'invalid_token' | 'invalid_request';

/** A bearer token the server does not accept: 401 with `WWW-Authenticate: Bearer error=...` (RFC 6750 3). */
export class TokenError extends Error {
  override name = 'TokenError';
  readonly error: BearerErrorCode;
  /** Safe to show the client (RFC 6750 3 error_description: printable ASCII, no `"` or `\`). */
  readonly description: string;

  constructor(description: string, options: { error?: BearerErrorCode; cause?: unknown } = {}) {
    super(description, { cause: options.cause });
    this.error = options.error ?? 'invalid_token';
    this.description = description.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?');
  }
}

export interface OidcVerifierOptions {
  /** JWKS (and discovery) HTTP timeout. Default 5 s. */
  timeoutMs?: number;
  /** After a successful JWKS fetch, an unknown `kid` triggers a new fetch only after this long (jose). Default 30 s. */
  cooldownMs?: number;
  /** Keys are re-fetched when older than this (jose). Default 10 min. */
  cacheMaxAgeMs?: number;
  /** A failed discovery is retried at most this often; meanwhile tokens get 503. Default 10 s. */
  discoveryRetryMs?: number;
  /** For tests: the verification time. */
  now?: () => Date;
}

/** Longest metadata document read during discovery. */
const MAX_DISCOVERY_BYTES = 256 * 1024;
/** Longest principal id value taken from a claim (it is logged and audited). */
const MAX_ID_LENGTH = 256;
const ACCEPTED_TYP = new Set(['at+jwt', 'application/at+jwt', 'jwt', 'application/jwt']);

/**
 * `https:` URLs, or `http:` on a loopback address (test issuers and a local development IdP): key material
 * fetched over plain HTTP from elsewhere could be replaced on the way.
 */
export function isAllowedKeyUrl(url: URL): boolean {
  if (url.protocol === 'https:') return true;
  if (url.protocol !== 'http:') return false;
  const host = url.hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export class OidcVerifier {
  readonly #config: OidcConfig & { issuer: string };
  readonly #options: Required<Omit<OidcVerifierOptions, 'now'>> & Pick<OidcVerifierOptions, 'now'>;
  #jwks: JWTVerifyGetKey | undefined;
  #discovery: Promise<JWTVerifyGetKey> | undefined;
  #discoveryFailedAt = 0;

  /** Undefined when no issuer is configured (bearer tokens are then refused). */
  static fromConfig(config: Pick<Config, 'oidc'>, options: OidcVerifierOptions = {}): OidcVerifier | undefined {
    return config.oidc.issuer === undefined ? undefined : new OidcVerifier(config.oidc, options);
  }

  constructor(config: OidcConfig, options: OidcVerifierOptions = {}) {
    if (config.issuer === undefined) throw new Error('oidc.issuer is required');
    if (config.audience.length === 0) throw new Error('oidc.audience is required');
    if (!isAllowedKeyUrl(new URL(config.issuer))) throw new Error('oidc.issuer must be an https URL (http only on loopback)');
    if (config.jwksUri !== undefined && !isAllowedKeyUrl(new URL(config.jwksUri))) {
      throw new Error('oidc.jwksUri must be an https URL (http only on loopback)');
    }
    this.#config = { ...config, issuer: config.issuer };
    this.#options = {
      timeoutMs: options.timeoutMs ?? 5000,
      cooldownMs: options.cooldownMs ?? 30_000,
      cacheMaxAgeMs: options.cacheMaxAgeMs ?? 10 * 60_000,
      discoveryRetryMs: options.discoveryRetryMs ?? 10_000,
      now: options.now,
    };
    if (config.jwksUri !== undefined) this.#jwks = this.#remoteSet(new URL(config.jwksUri));
  }

  get issuer(): string {
    return this.#config.issuer;
  }

  /** The principal of a valid access token; TokenError when the token is not acceptable, AppError 503 when the issuer cannot be reached. */
  async verify(token: string): Promise<Principal> {
    const c = this.#config;
    // RFC 7515 7.1 compact serialization: three base64url parts. Checked first so jose never sees other text.
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) throw new TokenError('the access token is malformed');
    const keys = await this.#keySet();
    let payload: JWTPayload;
    let typ: string | undefined;
    try {
      const now = this.#options.now?.();
      const result = await jwtVerify(token, keys, {
        issuer: c.issuer,
        audience: c.audience,
        algorithms: c.algorithms,
        clockTolerance: c.clockToleranceSec,
        // Also refuses an iat in the future (beyond the tolerance).
        maxTokenAge: c.maxLifetimeSec + c.clockToleranceSec,
        requiredClaims: ['exp', 'iat', 'sub', ...(c.idClaim.includes('.') ? [] : [c.idClaim])],
        ...(now ? { currentDate: now } : {}),
      });
      payload = result.payload;
      typ = result.protectedHeader.typ;
    } catch (e) {
      throw mapJoseError(e);
    }
    if (typ !== undefined && !ACCEPTED_TYP.has(typ.toLowerCase())) throw new TokenError('the token is not an access token (typ)');
    const exp = payload.exp!;
    const iat = payload.iat!;
    if (exp - iat > c.maxLifetimeSec) throw new TokenError('the token lifetime exceeds the allowed maximum');
    const subject = payload.sub;
    if (typeof subject !== 'string' || subject === '') throw new TokenError('the token has no subject');
    const idValue = claim(payload, c.idClaim);
    if (typeof idValue !== 'string' || idValue === '' || idValue.length > MAX_ID_LENGTH || /[\u0000-\u001f\u007f]/.test(idValue)) {
      throw new TokenError('the token does not name its principal');
    }
    const clientId = stringClaim(payload, 'client_id') || stringClaim(payload, 'azp');
    const jti = stringClaim(payload, 'jti');
    return {
      kind: 'token',
      id: `oidc:${idValue}`,
      roles: stringList(claim(payload, c.rolesClaim)),
      attributes: attributesOf(payload, c),
      token: {
        issuer: c.issuer,
        subject,
        expiresAt: new Date(exp * 1000),
        ...(jti ? { jti } : {}),
        ...(clientId ? { clientId } : {}),
      },
    };
  }

  #remoteSet(url: URL): JWTVerifyGetKey {
    return createRemoteJWKSet(url, {
      timeoutDuration: this.#options.timeoutMs,
      cooldownDuration: this.#options.cooldownMs,
      cacheMaxAge: this.#options.cacheMaxAgeMs,
    });
  }

  async #keySet(): Promise<JWTVerifyGetKey> {
    if (this.#jwks) return this.#jwks;
    if (!this.#discovery) {
      if (Date.now() - this.#discoveryFailedAt < this.#options.discoveryRetryMs) throw unavailable();
      this.#discovery = this.#discover().then(
        (set) => {
          this.#jwks = set;
          return set;
        },
        (e: unknown) => {
          this.#discovery = undefined;
          this.#discoveryFailedAt = Date.now();
          throw e;
        },
      );
    }
    return this.#discovery;
  }

  /** OpenID Connect Discovery 1.0 section 4: `<issuer>/.well-known/openid-configuration`, whose `issuer` must be ours. */
  async #discover(): Promise<JWTVerifyGetKey> {
    const url = new URL(`${this.#config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
    let metadata: unknown;
    try {
      const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(this.#options.timeoutMs), headers: { accept: 'application/json' } });
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      metadata = JSON.parse(await boundedText(res, MAX_DISCOVERY_BYTES));
    } catch (e) {
      throw unavailable(e);
    }
    const m = metadata as { issuer?: unknown; jwks_uri?: unknown } | null;
    if (typeof m !== 'object' || m === null || m.issuer !== this.#config.issuer || typeof m.jwks_uri !== 'string') {
      throw unavailable(new Error('the discovery document does not name this issuer and a jwks_uri'));
    }
    let jwksUri: URL;
    try {
      jwksUri = new URL(m.jwks_uri);
    } catch (e) {
      throw unavailable(e);
    }
    if (!isAllowedKeyUrl(jwksUri)) throw unavailable(new Error('the discovered jwks_uri is not https'));
    return this.#remoteSet(jwksUri);
  }
}

function unavailable(cause?: unknown): AppError {
  return new AppError('SERVICE_UNAVAILABLE', 'the token issuer cannot be reached; try again later', { cause });
}

async function boundedText(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) throw new Error('discovery document too large');
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new Error('discovery document too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** jose's errors as RFC 6750 errors; JWKS transport problems as 503 (the token may well be valid). */
function mapJoseError(e: unknown): Error {
  if (e instanceof AppError || e instanceof TokenError) return e;
  const E = joseErrors;
  if (e instanceof E.JWTExpired) return new TokenError(e.claim === 'iat' ? 'the token is too old' : 'the token has expired', { cause: e });
  if (e instanceof E.JWTClaimValidationFailed) {
    // The claim name is one of ours (required or checked claims), never text from the token.
    if (e.reason === 'missing' && /^[A-Za-z0-9_.:-]{1,64}$/.test(e.claim)) return new TokenError(`the token has no ${e.claim} claim`, { cause: e });
    const what: Record<string, string> = {
      iss: 'the token is from another issuer',
      aud: 'the token is for another audience',
      nbf: 'the token is not valid yet',
      iat: 'the token issue time is invalid',
      sub: 'the token has no subject',
      exp: 'the token has no expiry',
      typ: 'the token is not an access token (typ)',
    };
    return new TokenError(what[e.claim] ?? 'a required claim is missing or invalid', { cause: e });
  }
  if (e instanceof E.JOSEAlgNotAllowed) return new TokenError('the token signature algorithm is not accepted', { cause: e });
  if (e instanceof E.JWKSNoMatchingKey) return new TokenError('the token is signed with an unknown key', { cause: e });
  if (e instanceof E.JWKSMultipleMatchingKeys) return new TokenError('the token does not name its signing key', { cause: e });
  if (e instanceof E.JWSSignatureVerificationFailed) return new TokenError('the token signature is invalid', { cause: e });
  if (e instanceof E.JWSInvalid || e instanceof E.JWTInvalid || e instanceof E.JOSENotSupported) return new TokenError('the access token is malformed', { cause: e });
  if (e instanceof E.JWKSTimeout || e instanceof E.JWKSInvalid) return unavailable(e);
  // Anything else while fetching keys (connection refused, non-200, bad JSON) is the issuer's problem, not the token's.
  return unavailable(e);
}

/** A claim by name; when there is no claim of that exact name, a dotted path through objects (realm_access.roles). */
export function claim(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  if (!name.includes('.')) return undefined;
  let node: unknown = payload;
  for (const part of name.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node) || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function stringClaim(payload: JWTPayload, name: string): string {
  const v = claim(payload, name);
  return typeof v === 'string' ? v : '';
}

/** A string array, or one space-separated string (RFC 8693 `scope` style); anything else gives no values. */
function stringList(value: unknown): string[] {
  if (typeof value === 'string') return [...new Set(value.split(/\s+/).filter((s) => s !== ''))];
  if (Array.isArray(value)) return [...new Set(value.filter((v): v is string => typeof v === 'string' && v !== ''))];
  return [];
}

function attributesOf(payload: JWTPayload, c: OidcConfig): PrincipalAttributes {
  const text = (name: string): string => {
    const v = claim(payload, name);
    // An NPI is often a JSON number.
    return typeof v === 'string' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : '';
  };
  return {
    institution: text(c.institutionClaim),
    // Compared with StudyAttributes.referringPhysician: alphabetic group, folded like QIDO folds names.
    referringPhysician: foldPersonName(text(c.referringPhysicianClaim).split('=')[0] ?? ''),
    npi: text(c.npiClaim),
    sites: stringList(claim(payload, c.sitesClaim)),
  };
}
