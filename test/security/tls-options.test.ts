// Real handshakes against node:tls with buildTlsServerOptions: what the listener accepts and why
// it refuses the rest. With TLS 1.3 the client finishes its side of the handshake before the
// server has checked the client certificate, so a refusal is asserted on both sides: the server
// never emits 'secureConnection' (no request is ever read) and reports the OpenSSL reason.

import { X509Certificate, constants } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { type CertificateAndKey, createCa, createCrl, issueCertificate } from '../../src/security/pki.js';
import { certificateIdentity } from '../../src/security/principal.js';
import {
  ECDH_CURVES,
  TLS12_CIPHERS,
  TLS13_CIPHERSUITES,
  TLS_SESSION_TIMEOUT_SECONDS,
  buildTlsServerOptions,
} from '../../src/security/tls-options.js';

const DAY_MS = 86_400_000;

// --- PKI for the whole file ----------------------------------------------------------------------

const ca = await createCa('tls test CA');
const foreignCa = await createCa('foreign CA');
const [serverCert, good, expired, serverAuthOnly, foreign, revoked] = await Promise.all([
  issueCertificate(ca, { commonName: 'localhost', eku: 'serverAuth', sans: { dns: ['localhost'], ip: ['127.0.0.1'] } }),
  issueCertificate(ca, { commonName: 'good', eku: 'clientAuth', sans: { uri: ['urn:dicomvault:principal:good'] } }),
  issueCertificate(ca, {
    commonName: 'expired',
    eku: 'clientAuth',
    sans: { uri: ['urn:dicomvault:principal:expired'] },
    notBefore: new Date(Date.now() - 30 * DAY_MS),
    notAfter: new Date(Date.now() - DAY_MS),
  }),
  issueCertificate(ca, { commonName: 'server-only', eku: 'serverAuth', sans: { uri: ['urn:dicomvault:principal:server-only'] } }),
  issueCertificate(foreignCa, { commonName: 'intruder', eku: 'clientAuth', sans: { uri: ['urn:dicomvault:principal:good'] } }),
  issueCertificate(ca, { commonName: 'revoked', eku: 'clientAuth', sans: { uri: ['urn:dicomvault:principal:revoked'] } }),
]);

// --- harness -------------------------------------------------------------------------------------

type ServerOutcome =
  | { accepted: true }
  | { accepted: false; code: string | undefined; authorizationError: string | null };

interface ClientOutcome {
  /** Set when the client saw an error (alert or reset). */
  errorCode?: string;
  /** What the server wrote after 'secureConnection' (a JSON summary), '' if nothing. */
  data: string;
}

interface Listener {
  port: number;
  connect(options: tls.ConnectionOptions): Promise<{ server: ServerOutcome; client: ClientOutcome }>;
}

async function listen(t: Test, extra: { crl?: string } = {}): Promise<Listener> {
  const server = tls.createServer(
    buildTlsServerOptions({ ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem, crl: extra.crl }),
    (socket) => {
      const peer = socket.getPeerX509Certificate();
      const principal = peer === undefined ? undefined : certificateIdentity(peer);
      socket.end(JSON.stringify({ authorized: socket.authorized, protocol: socket.getProtocol(), cipher: socket.getCipher().name, principal }));
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    async connect(options) {
      const serverOutcome = new Promise<ServerOutcome>((resolve) => {
        const onSecure = () => {
          cleanup();
          resolve({ accepted: true });
        };
        const onError = (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
          cleanup();
          // Chain and EKU failures: Node destroys the socket after the handshake and leaves the
          // OpenSSL verify result in authorizationError; protocol failures carry it in err.code.
          resolve({ accepted: false, code: err.code, authorizationError: (socket.authorizationError as unknown as string | undefined) ?? null });
        };
        const cleanup = () => {
          server.off('secureConnection', onSecure);
          server.off('tlsClientError', onError);
        };
        server.on('secureConnection', onSecure);
        server.on('tlsClientError', onError);
      });
      const clientOutcome = new Promise<ClientOutcome>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.certPem, ...options });
        let data = '';
        let errorCode: string | undefined;
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (data += chunk));
        socket.on('error', (err: NodeJS.ErrnoException) => (errorCode = err.code ?? 'UNKNOWN'));
        socket.on('close', () => resolve(errorCode === undefined ? { data } : { errorCode, data }));
      });
      const [serverResult, client] = await Promise.all([serverOutcome, clientOutcome]);
      return { server: serverResult, client };
    },
  };
}

