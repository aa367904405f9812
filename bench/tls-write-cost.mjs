// What a bare Node https server (our TLS options, mutual TLS) pays in CPU to send one 512 KiB answer, by the way
// the bytes are handed to the socket: a file stream (64 KiB chunks), a Readable.from generator of 64 KiB pieces
// (what the multipart writer did), several writes corked into one, or one Buffer (as is, or as a one-chunk
// stream); and by TLS 1.3 suite.
// No dicomvault code on the path but dist/security/tls-options.js (npm run build first).
//
//   node bench/tls-write-cost.mjs CERTS_DIR [--requests 300] [--rounds 3] [--size 524288]
//
// The server runs in a child process and reports its own process.cpuUsage(); the client (this process) runs
// the modes one after the other, alternating, each round. Prints server CPU ms per request and per MB.

import { fork } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' }, size: { type: 'string', default: String(512 * 1024) }, serve: { type: 'boolean', default: false } },
});
const certs = positionals[0];
if (!certs) throw new Error('usage: tls-write-cost.mjs CERTS_DIR');
const read = (f) => fs.readFileSync(path.join(certs, f));
const size = Number(values.size);
const CHUNK = 64 * 1024;

if (values.serve) {
  const { buildTlsServerOptions } = await import('../dist/security/tls-options.js');
  const blobFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tlsw-')), 'blob');
  const data = Buffer.alloc(size, 7);
  fs.writeFileSync(blobFile, data);
  const head = Buffer.from('--b\r\nContent-Type: application/octet-stream\r\n\r\n');
  const tail = Buffer.from('\r\n--b--\r\n');
  const modes = {
    stream: (res) => {
      res.write(head);
      const file = fs.createReadStream(blobFile, { highWaterMark: CHUNK });
      file.on('end', () => res.end(tail));
      file.pipe(res, { end: false });
    },
    generator: (res) =>
      Readable.from(
        (async function* () {
          yield head;
          for (let at = 0; at < size; at += CHUNK) yield data.subarray(at, at + CHUNK);
          yield tail;
        })(),
        { objectMode: false },
      ).pipe(res),
    corked: (res) => {
      res.cork();
      res.write(head);
      for (let at = 0; at < size; at += CHUNK) res.write(data.subarray(at, at + CHUNK));
      res.end(tail);
      res.uncork();
    },
    'one-buffer': (res) => res.end(Buffer.concat([head, data, tail])),
    // The same Buffer as a one-chunk stream (Readable.from([buffer])): measured ~3x one-buffer's CPU through Fastify.
    'one-buffer-stream': (res) => Readable.from([Buffer.concat([head, data, tail])], { objectMode: false }).pipe(res),
  };
  const server = https.createServer(buildTlsServerOptions({ ca: read('ca.crt'), cert: read('server.crt'), key: read('server.key') }), (req, res) => {
    if (req.url === '/cpu') {
      const u = process.cpuUsage();
      res.end(JSON.stringify({ ms: (u.user + u.system) / 1000 }));
      return;
    }
    const mode = modes[req.url.slice(1)];
    res.setHeader('content-type', 'multipart/related; boundary=b');
    res.setHeader('content-length', String(head.length + size + tail.length));
    mode(res);
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
  process.on('disconnect', () => process.exit(0)); // the client went away (killed, or done)
} else {
  const child = fork(new URL(import.meta.url).pathname, [certs, '--serve', '--size', String(size)]);
  const port = await new Promise((resolve) => child.once('message', resolve));
  const agents = {
    'server-choice': new https.Agent({ keepAlive: true, maxSockets: 1 }),
    aes128: new https.Agent({ keepAlive: true, maxSockets: 1, ciphers: 'TLS_AES_128_GCM_SHA256' }),
    aes256: new https.Agent({ keepAlive: true, maxSockets: 1, ciphers: 'TLS_AES_256_GCM_SHA384' }),
  };
  const get = (agent, url) =>
    new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: url, agent, ca: read('ca.crt'), cert: read('client.crt'), key: read('client.key'), servername: 'localhost' }, (res) => {
        const chunks = [];
        const cipher = res.socket.getCipher().name;
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ body: Buffer.concat(chunks), cipher }));
      });
      req.on('error', reject);
    });
  const serverMs = async () => JSON.parse((await get(agents['server-choice'], '/cpu')).body).ms;
  const requests = Number(values.requests);
  const results = {};
  for (const [name, agent] of Object.entries(agents)) console.log(name, 'negotiates', (await get(agent, '/one-buffer')).cipher);
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const agentName of Object.keys(agents)) {
      for (const mode of ['stream', 'generator', 'corked', 'one-buffer', 'one-buffer-stream']) {
        const agent = agents[agentName];
        await get(agent, `/${mode}`);
        const before = await serverMs();
        for (let i = 0; i < requests; i++) await get(agent, `/${mode}`);
        const ms = ((await serverMs()) - before) / requests;
        (results[`${agentName} ${mode}`] ??= []).push(ms);
      }
    }
  }
  console.log(`server CPU per ${size}-byte answer (c=1, ${requests} requests x ${values.rounds} rounds; median of rounds):`);
  for (const [k, v] of Object.entries(results)) {
    const med = [...v].sort((a, b) => a - b)[v.length >> 1];
    console.log(`${k.padEnd(28)} ${med.toFixed(3)} ms/req  ${((med * 1e6) / size).toFixed(2)} ms/MB   rounds ${v.map((x) => x.toFixed(2)).join(' ')}`);
  }
  for (const a of Object.values(agents)) a.destroy();
  child.kill();
}
