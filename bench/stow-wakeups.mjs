#!/usr/bin/env node
// Thread wake-ups and CPU per STOWed instance, one request at a time (issue 8: where STOW's time goes at c=1). A
// server idle between requests pays for every hop between threads (event loop, thread pool, workers) with a
// sleep and a wake-up, which costs tens of µs of CPU on a virtual machine. This counts them: voluntary context
// switches of all the server's threads (/proc/PID/task/*/status) and their time on CPU (schedstat), per instance,
// over N fresh 512x512 instances made as the harness's stow scenario makes them. Works against any STOW-RS server.
//
//   node bench/stow-wakeups.mjs BASE_URL PID [N=200] [TLS_DIR]   (TLS_DIR: client.crt, client.key, ca.crt)
//   Environment: DICOMVAULT_BENCH  the shared harness (default ../shared/bench from the repository)

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { freshStowBodies } from './lib/harness-stow.mjs';
import { threadCounters } from './lib/proc-threads.mjs';

const [url, pid, n = '200', tlsDir] = process.argv.slice(2);
if (!url || !pid) throw new Error('usage: node bench/stow-wakeups.mjs BASE_URL PID [N] [TLS_DIR]');
const WARM_UP = 20;
const bodies = await freshStowBodies({ perRequest: 1, count: Number(n) + WARM_UP, tag: `wakeups-${process.pid}` });
const client = tlsDir ? https : http;
const agent = tlsDir
  ? new https.Agent({ keepAlive: true, cert: fs.readFileSync(path.join(tlsDir, 'client.crt')), key: fs.readFileSync(path.join(tlsDir, 'client.key')), ca: fs.readFileSync(path.join(tlsDir, 'ca.crt')) })
  : new http.Agent({ keepAlive: true });

function post({ body, contentType }) {
  return new Promise((resolve, reject) => {
    const req = client.request(`${url}/studies`, { method: 'POST', agent, headers: { 'content-type': contentType, accept: 'application/dicom+json', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const threads = () => threadCounters(pid);

for (const body of bodies.slice(0, WARM_UP)) await post(body);
const before = threads();
const started = performance.now();
for (const body of bodies.slice(WARM_UP)) {
  const status = await post(body);
  if (status !== 200) throw new Error(`STOW answered ${status}`);
}
const seconds = (performance.now() - started) / 1000;
const after = threads();
const count = bodies.length - WARM_UP;
const per = (key, scale = 1) => ((after[key] - before[key]) / count / scale).toFixed(key === 'ns' ? 2 : 1);
console.log(
  `${url}: ${(count / seconds).toFixed(0)} instances/s; per instance ${per('voluntary')} wake-ups (voluntary switches), ${per('involuntary')} involuntary, ${per('ns', 1e6)} ms on CPU; ${fs.readdirSync(`/proc/${pid}/task`).length} threads`,
);
agent.destroy();
