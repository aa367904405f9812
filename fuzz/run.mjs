#!/usr/bin/env node
// Runs one fuzz target under Jazzer.js (coverage-guided, libFuzzer engine): fuzz/README.md tells how.
//
//   node fuzz/run.mjs <target> [seconds] [-- more libFuzzer flags]
//   npm run fuzz -- multipart 600
//
// <target> is a file fuzz/<target>.fuzz.ts. New interesting inputs go to fuzz/work/<target>/ (not committed;
// it grows, and a later run starts from it), the committed seeds and regressions are read too. A crash or
// hang writes its input to fuzz/work/artifacts/ and exits non-zero.
// FUZZ_WORK_DIR moves the work folder (the CI smoke test uses a temporary one).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const [target, seconds = '60'] = dash === -1 ? argv : argv.slice(0, dash);
const extra = dash === -1 ? [] : argv.slice(dash + 1);
const targets = readdirSync(here).filter((f) => f.endsWith('.fuzz.ts')).map((f) => f.replace(/\.fuzz\.ts$/, ''));
if (!target || !targets.includes(target) || !/^[0-9]+$/.test(seconds)) {
  console.error(`usage: node fuzz/run.mjs <${targets.join('|')}> [seconds] [-- libFuzzer flags]`);
  process.exit(2);
}

// The shipped addon needs glibc 2.38; jazzer-compat.mjs makes it load on Debian 12 (and does nothing elsewhere).
const compat = spawnSync(process.execPath, [path.join(here, 'jazzer-compat.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
if (compat.status !== 0) process.exit(compat.status ?? 1);

const work = path.resolve(process.env.FUZZ_WORK_DIR ?? path.join(here, 'work'));
const corpus = path.join(work, target);
const artifacts = path.join(work, 'artifacts');
mkdirSync(corpus, { recursive: true });
mkdirSync(artifacts, { recursive: true });

const args = [
  // TypeScript: tsx's loader first, Jazzer.js's instrumenting loader on top of it
  '--import=tsx',
  require.resolve('@jazzer.js/core/dist/cli.js'),
  // Jazzer.js appends ".js" to a name without one; tsx resolves that to the .ts file
  path.join(here, `${target}.fuzz`),
  corpus,
  path.join(here, 'corpus', target),
  path.join(here, 'regressions', target),
  // only our code is worth coverage feedback (node_modules is excluded by default, the tests' helpers too)
  '--includes=/src/',
  '--includes=/fuzz/',
  // the bug detectors look for command injection and path traversal through child_process and fs: the
  // targets do neither, and the prototype-pollution one costs a full object scan per run
  '--disable_bug_detectors=.*',
  '--timeout=10000',
  '--',
  `-max_total_time=${seconds}`,
  '-max_len=65536',
  '-rss_limit_mb=2048',
  '-print_final_stats=1',
  `-artifact_prefix=${artifacts}${path.sep}`,
  // the framing tokens the target's parser looks for (a mutation rarely invents "\r\n--" or "DICM")
  ...(existsSync(path.join(here, `${target}.dict`)) ? [`-dict=${path.join(here, `${target}.dict`)}`] : []),
  ...extra,
];
// The repository root as working directory: --import=tsx resolves from there. No inherited NODE_OPTIONS: a
// preloaded hook of the caller's (tap's @tapjs/processinfo under `npm test`) stops the fuzzing loop right after
// the seed corpus, with exit code 1 and no finding. That hook also puts NODE_OPTIONS back into the environment
// of every child it sees spawned, so it is removed by env(1), after the spawn.
const run = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, ...args], { stdio: 'inherit', cwd: path.dirname(here) });
process.exit(run.status ?? 1);
