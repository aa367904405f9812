#!/usr/bin/env node
// Server CPU per QIDO request, audited against records not written, split by thread (issue 6: audit writing
// under 5 % of QIDO throughput). bench/audit-cost.sh measures throughput, which on this 2-core machine moves by
// 20-40 % between rounds (more while anything else runs); CPU time spent per request moves far less. The server
// answers requests on its main thread, so with a saturated server its throughput follows that thread's CPU per
// request; the audit writer thread and the thread pool use the other core.
//
// For each server (A = audited, B = not written; started by bench/audit-cost.sh --cpu, or by hand) and each QIDO
// case of the shared harness (the same queries, drawn from the data set's manifest), N requests at concurrency C,
// rounds alternated A B B A; before and after each batch the server's CPU is read from /proc: the main thread
// (/proc/PID/task/PID/stat) and the whole process (/proc/PID/stat). Medians of the rounds are printed.
// The STOW cases (stow-1, stow-20: instances per request) send --stow-count fresh 512x512 instances per batch,
// made as the harness's stow scenario makes them (../shared/bench/gen.mjs), and report CPU per instance.
//
//   node bench/audit-cpu.mjs --a URL --a-pid PID --b URL --b-pid PID --cert F --key F --ca F --data DIR
//        [--requests 2000] [--concurrency 8] [--rounds 5] [--cases accession,modality,stow-1] [--stow-count 400]
//        [--json FILE]
//   Environment: DICOMVAULT_BENCH  the shared harness (default ../shared/bench from the repository)

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import https from 'node:https';
import { freshStowBodies } from './lib/harness-stow.mjs';

const { values: o } = parseArgs({
  options: {
    a: { type: 'string' },
    'a-pid': { type: 'string' },
    b: { type: 'string' },
    'b-pid': { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    data: { type: 'string' },
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'string' },
    cases: { type: 'string' },
    'stow-count': { type: 'string', default: '400' },
  },
});
for (const k of ['a', 'a-pid', 'b', 'b-pid', 'cert', 'key', 'ca', 'data']) if (!o[k]) throw new Error(`--${k} is required`);
const N = Number(o.requests);
const C = Number(o.concurrency);
const rounds = Number(o.rounds);
const { studies } = JSON.parse(fs.readFileSync(path.join(o.data, 'manifest.json'), 'utf8'));

const pick = (list, i) => list[(i * 7919) % list.length];
const years = [...new Set(studies.map((s) => s.StudyDate.slice(0, 4)))].sort();
const modalities = [...new Set(studies.flatMap((s) => s.ModalitiesInStudy))].sort();
const prefixes = [...new Set(studies.map((s) => s.PatientName.slice(0, 3)))].sort();
const series = studies.flatMap((s) => s.series.map((se) => ({ study: s.StudyInstanceUID, series: se.SeriesInstanceUID })));
const pages = Math.max(1, Math.ceil(studies.length / 25));
/** The harness's QIDO cases (../shared/bench/run.mjs qido-studies, qido-instances). */
const CASES = {
  'name-wildcard': (i) => `/studies?PatientName=${encodeURIComponent(`${pick(prefixes, i)}*`)}`,
  'patient-id': (i) => `/studies?PatientID=${encodeURIComponent(pick(studies, i).PatientID)}`,
  accession: (i) => `/studies?AccessionNumber=${encodeURIComponent(pick(studies, i).AccessionNumber)}`,
  'study-uid': (i) => `/studies?StudyInstanceUID=${pick(studies, i).StudyInstanceUID}`,
  'date-range': (i) => `/studies?StudyDate=${pick(years, i)}0101-${pick(years, i)}1231&limit=101`,
  modality: (i) => `/studies?ModalitiesInStudy=${pick(modalities, i)}&limit=101`,
  paging: (i) => `/studies?StudyDate=20000101-&limit=25&offset=${(i % pages) * 25}&includefield=00081030,00080060`,
  'series-instances': (i) => `/studies/${pick(series, i).study}/series/${pick(series, i).series}/instances`,
  'study-series': (i) => `/studies/${pick(studies, i).StudyInstanceUID}/series`,
};

/** STOW cases: instances per request. */
const STOW_CASES = { 'stow-1': 1, 'stow-20': 20 };

const tls = { cert: fs.readFileSync(o.cert), key: fs.readFileSync(o.key), ca: fs.readFileSync(o.ca) };
const servers = [
  { name: 'audited', url: o.a, pid: Number(o['a-pid']) },
  { name: 'not written', url: o.b, pid: Number(o['b-pid']) },
].map((s) => ({ ...s, agent: new https.Agent({ ...tls, keepAlive: true, maxSockets: C }) }));

