#!/usr/bin/env node
// The policy decision STOW asks per instance (`store` on the study as it would be after the instance; issue 8), the
// same question many times as a STOW of one study asks it, between two builds in one process: CPU per decision.
// With the decision cache (policy/policy-engine.ts) only the first asks Cedar.
//
//   node bench/stow-decision-cache.mjs --dist /path/a/dist [--vs-dist /path/b/dist] [--count 5000] [--rounds 5]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    dist: { type: 'string', default: new URL('../dist', import.meta.url).pathname },
    'vs-dist': { type: 'string' },
    count: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '5' },
  },
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dv-decision-'));
const file = path.join(dir, 'policies.cedar');
// A gateway that may store CT of its own sites, and a forbid every decision evaluates too.
fs.writeFileSync(
  file,
  `@id("gateway-store")
permit (principal in Role::"gateway", action == Action::"store", resource is Study)
when { resource.modalities.contains("CT") && principal.sites.contains(resource.institution) };
@id("no-vip")
forbid (principal, action, resource is Study) when { resource.labels.contains("vip") && !context.breakGlass };
`,
);
const gateway = { kind: 'certificate', id: 'urn:dicomvault:principal:gw', roles: ['gateway'], attributes: { institution: '', referringPhysician: '', npi: '', sites: ['BENCH'] } };
const study = { studyInstanceUID: '2.25.123456789012345678901234567890', institution: 'BENCH', referringPhysician: '', modalities: ['CT'], accessionNumber: 'S1', patientId: 'P1', studyDate: 20240131, labels: [], confidentiality: '' };

const builds = [];
for (const [name, dist] of [['A', opt.dist], ['B', opt['vs-dist']]]) {
  if (!dist) continue;
  const { CedarPolicyEngine } = await import(pathToFileURL(path.join(dist, 'policy/policy-engine.js')).href);
  builds.push({ name, engine: CedarPolicyEngine.fromFile(file) });
}
const COUNT = Number(opt.count);
const runs = Object.fromEntries(builds.map((b) => [b.name, []]));
for (let r = 0; r < Number(opt.rounds) + 1; r++) {
  for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
    const cpu0 = process.cpuUsage();
    // A fresh StudyAttributes object each time, as store-instances.ts derives one per instance.
    for (let i = 0; i < COUNT; i++) {
      if (!b.engine.decide(gateway, 'store', { study: { ...study, modalities: ['CT'] } }, { breakGlassReason: '' }).allowed) throw new Error('denied');
    }
    const cpu = process.cpuUsage(cpu0);
    if (r > 0) runs[b.name].push((cpu.user + cpu.system) / 1000 / COUNT); // round 0 warms up
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const b of builds) console.log(`${b.name} (${b.name === 'A' ? opt.dist : opt['vs-dist']}): ${median(runs[b.name]).toFixed(4)} ms CPU per decision (median of ${runs[b.name].length} rounds of ${COUNT})`);
fs.rmSync(dir, { recursive: true, force: true });
