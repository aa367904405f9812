#!/usr/bin/env node
// What one STOW-RS instance costs at this machine's limits, without the server: the primitives a stored
// instance pays once each, measured on a buffer of the instance's size.
//
//   node bench/stow-limits.mjs [--kib 512] [--dir /tmp] [--certs DIR] [--tls-mib 256] [--fsyncs 200]
//
// - sha256, aes-256-gcm: MiB per CPU second on one core (256 KiB segments, one cipher per segment, as the blob
//   store does) and the milliseconds of CPU that makes per instance;
// - tls: loopback TLS 1.3 receive (what the server does with a STOW body): a child process accepts one mutual-TLS
//   connection with the PKI of --certs (default: a fresh `dicomvault certs init`, needs `npm run build`) and
//   discards what it reads; MiB/s, and the receiver's CPU ms per MiB from /proc (sender and receiver share
//   the 2 cores, as the harness's client and the server do);
// - fsync: on --dir's filesystem, the latency of what the write path does: write an instance-sized file +
//   fsync, fsync of its directory after a rename, a small append + fdatasync (an index WAL commit); p50 / p95 ms;
//   then the same file fsyncs issued 1, 4 and 16 at a time: how many the disk completes per second (whether
//   concurrent fsyncs are absorbed, i.e. whether grouping them pays).
//
// Prints a JSON summary. Run nothing else heavy meanwhile (2-core machine: expect 10-30 % spread).

import { execFileSync, fork } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    kib: { type: 'string', default: '512' },
    dir: { type: 'string', default: os.tmpdir() },
    certs: { type: 'string' },
    'tls-mib': { type: 'string', default: '256' },
    fsyncs: { type: 'string', default: '200' },
    'tls-receiver': { type: 'string' }, // internal: the child process's role
  },
});
const MiB = 1024 * 1024;
const SEGMENT = 256 * 1024;
const now = () => performance.now();
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

if (opt['tls-receiver']) await tlsReceiver(opt['tls-receiver']);
else await main();

async function main() {
  const instance = randomBytes(Number(opt.kib) * 1024);
  const out = { instanceKiB: Number(opt.kib) };
  out.sha256 = cpuRate(instance, (buf) => createHash('sha256').update(buf).digest());
  const key = randomBytes(32);
  const iv = Buffer.alloc(12);
  out.aes256gcm = cpuRate(instance, (buf) => {
    for (let off = 0, i = 0; off < buf.length; off += SEGMENT, i++) {
      iv.writeUInt32BE(i, 7);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.update(buf.subarray(off, off + SEGMENT));
      c.final();
      c.getAuthTag();
    }
  });
  out.tls = await tlsReceive(instance.length);
  out.fsync = await fsyncLatency(instance);
  console.log(JSON.stringify(out, null, 2));
}

/**
 * MiB per CPU second of `fn` over `buf` (run for about a second), and the CPU ms it costs per instance-sized buffer.
 * CPU time, not wall time: on a shared machine other processes take the core away, not cycles from the work.
 */
function cpuRate(buf, fn) {
  for (let i = 0; i < 20; i++) fn(buf); // warm up
  let n = 0;
  const t0 = now();
  const cpu0 = process.cpuUsage();
  while (now() - t0 < 1000) {
    fn(buf);
    n++;
  }
  const cpu = process.cpuUsage(cpu0);
  const ms = (cpu.user + cpu.system) / 1000;
  return { MiBs: round((n * buf.length) / MiB / (ms / 1000), 0), msPerInstance: round(ms / n, 3) };
}

function certsDir() {
  if (opt.certs) return opt.certs;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dv-limits-pki-'));
  const cli = fileURLToPath(new URL('../dist/cli/dicomvault.js', import.meta.url));
  execFileSync(process.execPath, [cli, 'certs', 'init', '--dir', dir, '--force'], { stdio: 'ignore' });
  return dir;
}

/** User + system CPU of a process, ms (/proc/PID/stat utime + stime, clock ticks of 10 ms). */
function cpuMs(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function tlsReceive(instanceBytes) {
  const certs = certsDir();
  const child = fork(fileURLToPath(import.meta.url), ['--tls-receiver', certs], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
  const read = (f) => fs.readFileSync(path.join(certs, f));
  const socket = tls.connect({ host: '127.0.0.1', port, ca: read('ca.crt'), cert: read('client.crt'), key: read('client.key'), servername: 'localhost' });
  await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const protocol = socket.getProtocol();
  const cipher = socket.getCipher().name;
  const total = Number(opt['tls-mib']) * MiB;
  const chunk = randomBytes(64 * 1024);
  const cpu0 = cpuMs(child.pid);
  const t0 = now();
  const done = new Promise((resolve) => child.once('message', resolve));
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  socket.end();
  const { received } = await done;
  const ms = now() - t0;
  const receiverMs = cpuMs(child.pid) - cpu0;
  child.kill();
  return {
    protocol,
    cipher,
    MiBs: round(received / MiB / (ms / 1000), 0),
    receiverCpuMsPerMiB: round(receiverMs / (received / MiB), 3),
    receiverCpuMsPerInstance: round((receiverMs / received) * instanceBytes, 3),
  };
}

async function tlsReceiver(certs) {
  const read = (f) => fs.readFileSync(path.join(certs, f));
  const server = tls.createServer({ ca: read('ca.crt'), cert: read('server.crt'), key: read('server.key'), requestCert: true, rejectUnauthorized: true });
  server.on('secureConnection', (socket) => {
    let received = 0;
    socket.on('data', (d) => (received += d.length));
    socket.on('end', () => {
      process.send({ received });
      socket.end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
}

function percentiles(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: round(at(0.5), 3), p95: round(at(0.95), 3) };
}

async function fsyncLatency(instance) {
  const dir = fs.mkdtempSync(path.join(opt.dir, 'dv-limits-fsync-'));
  const n = Number(opt.fsyncs);
  const fileSync = [];
  const dirSync = [];
  const walSync = [];
  try {
    const wal = fs.openSync(path.join(dir, 'wal'), 'a');
    const page = randomBytes(4096);
    for (let i = 0; i < n; i++) {
      const tmp = path.join(dir, `${i}.tmp`);
      const fd = fs.openSync(tmp, 'wx');
      fs.writeSync(fd, instance);
      let t0 = now();
      fs.fsyncSync(fd);
      fileSync.push(now() - t0);
      fs.closeSync(fd);
      fs.renameSync(tmp, path.join(dir, `${i}.blob`));
      const dfd = fs.openSync(dir, 'r');
      t0 = now();
      fs.fsyncSync(dfd);
      dirSync.push(now() - t0);
      fs.closeSync(dfd);
      fs.writeSync(wal, page);
      t0 = now();
      fs.fdatasyncSync(wal);
      walSync.push(now() - t0);
    }
    fs.closeSync(wal);
    const concurrent = {};
    for (const c of [1, 4, 16]) {
      // `n` instance-sized files written then fsynced, c at a time (libuv's thread pool: 4 threads by default)
      const t0 = now();
      let next = 0;
      await Promise.all(
        Array.from({ length: c }, async () => {
          while (next < n) {
            const handle = await fsp.open(path.join(dir, `c${c}-${next++}`), 'wx');
            await handle.write(instance);
            await handle.sync();
            await handle.close();
          }
        }),
      );
      concurrent[`c${c}`] = { filesPerS: round(n / ((now() - t0) / 1000), 0) };
    }
    return { fileFsyncMs: percentiles(fileSync), dirFsyncMs: percentiles(dirSync), walFdatasyncMs: percentiles(walSync), writeAndFsync: concurrent };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
