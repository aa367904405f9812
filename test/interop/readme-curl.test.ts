// The curl recipes of README.md, run as written with the real curl binary (issue 7).
//
// How "as written" is kept:
// - Every `curl` command in README.md's fenced code blocks is extracted (backslash-newline continuations
//   joined), and the test fails if README.md has a curl line outside them or a recipe this file has no
//   expectation for, so a new or changed recipe cannot go untested.
// - The server is started as `npm start` starts it (`dicomvault serve`, development profile, run here from
//   src/ through tsx instead of the build in dist/) in a temporary working folder, where its first start creates
//   the layout the recipes name: certs/dev/ca.crt, certs/dev/client.crt, certs/dev/client.key.
// - One substitution: the README's https://127.0.0.1:8443 becomes the origin the server actually listens on
//   (port 0, any free port: 8443 may be taken by a developer's server or another test). Nothing else in the
//   command changes; it runs through bash in that folder, with image.dcm there (a CT slice of the shared data).
// - curl runs with HOME set to a private folder whose .curlrc only adds `write-out` of the HTTP status to
//   stderr, so the test sees the status while the command line and its stdout stay as written (and a
//   developer's own ~/.curlrc cannot change the outcome).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { startServer } from '../e2e/cli-process.js';
import { tempDir } from '../helpers/temp-dir.js';
import { indexRows, testFile } from '../helpers/testdata.js';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');
const README_ORIGIN = /https:\/\/(?:127\.0\.0\.1|localhost):8443(?=\/)/g;

// curl from Debian when the machine has none (a clean CI machine as root; sudo otherwise).
execFileSync(
  'bash',
  [
    '-c',
    'command -v curl >/dev/null || { s=; [ "$(id -u)" -eq 0 ] || s=sudo; $s apt-get update -qq && DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq --no-install-recommends curl ca-certificates >&2; }',
  ],
  { stdio: ['ignore', 'inherit', 'inherit'] },
);

/** The curl commands of README.md's fenced code blocks, continuation lines joined, in README order. */
function readmeCurlRecipes(markdown: string): string[] {
  const recipes: string[] = [];
  for (const block of markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)) {
    const lines = block[1]!.replace(/\\\n\s*/g, '').split('\n');
    recipes.push(...lines.map((l) => l.trim()).filter((l) => /^curl\s/.test(l)));
  }
  return recipes;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  httpStatus: number;
}

function runShell(command: string, cwd: string, home: string): Promise<Run> {
  const child = spawn('bash', ['-c', command], { cwd, env: { PATH: process.env.PATH ?? '', HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr, httpStatus: Number(/HTTP_STATUS=(\d+)/.exec(stderr)?.[1] ?? 0) })),
  );
}

const image = indexRows().find((r) => r.path === 'generated/ct-2studies/study001/series01/0001.dcm')!;

type DicomJson = Record<string, { Value?: unknown[] }>;

/**
 * What each README recipe must do, in the order they run: the store recipe first, so the search that follows
 * finds something (on an empty archive it would answer 204 with no body, which proves little).
 */
const EXPECTATIONS: { name: string; recipe: RegExp; check(t: Test, run: Run): void }[] = [
  {
    name: 'store a file (single-part application/dicom)',
    recipe: /-H 'Content-Type: application\/dicom' --data-binary @image\.dcm \S+\/dicomweb\/studies$/,
    check(t, run) {
      t.equal(run.httpStatus, 200, 'STOW: 200, stored');
      const body = JSON.parse(run.stdout) as DicomJson;
      t.notOk(body['00081198'], 'no FailedSOPSequence');
      t.match(body['00081199']?.Value, [{ '00081155': { Value: [image.sopUid] } }], 'ReferencedSOPSequence names the stored instance');
    },
  },
  {
    name: 'ask whether the server is ready (README "Operations")',
    recipe: /^curl --cacert certs\/dev\/ca\.crt --cert certs\/dev\/client\.crt --key certs\/dev\/client\.key \S+\/readyz$/,
    check(t, run) {
      t.equal(run.httpStatus, 200, 'readiness: 200');
      t.match(JSON.parse(run.stdout), { status: 'ready', checks: { index: { state: 'ok' }, keys: { state: 'ok' }, audit: { state: 'ok' }, disk: { state: 'ok' } } }, 'each check named');
    },
  },
  {
    name: 'search for studies',
    recipe: /^curl --cacert certs\/dev\/ca\.crt --cert certs\/dev\/client\.crt --key certs\/dev\/client\.key \S+\/dicomweb\/studies$/,
    check(t, run) {
      t.equal(run.httpStatus, 200, 'QIDO: 200');
      const studies = JSON.parse(run.stdout) as DicomJson[];
      t.same(
        studies.map((s) => s['0020000D']?.Value?.[0]),
        [image.studyUid],
        'the stored study, as application/dicom+json',
      );
    },
  },
];

t.test('README.md curl recipes, run as written against `dicomvault serve`', async (t) => {
  const markdown = fs.readFileSync(README, 'utf8');
  const recipes = readmeCurlRecipes(markdown);
  t.ok(recipes.length > 0, 'README.md has curl recipes');
  t.equal(recipes.length, markdown.match(/^\s*curl\s/gm)?.length, 'every curl line of README.md is in a fenced code block');
  for (const recipe of recipes) {
    t.equal(EXPECTATIONS.filter((e) => e.recipe.test(recipe)).length, 1, `one expectation for: ${recipe}`);
  }
  for (const e of EXPECTATIONS) t.equal(recipes.filter((r) => e.recipe.test(r)).length, 1, `one README recipe to ${e.name}`);

  const cwd = tempDir(t, 'dicomvault-readme-');
  const server = await startServer(t, cwd);
  const origin = new URL(server.base).origin;
  fs.writeFileSync(path.join(cwd, 'image.dcm'), testFile(image.path));
  const home = tempDir(t, 'dicomvault-readme-home-');
  fs.writeFileSync(path.join(home, '.curlrc'), 'write-out = "%{stderr}HTTP_STATUS=%{http_code}\\n"\n');

  for (const e of EXPECTATIONS) {
    const recipe = recipes.find((r) => e.recipe.test(r))!;
    const command = recipe.replace(README_ORIGIN, origin);
    t.not(command, recipe, 'the README origin was replaced by the listener');
    await t.test(e.name, async (t) => {
      const run = await runShell(command, cwd, home);
      t.equal(run.code, 0, `curl exits 0: ${command}`);
      if (run.code !== 0) t.comment(run.stderr);
      e.check(t, run);
    });
  }
});
