// Certificate and CRL rotation without a restart (security/tls-reload.ts; SECURITY.md 7, 8 cases 2 and 4), on a
// real mutual-TLS listener with real files: a reload applies a new CRL to new handshakes *and* closes the open
// keep-alive connections of the certificates it revokes; a session from before the reload does not resume; a bad
// file keeps the material in force; an expired CRL refuses everyone; a new server certificate is served.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { openStorage } from '../../src/compose.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { mtlsResolver } from '../../src/http/plugins/authenticate.js';
import { createLogger } from '../../src/logger.js';
import { ArchiveMetrics } from '../../src/ops/metrics.js';
import { type CertificateAndKey, createCa, createCrl, issueCertificate } from '../../src/security/pki.js';
import { PrincipalRegistry } from '../../src/security/principal-registry.js';
import { CRL_INLINE_MAX_BYTES, TlsReloader, normalizeSerial } from '../../src/security/tls-reload.js';
import { auditRecordsOf } from '../e2e/cli-process.js';
import { defaultPolicies } from '../helpers/access.js';
import { request } from '../helpers/https-client.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

const DAY_MS = 86_400_000;

const ca = await createCa('reload test CA');
const impostorCa = await createCa('reload test CA');
const serverSans = { dns: ['localhost'], ip: ['127.0.0.1'] };
const [server1, server2, alice, bob, carol] = await Promise.all([
  issueCertificate(ca, { commonName: 'localhost', sans: serverSans, eku: 'serverAuth' }),
  issueCertificate(ca, { commonName: 'localhost', sans: serverSans, eku: 'serverAuth' }),
  issueCertificate(ca, { commonName: 'alice', eku: 'clientAuth' }),
  issueCertificate(ca, { commonName: 'bob', eku: 'clientAuth' }),
  issueCertificate(ca, { commonName: 'carol', eku: 'clientAuth' }),
]);
const serial = (c: CertificateAndKey) => new X509Certificate(c.certPem).serialNumber;
const fingerprint = (c: CertificateAndKey) => new X509Certificate(c.certPem).fingerprint256.replaceAll(':', '').toLowerCase();
const revoking = (...certs: CertificateAndKey[]) => createCrl(ca, { revoked: certs.map((c) => ({ serialNumber: serial(c) })), crlNumber: 2 });
const clientTls = (c: CertificateAndKey) => ({ ca: ca.certPem, cert: c.certPem, key: c.keyPem });

interface Listener {
  root: string;
  port: number;
  url: (p: string) => string;
  reloader: TlsReloader;
  metrics: ArchiveMetrics;
  /** The application log, parsed. */
  logs: Record<string, unknown>[];
  files: { ca: string; cert: string; key: string; crl: string };
  write: (file: 'ca' | 'cert' | 'key' | 'crl', content: string) => void;
  flushAudit: () => Promise<void>;
}

/** A listener whose TLS files are real files in a temporary folder, as `dicomvault serve` reads them. */
async function listen(t: Test, options: { crl?: string; crlWarningMs?: number } = {}): Promise<Listener> {
  const root = tempDir(t);
  const files = { ca: path.join(root, 'ca.crt'), cert: path.join(root, 'server.crt'), key: path.join(root, 'server.key'), crl: path.join(root, 'crl.pem') };
  const write = (file: keyof typeof files, content: string) => fs.writeFileSync(files[file], content);
  write('ca', ca.certPem);
  write('cert', server1.certPem);
  write('key', server1.keyPem);
  write('crl', options.crl ?? createCrl(ca));
  // Keep-alive connections outlive the test steps (the default 5 s could close them first and hide a failure).
  const config = loadConfig({ env: { ...storageEnv(root), DICOMVAULT_SERVER_KEEP_ALIVE_TIMEOUT_MS: '60000' } });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write: (chunk, _e, cb) => {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger('info', sink);
  const storage = await openStorage(config);
  const metrics = new ArchiveMetrics();
  const reloader = await TlsReloader.open({ paths: files, log: logger, metrics, crlWarningMs: options.crlWarningMs ?? DAY_MS });
  const app = buildApp({
    config,
    ...storage,
    readInstance,
    logger,
    metrics,
    principalOf: mtlsResolver(new PrincipalRegistry(config)),
    policy: defaultPolicies(),
    https: reloader.serverOptions,
  });
  reloader.attach({ mtls: app.server as unknown as tls.Server, auditor: storage.auditor });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    reloader.stop();
    await app.close();
    await storage.close();
  });
  const { port } = app.server.address() as AddressInfo;
  return {
    root,
    port,
    url: (p) => `https://127.0.0.1:${port}${p}`,
    reloader,
    metrics,
    logs,
    files,
    write,
    flushAudit: () => storage.auditor.flush(),
  };
}

