// The principal registry (issue 5 item 1): which verified certificates are whom, first match wins, nothing
// matched -> no principal (the mTLS listener then answers 403), the development default and its absence in
// production.
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { DEV_CLIENT_PRINCIPAL, createCa, issueCertificate } from '../../src/security/pki.js';
import { type CertificateIdentity, certificateIdentity } from '../../src/security/principal.js';
import { DEV_ADMIN_SAN_URI, PrincipalRegistry, subjectPattern } from '../../src/security/principal-registry.js';

const FP = 'ab'.repeat(32);

function identity(overrides: Partial<CertificateIdentity> = {}): CertificateIdentity {
  return {
    id: `cert:sha256:${FP}`,
    subject: 'O=dicomvault\nCN=modality-ct1',
    issuer: 'O=dicomvault\nCN=Radiology CA',
    sanUris: [],
    sanDns: [],
    sanEmails: [],
    serialNumber: '01',
    fingerprint256: FP,
    notAfter: new Date('2100-01-01'),
    ...overrides,
  };
}

function registry(principals: unknown[], profile: 'development' | 'production' = 'development'): PrincipalRegistry {
  const tls = profile === 'production' ? { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' } : {};
  return new PrincipalRegistry(configSchema.parse({ profile, tls, principals }));
}

t.test('fingerprint: colons and case do not matter', async (t) => {
  const colons = FP.toUpperCase().match(/../g)!.join(':');
  const r = registry([{ id: 'ct1', match: { fingerprint256: colons }, roles: ['modality'] }]);
  const p = r.resolve(identity());
  t.match(p, { kind: 'certificate', id: 'ct1', roles: ['modality'], certificate: { fingerprint256: FP } });
  t.equal(r.resolve(identity({ fingerprint256: 'cd'.repeat(32) })), undefined, 'another certificate');
});

t.test('SAN URI: exact and case-sensitive', async (t) => {
  const r = registry([{ id: 'ct1', match: { sanUri: 'spiffe://example.org/ct1' } }]);
  t.equal(r.resolve(identity({ sanUris: ['spiffe://example.org/ct1'] }))?.id, 'ct1');
  t.equal(r.resolve(identity({ sanUris: ['spiffe://example.org/CT1'] })), undefined, 'other case');
  t.equal(r.resolve(identity({ sanUris: ['spiffe://example.org/ct1/x'] })), undefined, 'no prefix match');
});

t.test('SAN DNS and e-mail: exact, case-insensitive', async (t) => {
  const r = registry([
    { id: 'ct1', match: { sanDns: 'ct1.example.org' } },
    { id: 'tech', match: { sanEmail: 'tech@example.org' } },
  ]);
  t.equal(r.resolve(identity({ sanDns: ['CT1.Example.ORG'] }))?.id, 'ct1');
  t.equal(r.resolve(identity({ sanDns: ['x.ct1.example.org'] })), undefined, 'no suffix match');
  t.equal(r.resolve(identity({ sanEmails: ['Tech@Example.org'] }))?.id, 'tech');
  t.equal(r.resolve(identity({ sanEmails: ['tech@example.org.evil'] })), undefined);
});

t.test('issuer exact + subject pattern: * stays inside one RDN value', async (t) => {
  const issuer = 'O=dicomvault\nCN=Radiology CA';
  const r = registry([{ id: 'radiology', match: { issuer, subject: 'O=dicomvault\nCN=modality-*' } }]);
  t.equal(r.resolve(identity())?.id, 'radiology');
  t.equal(r.resolve(identity({ subject: 'O=dicomvault\nCN=modality-' }))?.id, 'radiology', '* may match nothing');
  t.equal(r.resolve(identity({ issuer: 'O=dicomvault\nCN=Other CA' })), undefined, 'other issuer');
  t.equal(r.resolve(identity({ issuer: 'o=dicomvault\ncn=radiology ca' })), undefined, 'issuer compares exactly');
  t.equal(r.resolve(identity({ subject: 'O=dicomvault\nCN=workstation-1' })), undefined, 'value does not match');
  t.equal(r.resolve(identity({ subject: 'O=dicomvault\nCN=modality-1\nOU=extra' })), undefined, 'an extra RDN');
  t.equal(r.resolve(identity({ subject: 'O=dicomvault\nOU=modality-1' })), undefined, 'attribute type compares exactly');

  const m = subjectPattern('O=*\nCN=a*b*c');
  t.ok(m('O=anything\nCN=abc'));
  t.ok(m('O=\nCN=a-b-b-c'));
  t.notOk(m('O=x\nCN=a-c'), 'b required');
  t.notOk(m('O=x\nCN=abcd'), 'c must end the value');
  t.notOk(subjectPattern('CN=*')('O=x\nCN=y'), '* never spans lines');
  t.notOk(subjectPattern('*')('CN=y'), 'a line is TYPE=value: a bare * is literal');
  t.ok(subjectPattern('CN=a.(b)+[c]$')('CN=a.(b)+[c]$'), 'regex metacharacters are literal');
  t.notOk(subjectPattern('CN=a.c')('CN=abc'), '. is not a wildcard');
  const start = process.hrtime.bigint();
  t.notOk(subjectPattern(`CN=${'*a'.repeat(30)}b`)(`CN=${'a'.repeat(5000)}`));
  // Backtracking over 30 wildcards would take far longer than this; the linear match takes about 1 ms.
  t.ok(process.hrtime.bigint() - start < 2_000_000_000n, 'no catastrophic backtracking');
});

t.test('a real certificate, as node:crypto reads it', async (t) => {
  const ca = await createCa('Radiology CA');
  const leaf = await issueCertificate(ca, { commonName: 'modality-ct1', eku: 'clientAuth', sans: { dns: ['CT1.example.org'], email: ['Tech@example.org'] } });
  const id = certificateIdentity(new X509Certificate(leaf.certPem));
  const caIssuer = new X509Certificate(ca.certPem).subject;
  t.equal(registry([{ id: 'by-subject', match: { issuer: caIssuer, subject: 'O=dicomvault\nCN=modality-*' } }]).resolve(id)?.id, 'by-subject');
  t.equal(registry([{ id: 'by-fp', match: { fingerprint256: new X509Certificate(leaf.certPem).fingerprint256 } }]).resolve(id)?.id, 'by-fp');
  t.equal(registry([{ id: 'by-dns', match: { sanDns: 'ct1.example.org' } }]).resolve(id)?.id, 'by-dns');
});

t.test('entries are tried in order; the first match wins', async (t) => {
  const r = registry([
    { id: 'specific', match: { sanUri: 'urn:x:ct1' }, roles: ['modality'] },
    { id: 'whole-ca', match: { issuer: 'O=dicomvault\nCN=Radiology CA', subject: 'CN=*' }, roles: ['reader'] },
    { id: 'never', match: { fingerprint256: FP } },
  ]);
  t.equal(r.resolve(identity({ sanUris: ['urn:x:ct1'] }))?.id, 'specific');
  t.equal(r.resolve(identity({ subject: 'CN=someone' }))?.id, 'whole-ca');
  t.equal(r.resolve(identity())?.id, 'never', 'two RDNs: the single-line pattern does not match');
});

t.test('no entry matches: no principal', async (t) => {
  t.equal(registry([]).resolve(identity({ sanUris: ['urn:dicomvault:principal:someone'] })), undefined);
});

t.test('development profile: the development client certificate is dev-admin unless an entry names it', async (t) => {
  t.equal(DEV_ADMIN_SAN_URI, `urn:dicomvault:principal:${DEV_CLIENT_PRINCIPAL}`, 'the SAN pki.ts issues');
  const dev = identity({ sanUris: [DEV_ADMIN_SAN_URI] });
  t.match(registry([]).resolve(dev), { kind: 'certificate', id: 'dev-admin', roles: ['admin'], attributes: { institution: '', sites: [] } });
  t.match(registry([{ id: 'named', match: { sanUri: DEV_ADMIN_SAN_URI }, roles: ['reader'] }]).resolve(dev), { id: 'named', roles: ['reader'] });
  t.equal(registry([]).resolve(identity({ sanUris: [`${DEV_ADMIN_SAN_URI}2`] })), undefined, 'exact SAN only');
  const devList = registry([]).list();
  t.match(devList, [{ id: 'dev-admin', builtIn: true, match: { kind: 'sanUri', value: DEV_ADMIN_SAN_URI } }], 'list() shows the built-in mapping');
});

t.test('production profile: no default', async (t) => {
  const r = registry([], 'production');
  t.equal(r.resolve(identity({ sanUris: [DEV_ADMIN_SAN_URI] })), undefined);
  t.same(r.list(), []);
});

t.test('attributes; referringPhysician folded like StudyAttributes', async (t) => {
  const r = registry([
    {
      id: 'dr-muller',
      match: { sanEmail: 'muller@example.org' },
      roles: ['referrer'],
      attributes: { institution: 'General Hospital', referringPhysician: 'Müller^Jürgen^^^', npi: '1234567890', sites: ['north'] },
    },
  ]);
  const p = r.resolve(identity({ sanEmails: ['muller@example.org'] }));
  t.same(p?.attributes, { institution: 'General Hospital', referringPhysician: 'MULLER^JURGEN', npi: '1234567890', sites: ['north'] });
  p!.roles.push('admin');
  p!.attributes.sites.push('south');
  t.same(r.resolve(identity({ sanEmails: ['muller@example.org'] }))?.roles, ['referrer'], 'a principal is a copy: mutating it changes nothing');
  t.same(r.resolve(identity({ sanEmails: ['muller@example.org'] }))?.attributes.sites, ['north']);
});

t.test('list(): every entry, its match kind and value, in order', async (t) => {
  const list = registry(
    [
      { id: 'a', match: { fingerprint256: FP.toUpperCase() } },
      { id: 'b', match: { sanUri: 'urn:x' } },
      { id: 'c', match: { sanDns: 'h.example' } },
      { id: 'd', match: { sanEmail: 'e@example' } },
      { id: 'e', match: { issuer: 'CN=I', subject: 'CN=*' }, roles: ['r'] },
    ],
    'production',
  ).list();
  t.same(
    list.map((e) => [e.id, e.match]),
    [
      ['a', { kind: 'fingerprint256', value: FP }],
      ['b', { kind: 'sanUri', value: 'urn:x' }],
      ['c', { kind: 'sanDns', value: 'h.example' }],
      ['d', { kind: 'sanEmail', value: 'e@example' }],
      ['e', { kind: 'issuerSubject', issuer: 'CN=I', subject: 'CN=*' }],
    ],
  );
  t.same(list[4]!.roles, ['r']);
});

t.test('configuration: from DICOMVAULT_PRINCIPALS (JSON); exactly one match kind per entry', async (t) => {
  const config = loadConfig({ env: { DICOMVAULT_PRINCIPALS: JSON.stringify([{ id: 'gw', match: { sanDns: 'gw.example' }, roles: ['gateway'] }]) } });
  t.equal(new PrincipalRegistry(config).resolve(identity({ sanDns: ['gw.example'] }))?.id, 'gw');
  t.throws(() => configSchema.parse({ principals: [{ id: 'x', match: { sanDns: 'a', sanUri: 'b' } }] }), 'two kinds in one match');
  t.throws(() => configSchema.parse({ principals: [{ id: 'x', match: { issuer: 'CN=I' } }] }), 'issuer without subject');
  t.throws(() => configSchema.parse({ principals: [{ id: 'x', match: {} }] }), 'no kind');
});
