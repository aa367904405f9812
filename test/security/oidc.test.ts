// OIDC bearer access tokens (issue 5 item 2; RFC 6750, RFC 9068): a real issuer on 127.0.0.1 (discovery + JWKS),
// tokens minted with its keys, and every way a token must be refused.
import t, { type Test } from 'tap';
import { configSchema } from '../../src/config/schema.js';
import { AppError } from '../../src/errors.js';
import { OidcVerifier, TokenError, isAllowedKeyUrl } from '../../src/security/oidc.js';
import { startOidcIssuer, type TestOidcIssuer } from '../helpers/oidc-issuer.js';

function oidcConfig(issuer: TestOidcIssuer, extra: Record<string, unknown> = {}) {
  return configSchema.parse({ oidc: { issuer: issuer.issuer, audience: [issuer.audience, 'other-api'], ...extra } }).oidc;
}

async function refused(t: Test, verifier: OidcVerifier, token: string, description: RegExp, name: string): Promise<void> {
  const e = await verifier.verify(token).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(e instanceof TokenError, `${name}: a TokenError`);
  if (e instanceof TokenError) {
    t.equal(e.error, 'invalid_token', `${name}: invalid_token`);
    t.match(e.description, description, name);
    t.notMatch(e.description, /alice|eyJ/, `${name}: no token contents in the description`);
  }
}

t.test('a valid token becomes a principal (discovery, then the JWKS)', async (t) => {
  const issuer = await startOidcIssuer(t);
  const verifier = new OidcVerifier(oidcConfig(issuer));
  const token = await issuer.sign({ roles: ['radiologist', 'reader'], institution: 'General Hospital', referring_physician: 'Müller^Jürgen', npi: 1234567890, sites: 'north south', azp: 'ohif' });
  const p = await verifier.verify(token);
  t.match(p, {
    kind: 'token',
    id: 'oidc:alice',
    roles: ['radiologist', 'reader'],
    attributes: { institution: 'General Hospital', referringPhysician: 'MULLER^JURGEN', npi: '1234567890', sites: ['north', 'south'] },
    token: { issuer: issuer.issuer, subject: 'alice', clientId: 'viewer' },
  });
  t.ok(p.token!.expiresAt instanceof Date && p.token!.expiresAt.getTime() > Date.now());
  t.match(p.token!.jti, /^jti-/);
  t.equal((await verifier.verify(await issuer.sign({ client_id: undefined, azp: 'ohif' }))).token?.clientId, 'ohif', 'azp when there is no client_id');
  t.same((await verifier.verify(await issuer.sign({}, { alg: 'RS256' }))).roles, [], 'RS256 key; no roles claim: no roles');
  t.equal((await verifier.verify(await issuer.sign({}, { typ: 'JWT' }))).id, 'oidc:alice', 'typ JWT (Keycloak) accepted');
  t.equal((await verifier.verify(await issuer.sign({}, { typ: null }))).id, 'oidc:alice', 'no typ accepted');
  t.equal((await verifier.verify(await issuer.sign({ aud: ['x', 'other-api'] }))).id, 'oidc:alice', 'any configured audience, aud as an array');
  t.equal(issuer.jwksRequests(), 1, 'the JWKS is fetched once and cached');
});