interface KeepAliveResponse {
  status: number;
  socket: tls.TLSSocket;
  /** The request went over a connection an earlier request opened. */
  reused: boolean;
}

/** A client that keeps one connection open between requests (what a gateway or a viewer's browser does). */
function keepAliveClient(t: Test, cert: CertificateAndKey) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...clientTls(cert) });
  t.teardown(() => agent.destroy());
  return (url: string) =>
    new Promise<KeepAliveResponse>((resolve, reject) => {
      const req = https.get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket as tls.TLSSocket, reused: req.reusedSocket }));
      });
      req.on('error', reject);
    });
}

interface Exchange {
  /** The HTTP status line's code, when the server answered. */
  status?: number;
  reused: boolean;
  error?: string;
  /** The session to resume with (a TLS 1.3 ticket), when the server sent one. */
  session?: Buffer;
}

/** One GET /healthz on a fresh connection, optionally resuming `session`. */
function exchange(port: number, cert: CertificateAndKey, session?: Buffer): Promise<Exchange> {
  return new Promise((resolve) => {
    const out: Exchange = { reused: false };
    let data = '';
    const socket = tls.connect({ host: '127.0.0.1', port, ...clientTls(cert), ...(session ? { session } : {}) }, () => {
      out.reused = socket.isSessionReused();
      socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.on('session', (s: Buffer) => (out.session ??= s));
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    socket.on('error', (e: NodeJS.ErrnoException) => (out.error ??= e.code ?? e.message));
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m) out.status = Number(m[1]);
      resolve(out);
    });
  });
}

function logsOf(l: Listener, event: string): Record<string, unknown>[] {
  return l.logs.filter((r) => r.event === event);
}

async function sample(metrics: ArchiveMetrics, line: string): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

t.test('a revoked certificate loses its open keep-alive connection on reload; another keeps its own', async (t) => {
  const l = await listen(t);
  const asAlice = keepAliveClient(t, alice);
  const asBob = keepAliveClient(t, bob);
  const a1 = await asAlice(l.url('/healthz'));
  const b1 = await asBob(l.url('/healthz'));
  t.equal(a1.status, 200);
  t.equal(b1.status, 200);
  const a2 = await asAlice(l.url('/healthz'));
  t.ok(a2.reused, 'the keep-alive connection is reused before the reload');
  t.equal(l.reloader.openConnections, 2);

  l.write('crl', revoking(alice));
  const result = await l.reloader.reload('test');
  t.same(result, { outcome: 'applied', changed: ['crl'], closed: 1 });
  await until(() => a1.socket.destroyed, 2000);
  t.ok(a1.socket.destroyed, "alice's open connection is closed");
  t.notOk(b1.socket.destroyed, "bob's stays open");
  const b2 = await asBob(l.url('/healthz'));
  t.equal(b2.status, 200);
  t.ok(b2.reused, 'bob goes on over the same connection');
  t.equal(b2.socket, b1.socket);

  await t.rejects(request(l.url('/healthz'), clientTls(alice)), 'a new handshake with the revoked certificate fails');
  await until(() => l.logs.some((r) => r.msg === 'TLS handshake refused' && /CERT_REVOKED|revoked/i.test(String(r.reason))), 2000);
  t.equal((await request(l.url('/healthz'), clientTls(bob))).status, 200, 'bob can still open new connections');

  const closed = logsOf(l, 'tls.connection.closed');
  t.equal(closed.length, 1);
  t.match(closed[0], { reason: 'revoked', fingerprint: fingerprint(alice), remoteAddress: '127.0.0.1', level: 40 });
  t.match(logsOf(l, 'tls.reloaded'), [{ trigger: 'test', changed: ['crl'] }]);
  t.equal(await sample(l.metrics, 'dicomvault_tls_connections_closed_total{reason="revoked"}'), 1);
  t.equal(await sample(l.metrics, 'dicomvault_tls_reloads_total{result="applied"}'), 1);

  await l.flushAudit();
  const records = await auditRecordsOf(l.root);
  const alerts = records.filter((r) => JSON.stringify(r).includes('110113'));
  const config = alerts.find((r) => JSON.stringify(r).includes('110129'));
  t.ok(config, 'the reload is audited: 110113 Security Alert, 110129 Security Configuration');
  t.match(JSON.stringify(config), /TLS material reloaded \(test\): crl changed/);
  const node = alerts.find((r) => JSON.stringify(r).includes('connection closed after a TLS material change'));
  t.ok(node, 'the closed connection is audited');
  t.match(JSON.stringify(node), /110126/);
  t.match(JSON.stringify(node), new RegExp(fingerprint(alice)));
});

