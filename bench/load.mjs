#!/usr/bin/env node
// A mixed DICOMweb load from a second process (issue 8 item 3): concurrent STOW of new instances, QIDO,
// series metadata and frames against one server for a while, counting every error and sampling the server's
// memory. Passes (exit 0) when no request failed and the server's RSS did not keep growing.
//
//   node bench/load.mjs BASE_URL --data DIR --cert F --key F --ca F [--pid PID] [--seconds 300]
//        [--stow 2] [--qido 4] [--metadata 2] [--frames 2] [--json FILE]
//
// --data: a data set made by ../shared/bench/gen.mjs (its manifest.json and files). Its instances are stored
// first; then the STOW workers send copies with fresh UIDs (same-length replacement of the Study, Series and
// SOP Instance UIDs in the file bytes), so the archive grows during the run and the write path is exercised.
// --pid: the server's process id; its RSS (/proc/PID/status VmRSS) is sampled every 2 s. "Flat" means the
// median RSS of the last fifth of the run is within 15 % (and 64 MiB) of the median of the second fifth (the
// first fifth is warm-up: caches and JIT).

import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    data: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    pid: { type: 'string' },
    seconds: { type: 'string', default: '300' },
    stow: { type: 'string', default: '2' },
    qido: { type: 'string', default: '4' },
    metadata: { type: 'string', default: '2' },
    frames: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
});
const base = positionals[0]?.replace(/\/+$/, '');
if (!base || !values.data) {
  process.stderr.write('usage: node bench/load.mjs BASE_URL --data DIR [--cert F --key F --ca F] [--pid PID] [--seconds N]\n');
  process.exit(2);
}
const seconds = Number(values.seconds);
const agent = new https.Agent({
  keepAlive: true,
  maxSockets: 64,
  ...(values.ca ? { ca: fs.readFileSync(values.ca) } : {}),
  ...(values.cert ? { cert: fs.readFileSync(values.cert) } : {}),
  ...(values.key ? { key: fs.readFileSync(values.key) } : {}),
});

/** One request; resolves with status and body (never rejects: a network error is status 0). */
function call(method, url, headers = {}, body) {
  return new Promise((resolve) => {
    const req = https.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', (e) => resolve({ status: 0, body: Buffer.from(String(e)) }));
    });
    req.on('error', (e) => resolve({ status: 0, body: Buffer.from(String(e)) }));
    req.end(body);
  });
}

function multipart(parts) {
  const boundary = `load-${Math.random().toString(36).slice(2)}`;
  const chunks = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { type: `multipart/related; type="application/dicom"; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

// --- the data set ---
const manifest = JSON.parse(fs.readFileSync(path.join(values.data, 'manifest.json'), 'utf8'));
const instances = manifest.studies.flatMap((st) =>
  st.series.flatMap((se) =>
    // gen.mjs lists an instance as [SOPInstanceUID, InstanceNumber, file, bytes].
    se.instances.map(([sop, , file]) => ({
      study: st.StudyInstanceUID,
      series: se.SeriesInstanceUID,
      sop,
      patientId: st.PatientID,
      bytes: fs.readFileSync(path.join(values.data, file)),
    })),
  ),
);

/** `uid` with its last digits replaced by `n` (same length, still a valid UID: digits only, no leading zero issue). */
function variant(uid, n) {
  const digits = String(n);
  const last = uid.slice(uid.lastIndexOf('.') + 1);
  if (last.length <= digits.length) throw new Error(`${uid}: its last component is too short to vary (gen.mjs data sets use 2.25.<long number>)`);
  return uid.slice(0, uid.length - digits.length) + digits;
}

/** The instance's bytes with every occurrence of its three UIDs replaced by same-length variants. */
function renamed(inst, n) {
  let bytes = Buffer.from(inst.bytes);
  for (const uid of [inst.study, inst.series, inst.sop]) {
    const from = Buffer.from(uid, 'latin1');
    const to = Buffer.from(variant(uid, n), 'latin1');
    for (let at = bytes.indexOf(from); at !== -1; at = bytes.indexOf(from, at + to.length)) to.copy(bytes, at);
  }
  return bytes;
}

// --- measurement ---
const kinds = ['stow', 'qido', 'metadata', 'frames'];
const stats = Object.fromEntries(kinds.map((k) => [k, { requests: 0, errors: 0, latencies: [], examples: [] }]));
function record(kind, started, res, ok) {
  const s = stats[kind];
  s.requests++;
  s.latencies.push(performance.now() - started);
  if (!ok) {
    s.errors++;
    if (s.examples.length < 5) s.examples.push(`${res.status} ${res.body.subarray(0, 200).toString('utf8')}`);
  }
}
const rss = [];
function sampleRss() {
  if (!values.pid) return;
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${values.pid}/status`, 'utf8'))?.[1]);
    rss.push({ t: performance.now(), mib: kb / 1024 });
  } catch {
    rss.push({ t: performance.now(), mib: Number.NaN });
  }
}

