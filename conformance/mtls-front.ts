// A small mutual-TLS front for a plain-HTTP DICOMweb server (Orthanc from Debian, whose own HTTPS crashes on
// Debian 12: INTEROP.md). It asks every client for a certificate from the given CA, refuses those without
// one, and forwards the DICOMweb paths (/dicom-web/..., and /wado for WADO-URI) to the target, streaming both
// bodies. `Forwarded: proto=https;host=...` (RFC 7239, which Orthanc honours) makes the URLs Orthanc writes
// into its answers (RetrieveURL, BulkDataURI) point at the front.
//
//   node --import tsx conformance/mtls-front.ts --target http://127.0.0.1:8142 --ca ca.crt --cert server.crt \
//     --key server.key [--port 0]        prints "listening on https://127.0.0.1:PORT"
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    port: { type: 'string', default: '0' },
    prefixes: { type: 'string', default: '/dicom-web,/wado' },
  },
});
if (!values.target || !values.ca || !values.cert || !values.key) {
  process.stderr.write('usage: mtls-front.ts --target http://HOST:PORT --ca F --cert F --key F [--port N] [--prefixes /a,/b]\n');
  process.exit(2);
}
const target = new URL(values.target);
const prefixes = values.prefixes!.split(',');
// Hop-by-hop headers (RFC 9110 7.6.1) stay on their own connection.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

const server = https.createServer(
  {
    ca: fs.readFileSync(values.ca),
    cert: fs.readFileSync(values.cert),
    key: fs.readFileSync(values.key),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  },
  (req, res) => {
    const socket = req.socket as TLSSocket;
    const path = req.url ?? '/';
    if (!socket.authorized) {
      res.writeHead(401).end();
      return;
    }
    if (!prefixes.some((p) => path === p || path.startsWith(`${p}/`) || path.startsWith(`${p}?`))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not forwarded\n');
      return;
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP.has(name) && value !== undefined) headers[name] = value;
    // RFC 7239 wants host:port quoted, but Orthanc 1.10 keeps the quotes in the URLs it writes: send it bare.
    headers.forwarded = `proto=https;host=${req.headers.host ?? ''}`;
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path, headers, agent }, (answer) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(answer.headers)) if (!HOP.has(name) && value !== undefined) out[name] = value;
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    upstream.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`upstream error: ${e.message}\n`);
    });
    req.pipe(upstream);
  },
);
server.listen(Number(values.port), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening on https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