t.test('a session from before the reload does not resume for a certificate revoked since', async (t) => {
  const l = await listen(t);
  const first = await exchange(l.port, carol);
  t.equal(first.status, 200);
  t.ok(first.session, 'the server sent a session ticket');
  // Control: without a reload the ticket resumes (so the refusal below is the reload's doing).
  const resumed = await exchange(l.port, carol, first.session);
  t.equal(resumed.status, 200);
  t.ok(resumed.reused, 'resumed before the reload');

  const bobBefore = await exchange(l.port, bob);
  t.ok(bobBefore.session);

  l.write('crl', revoking(carol));
  t.match(await l.reloader.reload('test'), { outcome: 'applied' });
  const revokedRefusals = () => l.logs.filter((r) => r.msg === 'TLS handshake refused' && /CERT_REVOKED|revoked/i.test(String(r.reason))).length;
  t.equal(revokedRefusals(), 0);
  const after = await exchange(l.port, carol, first.session);
  t.notOk(after.reused, 'not resumed: the new context has new ticket keys');
  t.equal(after.status, undefined, 'no HTTP answer: the full handshake checked the new CRL');
  await until(() => revokedRefusals() === 1, 2000);
  t.equal(revokedRefusals(), 1, 'the server refused the handshake as revoked');
  // Bob's ticket from before the reload does not resume either, but his full handshake lets him in.
  const bobAfter = await exchange(l.port, bob, bobBefore.session);
  t.notOk(bobAfter.reused);
  t.equal(bobAfter.status, 200);
});

t.test('a bad file on reload keeps the material in force', async (t) => {
  const l = await listen(t, { crl: revoking(alice) });
  const asBob = keepAliveClient(t, bob);
  const b1 = await asBob(l.url('/healthz'));
  t.equal(b1.status, 200);
  const bad: [string, () => void, RegExp][] = [
    ['a CRL file that is not a CRL', () => l.write('crl', 'not a CRL\n'), /does not hold a PEM CRL/],
    [
      'a CRL whose body does not parse',
      () => l.write('crl', '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'),
      /CRL 1 of .*crl\.pem does not parse/,
    ],
    // Same name as the CA of tls.ca, another key: a forged CRL (it could un-revoke anyone).
    ['a CRL whose signature is not the CA\'s', () => l.write('crl', createCrl(impostorCa)), /not signed by the CA of that name in the tls\.ca file/],
    [
      'a CRL not valid yet',
      () => l.write('crl', createCrl(ca, { thisUpdate: new Date(Date.now() + DAY_MS), nextUpdate: new Date(Date.now() + 8 * DAY_MS) })),
      /not valid yet/,
    ],
    [
      'a server key that does not match the certificate',
      () => {
        l.write('crl', createCrl(ca)); // a good CRL: only the key is wrong
        l.write('cert', server2.certPem);
      },
      /does not match the certificate/,
    ],
    ['a missing file', () => fs.rmSync(l.files.key), /cannot read TLS key file .*server\.key: no such file/],
  ];
  for (const [name, breakIt, why] of bad) {
    breakIt();
    const result = await l.reloader.reload('test');
    t.match(result, { outcome: 'failed', error: why }, name);
  }
  t.equal(await sample(l.metrics, 'dicomvault_tls_reloads_total{result="failed"}'), bad.length);
  t.equal(logsOf(l, 'tls.reload.failed').length, bad.length, 'each failure is logged');
  t.ok(logsOf(l, 'tls.reload.failed').every((r) => r.level === 50));

  // Still the CRL revoking alice, and the first server certificate.
  await t.rejects(request(l.url('/healthz'), clientTls(alice)), 'alice is still refused');
  const fresh = await exchange(l.port, bob);
  t.equal(fresh.status, 200, 'bob still gets in');
  const b2 = await asBob(l.url('/healthz'));
  t.ok(b2.reused && !b1.socket.destroyed, "bob's open connection was left alone");
  const served = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: l.port, ...clientTls(bob) }, () => {
      resolve(s.getPeerX509Certificate()!.serialNumber);
      s.end();
    });
    s.on('error', reject);
  });
  t.equal(served, serial(server1), 'the server certificate in force is still served');

  await l.flushAudit();
  const refused = (await auditRecordsOf(l.root)).filter((r) => JSON.stringify(r).includes('TLS reload refused (test)'));
  t.equal(refused.length, bad.length, 'each refused reload is audited');
  t.match(JSON.stringify(refused[0]), /110129/);
});