/** utime + stime in microseconds (10 ms ticks) of /proc/<...>/stat. */
function cpu(statFile) {
  const fields = fs.readFileSync(statFile, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** GET with keep-alive; resolves with the status once the body has been read. */
function get(server, requestPath) {
  return new Promise((resolve, reject) => {
    https
      .get(`${server.url}${requestPath}`, { agent: server.agent, headers: { accept: 'application/dicom+json' } }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** POSTs a STOW body; resolves with the status once the answer has been read. */
function post(server, { body, contentType }) {
  return new Promise((resolve, reject) => {
    const req = https.request(`${server.url}/studies`, { method: 'POST', agent: server.agent, headers: { accept: 'application/dicom+json', 'content-type': contentType, 'content-length': body.length } }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One batch: N GETs of `makePath(i)`, or the STOW bodies of `stow`; CPU per request (per instance for STOW). */
async function batch(server, makePath, stow) {
  let next = 0;
  let failed = 0;
  const count = stow ? stow.bodies.length : N;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const statusCode = stow ? await post(server, stow.bodies[i]) : await get(server, makePath(i));
      if (statusCode !== 200 && statusCode !== 204) failed++;
    }
  };
  const mainStat = `/proc/${server.pid}/task/${server.pid}/stat`;
  const allStat = `/proc/${server.pid}/stat`;
  const [main0, all0, t0] = [cpu(mainStat), cpu(allStat), process.hrtime.bigint()];
  await Promise.all(Array.from({ length: C }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (failed > 0) throw new Error(`${server.name}: ${failed} requests failed`);
  const units = stow ? stow.instances : N;
  return { main: (cpu(mainStat) - main0) / units, all: (cpu(allStat) - all0) / units, rate: units / seconds };
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const results = {};
console.log(`${N} requests per batch (STOW: ${o['stow-count']} instances), concurrency ${C}, ${rounds} rounds; server CPU µs per request (STOW: per instance; main thread / whole process), req/s (STOW: instances/s)`);
console.log('| case | main thread audited / not written | cost | whole process audited / not written | cost | req/s ratio |');
console.log('|---|---|---|---|---|---|');
const chosen = o.cases ? o.cases.split(',') : [...Object.keys(CASES), ...Object.keys(STOW_CASES)];
for (const name of chosen) {
  const makePath = CASES[name];
  const perRequest = STOW_CASES[name];
  if (!makePath && !perRequest) throw new Error(`unknown case ${name}: ${[...Object.keys(CASES), ...Object.keys(STOW_CASES)].join(', ')}`);
  const instances = Number(o['stow-count']);
  /** Fresh bodies for each server and round (made before the batch: the client's work is not timed). */
  const run = async (s, round) => {
    if (!perRequest) return batch(s, makePath);
    const bodies = await freshStowBodies({ perRequest, count: instances, tag: `audit-cpu-${process.pid}-${s.pid}-${name}-${round}` });
    // What the other server left in the page cache is written back now, not during this one's fdatasyncs.
    spawnSync('sync');
    return batch(s, makePath, { instances, bodies });
  };
  for (const s of servers) await run(s, 'warm-up');
  const runs = servers.map(() => []);
  // A B, then B A: neither always goes first.
  for (let r = 0; r < rounds; r++) for (const k of r % 2 === 0 ? [0, 1] : [1, 0]) runs[k].push(await run(servers[k], r));
  const m = runs.map((rs) => ({ main: median(rs.map((x) => x.main)), all: median(rs.map((x) => x.all)), rate: median(rs.map((x) => x.rate)) }));
  results[name] = { audited: m[0], unwritten: m[1], rounds: runs };
  const pct = (x, y) => `${(((x - y) / y) * 100).toFixed(1)} %`;
  console.log(
    `| ${name} | ${m[0].main.toFixed(0)} / ${m[1].main.toFixed(0)} | ${pct(m[0].main, m[1].main)} | ${m[0].all.toFixed(0)} / ${m[1].all.toFixed(0)} | ${pct(m[0].all, m[1].all)} | ${(m[0].rate / m[1].rate).toFixed(2)}x |`,
  );
}
if (o.json) fs.writeFileSync(o.json, JSON.stringify(results, null, 2));
for (const s of servers) s.agent.destroy();
