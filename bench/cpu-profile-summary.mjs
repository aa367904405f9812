#!/usr/bin/env node
// Summarises V8 CPU profiles (node --cpu-prof) of the server: self time by area of the code and by function,
// in ms per instance when --instances is given, and the GC pauses of a --trace-gc log. Used by
// bench/stow-profile.sh; works on any .cpuprofile.
//
//   node bench/cpu-profile-summary.mjs [--instances N] [--top 25] [--gc gc.log] FILE.cpuprofile...
//
// Native frames (no script: crypto's update, SQLite's run, a write syscall) are charged to the JS frame that
// called them, so "storage" includes the AES-GCM and fs calls made from src/storage, "index" the SQLite work.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt, positionals: files } = parseArgs({
  allowPositionals: true,
  options: { instances: { type: 'string' }, top: { type: 'string', default: '25' }, gc: { type: 'string' } },
});
const instances = Number(opt.instances ?? 0);
const round = (x, d = 2) => (Math.round(x * 10 ** d) / 10 ** d).toFixed(d);

/** First match wins: the area of a script URL (dist/ of this tree, node internals, dependencies). */
const AREAS = [
  ['gc', (u, f) => f === '(garbage collector)'],
  ['idle', (u, f) => f === '(idle)'],
  ['program', (u, f) => f === '(program)' || f === '(root)'],
  ['audit', (u) => /\/dist\/audit\//.test(u)],
  ['multipart', (u) => /\/dist\/http\/multipart\.js/.test(u)],
  ['stow route', (u) => /\/dist\/http\/routes\/stow-rs\.js/.test(u)],
  ['store service', (u) => /\/dist\/services\//.test(u)],
  ['storage (blobs, AES-GCM, SHA-256)', (u) => /\/dist\/storage\//.test(u)],
  ['index (SQLite)', (u) => /\/dist\/index\//.test(u)],
  ['dicom scan/parse', (u) => /\/dist\/dicom\//.test(u)],
  ['http/plugins (ours)', (u) => /\/dist\/(http|security|policy)\//.test(u)],
  ['fastify', (u) => /node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request)/.test(u)],
  ['pino', (u) => /node_modules\/(pino|sonic-boom|thread-stream)/.test(u)],
  ['other deps', (u) => /node_modules\//.test(u)],
  ['other ours', (u) => /\/dist\//.test(u)],
  ['node tls/net/http', (u) => /^node:(_tls|tls|net|_http|http|internal\/(tls|stream_base|js_stream|http))/.test(u) || /node:internal\/streams/.test(u)],
  ['node crypto', (u) => /^node:internal\/crypto/.test(u)],
  ['node fs', (u) => /^node:(fs|internal\/fs)/.test(u)],
  ['node worker/messaging', (u) => /^node:internal\/(worker|per_context\/messageport)/.test(u)],
  ['node other', (u) => u.startsWith('node:')],
];

function areaOf(url, fn) {
  for (const [name, test] of AREAS) if (test(url, fn)) return name;
  return undefined;
}

function summarise(file) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // area and "owner" (the nearest frame with a script) of every node
  const info = new Map();
  const resolve = (id) => {
    if (info.has(id)) return info.get(id);
    const n = byId.get(id);
    const { url, functionName, lineNumber } = n.callFrame;
    let area = areaOf(url, functionName);
    let owner = url ? `${functionName || '(anonymous)'} ${url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}` : undefined;
    if (!area || !owner) {
      const p = parent.has(id) ? resolve(parent.get(id)) : { area: 'other', owner: '(no script)' };
      area ??= p.area;
      owner = owner ?? `${functionName || '(native)'} <- ${p.owner}`;
      if (!url && ['(garbage collector)', '(idle)', '(program)', '(root)'].includes(functionName)) owner = functionName;
    }
    const r = { area, owner };
    info.set(id, r);
    return r;
  };
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const areas = new Map();
  const owners = new Map();
  let total = 0;
  for (const [id, us] of selfUs) {
    const { area, owner } = resolve(id);
    areas.set(area, (areas.get(area) ?? 0) + us);
    owners.set(owner, (owners.get(owner) ?? 0) + us);
    total += us;
  }
  const busy = total - (areas.get('idle') ?? 0);
  const line = (name, us) =>
    `  ${round(us / 1000, 0).padStart(8)} ms ${round((100 * us) / busy, 1).padStart(5)} %` +
    (instances ? ` ${round(us / 1000 / instances, 3).padStart(7)} ms/inst` : '') +
    `  ${name}`;
  const out = [`${path.basename(file)}: ${round(total / 1e6, 1)} s profiled, ${round(busy / 1e6, 1)} s busy (not idle)` + (instances ? `, ${instances} instances` : '')];
  out.push(' by area (self time; % of busy):');
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1])) if (a !== 'idle') out.push(line(a, us));
  out.push(` top ${opt.top} functions (self time):`);
  for (const [o, us] of [...owners].sort((x, y) => y[1] - x[1]).slice(0, Number(opt.top))) if (o !== '(idle)') out.push(line(o, us));
  return out.join('\n');
}

function gcSummary(file) {
  const kinds = new Map();
  let first;
  let last;
  for (const l of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /\]\s+(\d+) ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact|Mark-Compact \(reduce\))[^,]*?([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ ([\d.]+) ms/.exec(l);
    if (!m) continue;
    const t = Number(m[1]);
    first ??= t;
    last = t;
    const k = kinds.get(m[2]) ?? { count: 0, pauseMs: 0, heapMb: 0 };
    k.count++;
    k.pauseMs += Number(m[7]);
    k.heapMb = Math.max(k.heapMb, Number(m[6]));
    kinds.set(m[2], k);
  }
  const secs = ((last ?? 0) - (first ?? 0)) / 1000;
  const out = [`GC (--trace-gc, every isolate: main thread and parse workers, over ${round(secs, 1)} s):`];
  for (const [k, v] of kinds) {
    out.push(
      `  ${k}: ${v.count} (${round(v.count / Math.max(secs, 1e-9), 1)}/s), ${round(v.pauseMs, 0)} ms paused` +
        (instances ? ` (${round(v.pauseMs / instances, 3)} ms/inst)` : '') +
        `, heap up to ${round(v.heapMb, 0)} MB`,
    );
  }
  return out.join('\n');
}

for (const f of files) console.log(summarise(f), '\n');
if (opt.gc) console.log(gcSummary(opt.gc));
