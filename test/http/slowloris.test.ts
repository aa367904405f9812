// SECURITY.md 8 case 18 on real TLS listeners and real sockets: headers trickled at 1 byte/s are cut at
// headersTimeout, a STOW body trickled at 1 byte/s is cut at requestTimeout with nothing stored or staged, one
// peer address gets at most server.maxConnectionsPerIp connections (others are unaffected), the listener's total
// cap refuses the rest, and afterwards the server still answers a QIDO promptly.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import t from 'tap';
import type { Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { openStorage } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { mtlsResolver } from '../../src/http/plugins/authenticate.js';
import { peerKey, throttledRefusalLog } from '../../src/http/connection-limits.js';
import { createLogger } from '../../src/logger.js';
import { ArchiveMetrics } from '../../src/ops/metrics.js';
import { PrincipalRegistry } from '../../src/security/principal-registry.js';
import { createCa, issueCertificate } from '../../src/security/pki.js';
import { buildTlsServerOptions } from '../../src/security/tls-options.js';
import { defaultPolicies } from '../helpers/access.js';
import { request } from '../helpers/https-client.js';
import { multipartBody } from '../helpers/multipart.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { testFile } from '../helpers/testdata.js';
import { until } from '../helpers/until.js';

const ca = await createCa('slowloris CA');
const serverCert = await issueCertificate(ca, { commonName: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, eku: 'serverAuth' });
const client = await issueCertificate(ca, { commonName: 'gateway', sans: { uri: ['urn:dicomvault:principal:gateway-1'] }, eku: 'clientAuth' });
const good = { ca: ca.certPem, cert: client.certPem, key: client.keyPem };
const principals = [{ id: 'gateway-1', match: { sanUri: 'urn:dicomvault:principal:gateway-1' }, roles: ['admin'] }];

interface Listener {
  host: string;
  port: number;
  base: string;
  dataDir: string;
  metrics: ArchiveMetrics;
  log: Record<string, unknown>[];
  counts(): Record<string, number>;
  /** Files under blobs/objects and blobs/staging. */
  blobFiles(): { objects: number; staging: number };
}

/** The real application on a real mutual-TLS listener on 127.0.0.1, with `env` settings. */
async function listen(t: Test, env: Record<string, string>): Promise<Listener> {
  const root = tempDir(t);
  const config = loadConfig({ env: { ...storageEnv(root), DICOMVAULT_PRINCIPALS: JSON.stringify(principals), ...env } });
  const log: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk, _e, cb) => { for (const l of String(chunk).split('\n').filter(Boolean)) log.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  const storage = await openStorage(config);
  const metrics = new ArchiveMetrics();
  const app = buildApp({
    config,
    ...storage,
    readInstance,
    logger: createLogger('info', sink),
    principalOf: mtlsResolver(new PrincipalRegistry(config)),
    policy: defaultPolicies(),
    metrics,
    https: buildTlsServerOptions({ ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    app.server.closeAllConnections();
    await app.close();
    await storage.close();
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const dataDir = config.storage.dataDir;
  const count = (dir: string): number =>
    fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length : 0;
  return {
    host: '127.0.0.1',
    port,
    base: `https://127.0.0.1:${port}/dicomweb`,
    dataDir,
    metrics,
    log,
    counts: () => storage.index.counts(),
    blobFiles: () => ({ objects: count(path.join(dataDir, 'blobs', 'objects')), staging: count(path.join(dataDir, 'blobs', 'staging')) }),
  };
}

interface Conn {
  socket: tls.TLSSocket;
  /** Everything the server sent. */
  received(): string;
  /** Resolves when the socket has closed, with the ms since it was opened. */
  closed: Promise<number>;
}

/** A mutual-TLS connection from `localAddress` (a 127.0.0.0/8 address); resolves once the handshake is done. */
function connect(l: Listener, localAddress = '127.0.0.1'): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const opened = Date.now();
    // The TCP connection first: tls.connect's types do not take localAddress.
    const tcp = net.connect({ host: l.host, port: l.port, localAddress });
    tcp.once('error', reject);
    const socket = tls.connect({ socket: tcp, servername: 'localhost', ...good });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - opened)));
    socket.once('secureConnect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

/** A connection the server refuses: the handshake never completes. */
function refused(l: Listener, localAddress = '127.0.0.1'): Promise<string> {
  return connect(l, localAddress).then(
    (c) => {
      c.socket.destroy();
      throw new Error('the connection was admitted');
    },
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
}

/** One request on an open connection, read to the end of its response (Content-Length bodies only). */
function get(c: Conn, target: string): Promise<string> {
  const before = c.received().length;
  c.socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nAccept: application/dicom+json\r\n\r\n`);
  return until(() => {
    const text = c.received().slice(before);
    const head = /\r\n\r\n/.exec(text);
    if (!head) return false;
    const length = /content-length: (\d+)/i.exec(text.slice(0, head.index));
    return length ? text.length - head.index - 4 >= Number(length[1]) : true;
  }, 5000).then(() => c.received().slice(before));
}

/**
 * Writes `bytes` one byte per `everyMs`, the first at once, until the socket closes (or the bytes run out).
 * `closedAfter`: ms from the first byte to the close.
 */
function trickle(c: Conn, bytes: Buffer, everyMs: number): { sent(): number; closedAfter: Promise<number> } {
  let i = 0;
  const first = Date.now();
  const write = () => {
    if (c.socket.destroyed || i >= bytes.length) {
      clearInterval(timer);
      return;
    }
    c.socket.write(bytes.subarray(i, i + 1));
    i += 1;
  };
  const timer = setInterval(write, everyMs);
  write();
  const closedAfter = new Promise<number>((r) => c.socket.once('close', () => r(Date.now() - first)));
  void closedAfter.then(() => clearInterval(timer));
  return { sent: () => i, closedAfter };
}

const openCount = async (m: ArchiveMetrics): Promise<number> =>
  (await m.connectionsOpen.get()).values.find((v) => v.labels.listener === 'mtls')?.value ?? 0;

const refusedCount = async (m: ArchiveMetrics, reason: string): Promise<number> =>
  (await m.connectionsRefused.get()).values.find((v) => v.labels.listener === 'mtls' && v.labels.reason === reason)?.value ?? 0;

t.test('slowloris: timeouts end trickled headers and bodies, nothing kept', async (t) => {
  const HEADERS_MS = 1500;
  const REQUEST_MS = 4000;
  const l = await listen(t, {
    DICOMVAULT_SERVER_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
    DICOMVAULT_SERVER_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
  });

  t.test('headers at 1 byte/s are cut off at headersTimeout with a 408', async (t) => {
    const c = await connect(l);
    const sending = trickle(c, Buffer.from('GET /dicomweb/studies HTTP/1.1\r\nHost: localhost\r\n\r\n'), 1000);
    // Node counts headersTimeout from the request's first byte. connectionsCheckingInterval is derived from
    // headersTimeout (app.ts): at most 750 ms late here, plus slack for a busy machine.
    const after = await sending.closedAfter;
    t.ok(after >= HEADERS_MS - 100 && after < HEADERS_MS + 2000, `closed ${after} ms after the first byte`);
    t.ok(sending.sent() <= 4, `${sending.sent()} header bytes sent before the close`);
    t.match(c.received(), /^HTTP\/1\.1 408 /, '408 Request Timeout');
  });

  t.test('a connection that sends nothing is closed too', async (t) => {
    const c = await connect(l);
    const after = await c.closed;
    t.ok(after >= HEADERS_MS - 100 && after < HEADERS_MS + 2000, `closed after ${after} ms`);
    t.match(c.received(), /^HTTP\/1\.1 408 /);
  });

  t.test('a STOW body at 1 byte/s is cut off at requestTimeout: nothing stored, no staged file left', async (t) => {
    const file = testFile('broken/valid-reference.dcm');
    const { contentType, body } = multipartBody([file]);
    const c = await connect(l);
    const head = `POST /dicomweb/studies HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\nAccept: application/dicom+json\r\n\r\n`;
    // Headers and the first KiB of the part at once (the part is being staged), then one byte a second.
    c.socket.write(Buffer.concat([Buffer.from(head), body.subarray(0, 1024)]));
    await until(() => l.blobFiles().staging > 0, 3000).then(
      () => t.pass('the part is being staged'),
      () => t.comment('no staged file seen while the body arrived (staging may be lazy)'),
    );
    const sending = trickle(c, body.subarray(1024), 1000);
    const after = await c.closed;
    t.ok(after >= REQUEST_MS - 100 && after < REQUEST_MS + 2000, `closed ${after} ms after the connection opened`);
    t.ok(sending.sent() < body.length - 1024, 'the body was not finished');
    t.match(c.received(), /^HTTP\/1\.1 408 /, '408 Request Timeout, no success answer');
    await until(() => l.blobFiles().staging === 0, 5000);
    t.same(l.blobFiles(), { objects: 0, staging: 0 }, 'no blob, no staged file');
    t.same(l.counts(), { patients: 0, studies: 0, series: 0, instances: 0 }, 'nothing in the index');
  });

  t.test('the server still answers a QIDO promptly', async (t) => {
    const started = Date.now();
    const r = await request(`${l.base}/studies`, good);
    t.equal(r.status, 204);
    t.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
  });
});

t.test('per-IP connection cap', async (t) => {
  const CAP = 4;
  const l = await listen(t, {
    DICOMVAULT_SERVER_MAX_CONNECTIONS_PER_IP: String(CAP),
    DICOMVAULT_SERVER_TRUSTED_PROXIES: '127.0.0.3',
  });
  const held = await Promise.all(Array.from({ length: CAP }, () => connect(l)));
  t.teardown(() => held.forEach((c) => c.socket.destroy()));

  t.test(`connection ${CAP + 1} from the same address is refused before the handshake`, async (t) => {
    const code = await refused(l);
    t.ok(code.length > 0, `refused: ${code}`);
    t.equal(await refusedCount(l.metrics, 'per_ip'), 1, 'counted in dicomvault_connections_refused_total{reason="per_ip"}');
    await until(() => l.log.some((r) => r.msg === 'connection refused: over the connection cap'));
    const line = l.log.find((r) => r.msg === 'connection refused: over the connection cap')!;
    t.match(line, { level: 40, listener: 'mtls', reason: 'per_ip', remoteAddress: '127.0.0.1', refusedSinceLastLine: 1 }, 'logged with the address');
    t.notOk(l.log.some((r) => r.msg === 'TLS handshake refused'), 'not reported (nor audited) as a refused handshake');
    const text = (await l.metrics.exposition()).body;
    t.match(text, /dicomvault_connections_refused_total\{listener="mtls",reason="per_ip"\} 1/);
    t.match(text, new RegExp(`dicomvault_connections_open\\{listener="mtls"\\} ${CAP}`));
  });

  t.test('the connections already open still work', async (t) => {
    for (const c of held) t.match(await get(c, '/dicomweb/studies'), /^HTTP\/1\.1 204 /);
  });

  t.test('another address is not affected', async (t) => {
    const other = await connect(l, '127.0.0.2');
    t.match(await get(other, '/dicomweb/studies'), /^HTTP\/1\.1 204 /);
    other.socket.destroy();
  });

  t.test('a trusted proxy is exempt from the per-IP cap', async (t) => {
    const proxied = await Promise.all(Array.from({ length: CAP + 2 }, () => connect(l, '127.0.0.3')));
    t.equal(proxied.length, CAP + 2);
    t.match(await get(proxied[CAP + 1]!, '/dicomweb/studies'), /^HTTP\/1\.1 204 /);
    for (const c of proxied) c.socket.destroy();
  });

  t.test('a closed connection frees its place', async (t) => {
    held.pop()!.socket.destroy();
    // The server sees the close a moment later.
    for (let i = 0; (await openCount(l.metrics)) !== CAP - 1; i++) {
      if (i > 500) throw new Error('the server never saw the close');
      await new Promise((r) => setTimeout(r, 10));
    }
    const admitted = await connect(l);
    t.match(await get(admitted, '/dicomweb/studies'), /^HTTP\/1\.1 204 /);
    held.push(admitted);
    t.not(await refused(l), '', `and connection ${CAP + 1} is refused again`);
    t.equal(await refusedCount(l.metrics, 'per_ip'), 2);
  });

  t.test('the server still answers a QIDO promptly from another address', async (t) => {
    const c = await connect(l, '127.0.0.2');
    const started = Date.now();
    t.match(await get(c, '/dicomweb/studies'), /^HTTP\/1\.1 204 /);
    t.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
    c.socket.destroy();
  });
});

t.test('total connection cap (server.maxConnections): the rest are dropped and counted', async (t) => {
  const l = await listen(t, { DICOMVAULT_SERVER_MAX_CONNECTIONS: '2' });
  const held = await Promise.all([connect(l, '127.0.0.4'), connect(l, '127.0.0.5')]);
  t.teardown(() => held.forEach((c) => c.socket.destroy()));
  t.not(await refused(l, '127.0.0.6'), '');
  t.equal(await refusedCount(l.metrics, 'total'), 1, 'counted in dicomvault_connections_refused_total{reason="total"}');
  t.match(await get(held[0]!, '/dicomweb/studies'), /^HTTP\/1\.1 204 /, 'the open ones still work');
});

t.test('peer keys and the throttled refusal log', async (t) => {
  t.equal(peerKey('::ffff:10.1.2.3'), '10.1.2.3', 'an IPv4-mapped peer is its IPv4 address');
  t.equal(peerKey('2001:DB8::1'), '2001:db8::1');
  let clock = 0;
  const lines: unknown[] = [];
  const log = throttledRefusalLog((f) => lines.push(f), 10_000, () => clock);
  log('per_ip', '10.0.0.1');
  log('per_ip', '10.0.0.1');
  log('per_ip', '10.0.0.2');
  log('total', '10.0.0.3');
  clock = 10_000;
  log('per_ip', '10.0.0.1');
  t.same(lines, [
    { reason: 'per_ip', remoteAddress: '10.0.0.1', refusedSinceLastLine: 1 },
    { reason: 'total', remoteAddress: '10.0.0.3', refusedSinceLastLine: 1 },
    { reason: 'per_ip', remoteAddress: '10.0.0.1', refusedSinceLastLine: 3 },
  ]);
});