const withCert = (pair: CertificateAndKey): tls.ConnectionOptions => ({ cert: pair.certPem, key: pair.keyPem });

// --- option values -------------------------------------------------------------------------------

t.test('buildTlsServerOptions: SP 800-52r2 settings and mandatory client certificates', async (t) => {
  const options = buildTlsServerOptions({ ca: 'CA', cert: 'CERT', key: 'KEY' });
  t.match(options, {
    ca: 'CA',
    cert: 'CERT',
    key: 'KEY',
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers:
      'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
    ecdhCurve: 'X25519:P-256:P-384',
    honorCipherOrder: true,
    requestCert: true,
    rejectUnauthorized: true,
    sessionTimeout: 300,
  });
  t.equal(ECDH_CURVES, options.ecdhCurve);
  t.equal(TLS_SESSION_TIMEOUT_SECONDS, 300);
  t.equal((options.secureOptions ?? 0) & constants.SSL_OP_NO_RENEGOTIATION, constants.SSL_OP_NO_RENEGOTIATION);
  t.notOk('ticketKeys' in options, 'no fixed ticket keys (SECURITY.md 7)');
  t.notOk('crl' in options, 'no CRL unless given');
  t.equal(buildTlsServerOptions({ ca: 'CA', cert: 'CERT', key: 'KEY', crl: 'CRL' }).crl, 'CRL');

  const known = new Set(tls.getCiphers().map((c) => c.toUpperCase()));
  for (const suite of [...TLS12_CIPHERS, ...TLS13_CIPHERSUITES]) t.ok(known.has(suite), `${suite} is known to this OpenSSL`);
});

// --- handshakes ----------------------------------------------------------------------------------

