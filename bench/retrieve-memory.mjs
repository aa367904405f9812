#!/usr/bin/env node
// Memory of one large WADO-RS retrieve: GETs a whole study as multipart/related; type="application/dicom"
// from a running server, reads the body as fast as the socket delivers it (counting parts and bytes, keeping
// nothing) and samples the server's VmRSS / VmHWM from /proc. The study usually comes from stow-memory.mjs
// (its JSON summary prints the StudyInstanceUID as `study`).
//
//   node bench/retrieve-memory.mjs BASE_URL CERT_DIR STUDY_UID [--pid PID] [--interval-ms 200]
//                                  [--accept 'multipart/related; type="application/dicom"; transfer-syntax=*']
//   e.g. node bench/retrieve-memory.mjs https://127.0.0.1:8443/dicomweb certs/dev 2.25.123...
//
// CERT_DIR holds client.crt, client.key and ca.crt. Prints a JSON summary; exit status 0 only for HTTP 200.
// Node built-ins only.

import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pidListeningOn, processMemory } from './lib/proc-memory.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    pid: { type: 'string' },
    'interval-ms': { type: 'string', default: '200' },
    accept: { type: 'string', default: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
  },
});
if (positionals.length !== 3) {
  process.stderr.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(6, 9).join('\n').replaceAll(/^\/\/ {3}/gm, '') + '\n');
  process.exit(2);
}
const [baseUrl, certDir, study] = positionals;
const url = new URL(`${baseUrl.replace(/\/$/, '')}/studies/${study}`);
const pid = opt.pid ? Number(opt.pid) : pidListeningOn(Number(url.port || 443));
if (!pid) throw new Error(`no process listens on port ${url.port} here: give --pid`);

const samples = [];
const t0 = performance.now();
const sample = () => {
  try { samples.push({ t: Math.round(performance.now() - t0), ...processMemory(pid) }); } catch { /* the server exited */ }
};
const before = processMemory(pid);
const timer = setInterval(sample, Number(opt['interval-ms']));
sample();

const result = await new Promise((resolve, reject) => {
  const req = https.get(url, {
    cert: fs.readFileSync(path.join(certDir, 'client.crt')),
    key: fs.readFileSync(path.join(certDir, 'client.key')),
    ca: fs.readFileSync(path.join(certDir, 'ca.crt')),
    headers: { accept: opt.accept },
  });
  req.on('error', reject);
  req.on('response', (res) => {
    const boundary = /boundary="?([^";]+)"?/.exec(res.headers['content-type'] ?? '')?.[1];
    const delimiter = boundary ? Buffer.from(`\r\n--${boundary}`) : undefined;
    let bytes = 0;
    let parts = 0;
    let tail = Buffer.alloc(0); // the last bytes of the previous chunk, so a delimiter split by chunks is counted
    let firstByteMs;
    res.on('data', (chunk) => {
      firstByteMs ??= performance.now() - t0;
      bytes += chunk.length;
      if (!delimiter) return;
      const window = Buffer.concat([tail, chunk]);
      for (let at = window.indexOf(delimiter); at >= 0; at = window.indexOf(delimiter, at + delimiter.length)) parts++;
      tail = window.subarray(Math.max(0, window.length - delimiter.length + 1));
    });
    res.on('end', () => resolve({ status: res.statusCode, contentType: res.headers['content-type'], bytes, parts, firstByteMs }));
    res.on('error', reject);
  });
});
const tDone = performance.now();
clearInterval(timer);
sample();
const after = processMemory(pid);

const mb = (n) => Math.round(n * 10) / 10;
const peakRss = Math.max(...samples.map((s) => s.rss));
const summary = {
  url: url.href, serverPid: pid, httpStatus: result.status, contentType: result.contentType,
  // Every part but the first is preceded by CRLF--boundary, and so is the close delimiter: parts = count.
  instances: result.parts, bodyBytes: result.bytes, bodyMiB: mb(result.bytes / 2 ** 20),
  seconds: mb((tDone - t0) / 1000), firstByteMs: Math.round(result.firstByteMs ?? NaN), mbPerSec: mb(result.bytes / 1e6 / ((tDone - t0) / 1000)),
  server: {
    rssBeforeMiB: mb(before.rss), rssPeakMiB: mb(peakRss), rssAfterMiB: mb(after.rss),
    hwmBeforeMiB: mb(before.hwm), hwmAfterMiB: mb(after.hwm),
    peakGrowthMiB: mb((after.hwm > before.hwm ? after.hwm : peakRss) - before.rss),
  },
  samples: samples.length,
};
process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
process.exitCode = result.status === 200 ? 0 : 1;