const pick = (list) => list[Math.floor(Math.random() * list.length)];
const stored = [...instances];
let counter = 100000 + Math.floor(Math.random() * 800000);

const workers = {
  async stow() {
    const parts = [];
    for (let i = 0; i < 4; i++) {
      const inst = pick(instances);
      const n = counter++;
      parts.push(renamed(inst, n));
      stored.push({ ...inst, study: variant(inst.study, n), series: variant(inst.series, n), sop: variant(inst.sop, n) });
    }
    const { type, body } = multipart(parts);
    const t = performance.now();
    const res = await call('POST', `${base}/studies`, { 'content-type': type, accept: 'application/dicom+json' }, body);
    record('stow', t, res, res.status === 200);
  },
  async qido() {
    const inst = pick(stored);
    const url = Math.random() < 0.5 ? `${base}/studies?PatientID=${encodeURIComponent(inst.patientId)}&limit=50` : `${base}/studies/${inst.study}/instances`;
    const t = performance.now();
    const res = await call('GET', url, { accept: 'application/dicom+json' });
    record('qido', t, res, res.status === 200 || res.status === 204);
  },
  async metadata() {
    const inst = pick(instances);
    const t = performance.now();
    const res = await call('GET', `${base}/studies/${inst.study}/series/${inst.series}/metadata`, { accept: 'application/dicom+json' });
    record('metadata', t, res, res.status === 200);
  },
  async frames() {
    const inst = pick(instances);
    const t = performance.now();
    const res = await call('GET', `${base}/studies/${inst.study}/series/${inst.series}/instances/${inst.sop}/frames/1`, {
      accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    });
    record('frames', t, res, res.status === 200);
  },
};

// Load the data set (idempotent when it is already there).
for (let i = 0; i < instances.length; i += 20) {
  const { type, body } = multipart(instances.slice(i, i + 20).map((x) => x.bytes));
  const res = await call('POST', `${base}/studies`, { 'content-type': type, accept: 'application/dicom+json' }, body);
  if (res.status !== 200) {
    process.stderr.write(`loading the data set failed: ${res.status} ${res.body.subarray(0, 300)}\n`);
    process.exit(1);
  }
}

const until = performance.now() + seconds * 1000;
sampleRss();
const sampler = setInterval(sampleRss, 2000);
const started = performance.now();
await Promise.all(
  kinds.flatMap((kind) =>
    Array.from({ length: Number(values[kind]) }, async () => {
      while (performance.now() < until) await workers[kind]();
    }),
  ),
);
clearInterval(sampler);
sampleRss();
const elapsed = (performance.now() - started) / 1000;
agent.destroy();

// --- report ---
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : Number.NaN;
};
const median = (xs) => pct(xs, 50);
const lines = [`mixed load against ${base} for ${elapsed.toFixed(0)} s (${kinds.map((k) => `${k} x${values[k]}`).join(', ')})`];
lines.push('kind        requests   errors    req/s   p50 ms   p95 ms   p99 ms');
let errors = 0;
for (const k of kinds) {
  const s = stats[k];
  errors += s.errors;
  lines.push(
    `${k.padEnd(10)} ${String(s.requests).padStart(9)} ${String(s.errors).padStart(8)} ${(s.requests / elapsed).toFixed(1).padStart(8)} ${pct(s.latencies, 50).toFixed(1).padStart(8)} ${pct(s.latencies, 95).toFixed(1).padStart(8)} ${pct(s.latencies, 99).toFixed(1).padStart(8)}`,
  );
  for (const e of s.examples) lines.push(`  ${k} error: ${e}`);
}
let flat = true;
if (rss.length >= 10) {
  const fifth = Math.floor(rss.length / 5);
  const early = median(rss.slice(fifth, 2 * fifth).map((r) => r.mib));
  const late = median(rss.slice(-fifth).map((r) => r.mib));
  flat = late <= early * 1.15 || late - early <= 64;
  lines.push(`server RSS: start ${rss[0].mib.toFixed(0)} MiB, 2nd fifth median ${early.toFixed(0)} MiB, last fifth median ${late.toFixed(0)} MiB, max ${Math.max(...rss.map((r) => r.mib)).toFixed(0)} MiB: ${flat ? 'flat' : 'GROWING'}`);
}
lines.push(`instances stored during the run: ${stats.stow.requests * 4 - stats.stow.errors * 4}; errors: ${errors}`);
process.stdout.write(`${lines.join('\n')}\n`);
if (values.json) fs.writeFileSync(values.json, JSON.stringify({ base, seconds: elapsed, stats: Object.fromEntries(kinds.map((k) => [k, { ...stats[k], latencies: undefined }])), rss, flat, errors }, null, 2));
process.exit(errors === 0 && flat ? 0 : 1);
