// SIGHUP on a real `dicomvault serve` process reloads the TLS material (server.ts -> security/tls-reload.ts): a CRL
// written after the start revokes the development client, whose open keep-alive connection is then closed and whose
// next handshake fails. The reload is in the log and in the audit trail; the process still stops cleanly.
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';
import t from 'tap';
import { createCrl, createDevPki } from '../../src/security/pki.js';
import { auditRecordsOf, startServer } from '../e2e/cli-process.js';
import { request } from '../helpers/https-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

t.test('SIGHUP reloads the CRL and closes the revoked client', async (t) => {
  const cwd = tempDir(t);
  const dev = await createDevPki(path.join(cwd, 'certs/dev'));
  const ca = { certPem: fs.readFileSync(dev.caCert, 'utf8'), keyPem: fs.readFileSync(dev.caKey, 'utf8') };
  const crlFile = path.join(cwd, 'crl.pem');
  fs.writeFileSync(crlFile, createCrl(ca));
  const server = await startServer(t, cwd, {
    DICOMVAULT_TLS_CRL: crlFile,
    // SIGHUP only: the poll must not be what reloads it here.
    DICOMVAULT_TLS_RELOAD_INTERVAL_MS: '0',
    DICOMVAULT_SERVER_KEEP_ALIVE_TIMEOUT_MS: '60000',
  });
  const root = server.base.replace(/\/dicomweb$/, '');
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...server.tls });
  t.teardown(() => agent.destroy());
  const get = () =>
    new Promise<{ status: number; socket: tls.TLSSocket }>((resolve, reject) => {
      const req = https.get(`${root}/healthz`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket as tls.TLSSocket }));
      });
      req.on('error', reject);
    });
  const first = await get();
  t.equal(first.status, 200);

  const serial = new X509Certificate(server.tls.cert).serialNumber;
  fs.writeFileSync(crlFile, createCrl(ca, { revoked: [{ serialNumber: serial }], crlNumber: 2 }));
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(first.socket.destroyed, 'nothing happens before the signal (no poll)');
  process.kill(server.pid, 'SIGHUP');
  await until(() => first.socket.destroyed, 10_000);
  t.ok(first.socket.destroyed, 'the open connection of the revoked certificate is closed');
  await t.rejects(request(`${root}/healthz`, server.tls), 'its new handshake fails');

  const lines = server
    .output()
    .stdout.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(lines.find((l) => l.event === 'tls.reloaded'), { trigger: 'SIGHUP', changed: ['crl'] });
  t.match(lines.find((l) => l.event === 'tls.connection.closed'), { reason: 'revoked' });

  t.equal(await server.stop(), 0, 'SIGTERM: graceful exit 0');
  const records = (await auditRecordsOf(cwd)).map((r) => JSON.stringify(r));
  t.ok(records.some((r) => r.includes('TLS material reloaded (SIGHUP): crl changed') && r.includes('110129')), 'the reload is audited');
});
