#!/usr/bin/env node
// The STOW write path without HTTP and TLS, A B A B between two builds in one process: CPU (user + system, every
// thread: parse workers, libuv's pool, the kernel's share of fsync) and wall time per instance of
// services/store-instances.ts with the server's real storage (encrypted blobs, encrypted index, parse workers),
// fresh 512x512 instances from the shared harness's generator, parts fed in 16 KiB chunks (TLS records' size).
// Meant for a busy shared machine: both builds run in the same few seconds, so other load hits both alike.
//
//   node bench/stow-store-cpu.mjs --dist /path/a/dist [--vs-dist /path/b/dist] [--count 400] [--rounds 5]
//        [--batch 1,20] [--concurrency 1,8] [--dir /tmp]
//
// Each --dist is a built tree's dist/ (`npm run build`; e.g. a `git archive` of another commit). Authorization is
// left out (an allow-all decider: the policy engine's cost is not the store path's), and so is the audit trail.
// Prints one line per measurement and a JSON summary: medians, and the least CPU per instance of the rounds (other
// load only adds to it; on a busy machine the minimum is the steadier figure).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    dist: { type: 'string', default: new URL('../dist', import.meta.url).pathname },
    'vs-dist': { type: 'string' },
    count: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '5' },
    batch: { type: 'string', default: '1,20' },
    concurrency: { type: 'string', default: '1,8' },
    dir: { type: 'string', default: os.tmpdir() },
    harness: { type: 'string', default: new URL('../../shared/bench', import.meta.url).pathname },
  },
});
const list = (s) => s.split(',').map(Number);
const COUNT = Number(opt.count);
const CHUNK = 16 * 1024;
const ROWS = 512;
const COLS = 512;
const { makePixelPool, stowInstance } = await import(pathToFileURL(path.join(opt.harness, 'gen.mjs')).href);
const pixels = makePixelPool(ROWS, COLS);
let serial = 0;

/** A built tree, opened on a fresh data folder: what store-instances.ts needs, as compose.ts gives it. */
async function openBuild(dist, name) {
  const load = (m) => import(pathToFileURL(path.join(dist, m)).href);
  const [{ loadConfig }, { openStorage }, { ParsePool }, { storeInstances }, { Access }, { SqliteLifecycleStore }] = await Promise.all([
    load('config/load.js'),
    load('compose.js'),
    load('dicom/parse-pool.js'),
    load('services/store-instances.js'),
    load('policy/access.js'),
    load('index/sqlite/sqlite-lifecycle-store.js'),
  ]);
  const root = fs.mkdtempSync(path.join(opt.dir, `dv-store-cpu-${name}-`));
  const config = loadConfig({ env: { DICOMVAULT_STORAGE_DATA_DIR: path.join(root, 'data'), DICOMVAULT_KEYS_FILE: path.join(root, 'keys/kek.json') } });
  const storage = await openStorage(config, { audit: false });
  const pool = new ParsePool({ workers: config.stow.parseWorkers, timeoutMs: config.stow.parseTimeoutMs, memoryMb: config.stow.parseMemoryMb });
  const log = { warn() {}, error(obj, msg) { console.error(msg, obj); } };
  const deps = {
    index: storage.index,
    blobs: storage.blobs,
    readInstance: pool.reader(),
    limits: { maxSequenceDepth: config.dicom.maxSequenceDepth, maxElements: config.dicom.maxElements, maxInflatedBytes: config.dicom.maxInflatedBytes, maxHeaderBytes: config.dicom.maxHeaderBytes },
    duplicatePolicy: config.stow.duplicatePolicy,
    log,
    retention: { lifecycle: new SqliteLifecycleStore(storage.index.database), retention: config.retention },
  };
  const access = new Access({ decide: () => ({ allowed: true, policies: [] }), studyCondition: () => ({ kind: 'true' }) }, { kind: 'certificate', id: 'bench' });
  return {
    name,
    store: (files) => storeInstances(deps, { parts: parts(files), access }),
    close: async () => {
      await pool.close();
      await storage.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

async function* chunks(bytes) {
  for (let at = 0; at < bytes.length; at += CHUNK) yield bytes.subarray(at, at + CHUNK);
}

async function* parts(files) {
  for (const f of files) yield { contentType: 'application/dicom', body: chunks(f) };
}

/** COUNT fresh instances in requests of `batch`, `conc` requests at a time. */
function requests(batch) {
  const tag = `${process.pid}.${++serial}`;
  const study = `2.25.${Date.now()}${serial}`;
  const out = [];
  for (let i = 0; i < COUNT; i += batch) {
    const files = [];
    for (let k = i; k < Math.min(i + batch, COUNT); k++) {
      files.push(stowInstance({ studyUid: study, seriesUid: `${study}.${Math.floor(k / 100)}`, sopUid: `${study}.1.${k}`, number: k + 1, pixels: pixels[k % pixels.length], rows: ROWS, cols: COLS, tag }));
    }
    out.push(files);
  }
  return out;
}

async function measure(build, batch, conc) {
  const work = requests(batch);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < work.length) {
        const outcomes = await build.store(work[next++]);
        if (outcomes.some((o) => o.status !== 'stored')) throw new Error(`${build.name}: not stored: ${JSON.stringify(outcomes.find((o) => o.status !== 'stored'))}`);
      }
    }),
  );
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpuMsPerInstance: (cpu.user + cpu.system) / 1000 / COUNT, instPerS: COUNT / (wall / 1000) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const builds = [await openBuild(opt.dist, 'A')];
if (opt['vs-dist']) builds.push(await openBuild(opt['vs-dist'], 'B'));
const summary = { A: opt.dist, ...(opt['vs-dist'] ? { B: opt['vs-dist'] } : {}), instances: COUNT, results: [] };
try {
  for (const b of builds) await measure(b, 1, 4); // warm-up: workers started, code compiled
  for (const batch of list(opt.batch)) {
    for (const conc of list(opt.concurrency)) {
      const runs = Object.fromEntries(builds.map((b) => [b.name, []]));
      for (let r = 0; r < Number(opt.rounds); r++) {
        for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
          const m = await measure(b, batch, conc);
          runs[b.name].push(m);
          console.error(`batch${batch} c=${conc} round ${r + 1} ${b.name}: ${m.cpuMsPerInstance.toFixed(2)} ms CPU/inst, ${m.instPerS.toFixed(0)} inst/s`);
        }
      }
      const row = { batch, concurrency: conc };
      for (const [name, ms] of Object.entries(runs)) {
        const cpu = ms.map((m) => m.cpuMsPerInstance);
        // The minimum too: other load only ever adds to a round's CPU, so the least is the closest to the path's own.
        row[name] = { cpuMsPerInstance: +median(cpu).toFixed(2), minCpuMsPerInstance: +Math.min(...cpu).toFixed(2), instPerS: +median(ms.map((m) => m.instPerS)).toFixed(0) };
      }
      if (row.B) {
        row['B/A cpu'] = +(row.B.cpuMsPerInstance / row.A.cpuMsPerInstance).toFixed(2);
        row['B/A min cpu'] = +(row.B.minCpuMsPerInstance / row.A.minCpuMsPerInstance).toFixed(2);
      }
      summary.results.push(row);
    }
  }
} finally {
  for (const b of builds) await b.close();
}
console.log(JSON.stringify(summary, null, 2));