t.test('handshakes against the default listener', async (t) => {
  const listener = await listen(t);

  t.test('a client certificate from the CA is authorized and becomes a principal (TLS 1.3)', async (t) => {
    const { server, client } = await listener.connect(withCert(good));
    t.same(server, { accepted: true });
    t.equal(client.errorCode, undefined);
    const summary = JSON.parse(client.data);
    t.match(summary, { authorized: true, protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' });
    t.match(summary.principal, {
      id: 'urn:dicomvault:principal:good',
      subject: 'O=dicomvault\nCN=good',
      issuer: 'O=dicomvault\nCN=tls test CA',
      fingerprint256: new X509Certificate(good.certPem).fingerprint256.replaceAll(':', '').toLowerCase(),
    });
  });

  t.test('TLS 1.2: the server picks its own first suite (honorCipherOrder)', async (t) => {
    const { server, client } = await listener.connect({
      ...withCert(good),
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256',
    });
    t.same(server, { accepted: true });
    t.match(JSON.parse(client.data), { authorized: true, protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' });
  });

  t.test('no client certificate: handshake fails with certificate_required', async (t) => {
    const { server, client } = await listener.connect({});
    t.same(server, { accepted: false, code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', authorizationError: null });
    t.equal(client.errorCode, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    t.equal(client.data, '');
  });

  t.test('no client certificate over TLS 1.2: handshake_failure', async (t) => {
    const { server, client } = await listener.connect({ maxVersion: 'TLSv1.2' });
    t.same(server, { accepted: false, code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', authorizationError: null });
    t.equal(client.errorCode, 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
  });

  t.test('a certificate from a foreign CA is refused, even naming a known principal', async (t) => {
    const { server, client } = await listener.connect(withCert(foreign));
    t.match(server, { accepted: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    t.equal(client.data, '');
  });

  t.test('an expired certificate is refused', async (t) => {
    const { server, client } = await listener.connect(withCert(expired));
    t.match(server, { accepted: false, authorizationError: 'CERT_HAS_EXPIRED' });
    t.equal(client.data, '');
  });

  t.test('a serverAuth-only certificate is refused as a client (unsupported certificate purpose)', async (t) => {
    const { server, client } = await listener.connect(withCert(serverAuthOnly));
    t.match(server, { accepted: false, authorizationError: 'INVALID_PURPOSE' });
    t.equal(client.data, '');
  });

  t.test('a TLS 1.1 client is refused with protocol_version', async (t) => {
    const { server, client } = await listener.connect({
      ...withCert(good),
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      // Let this client offer TLS 1.1 at all (OpenSSL 3 refuses it at the default security level),
      // so the refusal asserted below is the server's.
      ciphers: 'DEFAULT:@SECLEVEL=0',
    });
    t.same(server, { accepted: false, code: 'ERR_SSL_UNSUPPORTED_PROTOCOL', authorizationError: null });
    t.equal(client.errorCode, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  t.test('suites outside SP 800-52r2 are not negotiated', async (t) => {
    for (const offer of [
      { ciphers: 'TLS_CHACHA20_POLY1305_SHA256' },
      { maxVersion: 'TLSv1.2' as const, ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' },
      { maxVersion: 'TLSv1.2' as const, ciphers: 'ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA' },
      { maxVersion: 'TLSv1.2' as const, ciphers: 'AES128-GCM-SHA256' },
    ]) {
      const { server, client } = await listener.connect({ ...withCert(good), ...offer });
      t.same(server, { accepted: false, code: 'ERR_SSL_NO_SHARED_CIPHER', authorizationError: null }, offer.ciphers);
      t.equal(client.errorCode, 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', offer.ciphers);
    }
  });

  t.test('key exchange groups are limited to X25519, P-256 and P-384', async (t) => {
    const refused = await listener.connect({ ...withCert(good), ecdhCurve: 'P-521' });
    t.same(refused.server, { accepted: false, code: 'ERR_SSL_NO_SUITABLE_KEY_SHARE', authorizationError: null });
    const accepted = await listener.connect({ ...withCert(good), ecdhCurve: 'P-384' });
    t.same(accepted.server, { accepted: true });
  });

});

t.test('TLS 1.2 renegotiation is refused (SSL_OP_NO_RENEGOTIATION)', async (t) => {
  // Its own listener: the connection has to stay open for the client to ask for a renegotiation.
  const server = tls.createServer(buildTlsServerOptions({ ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem }), (socket) => {
    socket.on('error', () => {});
    socket.on('data', (chunk) => socket.write(chunk));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = tls.connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    servername: 'localhost',
    ca: ca.certPem,
    ...withCert(good),
    maxVersion: 'TLSv1.2',
  });
  t.teardown(() => {
    socket.destroy();
    server.close();
  });
  await once(socket, 'secureConnect');
  const failed = once(socket, 'error');
  t.equal(socket.renegotiate({}, () => {}), true, 'the client sends a renegotiation request');
  socket.write('ping'); // the server's no_renegotiation alert arrives with the next read
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no error within 5 s')), 5000).unref());
  const [err] = (await Promise.race([failed, timeout])) as [NodeJS.ErrnoException];
  t.equal(err.code, 'EPROTO');
  t.match(err.message, /no renegotiation/);
});

t.test('handshakes against a listener with a CRL', async (t) => {
  const revokedSerial = new X509Certificate(revoked.certPem).serialNumber;

  t.test('a revoked certificate is refused, others pass', async (t) => {
    const listener = await listen(t, { crl: createCrl(ca, { revoked: [{ serialNumber: revokedSerial }] }) });
    const refused = await listener.connect(withCert(revoked));
    t.match(refused.server, { accepted: false, authorizationError: 'CERT_REVOKED' });
    t.equal(refused.client.data, '');
    const accepted = await listener.connect(withCert(good));
    t.same(accepted.server, { accepted: true });
    t.match(JSON.parse(accepted.client.data), { authorized: true });
  });

  t.test('an expired CRL locks every client out (fail closed)', async (t) => {
    const stale = createCrl(ca, { thisUpdate: new Date(Date.now() - 10 * DAY_MS), nextUpdate: new Date(Date.now() - DAY_MS) });
    const listener = await listen(t, { crl: stale });
    const { server, client } = await listener.connect(withCert(good));
    t.match(server, { accepted: false, authorizationError: 'CRL_HAS_EXPIRED' });
    t.equal(client.data, '');
  });
});
