import { X509Certificate, createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import t from 'tap';
import {
  DEV_P12_PASSWORD,
  createCa,
  createCrl,
  createDevPki,
  devPkiExists,
  devPkiPaths,
  issueCertificate,
  issueClientCertificate,
  loadTlsMaterial,
  randomSerialNumber,
} from '../../src/security/pki.js';
import { tempDir } from '../helpers/temp-dir.js';

const DAY_MS = 86_400_000;
const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const posix = process.platform !== 'win32';

const x509 = (file: string) => new X509Certificate(fs.readFileSync(file));
const mode = (file: string) => fs.statSync(file).mode & 0o777;
const lifetimeDays = (cert: X509Certificate) => (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY_MS;
/** Reads our own output back with forge to inspect extensions Node does not expose (never peer input). */
const forgeCert = (file: string) => forge.pki.certificateFromPem(fs.readFileSync(file, 'utf8'));

function openssl(args: string[]): string | undefined {
  try {
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
const hasOpenssl = openssl(['version']) !== undefined;

/** One PKI for the tests that only read it. */
const sharedPki = createDevPki(path.join(tempDir(t), 'shared'));

function readP12(file: string, password: string) {
  const der = fs.readFileSync(file).toString('binary');
  const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der), password);
  const certs = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ?? [];
  const keys = p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!] ?? [];
  return { certs, keys };
}

t.test('createDevPki writes a CA, a server and a client certificate that Node verifies', async (t) => {
  const dir = path.join(tempDir(t), 'certs', 'dev');
  const started = performance.now();
  const paths = await createDevPki(dir);
  const elapsedMs = performance.now() - started;
  // Guards against a slide back to forge's pure-JS key generation (tens of seconds for three keys);
  // about 1 s alone on 2 cores, 2-3 s while the other test files run.
  t.ok(elapsedMs < 8000, `generation took ${Math.round(elapsedMs)} ms`);

  t.same(paths, devPkiPaths(dir));
  t.same(fs.readdirSync(dir).sort(), ['ca.crt', 'ca.key', 'client.crt', 'client.key', 'client.p12', 'server.crt', 'server.key'], 'no temporary files left');

  const ca = x509(paths.caCert);
  t.equal(ca.ca, true);
  t.equal(ca.subject, 'O=dicomvault\nCN=dicomvault development CA');
  t.equal(ca.issuer, ca.subject, 'self-signed');
  t.ok(ca.verify(ca.publicKey));
  t.ok(ca.checkIssued(ca));
  t.ok(lifetimeDays(ca) >= 3650 && lifetimeDays(ca) < 3651, 'CA valid 10 years');

  const server = x509(paths.serverCert);
  t.equal(server.ca, false);
  t.ok(server.verify(ca.publicKey), 'server signed by the CA');
  t.ok(server.checkIssued(ca));
  t.equal(server.checkHost('localhost'), 'localhost');
  t.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
  t.equal(server.checkIP('::1'), '::1');
  t.equal(server.checkHost('example.org'), undefined);
  t.same(server.keyUsage, [EKU_SERVER_AUTH]);
  t.ok(lifetimeDays(server) <= 825 + 1 && lifetimeDays(server) > 825, 'server valid 825 days (+ backdating)');
  t.ok(Date.parse(server.validFrom) <= Date.now(), 'already valid');

  const client = x509(paths.clientCert);
  t.equal(client.ca, false);
  t.ok(client.verify(ca.publicKey), 'client signed by the CA');
  t.equal(client.subject, 'O=dicomvault\nCN=dicomvault-dev-admin');
  t.equal(client.subjectAltName, 'URI:urn:dicomvault:principal:dev-admin');
  t.same(client.keyUsage, [EKU_CLIENT_AUTH]);
  t.ok(lifetimeDays(client) <= 365 + 1 && lifetimeDays(client) > 365, 'client valid 1 year');

  const foreign = await createCa('someone else');
  t.notOk(client.verify(new X509Certificate(foreign.certPem).publicKey), 'verify() can fail: a foreign key does not verify');

  if (posix) {
    t.equal(mode(dir), 0o700, 'directory 0700');
    for (const file of [paths.caKey, paths.serverKey, paths.clientKey, paths.clientP12]) t.equal(mode(file), 0o600, `${path.basename(file)} 0600`);
    for (const file of [paths.caCert, paths.serverCert, paths.clientCert]) t.equal(mode(file), 0o644, `${path.basename(file)} 0644`);
  }
});

t.test('extensions follow RFC 5280: critical basicConstraints and keyUsage, SKI and AKI', async (t) => {
  const paths = await sharedPki;
  const ca = forgeCert(paths.caCert);
  const caBasic = ca.getExtension('basicConstraints') as { critical: boolean; cA: boolean; pathLenConstraint?: number };
  t.match(caBasic, { critical: true, cA: true, pathLenConstraint: 0 });
  const caUsage = ca.getExtension('keyUsage') as Record<string, boolean>;
  t.match(caUsage, { critical: true, keyCertSign: true, cRLSign: true, digitalSignature: false, keyEncipherment: false });
  t.ok(ca.verifySubjectKeyIdentifier(), 'CA SKI is the SHA-1 of its public key');
  const caSki = (ca.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier: string }).subjectKeyIdentifier;

  for (const file of [paths.caCert, paths.serverCert, paths.clientCert]) {
    const cert = forgeCert(file);
    t.ok(cert.verifySubjectKeyIdentifier(), `${path.basename(file)} SKI`);
    const aki = cert.getExtension('authorityKeyIdentifier') as { value: string };
    // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }
    const parsed = forge.asn1.fromDer(aki.value);
    const keyId = (parsed.value as forge.asn1.Asn1[])[0]!;
    t.equal(keyId.type, 0);
    t.equal(forge.util.bytesToHex(keyId.value as string), caSki, `${path.basename(file)} AKI = CA SKI`);
  }
  for (const file of [paths.serverCert, paths.clientCert]) {
    const cert = forgeCert(file);
    t.match(cert.getExtension('basicConstraints'), { critical: true, cA: false });
    t.match(cert.getExtension('keyUsage'), { critical: true, digitalSignature: true, keyCertSign: false, keyEncipherment: false });
    t.equal(cert.siginfo.algorithmOid, forge.pki.oids.sha256WithRSAEncryption);
  }
});