t.test('an expired CRL refuses everyone and closes the open connections (fail closed)', async (t) => {
  const l = await listen(t);
  const asBob = keepAliveClient(t, bob);
  const b1 = await asBob(l.url('/healthz'));
  t.equal(b1.status, 200);
  const nextUpdate = new Date(Date.now() - DAY_MS);
  l.write('crl', createCrl(ca, { thisUpdate: new Date(Date.now() - 8 * DAY_MS), nextUpdate, crlNumber: 3 }));
  t.match(await l.reloader.reload('test'), { outcome: 'applied', closed: 1 }, 'applied: the listener behaves as after a restart with this file');
  await until(() => b1.socket.destroyed, 2000);
  t.match(logsOf(l, 'tls.connection.closed'), [{ reason: 'crl-expired' }]);
  for (const who of [alice, bob]) {
    const res = await exchange(l.port, who);
    t.equal(res.status, undefined, `${who === alice ? 'alice' : 'bob'} is refused`);
  }
  await until(() => l.logs.some((r) => r.msg === 'TLS handshake refused' && /CRL_HAS_EXPIRED|crl has expired/i.test(String(r.reason))), 2000);
  t.match(logsOf(l, 'tls.crl.expired'), [{ level: 50, nextUpdate: new Date(Math.floor(nextUpdate.getTime() / 1000) * 1000).toISOString() }]);
  t.equal(await sample(l.metrics, 'dicomvault_tls_crl_next_update_timestamp_seconds'), Math.floor(nextUpdate.getTime() / 1000));
});

t.test('the operator is warned before nextUpdate, and connections close when it passes', async (t) => {
  // nextUpdate in about 3 s, warning margin one day: warned at once; at nextUpdate the open connection closes.
  const nextUpdate = new Date(Math.ceil((Date.now() + 3000) / 1000) * 1000);
  const l = await listen(t, { crl: createCrl(ca, { nextUpdate }) });
  t.match(logsOf(l, 'tls.crl.expiring'), [{ level: 40, nextUpdate: nextUpdate.toISOString() }], 'warned at start');
  t.equal(await sample(l.metrics, 'dicomvault_tls_crl_next_update_timestamp_seconds'), nextUpdate.getTime() / 1000);
  const asBob = keepAliveClient(t, bob);
  const b1 = await asBob(l.url('/healthz'));
  t.equal(b1.status, 200);
  t.notOk(b1.socket.destroyed);
  await until(() => b1.socket.destroyed, 8000);
  t.ok(Date.now() >= nextUpdate.getTime(), 'not before nextUpdate');
  t.match(logsOf(l, 'tls.crl.expired'), [{ level: 50 }]);
  t.match(logsOf(l, 'tls.connection.closed'), [{ reason: 'crl-expired' }]);

  t.test('far from nextUpdate: no warning', async (t) => {
    const calm = await listen(t, { crl: createCrl(ca, { nextUpdate: new Date(Date.now() + 7 * DAY_MS) }), crlWarningMs: DAY_MS });
    t.equal(logsOf(calm, 'tls.crl.expiring').length, 0);
  });
});

