// Side-by-side table of two or more result files written by `npm run conformance -- --json FILE`:
//   node --import tsx conformance/suite/compare.ts dicomvault.json orthanc.json > table.md
// One row per check (in suite order); a cell is "pass", "fail" or "expected fail"; the last column gives the
// ledger's reasons for the expected failures.
import fs from 'node:fs';
import type { CheckResult } from './suite.js';

interface ResultFile {
  server: string;
  results: CheckResult[];
}

const files = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as ResultFile);
if (files.length === 0) {
  process.stderr.write('usage: compare.ts RESULTS.json [RESULTS.json ...]\n');
  process.exit(2);
}
const cell = (r: CheckResult | undefined): string =>
  r === undefined ? 'not run' : r.outcome === 'pass' ? (r.expectedFailure ? 'pass (ledger: fail)' : 'pass') : r.expectedFailure ? 'expected fail' : '**FAIL**';
const escape = (s: string) => s.replace(/\|/g, '\\|');

const names = [...new Set(files.flatMap((f) => f.results.map((r) => r.name)))];
const lines = [`| Check | ${files.map((f) => f.server).join(' | ')} | Why it fails |`, `|---|${files.map(() => '---|').join('')}---|`];
for (const name of names) {
  const row = files.map((f) => f.results.find((r) => r.name === name));
  const why = row.flatMap((r, k) => (r?.outcome === 'fail' ? [`${files[k]!.server}: ${r.expectedFailure ?? r.detail ?? ''}`] : []));
  lines.push(`| ${escape(name)} | ${row.map(cell).join(' | ')} | ${escape(why.join('; '))} |`);
}
const totals = files.map((f) => `${f.server}: ${f.results.filter((r) => r.outcome === 'pass').length}/${f.results.length} pass`);
process.stdout.write(`${lines.join('\n')}\n\nTotals: ${totals.join(', ')}.\n`);