t.test('serial numbers are 16 random bytes, positive and minimally encoded', async (t) => {
  const serials = Array.from({ length: 2000 }, () => randomSerialNumber());
  t.same(serials.filter((s) => !/^[0-9a-f]{32}$/.test(s)), [], '32 hex digits');
  // First octet 0x01..0x7f: 0x80+ would make the INTEGER negative, 0x00 would be illegal padding.
  t.same(serials.filter((s) => !/^(0[1-9a-f]|[1-7][0-9a-f])/.test(s)), [], 'positive, no leading zero octet');
  t.equal(new Set(serials).size, serials.length, 'no repeats');

  const paths = await sharedPki;
  const fromCerts = [paths.caCert, paths.serverCert, paths.clientCert].map((f) => x509(f).serialNumber);
  t.equal(new Set(fromCerts).size, 3);
  for (const s of fromCerts) t.match(s, /^(0[1-9A-F]|[1-7][0-9A-F])[0-9A-F]{30}$/);
});

t.test('client.p12 holds the key, the client and the CA certificate under DEV_P12_PASSWORD', async (t) => {
  const paths = await sharedPki;
  t.equal(DEV_P12_PASSWORD, 'dicomvault');
  const { certs, keys } = readP12(paths.clientP12, DEV_P12_PASSWORD);
  t.equal(certs.length, 2);
  t.equal(keys.length, 1);
  const fingerprints = certs.map((bag) => new X509Certificate(forge.pki.certificateToPem(bag.cert!)).fingerprint256).sort();
  t.same(fingerprints, [x509(paths.caCert).fingerprint256, x509(paths.clientCert).fingerprint256].sort());
  const key = keys[0]!.key as forge.pki.rsa.PrivateKey;
  const clientPublic = forgeCert(paths.clientCert).publicKey as forge.pki.rsa.PublicKey;
  t.ok(key.n.equals(clientPublic.n), 'the key is the client key');
  t.equal(keys[0]!.attributes['friendlyName']?.[0], 'dicomvault-dev-admin');
  t.throws(() => readP12(paths.clientP12, 'wrong'), 'a wrong password fails the MAC');
});

