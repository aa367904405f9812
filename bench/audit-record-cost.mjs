#!/usr/bin/env node
// The CPU one audited request costs the server in writing its record, measured without HTTP (issue 6: audit
// writing under 5 % of QIDO and STOW throughput). The throughput A/B of bench/audit-cost.sh swings by tens of
// percent between rounds on a 2-core machine shared with its client, too much to resolve a few percent; this
// measures the writing alone, precisely, so that it can be set against a request's server CPU time (the
// harness's "srv ms/op").
//
// For each request a QIDO route would make: a CollectedRequestAudit with the query and the studies of a result
// page (`--kind store`: what a STOW of one instance collects, its study with the SOP class), then Auditor.request()
// as the audit-trail plugin calls it after the response. Against a real AuditLog
// (RFC 8785 form, SHA-256 chain, AES-256-GCM, group commit with fdatasync, checkpoints) in a temporary folder,
// and against an Auditor that writes nothing (what is left is the loop itself). CPU = user + system time of
// the whole process (all threads: the fdatasyncs too), and of the main thread alone (what serves requests; from
// /proc/self/task, 10 ms ticks), rounds alternated, medians reported. The server writes on a thread of its own
// (audit/audit-log-thread.ts, `--writer thread`); `--writer inline` measures AuditLog on the main thread.
//
//   npm run build && node bench/audit-record-cost.mjs [--requests 20000] [--rounds 7] [--studies 1] [--rate 2000]
//        [--commit-delay 10]   (audit.commitDelayMs)   [--writer thread|inline]   [--kind query|store]
//
// --rate: requests per second offered (the group commit's batches depend on it; 2000/s is a loaded server).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AuditLog } from '../dist/audit/audit-log.js';
import { AuditLogThread } from '../dist/audit/audit-log-thread.js';
import { Auditor, CollectedRequestAudit } from '../dist/audit/auditor.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '7' },
    studies: { type: 'string', default: '1' },
    rate: { type: 'string', default: '2000' },
    'commit-delay': { type: 'string', default: '10' },
    writer: { type: 'string', default: 'thread' },
    kind: { type: 'string', default: 'query' },
  },
});
const requests = Number(values.requests);
const rounds = Number(values.rounds);
const studies = Number(values.studies);
const rate = Number(values.rate);

class UnwrittenAuditor extends Auditor {
  request() {}
}

const source = { id: 'https://127.0.0.1:8443/dicomweb', typeCode: '4' };
const facts = {
  requestor: { userId: 'gateway-01', alternativeUserId: randomBytes(32).toString('hex'), address: '127.0.0.1' },
  uri: 'GET /dicomweb/studies',
  outcome: 0,
};

/** What the QIDO route collects for one request (routes/qido-rs.ts); or the STOW route, for one instance (stow-rs.ts). */
function collected(i) {
  const c = new CollectedRequestAudit();
  if (values.kind === 'store') {
    c.event('store', { replaced: false });
    c.study({ studyInstanceUID: `1.2.826.0.1.3680043.8.498.${i}`, patientId: `PAT${String(i % 997).padStart(6, '0')}`, accessionNumber: `A${i}`, sopClasses: new Map([['1.2.840.10008.5.1.4.1.1.2', 1]]) });
    return c;
  }
  c.event('query', { query: `PatientID=PAT${String(i % 997).padStart(6, '0')}&includefield=00081030`, resource: 'SearchForStudies' });
  for (let s = 0; s < studies; s++) c.study({ studyInstanceUID: `1.2.826.0.1.3680043.8.498.${i}.${s}`, patientId: `PAT${String(i % 997).padStart(6, '0')}` });
  return c;
}

/** CPU microseconds of the main thread so far (utime + stime of /proc/self/task/<pid>/stat, in 10 ms ticks). */
function mainThreadCpu() {
  const fields = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** CPU microseconds per request (whole process, main thread), offering `rate` requests/s in 1 ms slices. */
async function run(auditor) {
  const perSlice = Math.max(1, Math.round(rate / 1000));
  const start = process.cpuUsage();
  const mainStart = mainThreadCpu();
  for (let i = 0; i < requests; ) {
    for (let k = 0; k < perSlice && i < requests; k++, i++) auditor.request(collected(i), facts);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await auditor.flush();
  const used = process.cpuUsage(start);
  return { all: (used.user + used.system) / requests, main: (mainThreadCpu() - mainStart) / requests };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dv-audit-cost-'));
try {
  if (!['thread', 'inline'].includes(values.writer)) throw new Error('--writer thread|inline');
  if (!['query', 'store'].includes(values.kind)) throw new Error('--kind query|store');
  const log = await (values.writer === 'thread' ? AuditLogThread : AuditLog).open(dir, randomBytes(32), generateKeyPairSync('ed25519').privateKey, { commitDelayMs: Number(values['commit-delay']) });
  const written = new Auditor(log, source);
  const unwritten = new UnwrittenAuditor({ append: () => Promise.reject(new Error('not written')) }, source);
  await run(written);
  await run(unwritten); // warm-up
  const a = [];
  const b = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await run(written));
    b.push(await run(unwritten));
  }
  await log.close();
  const show = (xs, key) => `${median(xs.map((x) => x[key])).toFixed(1)} µs (rounds: ${xs.map((x) => x[key].toFixed(1)).join(' ')})`;
  console.log(`${values.kind} requests per round ${requests}, rounds ${rounds}, studies per record ${values.kind === 'store' ? 1 : studies}, offered ${rate}/s, writer ${values.writer} (${os.cpus().length} cores)`);
  console.log(`written:   CPU per request ${show(a, 'all')}; main thread ${show(a, 'main')}`);
  console.log(`unwritten: CPU per request ${show(b, 'all')}; main thread ${show(b, 'main')}`);
  const cost = (key) => (median(a.map((x) => x[key])) - median(b.map((x) => x[key]))).toFixed(1);
  console.log(`audit writing: ${cost('all')} µs of CPU per request, ${cost('main')} µs of it on the main thread`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
