#!/usr/bin/env node
// Render and thumbnail latency (issue 9): stores a few test files on a running dicomvault (and, when given, a
// running Orthanc with its DICOMweb plugin), then times sequential GETs of the rendered and thumbnail resources of
// each file on each server, after a warm-up, servers alternating round by round (A B A B). bench/render.sh starts
// both servers and runs this.
//
//   node bench/render.mjs --url DV_BASE_URL --cert client.crt --key client.key --ca ca.crt
//                         [--orthanc http://127.0.0.1:8042] [--requests 20] [--rounds 2] [--warmup 3]
//                         [--files derived/ct_rle.dcm,...] [--testdata ../shared/testdata] [--json out.json]
//
// Each scenario is one request at a time (latency, not throughput): the median and p95 of rounds x requests.
// --orthanc is Orthanc's root (its DICOMweb root is {root}/dicom-web). Orthanc 1.10 / DICOMweb 1.7 has no
// /thumbnail resource (added in DICOMweb 1.19): its row says n/a, and the "rendered 128x128" row
// (viewport=128,128, what a thumbnail is here) is the comparable one. Node built-ins only.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    orthanc: { type: 'string' },
    requests: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '3' },
    files: {
      type: 'string',
      default: 'derived/ct_rle.dcm,derived/ct_j2k_lossless.dcm,derived/ct_jpegls_lossless.dcm,derived/mr8_jpeg_baseline.dcm',
    },
    testdata: { type: 'string', default: path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../shared/testdata') },
    json: { type: 'string' },
  },
});
if (!opt.url || !opt.cert || !opt.key || !opt.ca) {
  process.stderr.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(6, 9).join('\n').replaceAll(/^\/\/ {3}/gm, '') + '\n');
  process.exit(2);
}
const dvBase = opt.url;
const tls = { cert: fs.readFileSync(opt.cert), key: fs.readFileSync(opt.key), ca: fs.readFileSync(opt.ca) };
const rounds = Number(opt.rounds);
const n = Number(opt.requests);
const warmup = Number(opt.warmup);
const agents = { 'https:': new https.Agent({ keepAlive: true, maxSockets: 1, ...tls }), 'http:': new http.Agent({ keepAlive: true, maxSockets: 1 }) };

function request(method, url, headers = {}, body) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers, agent: agents[u.protocol] }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The UIDs of a Part 10 file, read from INDEX.tsv (no DICOM parser here). */
function uidsOf(rel) {
  const [head, ...lines] = fs.readFileSync(path.join(opt.testdata, 'INDEX.tsv'), 'utf8').trim().split('\n');
  const cols = head.split('\t');
  const row = lines.map((l) => l.split('\t')).find((f) => f[0] === rel);
  if (!row) throw new Error(`${rel} is not in INDEX.tsv`);
  const at = (c) => row[cols.indexOf(c)];
  return { study: at('study_uid'), series: at('series_uid'), sop: at('sop_uid'), frames: Number(at('frames') || 1), rows: at('rows'), cols: at('cols') };
}

async function stow(base, files) {
  const boundary = crypto.randomBytes(12).toString('hex');
  const parts = files.flatMap((f) => [Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), fs.readFileSync(path.join(opt.testdata, f)), Buffer.from('\r\n')]);
  const body = Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]);
  const res = await request('POST', `${base}/studies`, { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' }, body);
  if (res.status !== 200) throw new Error(`STOW to ${base}: ${res.status} ${res.body.toString().slice(0, 200)}`);
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

async function time(url, accept) {
  for (let i = 0; i < warmup; i++) await request('GET', url, { accept });
  const ms = [];
  let bytes = 0;
  let status = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await request('GET', url, { accept });
    ms.push(performance.now() - t0);
    bytes = res.body.length;
    status = res.status;
    if (res.status !== 200) break;
  }
  return { status, bytes, ms };
}

/** The rounds of one server and scenario as one sample: median and p95 over every request. */
function merge(list) {
  const ms = list.flatMap((x) => x.ms).sort((a, b) => a - b);
  const bad = list.find((x) => x.status !== 200);
  return { status: bad ? bad.status : 200, bytes: list.at(-1).bytes, requests: ms.length, median: quantile(ms, 0.5), p95: quantile(ms, 0.95) };
}

const files = opt.files.split(',');
const servers = [{ name: 'dicomvault', base: dvBase.replace(/\/$/, '') }];
if (opt.orthanc) servers.push({ name: 'orthanc', base: `${opt.orthanc.replace(/\/$/, '').replace(/\/dicom-web$/, '')}/dicom-web` });
for (const s of servers) await stow(s.base, files);

const results = [];
for (const f of files) {
  const u = uidsOf(f);
  const inst = `/studies/${u.study}/series/${u.series}/instances/${u.sop}`;
  const mid = Math.max(1, Math.ceil(u.frames / 2));
  const scenarios = [
    ['rendered JPEG', `${inst}/rendered`, 'image/jpeg'],
    ['rendered PNG', `${inst}/rendered`, 'image/png'],
    [`rendered frame ${mid} JPEG`, `${inst}/frames/${mid}/rendered`, 'image/jpeg'],
    ['rendered 128x128', `${inst}/rendered?viewport=128,128`, 'image/jpeg'],
    ['thumbnail', `${inst}/thumbnail`, 'image/jpeg'],
  ];
  for (const [scenario, p, accept] of scenarios) {
    const row = { file: f, size: `${u.cols}x${u.rows}x${u.frames}`, scenario };
    const samples = Object.fromEntries(servers.map((s) => [s.name, []]));
    for (let r = 0; r < rounds; r++) for (const s of servers) samples[s.name].push(await time(`${s.base}${p}`, accept));
    for (const s of servers) row[s.name] = merge(samples[s.name]);
    results.push(row);
  }
}

const cell = (r) => (!r ? '' : r.status !== 200 ? `n/a (${r.status})` : `${r.median.toFixed(1)} / ${r.p95.toFixed(1)} ms`);
const out = [`| file | frame size | scenario | ${servers.map((s) => `${s.name} median / p95`).join(' | ')} |`, `|---|---|---|${servers.map(() => '---').join('|')}|`];
for (const r of results) out.push(`| ${r.file} | ${r.size} | ${r.scenario} | ${servers.map((s) => cell(r[s.name])).join(' | ')} |`);
process.stdout.write(`${out.join('\n')}\n\n(${rounds} rounds x ${n} sequential requests per server, each after ${warmup} warm-up, keep-alive; dicomvault over mutual TLS, Orthanc over plain HTTP)\n`);
if (opt.json) fs.writeFileSync(opt.json, JSON.stringify({ requests: n, rounds, warmup, results }, null, 2));
for (const a of Object.values(agents)) a.destroy();