t.test('a replaced server certificate is served to new connections after reload', async (t) => {
  const l = await listen(t);
  const peerSerial = () =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: l.port, ...clientTls(bob) }, () => {
        resolve(s.getPeerX509Certificate()!.serialNumber);
        s.end();
      });
      s.on('error', reject);
    });
  t.equal(await peerSerial(), serial(server1));
  const asBob = keepAliveClient(t, bob);
  const b1 = await asBob(l.url('/healthz'));
  l.write('cert', server2.certPem);
  l.write('key', server2.keyPem);
  t.same(await l.reloader.reload('test'), { outcome: 'applied', changed: ['cert', 'key'], closed: 0 });
  t.equal(await peerSerial(), serial(server2), 'the new certificate');
  t.notOk(b1.socket.destroyed, 'open connections are not closed for a server certificate change');
  t.equal(await sample(l.metrics, 'dicomvault_tls_certificate_not_after_timestamp_seconds{listener="mtls"}'), new Date(new X509Certificate(server2.certPem).validTo).getTime() / 1000);
  t.same(await l.reloader.reload('test'), { outcome: 'unchanged' }, 'a second reload without a change applies nothing');
});

t.test('the poll reloads a changed file, and reports a bad change once', async (t) => {
  const l = await listen(t);
  l.reloader.start(50);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(logsOf(l, 'tls.reloaded').length + logsOf(l, 'tls.reload.unchanged').length, 0, 'unchanged files: nothing is reloaded');
  l.write('crl', revoking(alice));
  await until(() => logsOf(l, 'tls.reloaded').length === 1, 3000);
  t.match(logsOf(l, 'tls.reloaded'), [{ trigger: 'interval', changed: ['crl'] }]);
  await t.rejects(request(l.url('/healthz'), clientTls(alice)));
  l.write('crl', 'garbage');
  await until(() => logsOf(l, 'tls.reload.failed').length === 1, 3000);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(logsOf(l, 'tls.reload.failed').length, 1, 'one bad change, one error (not one per tick)');
  l.write('crl', revoking(alice, bob));
  await until(() => logsOf(l, 'tls.reloaded').length === 2, 3000);
  await t.rejects(request(l.url('/healthz'), clientTls(bob)), 'the fixed file is applied');
});

t.test('the web listener gets its new certificate too; a bad one keeps both listeners as they were', async (t) => {
  const root = tempDir(t);
  const file = (name: string, content: string) => {
    fs.writeFileSync(path.join(root, name), content);
    return path.join(root, name);
  };
  const paths = { ca: file('ca.crt', ca.certPem), cert: file('server.crt', server1.certPem), key: file('server.key', server1.keyPem) };
  const web = { cert: file('web.crt', server1.certPem), key: file('web.key', server1.keyPem) };
  const logger = createLogger('silent');
  const reloader = await TlsReloader.open({ paths, web, log: logger, crlWarningMs: DAY_MS });
  const mtls = https.createServer(reloader.serverOptions, (_req, res) => res.end('mtls'));
  const webServer = https.createServer(reloader.webServerOptions!, (_req, res) => res.end('web'));
  reloader.attach({ mtls, web: webServer });
  await Promise.all([mtls, webServer].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  t.teardown(() => {
    reloader.stop();
    mtls.close();
    webServer.close();
  });
  const served = (server: https.Server, cert?: CertificateAndKey) =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: ca.certPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) }, () => {
        resolve(s.getPeerX509Certificate()!.serialNumber);
        s.end();
      });
      s.on('error', reject);
    });
  t.equal(await served(webServer), serial(server1), 'no client certificate needed on the web listener');
  file('web.crt', server2.certPem);
  t.match(await reloader.reload('test'), { outcome: 'failed', error: /does not match the certificate/ }, 'web certificate without its key');
  t.equal(await served(webServer), serial(server1));
  file('web.key', server2.keyPem);
  t.same(await reloader.reload('test'), { outcome: 'applied', changed: ['webCert', 'webKey'], closed: 0 });
  t.equal(await served(webServer), serial(server2), 'the web listener serves the new certificate');
  t.equal(await served(mtls, bob), serial(server1), 'the mTLS listener keeps its own');
});

