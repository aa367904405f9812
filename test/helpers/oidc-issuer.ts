// A real OpenID Connect issuer for tests (what Keycloak or Entra ID are to the server): a node:http server on
// 127.0.0.1 serving the discovery document (OIDC Discovery 1.0 section 4) and a JWKS, and `sign` to mint access
// tokens (RFC 9068) with its keys. Negative helpers build the tokens an attacker would try: another key,
// `alg: none`, HS256 keyed with the public key.
import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import http from 'node:http';
import { exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload, SignJWT } from 'jose';
import type { Test } from 'tap';

export type IssuerAlg = 'ES256' | 'RS256';

interface IssuerKey {
  kid: string;
  alg: IssuerAlg;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface SignOptions {
  /** Default: the newest key of that algorithm; ES256 unless given. */
  alg?: IssuerAlg;
  kid?: string;
  /** Header typ; default 'at+jwt' (RFC 9068 2.1). null: no typ. */
  typ?: string | null;
  /** Sign with a fresh key that is not in the JWKS (the header still names `kid`, default the current one). */
  foreignKey?: boolean;
}

export interface TestOidcIssuer {
  /** http://127.0.0.1:PORT (the `iss` of its tokens). */
  issuer: string;
  jwksUri: string;
  audience: string;
  /** JWKS requests served so far. */
  jwksRequests(): number;
  /**
   * A signed access token. Defaults: iss, aud, sub 'alice', iat now, exp now + 300 s, client_id 'viewer';
   * any claim given overrides them, `undefined` removes one.
   */
  sign(claims?: Record<string, unknown>, options?: SignOptions): Promise<string>;
  /** Adds a new key (kid returned) and makes it the one `sign` uses. Old keys stay published. */
  rotate(alg?: IssuerAlg): Promise<string>;
  /** An unsecured JWT (`alg: none`, RFC 7519 6) with the default claims. */
  unsigned(claims?: Record<string, unknown>): string;
  /** HS256 over the default claims, keyed with the PEM public key of the current RS256 key (the alg-confusion attack). */
  hs256WithPublicKey(claims?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export const TEST_AUDIENCE = 'dicomvault-test';

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startOidcIssuer(t?: Test, options: { audience?: string } = {}): Promise<TestOidcIssuer> {
  const keys: IssuerKey[] = [];
  let counter = 0;
  let jwksRequests = 0;
  const addKey = async (alg: IssuerAlg): Promise<IssuerKey> => {
    const pair = await generateKeyPair(alg, { extractable: true });
    const kid = `k${++counter}-${alg.toLowerCase()}`;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
    const key = { kid, alg, privateKey: pair.privateKey, publicJwk };
    keys.push(key);
    return key;
  };
  await addKey('ES256');
  await addKey('RS256');

  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      send(200, { issuer, jwks_uri: `${issuer}/jwks.json`, id_token_signing_alg_values_supported: ['ES256', 'RS256'] });
    } else if (req.url === '/jwks.json') {
      jwksRequests++;
      send(200, { keys: keys.map((k) => k.publicJwk) });
    } else send(404, { error: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const issuer = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const audience = options.audience ?? TEST_AUDIENCE;

  const defaults = (): Record<string, unknown> => {
    const now = Math.floor(Date.now() / 1000);
    return { iss: issuer, aud: audience, sub: 'alice', iat: now, exp: now + 300, client_id: 'viewer', jti: `jti-${now}-${++counter}` };
  };
  const claimsOf = (claims: Record<string, unknown>): JWTPayload => {
    const merged: Record<string, unknown> = { ...defaults(), ...claims };
    for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
    return merged as JWTPayload;
  };
  const current = (alg: IssuerAlg) => keys.filter((k) => k.alg === alg).at(-1)!;

  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t?.teardown(close);

  return {
    issuer,
    jwksUri: `${issuer}/jwks.json`,
    audience,
    jwksRequests: () => jwksRequests,
    async sign(claims = {}, o = {}) {
      const key = o.kid ? keys.find((k) => k.kid === o.kid) : current(o.alg ?? 'ES256');
      const alg = o.alg ?? key?.alg ?? 'ES256';
      const signingKey = o.foreignKey || !key ? (await generateKeyPair(alg)).privateKey : key.privateKey;
      const header: Record<string, unknown> = { alg, kid: o.kid ?? key?.kid };
      if (o.typ !== null) header.typ = o.typ ?? 'at+jwt';
      return new SignJWT(claimsOf(claims)).setProtectedHeader(header as { alg: string }).sign(signingKey);
    },
    async rotate(alg = 'ES256') {
      return (await addKey(alg)).kid;
    },
    unsigned(claims = {}) {
      return `${b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${b64url(JSON.stringify(claimsOf(claims)))}.`;
    },
    async hs256WithPublicKey(claims = {}) {
      const rsa = current('RS256');
      const pem = createPublicKey({ key: rsa.publicJwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
      const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: rsa.kid }))}.${b64url(JSON.stringify(claimsOf(claims)))}`;
      return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    },
    close,
  };
}
