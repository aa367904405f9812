import { X509Certificate, createHash } from 'node:crypto';
import t from 'tap';
import { AppError } from '../../src/errors.js';
import { createCa, issueCertificate } from '../../src/security/pki.js';
import { parseSubjectAltName, certificateIdentity, rolesFromCertificate } from '../../src/security/principal.js';

const ca = createCa('principal test CA');

async function certWith(sans: Parameters<typeof issueCertificate>[1]['sans'], commonName = 'client'): Promise<X509Certificate> {
  const issued = await issueCertificate(await ca, {
    commonName,
    eku: 'clientAuth',
    sans,
    notAfter: new Date('2031-05-06T07:08:09Z'),
  });
  return new X509Certificate(issued.certPem);
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

const forbidden = (message: string) => ({ name: 'AppError', code: 'FORBIDDEN', status: 403, message });

t.test('a certificate naming a principal becomes that principal', async (t) => {
  const cert = await certWith(
    { uri: ['urn:dicomvault:principal:ct-scanner-3', 'urn:dicomvault:role:modality', 'spiffe://example.org/ct'], dns: ['ct3.example.org'], email: ['pacs@example.org'] },
    'ct-scanner-3',
  );
  const principal = certificateIdentity(cert);
  const fingerprint = createHash('sha256').update(cert.raw).digest('hex');
  t.same(principal, {
    id: 'urn:dicomvault:principal:ct-scanner-3',
    subject: 'O=dicomvault\nCN=ct-scanner-3',
    sanUris: ['urn:dicomvault:principal:ct-scanner-3', 'urn:dicomvault:role:modality', 'spiffe://example.org/ct'],
    sanDns: ['ct3.example.org'],
    sanEmails: ['pacs@example.org'],
    issuer: 'O=dicomvault\nCN=principal test CA',
    serialNumber: cert.serialNumber.toLowerCase(),
    fingerprint256: fingerprint,
    notAfter: new Date('2031-05-06T07:08:09Z'),
  });
  t.match(principal.fingerprint256, /^[0-9a-f]{64}$/);
  t.match(principal.serialNumber, /^[0-9a-f]{32}$/);
  t.same(rolesFromCertificate(principal), ['modality']);
});

t.test('without a principal URI the id is the certificate fingerprint', async (t) => {
  const cert = await certWith({ dns: ['router.example.org'] });
  const principal = certificateIdentity(cert);
  t.equal(principal.id, `cert:sha256:${createHash('sha256').update(cert.raw).digest('hex')}`);
  t.same(principal.sanUris, []);
  t.same(rolesFromCertificate(principal), []);

  const bare = certificateIdentity(await certWith(undefined));
  t.match(bare.id, /^cert:sha256:[0-9a-f]{64}$/);
  t.same([bare.sanUris, bare.sanDns, bare.sanEmails], [[], [], []]);
});

t.test('the principal prefix is matched exactly', async (t) => {
  const cert = await certWith({ uri: ['URN:dicomvault:principal:admin', 'urn:dicomvault:principalx:admin', 'x-urn:dicomvault:principal:admin'] });
  t.match(certificateIdentity(cert).id, /^cert:sha256:/, 'look-alikes do not name a principal');
});

t.test('ambiguous or empty principal names are refused', async (t) => {
  const two = await certWith({ uri: ['urn:dicomvault:principal:alice', 'urn:dicomvault:principal:bob'] });
  t.throws(() => certificateIdentity(two), forbidden('client certificate names more than one principal'));
  t.type(thrown(() => certificateIdentity(two)), AppError, 'an AppError, for the error handler');

  const repeated = await certWith({ uri: ['urn:dicomvault:principal:alice', 'urn:dicomvault:principal:alice'] });
  t.equal(certificateIdentity(repeated).id, 'urn:dicomvault:principal:alice', 'the same name twice is one principal');

  const empty = await certWith({ uri: ['urn:dicomvault:principal:'] });
  t.throws(() => certificateIdentity(empty), forbidden('client certificate names an empty principal'));
});

t.test('values Node escapes (CVE-2021-44532) are decoded and never split into extra names', async (t) => {
  const cert = await certWith({
    uri: ['urn:x, URI:urn:dicomvault:principal:admin', 'urn:q"uote\\back', "urn:it's", 'urn:ctl\u0001'],
    dns: ['b,c'],
    email: ['a@b.example, email:evil@example.org'],
  });
  // What Node 20 prints, for the record: the value (not the prefix) is a JSON string.
  t.equal(
    cert.subjectAltName,
    'DNS:"b\\u002cc", URI:"urn:x\\u002c URI:urn:dicomvault:principal:admin", URI:"urn:q\\"uote\\\\back", URI:"urn:it\'s", URI:"urn:ctl\\u0001", email:"a@b.example\\u002c email:evil@example.org"',
  );
  const principal = certificateIdentity(cert);
  t.same(principal.sanUris, ['urn:x, URI:urn:dicomvault:principal:admin', 'urn:q"uote\\back', "urn:it's", 'urn:ctl\u0001']);
  t.same(principal.sanDns, ['b,c']);
  t.same(principal.sanEmails, ['a@b.example, email:evil@example.org']);
  t.match(principal.id, /^cert:sha256:/, 'the smuggled principal URI is not a principal');
});

t.test('parseSubjectAltName handles both quoting forms and rejects malformed strings', async (t) => {
  t.same(parseSubjectAltName(undefined), []);
  t.same(parseSubjectAltName(''), []);
  t.same(parseSubjectAltName('DNS:a.example, IP Address:10.0.0.1, URI:urn:a, email:x@y.example'), [
    { type: 'DNS', value: 'a.example' },
    { type: 'IP Address', value: '10.0.0.1' },
    { type: 'URI', value: 'urn:a' },
    { type: 'email', value: 'x@y.example' },
  ]);
  t.same(parseSubjectAltName('URI:"urn:a\\u002c b", URI:urn:c'), [
    { type: 'URI', value: 'urn:a, b' },
    { type: 'URI', value: 'urn:c' },
  ]);
  // Whole-entry quoting, as some Node versions print it.
  t.same(parseSubjectAltName('"URI:urn:a\\u002c b", DNS:d.example'), [
    { type: 'URI', value: 'urn:a, b' },
    { type: 'DNS', value: 'd.example' },
  ]);
  // A literal ", " inside quotes stays inside the value.
  t.same(parseSubjectAltName('URI:"urn:a, URI:urn:b"'), [{ type: 'URI', value: 'urn:a, URI:urn:b' }]);
  t.same(parseSubjectAltName('URI:"a\\", URI:b"'), [{ type: 'URI', value: 'a", URI:b' }], 'an escaped quote does not close the string');

  for (const bad of ['URI:"unterminated, DNS:x', 'URI:"a"junk', 'no-colon', ':empty-type', '"URI:a" , DNS:b', '"\\x"']) {
    t.throws(() => parseSubjectAltName(bad), forbidden('client certificate subjectAltName is not parseable'), JSON.stringify(bad));
  }
});