t.test('a CRL file with one CRL per CA; a CRL of an issuer outside tls.ca is kept with a warning', async (t) => {
  const otherCa = await createCa('intermediate not in tls.ca');
  const l = await listen(t);
  l.write('crl', revoking(bob) + createCrl(otherCa));
  t.same(await l.reloader.reload('test'), { outcome: 'applied', changed: ['crl'], closed: 0 });
  t.match(logsOf(l, 'tls.crl.unverified'), [{ level: 40, issuer: 'O=dicomvault, CN=intermediate not in tls.ca' }]);
  t.equal(l.reloader.material.crls.length, 2);
  t.equal((await exchange(l.port, bob)).status, undefined, 'the second block does not hide the first: bob is revoked');
  t.equal((await exchange(l.port, alice)).status, 200);
});

t.test('a CRL file without the CRL of a CA of tls.ca: its clients are refused, their connections closed', async (t) => {
  const otherCa = await createCa('some other CA');
  const l = await listen(t);
  const asBob = keepAliveClient(t, bob);
  const b1 = await asBob(l.url('/healthz'));
  t.equal(b1.status, 200);
  l.write('crl', createCrl(otherCa));
  t.match(await l.reloader.reload('test'), { outcome: 'applied', closed: 1 });
  await until(() => b1.socket.destroyed, 2000);
  t.match(logsOf(l, 'tls.connection.closed'), [{ reason: 'crl-missing' }]);
  t.match(logsOf(l, 'tls.crl.missing'), [{ level: 40, ca: 'O=dicomvault, CN=reload test CA' }]);
  t.equal((await exchange(l.port, bob)).status, undefined, 'OpenSSL refuses the new handshake too (UNABLE_TO_GET_CRL)');
  await until(() => l.logs.some((r) => r.msg === 'TLS handshake refused' && /UNABLE_TO_GET_CRL|unable to get certificate CRL/i.test(String(r.reason))), 2000);
});

t.test('configuration: the poll interval is 0 (off) or at least a second; both settings have defaults', async (t) => {
  const config = loadConfig({ env: {} });
  t.equal(config.tls.reloadIntervalMs, 60_000);
  t.equal(config.tls.crlWarningMs, DAY_MS);
  t.equal(loadConfig({ env: { DICOMVAULT_TLS_RELOAD_INTERVAL_MS: '0' } }).tls.reloadIntervalMs, 0);
  t.throws(() => loadConfig({ env: { DICOMVAULT_TLS_RELOAD_INTERVAL_MS: '50' } }), ConfigError);
  t.throws(() => loadConfig({ env: { DICOMVAULT_TLS_CRL_WARNING_MS: '-1' } }), ConfigError);
});

t.test('a large CRL (more ASN.1 nodes than the parser allows by default) is read, in a worker thread', async (t) => {
  const l = await listen(t);
  const many = Array.from({ length: 5000 }, (_, i) => ({ serialNumber: (0x100000 + i).toString(16) }));
  const pem = createCrl(ca, { revoked: [...many, { serialNumber: serial(alice) }], crlNumber: 9 });
  t.ok(pem.length > CRL_INLINE_MAX_BYTES, 'large enough for the worker');
  l.write('crl', pem);
  t.match(await l.reloader.reload('test'), { outcome: 'applied', changed: ['crl'] });
  t.equal(l.reloader.material.crls[0]?.revoked.size, 5001);
  t.equal((await exchange(l.port, alice)).status, undefined, 'alice, the last entry, is revoked');
  t.equal((await exchange(l.port, bob)).status, 200);
});

t.test('serial numbers compare as numbers, whoever spelled them', async (t) => {
  t.equal(normalizeSerial('0ABC'), 'abc', "Node's octet spelling");
  t.equal(normalizeSerial('00ff01'), 'ff01', "DER's sign octet");
  t.equal(normalizeSerial('0a:bc'), 'abc', "openssl's colons");
  t.equal(normalizeSerial('0'), '0');
  t.not(normalizeSerial('abc0'), normalizeSerial('abc'));
});

t.test('a large CRL that is not valid fails in the worker like a small one', async (t) => {
  const l = await listen(t);
  const many = Array.from({ length: 4000 }, (_, i) => ({ serialNumber: (0x100000 + i).toString(16) }));
  const forged = createCrl(impostorCa, { revoked: many });
  t.ok(forged.length > CRL_INLINE_MAX_BYTES);
  l.write('crl', forged);
  t.match(await l.reloader.reload('test'), { outcome: 'failed', error: /not signed by the CA of that name/ });
});