t.test('openssl reads the PKCS#12 and accepts the client certificate for sslclient', { skip: !hasOpenssl && 'openssl not installed' }, async (t) => {
  const paths = await sharedPki;
  const pem = openssl(['pkcs12', '-in', paths.clientP12, '-passin', `pass:${DEV_P12_PASSWORD}`, '-nodes']) ?? '';
  t.equal(pem.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2, 'openssl reads both certificates');
  t.equal(pem.match(/-----BEGIN PRIVATE KEY-----/g)?.length, 1, 'openssl reads the key');
  const verify = openssl(['verify', '-CAfile', paths.caCert, '-purpose', 'sslclient', paths.clientCert]);
  t.equal(verify?.trim(), `${paths.clientCert}: OK`);
});

t.test('createDevPki refuses to replace an existing PKI unless forced', async (t) => {
  const dir = tempDir(t);
  const paths = await createDevPki(dir);
  const before = x509(paths.caCert).fingerprint256;

  await t.rejects(createDevPki(dir), { message: `development PKI file already exists: ${paths.caCert} (use --force to replace the PKI)` });
  t.equal(x509(paths.caCert).fingerprint256, before, 'untouched');

  // A lone leftover file also blocks: half a PKI is not silently completed with a new CA.
  fs.rmSync(paths.caCert);
  fs.rmSync(paths.caKey);
  await t.rejects(createDevPki(dir), { message: /server\.crt/ });

  if (posix) fs.chmodSync(paths.serverKey, 0o644);
  await createDevPki(dir, { force: true });
  t.not(x509(paths.caCert).fingerprint256, before, 'a new CA');
  t.ok(x509(paths.serverCert).verify(x509(paths.caCert).publicKey), 'server re-issued by the new CA');
  if (posix) t.equal(mode(paths.serverKey), 0o600, 'replaced key is 0600 again');
  t.equal(fs.readdirSync(dir).length, 7);
});

t.test('modes are exact whatever the umask', { skip: !posix && 'POSIX modes only' }, async (t) => {
  const previous = process.umask(0o077);
  t.teardown(() => void process.umask(previous));
  const paths = await createDevPki(path.join(tempDir(t), 'fresh'));
  t.equal(mode(paths.caCert), 0o644, 'certificates stay world-readable under umask 077');
  t.equal(mode(paths.caKey), 0o600);
  process.umask(0);
  const loose = await createDevPki(path.join(tempDir(t), 'loose'));
  t.equal(mode(loose.dir), 0o700, 'directory 0700 under umask 0');
  t.equal(mode(loose.clientKey), 0o600, 'key 0600 under umask 0');
});

t.test('createDevPki adds --host names and validates them before writing', async (t) => {
  const dir = tempDir(t);
  const paths = await createDevPki(dir, { hosts: ['pacs.example.org', '10.0.0.5', 'fe80::1', 'LOCALHOST'] });
  const server = x509(paths.serverCert);
  t.equal(server.checkHost('pacs.example.org'), 'pacs.example.org');
  t.equal(server.checkIP('10.0.0.5'), '10.0.0.5');
  t.equal(server.checkIP('fe80::1'), 'fe80::1');
  t.equal(server.subjectAltName?.match(/DNS:localhost/gi)?.length, 1, 'duplicates folded');

  const empty = path.join(tempDir(t), 'never');
  await t.rejects(createDevPki(empty, { hosts: ['bad host'] }), { message: 'not a DNS name or IP address: "bad host"' });
  await t.rejects(createDevPki(empty, { hosts: ['a..b'] }), { message: /not a DNS name/ });
  t.notOk(fs.existsSync(empty), 'nothing written');
});

t.test('devPkiExists answers for the files serve needs', async (t) => {
  const dir = tempDir(t);
  t.equal(await devPkiExists(dir), false);
  t.equal(await devPkiExists(path.join(dir, 'missing')), false);
  const paths = await createDevPki(dir);
  t.equal(await devPkiExists(dir), true);
  fs.rmSync(paths.clientP12);
  t.equal(await devPkiExists(dir), true, 'client files are not needed to serve');
  fs.rmSync(paths.serverKey);
  t.equal(await devPkiExists(dir), false);
});

