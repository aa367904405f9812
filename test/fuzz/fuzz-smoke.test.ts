// The fuzz targets in fuzz/ (issue 8): every committed seed and regression input replayed through each target,
// then a short coverage-guided run of each under Jazzer.js (FUZZ_SMOKE_SECONDS, 20 s by default). Long runs
// are done by hand (fuzz/README.md); a crash found here is a real bug: the failure prints the input, which
// goes into fuzz/regressions/<target>/ with the fix.

import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import * as multipartTarget from '../../fuzz/multipart.fuzz.js';
import * as part10Target from '../../fuzz/part10-scan.fuzz.js';
import { parseMultipartContentType, readMultipart } from '../../src/http/multipart.js';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { scanPart10 } from '../../src/dicom/part10-scan.js';

const fuzzDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fuzz');
const SECONDS = Number(process.env.FUZZ_SMOKE_SECONDS ?? 20);

const TARGETS = {
  multipart: multipartTarget.fuzz,
  'part10-scan': part10Target.fuzz,
} as const;

async function inputs(target: string): Promise<{ name: string; bytes: Buffer }[]> {
  const out: { name: string; bytes: Buffer }[] = [];
  for (const kind of ['corpus', 'regressions']) {
    const dir = path.join(fuzzDir, kind, target);
    // (.gitkeep keeps an empty folder in git)
    for (const name of (await readdir(dir)).filter((n) => !n.startsWith('.')).sort()) out.push({ name: `${kind}/${target}/${name}`, bytes: await readFile(path.join(dir, name)) });
  }
  return out;
}

for (const [target, fuzz] of Object.entries(TARGETS)) {
  t.test(`${target}: committed seeds and regressions pass the target's checks`, async (t) => {
    const all = await inputs(target);
    t.ok(all.length >= 5, `${all.length} inputs`);
    for (const { name, bytes } of all) {
      try {
        await fuzz(bytes);
        t.pass(name);
      } catch (e) {
        t.fail(`${name}: ${(e as Error).message}`);
      }
    }
  });
}

// Seeds are only worth their place if they reach the deep paths: whole STOW bodies and scannable objects.
t.test('multipart seeds are well-formed STOW bodies, each with a part', async (t) => {
  for (const { name, bytes } of await inputs('multipart')) {
    if (!name.startsWith('corpus/')) continue;
    const lf = bytes.indexOf(0x0a);
    const { boundary } = parseMultipartContentType(bytes.toString('latin1', 0, lf));
    let parts = 0;
    async function* body() {
      yield bytes.subarray(lf + 1);
    }
    for await (const part of readMultipart(body(), boundary, multipartTarget.LIMITS)) {
      for await (const _ of part.body);
      parts++;
    }
    t.ok(parts > 0, `${name}: ${parts} parts`);
  }
});

t.test('most Part 10 seeds scan whole; the broken ones are refused', async (t) => {
  const broken = new Set(['truncated-header.dcm', 'seq-no-delimiter.dcm']);
  for (const { name, bytes } of await inputs('part10-scan')) {
    if (!name.startsWith('corpus/')) continue;
    const outcome = await scanPart10(bufferSource(bytes), part10Target.LIMITS);
    t.equal(outcome.ok, !broken.has(path.basename(name)), `${name}: ${outcome.ok ? 'scanned' : outcome.failure.detail}`);
  }
});

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

for (const target of Object.keys(TARGETS)) {
  t.test(`${target}: ${SECONDS} s of coverage-guided fuzzing find no crash`, async (t) => {
    const work = await mkdtemp(path.join(os.tmpdir(), `dicomvault-fuzz-${target}-`));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    const { code, output } = await run([path.join(fuzzDir, 'run.mjs'), target, String(SECONDS)], { FUZZ_WORK_DIR: work });
    // libFuzzer numbers its status lines with the count of inputs run so far ("#5120 NEW ...", "#51490 DONE ...")
    const runs = Math.max(0, ...[...output.matchAll(/^#(\d+)\s/gm)].map((m) => Number(m[1])));
    const coverage = /INITED cov: (\d+)/.exec(output)?.[1];
    if (code !== 0) {
      const artifacts = await readdir(path.join(work, 'artifacts')).catch(() => [] as string[]);
      const found = await Promise.all(
        artifacts.map(async (a) => `${a} (base64): ${(await readFile(path.join(work, 'artifacts', a))).toString('base64')}`),
      );
      t.fail(`the fuzzer exited with ${code}:\n${output.split('\n').filter((l) => !/^#\d+\s+(NEW|REDUCE|pulse)/.test(l)).slice(-40).join('\n')}\n${found.join('\n')}`);
      return;
    }
    // It really ran instrumented code: coverage counters were hit and inputs executed.
    t.ok(coverage !== undefined && Number(coverage) > 100, `coverage at start: ${coverage} edges`);
    t.ok(runs > 200, `${runs} inputs executed`, { tail: output.split('\n').slice(-15).join('\n') });
  });
}