t.test('refused tokens', async (t) => {
  const issuer = await startOidcIssuer(t);
  const verifier = new OidcVerifier(oidcConfig(issuer, { clockToleranceSec: 30, maxLifetimeSec: 3600 }));
  const now = Math.floor(Date.now() / 1000);
  await refused(t, verifier, await issuer.sign({ iss: 'https://evil.example' }), /another issuer/, 'wrong iss');
  await refused(t, verifier, await issuer.sign({ aud: 'someone-else' }), /another audience/, 'wrong aud');
  await refused(t, verifier, await issuer.sign({ aud: undefined }), /audience|claim/, 'no aud');
  await refused(t, verifier, await issuer.sign({ iat: now - 600, exp: now - 31 }), /expired/, 'expired beyond the tolerance');
  await refused(t, verifier, await issuer.sign({ nbf: now + 120 }), /not valid yet/, 'nbf in the future');
  await refused(t, verifier, await issuer.sign({ iat: now + 120, exp: now + 600 }), /issue time/, 'iat in the future');
  await refused(t, verifier, await issuer.sign({}, { foreignKey: true }), /signature/, 'signed by another key under a known kid');
  await refused(t, verifier, await issuer.sign({}, { kid: 'unknown-kid', foreignKey: true }), /unknown key/, 'unknown kid');
  await refused(t, verifier, issuer.unsigned(), /algorithm/, 'alg none');
  await refused(t, verifier, await issuer.hs256WithPublicKey(), /algorithm/, 'HS256 keyed with the public key');
  await refused(t, verifier, await issuer.sign({ iat: now, exp: now + 3601 }), /lifetime/, 'lifetime too long');
  await refused(t, verifier, await issuer.sign({ exp: undefined }), /expiry|claim/, 'no exp');
  await refused(t, verifier, await issuer.sign({ iat: undefined }), /claim|issue/, 'no iat');
  await refused(t, verifier, await issuer.sign({ sub: undefined }), /subject|claim/, 'missing sub');
  await refused(t, verifier, await issuer.sign({ sub: '' }), /subject|principal/, 'empty sub');
  await refused(t, verifier, await issuer.sign({}, { typ: 'logout+jwt' }), /not an access token/, 'another token type');
  await refused(t, verifier, 'not-a-jwt', /malformed/, 'not a JWT');
  const good = await issuer.sign();
  await refused(t, verifier, `${good.slice(0, -4)}AAAA`, /signature/, 'tampered signature');
  const [h, , s] = good.split('.');
  const otherPayload = Buffer.from(JSON.stringify({ iss: issuer.issuer, aud: issuer.audience, sub: 'mallory', iat: now, exp: now + 300 })).toString('base64url');
  await refused(t, verifier, `${h}.${otherPayload}.${s}`, /signature/, 'payload swapped');
});

t.test('clock tolerance: just expired is still accepted within it', async (t) => {
  const issuer = await startOidcIssuer(t);
  const verifier = new OidcVerifier(oidcConfig(issuer, { clockToleranceSec: 30 }));
  const now = Math.floor(Date.now() / 1000);
  t.equal((await verifier.verify(await issuer.sign({ iat: now - 300, exp: now - 10 }))).id, 'oidc:alice');
});

t.test('an algorithm outside the allow-list is refused even with a valid signature', async (t) => {
  const issuer = await startOidcIssuer(t);
  const verifier = new OidcVerifier(oidcConfig(issuer, { algorithms: ['ES256'] }));
  await refused(t, verifier, await issuer.sign({}, { alg: 'RS256' }), /algorithm/, 'RS256 not allowed');
  t.equal((await verifier.verify(await issuer.sign())).id, 'oidc:alice');
});

t.test('roles: array, space-separated string, dotted path; other claim names', async (t) => {
  const issuer = await startOidcIssuer(t);
  const keycloak = new OidcVerifier(
    oidcConfig(issuer, {
      idClaim: 'preferred_username',
      rolesClaim: 'realm_access.roles',
      institutionClaim: 'extensions.ihe_iua.subject_organization',
      npiClaim: 'extensions.ihe_iua.national_provider_identifier',
    }),
  );
  const p = await keycloak.verify(
    await issuer.sign({
      preferred_username: 'dr.smith',
      realm_access: { roles: ['radiologist', 7, '', 'radiologist'] },
      extensions: { ihe_iua: { subject_organization: 'General Hospital', national_provider_identifier: '1234567890' } },
    }),
  );
  t.match(p, { id: 'oidc:dr.smith', roles: ['radiologist'], attributes: { institution: 'General Hospital', npi: '1234567890' } }, 'Keycloak/IUA shapes');
  await refused(t, keycloak, await issuer.sign({}), /principal|claim/, 'id claim missing');
  await refused(t, keycloak, await issuer.sign({ preferred_username: 'a\nb' }), /principal/, 'control characters in the id');

  const spaced = new OidcVerifier(oidcConfig(issuer, { rolesClaim: 'scope' }));
  t.same((await spaced.verify(await issuer.sign({ scope: 'openid  dicom.read dicom.write' }))).roles, ['openid', 'dicom.read', 'dicom.write']);
  t.same((await spaced.verify(await issuer.sign({ scope: { not: 'a list' } }))).roles, [], 'another shape: no roles');

  const literal = new OidcVerifier(oidcConfig(issuer, { rolesClaim: 'https://dicomvault.example/roles' }));
  t.same((await literal.verify(await issuer.sign({ 'https://dicomvault.example/roles': ['admin'] }))).roles, ['admin'], 'a claim name with dots is used as is first');

  const proto = new OidcVerifier(oidcConfig(issuer, { rolesClaim: 'constructor.name' }));
  t.same((await proto.verify(await issuer.sign())).roles, [], 'no walk into the prototype');
});