t.test('issueClientCertificate issues NAME.crt/.key/.p12 from the CA directory', async (t) => {
  const caDir = tempDir(t);
  const pki = await createDevPki(caDir);
  const outDir = path.join(tempDir(t), 'issued');
  const issued = await issueClientCertificate(caDir, { name: 'ct-gateway_1', role: 'modality', outDir, days: 7 });

  t.same(issued, {
    certPath: path.join(outDir, 'ct-gateway_1.crt'),
    keyPath: path.join(outDir, 'ct-gateway_1.key'),
    p12Path: path.join(outDir, 'ct-gateway_1.p12'),
    fingerprint256: issued.fingerprint256,
  });
  const cert = x509(issued.certPath);
  t.equal(issued.fingerprint256, createHash('sha256').update(cert.raw).digest('hex'));
  t.ok(cert.verify(x509(pki.caCert).publicKey));
  t.equal(cert.subject, 'O=dicomvault\nCN=ct-gateway_1', 'UTF8String CN holds "_"');
  t.equal(cert.subjectAltName, 'URI:urn:dicomvault:principal:ct-gateway_1, URI:urn:dicomvault:role:modality');
  t.same(cert.keyUsage, [EKU_CLIENT_AUTH]);
  t.ok(lifetimeDays(cert) > 7 && lifetimeDays(cert) <= 7 + 1);
  const { certs, keys } = readP12(issued.p12Path, DEV_P12_PASSWORD);
  t.equal(certs.length, 2);
  t.equal(keys.length, 1);
  if (posix) {
    t.equal(mode(outDir), 0o700);
    t.equal(mode(issued.keyPath), 0o600);
    t.equal(mode(issued.p12Path), 0o600);
    t.equal(mode(issued.certPath), 0o644);
  }

  const plain = await issueClientCertificate(caDir, { name: 'viewer', outDir });
  const viewer = x509(plain.certPath);
  t.equal(viewer.subjectAltName, 'URI:urn:dicomvault:principal:viewer', 'no role URI without --role');
  t.ok(lifetimeDays(viewer) > 365 && lifetimeDays(viewer) <= 366, 'default 365 days');

  await t.rejects(issueClientCertificate(caDir, { name: 'viewer', outDir }), {
    message: `${plain.certPath} already exists; remove it or choose another name`,
  });
});

t.test('issueClientCertificate rejects bad input before writing anything', async (t) => {
  const caDir = tempDir(t);
  await createDevPki(caDir);
  const outDir = path.join(tempDir(t), 'out');
  for (const name of ['../evil', '', '.hidden', 'a/b', 'x'.repeat(65), 'sp ace']) {
    await t.rejects(issueClientCertificate(caDir, { name, outDir }), { message: /^name must be 1-64 characters/ }, JSON.stringify(name));
  }
  await t.rejects(issueClientCertificate(caDir, { name: 'ok', role: 'a,b', outDir }), { message: /^role must be/ });
  for (const days of [0, 826, 1.5, Number.NaN]) {
    await t.rejects(issueClientCertificate(caDir, { name: 'ok', outDir, days }), { message: /^days must be an integer from 1 to 825/ }, String(days));
  }
  await t.rejects(issueClientCertificate(path.join(caDir, 'nope'), { name: 'ok', outDir }), {
    message: `cannot read CA certificate file ${path.join(caDir, 'nope', 'ca.crt')}: no such file`,
  });
  t.notOk(fs.existsSync(outDir));

  // A CA that expires in two days cannot vouch for a seven-day certificate.
  const shortDir = tempDir(t);
  const short = await createCa('short-lived', { notAfter: new Date(Date.now() + 2 * DAY_MS) });
  fs.writeFileSync(path.join(shortDir, 'ca.crt'), short.certPem);
  fs.writeFileSync(path.join(shortDir, 'ca.key'), short.keyPem);
  await t.rejects(issueClientCertificate(shortDir, { name: 'ok', outDir, days: 7 }), { message: /^a 7-day certificate would outlive its CA/ });
  await issueClientCertificate(shortDir, { name: 'ok', outDir, days: 1 });
  t.ok(fs.existsSync(path.join(outDir, 'ok.crt')), 'within the CA lifetime it works');
});

