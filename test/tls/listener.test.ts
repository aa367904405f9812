// The server on a real mutual-TLS listener (SECURITY.md 7 and cases 1, 3, 5): who gets through the
// handshake, and that the verified certificate becomes the request's principal.
import { Writable } from 'node:stream';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { openStorage } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { mtlsResolver } from '../../src/http/plugins/authenticate.js';
import { PrincipalRegistry } from '../../src/security/principal-registry.js';
import { defaultPolicies } from '../helpers/access.js';
import { createLogger } from '../../src/logger.js';
import { createCa, issueCertificate } from '../../src/security/pki.js';
import { buildTlsServerOptions } from '../../src/security/tls-options.js';
import { request } from '../helpers/https-client.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { testFile } from '../helpers/testdata.js';

const day = 24 * 3600 * 1000;
const now = Date.now();

t.test('mutual TLS listener', async (t) => {
  const ca = await createCa('test CA');
  const foreignCa = await createCa('foreign CA');
  const server = await issueCertificate(ca, { commonName: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, eku: 'serverAuth' });
  const client = await issueCertificate(ca, { commonName: 'gateway', sans: { uri: ['urn:dicomvault:principal:gateway-1'] }, eku: 'clientAuth' });
  const foreign = await issueCertificate(foreignCa, { commonName: 'intruder', eku: 'clientAuth' });
  const expired = await issueCertificate(ca, { commonName: 'old', eku: 'clientAuth', notBefore: new Date(now - 30 * day), notAfter: new Date(now - day) });
  const serverOnly = await issueCertificate(ca, { commonName: 'wrong-purpose', eku: 'serverAuth' });

  const dataDir = tempDir(t);
  const principals = [{ id: 'gateway-1', match: { sanUri: 'urn:dicomvault:principal:gateway-1' }, roles: ['admin'] }];
  const config = loadConfig({ env: { ...storageEnv(dataDir), DICOMVAULT_PRINCIPALS: JSON.stringify(principals) } });
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _e, cb) => { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  const logger = createLogger('info', sink);
  const storage = await openStorage(config);
  const app = buildApp({
    config,
    ...storage,
    readInstance,
    logger,
    principalOf: mtlsResolver(new PrincipalRegistry(config)),
    policy: defaultPolicies(),
    https: buildTlsServerOptions({ ca: ca.certPem, cert: server.certPem, key: server.keyPem }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await app.close();
    await storage.close();
  });
  const address = app.server.address();
  const base = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/dicomweb`;
  const good = { ca: ca.certPem, cert: client.certPem, key: client.keyPem };

  t.test('a client certificate from the configured CA gets through, and is the principal', async (t) => {
    const stored = await request(`${base}/studies`, good, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: testFile('broken/valid-reference.dcm') });
    t.equal(stored.status, 200);
    const found = await request(`${base}/studies?PatientName=BROKEN*`, good);
    t.equal(found.status, 200);
    const studies = JSON.parse(found.body.toString()) as Record<string, { Value?: unknown[] }>[];
    t.equal(studies.length, 1);
    t.match(studies[0]!['00081190']?.Value?.[0], new RegExp(`^${base.replace(/\./g, '\\.')}/studies/`), 'RetrieveURL names this listener');
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
    t.ok(logged.length >= 2);
    for (const line of logged) {
      t.equal(line.principal, 'gateway-1', 'the registry id of the principal in the request log');
      t.notMatch(JSON.stringify(line), /BROKEN/, 'no query values (PHI) in the log');
    }
  });

  const refused: [string, { ca: string; cert?: string; key?: string }][] = [
    ['no client certificate', { ca: ca.certPem }],
    ['a certificate from another CA', { ca: ca.certPem, cert: foreign.certPem, key: foreign.keyPem }],
    ['an expired certificate', { ca: ca.certPem, cert: expired.certPem, key: expired.keyPem }],
    ['a serverAuth-only certificate', { ca: ca.certPem, cert: serverOnly.certPem, key: serverOnly.keyPem }],
  ];
  for (const [name, tls] of refused) {
    t.test(`${name}: the handshake fails`, async (t) => {
      await t.rejects(request(`${base}/studies`, tls), 'no HTTP exchange happens');
    });
  }

  t.test('refused handshakes are logged with their reason, without certificate content', async (t) => {
    const refusals = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'TLS handshake refused');
    t.ok(refusals.length >= 3, `${refusals.length} refusals logged`);
    // Node has already torn the socket down for verification failures, so the address is not always known.
    t.ok(refusals.every((r) => typeof r.reason === 'string' && r.level === 40 && (r.remoteAddress === undefined || r.remoteAddress === '127.0.0.1')));
    t.ok(refusals.some((r) => r.reason === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'), 'missing certificate named');
    t.ok(refusals.some((r) => /CERT_HAS_EXPIRED|certificate has expired/i.test(String(r.reason))), 'expired certificate named');
  });

  t.test('TLS 1.1 is refused', async (t) => {
    await t.rejects(request(`${base}/studies`, good, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }));
  });

  t.test('the server still answers after the refusals', async (t) => {
    t.equal((await request(`${base}/studies`, good)).status, 200);
  });
});