t.test('JWKS rotation: a token signed with a new key is accepted once the cooldown allows a refetch', async (t) => {
  const issuer = await startOidcIssuer(t);
  const verifier = new OidcVerifier(oidcConfig(issuer, { jwksUri: issuer.jwksUri }), { cooldownMs: 200 });
  t.equal((await verifier.verify(await issuer.sign())).id, 'oidc:alice');
  t.equal(issuer.jwksRequests(), 1);
  const kid = await issuer.rotate('ES256');
  await new Promise((r) => setTimeout(r, 250));
  t.equal((await verifier.verify(await issuer.sign({}, { kid }))).id, 'oidc:alice', 'new key picked up');
  t.equal(issuer.jwksRequests(), 2, 'one refetch');
  t.equal((await verifier.verify(await issuer.sign({}, { kid: 'k1-es256' }))).id, 'oidc:alice', 'the old key still verifies while published');
  await refused(t, verifier, await issuer.sign({}, { kid: 'k99', foreignKey: true }), /unknown key/, 'unknown kid within the cooldown');
  t.equal(issuer.jwksRequests(), 2, 'an unknown kid within the cooldown does not refetch (no amplification)');
});

t.test('an unreachable issuer is a 503, not a bad token; discovery is retried later', async (t) => {
  const issuer = await startOidcIssuer();
  const token = await issuer.sign();
  const config = oidcConfig(issuer);
  await issuer.close();
  const verifier = new OidcVerifier(config, { timeoutMs: 1000, discoveryRetryMs: 0 });
  const e = await verifier.verify(token).catch((err: unknown) => err);
  t.ok(e instanceof AppError && e.code === 'SERVICE_UNAVAILABLE', 'SERVICE_UNAVAILABLE');
  const withJwks = new OidcVerifier({ ...config, jwksUri: `${issuer.issuer}/jwks.json` }, { timeoutMs: 1000 });
  const e2 = await withJwks.verify(token).catch((err: unknown) => err);
  t.ok(e2 instanceof AppError && e2.code === 'SERVICE_UNAVAILABLE', 'JWKS fetch failure: SERVICE_UNAVAILABLE');
});

t.test('discovery must name the configured issuer', async (t) => {
  const issuer = await startOidcIssuer(t);
  // Same server under another spelling of the issuer: the discovery document names 127.0.0.1, not localhost.
  const port = new URL(issuer.issuer).port;
  const verifier = new OidcVerifier({ ...oidcConfig(issuer), issuer: `http://localhost:${port}` });
  const e = await verifier.verify(await issuer.sign({ iss: `http://localhost:${port}` })).catch((err: unknown) => err);
  t.ok(e instanceof AppError && e.code === 'SERVICE_UNAVAILABLE');
});

t.test('key URLs: https, or http on loopback only', async (t) => {
  t.ok(isAllowedKeyUrl(new URL('https://idp.example.org/jwks')));
  t.ok(isAllowedKeyUrl(new URL('http://127.0.0.1:8080/jwks')));
  t.ok(isAllowedKeyUrl(new URL('http://localhost/jwks')));
  t.ok(isAllowedKeyUrl(new URL('http://[::1]:9/jwks')));
  t.notOk(isAllowedKeyUrl(new URL('http://idp.example.org/jwks')));
  t.notOk(isAllowedKeyUrl(new URL('http://127.0.0.1.evil.example/jwks')));
  t.notOk(isAllowedKeyUrl(new URL('file:///etc/jwks')));
  t.throws(() => new OidcVerifier({ ...configSchema.parse({}).oidc, issuer: 'http://idp.example.org', audience: ['a'] }));
  t.throws(() => new OidcVerifier({ ...configSchema.parse({}).oidc, issuer: 'https://idp.example.org', audience: ['a'], jwksUri: 'http://idp.example.org/jwks' }));
  t.throws(() => configSchema.parse({ oidc: { issuer: 'http://idp.example.org', audience: ['a'] } }), 'refused by the configuration too');
  t.throws(() => configSchema.parse({ oidc: { issuer: 'https://idp.example.org' } }), 'audience required');
  t.equal(OidcVerifier.fromConfig(configSchema.parse({})), undefined, 'no issuer: no verifier');
});
