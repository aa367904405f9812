#!/usr/bin/env node
// Memory of one large STOW-RS request: streams a single multipart/related body (chunked, one instance in
// the client's memory at a time) to a running server and samples the server's VmRSS / VmHWM from /proc.
//
//   node bench/stow-memory.mjs BASE_URL CERT_DIR COUNT|DATA_DIR [--pid PID] [--rows 512] [--cols 512]
//                              [--interval-ms 200] [--samples FILE]
//   e.g. node bench/stow-memory.mjs https://127.0.0.1:8443/dicomweb certs/dev 4000     # ~2 GB
//
// COUNT: that many synthetic 16-bit Secondary Capture instances (one study "BENCH^STOWMEM" dated 19000101,
// one series, fresh UIDs). DATA_DIR: every *.dcm file below it instead. CERT_DIR holds client.crt,
// client.key and ca.crt. The server PID is found by the port it listens on unless --pid is given (the
// server must run on this machine). Prints a JSON summary; exit status 0 only for HTTP 200.
// Node built-ins only.

import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pidListeningOn, processMemory } from './lib/proc-memory.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    pid: { type: 'string' }, rows: { type: 'string', default: '512' }, cols: { type: 'string', default: '512' },
    'interval-ms': { type: 'string', default: '200' }, samples: { type: 'string' },
  },
});
if (positionals.length !== 3) {
  process.stderr.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(4, 7).join('\n').replaceAll(/^\/\/ {3}/gm, '') + '\n');
  process.exit(2);
}
const [baseUrl, certDir, what] = positionals;
const url = new URL(baseUrl.replace(/\/$/, '') + '/studies');
const tls = {
  cert: fs.readFileSync(path.join(certDir, 'client.crt')),
  key: fs.readFileSync(path.join(certDir, 'client.key')),
  ca: fs.readFileSync(path.join(certDir, 'ca.crt')),
};

// ---- the server process ---------------------------------------------------------------------------------
const pid = opt.pid ? Number(opt.pid) : pidListeningOn(Number(url.port || 443));
if (!pid) throw new Error(`no process listens on port ${url.port} here: give --pid`);
const memory = () => processMemory(pid);

// ---- instances --------------------------------------------------------------------------------------------
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);
/** One explicit VR little endian element; strings are padded to even length (UI with NUL, others space). */
function element(group, elem, vr, value) {
  let v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (v.length % 2) v = Buffer.concat([v, Buffer.from(vr === 'UI' ? '\0' : ' ')]);
  const long = LONG_VRS.has(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(group, 0); h.writeUInt16LE(elem, 2); h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(v.length, 8); else h.writeUInt16LE(v.length, 6);
  return Buffer.concat([h, v]);
}
const us = (n) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
const uidRoot = () => `2.25.${1 + crypto.randomInt(9)}${crypto.randomBytes(8).readBigUInt64BE().toString().padStart(20, '0').slice(0, 19)}`;

/** A Part 10 header (everything but the pixel value) with fixed-width slots for the per-instance values. */
function syntheticTemplate(rows, cols) {
  const SC = '1.2.840.10008.5.1.4.1.1.7';
  const base = uidRoot();
  const sopSlot = `${base}.1${'0'.repeat(9)}`; // same length for every instance: patched in place
  const numSlot = '0'.repeat(10);
  const meta = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 0x0002, 'UI', SC),
    element(0x0002, 0x0003, 'UI', sopSlot),
    element(0x0002, 0x0010, 'UI', '1.2.840.10008.1.2.1'),
    element(0x0002, 0x0012, 'UI', '1.2.826.0.1.3680043.10.1337.1'),
    element(0x0002, 0x0013, 'SH', 'STOWMEM_1'),
  ]);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt16LE(2, 0); groupLength.writeUInt16LE(0, 2); groupLength.write('UL', 4, 'latin1');
  groupLength.writeUInt16LE(4, 6); groupLength.writeUInt32LE(meta.length, 8);
  const pixelBytes = rows * cols * 2;
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0); pixelHeader.writeUInt16LE(0x0010, 2); pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(pixelBytes, 8);
  const header = Buffer.concat([
    Buffer.alloc(128), Buffer.from('DICM'), groupLength, meta,
    element(0x0008, 0x0016, 'UI', SC),
    element(0x0008, 0x0018, 'UI', sopSlot),
    element(0x0008, 0x0020, 'DA', '19000101'),
    element(0x0008, 0x0030, 'TM', '000000'),
    element(0x0008, 0x0050, 'SH', 'STOWMEM'),
    element(0x0008, 0x0060, 'CS', 'OT'),
    element(0x0010, 0x0010, 'PN', 'BENCH^STOWMEM'),
    element(0x0010, 0x0020, 'LO', 'STOWMEM'),
    element(0x0020, 0x000d, 'UI', `${base}.1`),
    element(0x0020, 0x000e, 'UI', `${base}.2`),
    element(0x0020, 0x0010, 'SH', '1'),
    element(0x0020, 0x0011, 'IS', '1'),
    element(0x0020, 0x0013, 'IS', numSlot),
    element(0x0028, 0x0002, 'US', us(1)),
    element(0x0028, 0x0004, 'CS', 'MONOCHROME2'),
    element(0x0028, 0x0010, 'US', us(rows)),
    element(0x0028, 0x0011, 'US', us(cols)),
    element(0x0028, 0x0100, 'US', us(16)),
    element(0x0028, 0x0101, 'US', us(16)),
    element(0x0028, 0x0102, 'US', us(15)),
    element(0x0028, 0x0103, 'US', us(0)),
    pixelHeader,
  ]);
  const slots = [];
  for (let at = header.indexOf(sopSlot); at >= 0; at = header.indexOf(sopSlot, at + 1)) slots.push(at + base.length + 2);
  const numAt = header.indexOf(Buffer.from([0x20, 0, 0x13, 0, 0x49, 0x53])) + 8; // (0020,0013) IS value
  const pixels = Buffer.alloc(pixelBytes);
  for (let i = 0; i < pixelBytes / 2; i++) pixels.writeUInt16LE((i * 7919) & 0x0fff, i * 2);
  return {
    studyInstanceUID: `${base}.1`,
    size: header.length + pixelBytes,
    /** Header of instance n (a fresh copy: the socket may still hold the previous one) and the shared pixels. */
    instance(n) {
      const h = Buffer.from(header);
      const digits = String(n).padStart(9, '0');
      for (const at of slots) h.write(digits, at, 'latin1');
      h.write(String(n).padStart(10, ' '), numAt, 'latin1');
      return [h, pixels];
    },
  };
}

function dcmFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.dcm'))
    .map((e) => path.join(e.parentPath ?? e.path, e.name)).sort();
}

// ---- the request --------------------------------------------------------------------------------------------
const boundary = `stowmem${crypto.randomBytes(16).toString('hex')}`;
let source;
if (/^\d+$/.test(what)) {
  const t = syntheticTemplate(Number(opt.rows), Number(opt.cols));
  const count = Number(what);
  source = { count, study: t.studyInstanceUID, expectedBytes: count * t.size, async *parts() { for (let i = 1; i <= count; i++) yield t.instance(i); } };
} else {
  const files = dcmFiles(what);
  source = {
    count: files.length,
    expectedBytes: files.reduce((n, f) => n + fs.statSync(f).size, 0),
    async *parts() { for (const f of files) yield [await fs.promises.readFile(f)]; },
  };
}

const samples = [];
const before = memory();
const t0 = performance.now();
let clientPeakMb = 0;
const sample = () => {
  try { samples.push({ t: Math.round(performance.now() - t0), ...memory() }); } catch { /* the server exited */ }
  clientPeakMb = Math.max(clientPeakMb, process.memoryUsage().rss / 2 ** 20);
};
const timer = setInterval(sample, Number(opt['interval-ms']));
sample();

const req = https.request(url, {
  method: 'POST', ...tls,
  headers: { 'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`, Accept: 'application/dicom+json' },
});
req.setNoDelay(true);
const response = new Promise((resolve, reject) => {
  req.on('response', (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    res.on('error', reject);
  });
  req.on('error', reject);
});
let bodyBytes = 0;
let answeredEarly = false;
response.then(() => { answeredEarly = true; }, () => { answeredEarly = true; });
const send = async (buf) => {
  bodyBytes += buf.length;
  if (!req.write(buf)) await Promise.race([once(req, 'drain'), response.catch(() => undefined)]);
};
let sendError;
let complete = false;
try {
  for await (const bufs of source.parts()) {
    if (answeredEarly) break;
    const size = bufs.reduce((n, b) => n + b.length, 0);
    await send(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${size}\r\n\r\n`));
    for (const b of bufs) await send(b);
    await send(Buffer.from('\r\n'));
  }
  if (!answeredEarly) {
    await send(Buffer.from(`--${boundary}--\r\n`));
    complete = true;
  }
  req.end();
} catch (e) { sendError = e; }
const tSent = performance.now();
let res;
try { res = await response; } catch (e) { sendError ??= e; }
const tDone = performance.now();
clearInterval(timer);
sample();
const after = memory();

let stored, failed, firstFailure;
if (res && /json/.test(res.headers['content-type'] ?? '')) {
  try {
    const ds = JSON.parse(res.body.toString('utf8'));
    const item = Array.isArray(ds) ? ds[0] : ds;
    stored = item?.['00081199']?.Value?.length ?? 0;
    failed = item?.['00081198']?.Value?.length ?? 0;
    firstFailure = item?.['00081198']?.Value?.[0];
  } catch { /* not a dataset */ }
}
const peakRss = Math.max(...samples.map((s) => s.rss));
const mb = (n) => Math.round(n * 10) / 10;
const summary = {
  url: url.href, serverPid: pid, study: source.study, instances: source.count, bodyBytes, bodyMiB: mb(bodyBytes / 2 ** 20),
  complete, httpStatus: res?.status ?? null,
  stored, failed, firstFailure, error: sendError ? String(sendError.message ?? sendError) : undefined,
  responseBytes: res?.body.length, responseStart: res && !/json/.test(res.headers['content-type'] ?? '') ? res.body.toString('utf8').slice(0, 300) : undefined,
  seconds: mb((tDone - t0) / 1000) , sendSeconds: mb((tSent - t0) / 1000), answerAfterBodySeconds: mb((tDone - tSent) / 1000),
  mbPerSec: mb(bodyBytes / 1e6 / ((tDone - t0) / 1000)),
  server: {
    rssBeforeMiB: mb(before.rss), rssPeakMiB: mb(peakRss), rssAfterMiB: mb(after.rss),
    hwmBeforeMiB: mb(before.hwm), hwmAfterMiB: mb(after.hwm),
    // VmHWM is the lifetime peak: it says more than the samples only if it rose during the request
    peakGrowthMiB: mb((after.hwm > before.hwm ? after.hwm : peakRss) - before.rss),
  },
  clientPeakRssMiB: mb(clientPeakMb),
  samples: samples.length, maxSampleGapMs: Math.max(...samples.slice(1).map((s, i) => s.t - samples[i].t)),
};
if (opt.samples) fs.writeFileSync(opt.samples, JSON.stringify(samples));
process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
process.exitCode = res?.status === 200 ? 0 : 1;