t.test('issueCertificate and createCa: test helpers with explicit dates, EKU and SANs', async (t) => {
  const ca = await createCa('test CA');
  const caCert = new X509Certificate(ca.certPem);
  const notBefore = new Date(Date.now() - 10 * DAY_MS);
  const notAfter = new Date(Date.now() - DAY_MS);
  const expired = await issueCertificate(ca, {
    commonName: 'expired',
    eku: 'clientAuth',
    sans: { uri: ['urn:dicomvault:principal:expired'], email: ['ops@example.org'], dns: ['e.example'], ip: ['192.0.2.1'] },
    notBefore,
    notAfter,
  });
  const cert = new X509Certificate(expired.certPem);
  t.ok(cert.verify(caCert.publicKey));
  t.equal(Date.parse(cert.validTo), Math.floor(notAfter.getTime() / 1000) * 1000, 'notAfter as requested (second precision)');
  t.ok(Date.parse(cert.validTo) < Date.now(), 'already expired');
  t.equal(cert.subjectAltName, 'DNS:e.example, IP Address:192.0.2.1, URI:urn:dicomvault:principal:expired, email:ops@example.org');

  const serverOnly = await issueCertificate(ca, { commonName: 'wrong purpose', eku: 'serverAuth' });
  t.same(new X509Certificate(serverOnly.certPem).keyUsage, [EKU_SERVER_AUTH]);
  t.equal(new X509Certificate(serverOnly.certPem).subjectAltName, undefined, 'no empty SAN extension');

  const other = await createCa('other CA');
  await t.rejects(issueCertificate({ certPem: ca.certPem, keyPem: other.keyPem }, { commonName: 'x', eku: 'clientAuth' }), {
    message: 'issuer key does not match the issuer certificate',
  });
  await t.rejects(issueCertificate(serverOnly, { commonName: 'x', eku: 'clientAuth' }), { message: /is not a CA/ });
  await t.rejects(issueCertificate(ca, { commonName: 'x', eku: 'clientAuth', sans: { ip: ['localhost'] } }), { message: 'not an IP address: localhost' });
  await t.rejects(issueCertificate(ca, { commonName: 'x', eku: 'clientAuth', sans: { uri: ['urn:é'] } }), { message: 'URI name must be non-empty ASCII' });
  await t.rejects(issueCertificate(ca, { commonName: '', eku: 'clientAuth' }), { message: /commonName must be 1 to 64/ });
  await t.rejects(createCa('backwards', { notBefore: new Date(), notAfter: new Date(Date.now() - 1000) }), { message: /notAfter must be later/ });
});

t.test('loadTlsMaterial reads the listener files and names the one that is wrong', async (t) => {
  const dir = tempDir(t);
  const pki = await createDevPki(dir);
  const paths = { caPath: pki.caCert, certPath: pki.serverCert, keyPath: pki.serverKey };

  const loaded = await loadTlsMaterial(paths);
  t.same(loaded.ca, fs.readFileSync(pki.caCert));
  t.same(loaded.cert, fs.readFileSync(pki.serverCert));
  t.same(loaded.key, fs.readFileSync(pki.serverKey));
  t.notOk('crl' in loaded);

  const missing = path.join(dir, 'missing.pem');
  await t.rejects(loadTlsMaterial({ ...paths, caPath: missing }), { message: `cannot read TLS CA certificate file ${missing}: no such file` });
  await t.rejects(loadTlsMaterial({ ...paths, certPath: missing }), { message: `cannot read TLS certificate file ${missing}: no such file` });
  await t.rejects(loadTlsMaterial({ ...paths, keyPath: missing }), { message: `cannot read TLS key file ${missing}: no such file` });
  await t.rejects(loadTlsMaterial({ ...paths, crlPath: missing }), { message: `cannot read TLS CRL file ${missing}: no such file` });

  await t.rejects(loadTlsMaterial({ ...paths, keyPath: pki.clientKey }), {
    message: `TLS key file ${pki.clientKey} does not match the certificate in ${pki.serverCert}`,
  });
  await t.rejects(loadTlsMaterial({ ...paths, certPath: pki.serverKey }), { message: new RegExp(`^TLS certificate file ${pki.serverKey} does not hold a PEM certificate`) });
  await t.rejects(loadTlsMaterial({ ...paths, keyPath: pki.serverCert }), { message: new RegExp(`^TLS key file ${pki.serverCert} does not hold an unencrypted PEM private key`) });
  await t.rejects(loadTlsMaterial({ ...paths, crlPath: pki.caCert }), { message: `TLS CRL file ${pki.caCert} does not hold a PEM CRL (-----BEGIN X509 CRL-----)` });

  const crlPath = path.join(dir, 'ca.crl');
  const ca = { certPem: fs.readFileSync(pki.caCert, 'utf8'), keyPem: fs.readFileSync(pki.caKey, 'utf8') };
  fs.writeFileSync(crlPath, createCrl(ca));
  const withCrl = await loadTlsMaterial({ ...paths, crlPath });
  t.same(withCrl.crl, fs.readFileSync(crlPath));
});
