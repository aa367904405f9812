#!/usr/bin/env node
// The blob store alone as STOW uses it, A B A B between two builds in one process (issue 8): the encrypted
// filesystem store of compose.ts, objects of a 512x512 CT's size (0.5 MiB) written in 16 KiB chunks, finished, read
// at the start (the scan), released with the descriptor kept, committed; 8 at a time. Prints CPU per blob (every
// thread, as process.cpuUsage counts it), thread context switches per blob (from /proc: each thread-pool file
// operation costs a few) and blobs per second, medians over the rounds, and the median of the paired B/A CPU ratios
// (a round of each build back to back sees the same other load).
//
//   node bench/stow-blob-store-cpu.mjs --dist /path/a/dist --vs-dist /path/b/dist [--count 200] [--rounds 16] [--dir /tmp]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { threadCounters } from './lib/proc-threads.mjs';

const { values: opt } = parseArgs({
  options: {
    dist: { type: 'string', default: new URL('../dist', import.meta.url).pathname },
    'vs-dist': { type: 'string' },
    count: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '16' },
    dir: { type: 'string', default: os.tmpdir() },
  },
});
const COUNT = Number(opt.count);
const CONCURRENCY = 8;
const CHUNK = 16 * 1024;
const body = Buffer.alloc(512 * 1024 + 1500, 7);

/** Context switches of every thread of this process so far (Linux). */
function contextSwitches() {
  const { voluntary, involuntary } = threadCounters();
  return voluntary + involuntary;
}

async function openBuild(dist, name) {
  const load = (m) => import(pathToFileURL(path.join(dist, m)).href);
  const [{ loadConfig }, { openStorage }] = await Promise.all([load('config/load.js'), load('compose.js')]);
  const root = fs.mkdtempSync(path.join(opt.dir, `dv-blob-cpu-${name}-`));
  const config = loadConfig({ env: { DICOMVAULT_STORAGE_DATA_DIR: path.join(root, 'data'), DICOMVAULT_KEYS_FILE: path.join(root, 'keys/kek.json') } });
  const storage = await openStorage(config, { audit: false });
  return {
    name,
    blobs: storage.blobs,
    close: async () => {
      await storage.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

let serial = 0;
async function measure(build) {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const switches0 = contextSwitches();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < COUNT) {
        const staged = await build.blobs.stage();
        for (let at = 0; at < body.length; at += CHUNK) await staged.write(body.subarray(at, at + CHUNK));
        await staged.finish();
        await staged.read(0, 4096);
        await staged.release({ keepOpen: true });
        await staged.commit({ studyInstanceUID: '2.25.1', sopInstanceUID: `2.25.1.${++serial}` });
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { cpu: (cpu.user + cpu.system) / 1000 / COUNT, switches: (contextSwitches() - switches0) / COUNT, perS: COUNT / ((performance.now() - t0) / 1000) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const builds = [await openBuild(opt.dist, 'A')];
if (opt['vs-dist']) builds.push(await openBuild(opt['vs-dist'], 'B'));
try {
  for (const b of builds) await measure(b); // warm-up
  const runs = Object.fromEntries(builds.map((b) => [b.name, []]));
  for (let r = 0; r < Number(opt.rounds); r++) {
    for (const b of r % 2 === 0 ? builds : [...builds].reverse()) runs[b.name].push(await measure(b));
  }
  const summary = { A: opt.dist, ...(opt['vs-dist'] ? { B: opt['vs-dist'] } : {}), blobs: COUNT, rounds: Number(opt.rounds), results: {} };
  for (const [name, ms] of Object.entries(runs)) {
    summary.results[name] = { cpuMsPerBlob: +median(ms.map((m) => m.cpu)).toFixed(3), minCpuMsPerBlob: +Math.min(...ms.map((m) => m.cpu)).toFixed(3), contextSwitchesPerBlob: +median(ms.map((m) => m.switches)).toFixed(1), blobsPerS: Math.round(median(ms.map((m) => m.perS))) };
  }
  if (runs.B) summary['paired B/A cpu'] = +median(runs.A.map((a, i) => runs.B[i].cpu / a.cpu)).toFixed(2);
  console.log(JSON.stringify(summary, null, 2));
} finally {
  for (const b of builds) await b.close();
}
