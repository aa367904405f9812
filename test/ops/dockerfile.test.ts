// The Dockerfile (issue 8 item 5) cannot be built on this machine: what can be checked without Docker is checked
// here. Stages, the non-root user, volumes against the server's own configuration defaults, COPY sources that
// exist and are not excluded from the context, the CMD running the built CLI, and the HEALTHCHECK command itself,
// run with node against a real mutual-TLS listener.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { composeServer } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { REPO_ROOT } from '../helpers/access.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined, comments and the parser directive left out. */
function parse(text: string): Instruction[] {
  const joined = text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const space = l.indexOf(' ');
      return { keyword: l.slice(0, space).toUpperCase(), args: l.slice(space + 1).trim() };
    });
}

const DOCKERFILE = parse(fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const IGNORED = fs
  .readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

const stages = DOCKERFILE.filter((i) => i.keyword === 'FROM');
const lastFrom = DOCKERFILE.lastIndexOf(stages.at(-1)!);
const runtime = DOCKERFILE.slice(lastFrom);
const only = (keyword: string, within = runtime): Instruction => {
  const found = within.filter((i) => i.keyword === keyword);
  if (found.length !== 1) throw new Error(`expected one ${keyword} in the runtime stage, found ${found.length}`);
  return found[0]!;
};
/** `ENV A=1 B=2` pairs (the form the Dockerfile uses). */
const runtimeEnv: Record<string, string> = Object.fromEntries(
  runtime.filter((i) => i.keyword === 'ENV').flatMap((i) => [...i.args.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);
const json = (args: string): string[] => JSON.parse(args) as string[];

t.test('multi-stage: compiled in a full image, run from node:20-bookworm-slim', async (t) => {
  t.ok(stages.length >= 2, `${stages.length} stages`);
  t.match(stages[0]!.args, /^node:20-bookworm AS build$/);
  t.match(stages.at(-1)!.args, /^node:20-bookworm-slim\b/);
  const build = DOCKERFILE.slice(0, lastFrom);
  t.ok(build.some((i) => i.keyword === 'RUN' && i.args === 'npm ci'), 'the build stage installs with npm ci');
  t.ok(build.some((i) => i.keyword === 'RUN' && i.args === 'npm ci --omit=dev'), 'production dependencies installed apart');
  t.ok(build.some((i) => i.keyword === 'RUN' && i.args === 'npm run build'), 'the build stage compiles');
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
  t.equal(pkg.scripts.build, 'tsc -p tsconfig.build.json');
  const tsconfig = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
  t.same([tsconfig.compilerOptions.rootDir, tsconfig.compilerOptions.outDir], ['src', 'dist'], 'src/ compiles to dist/');
  t.notOk(runtime.some((i) => i.keyword === 'RUN' && /npm (ci|install)/.test(i.args)), 'the runtime stage installs nothing');
  const copied = runtime.filter((i) => i.keyword === 'COPY').map((i) => i.args);
  t.same(copied.filter((a) => a.startsWith('--from=')).sort(), ['--from=build /src/dist ./dist', '--from=deps /src/node_modules ./node_modules']);
});

t.test('COPY sources exist, are sent in the build context, and --from names an earlier stage', async (t) => {
  const named: string[] = [];
  for (const i of DOCKERFILE) {
    if (i.keyword === 'FROM') {
      const m = / AS (\S+)$/.exec(i.args);
      if (m) named.push(m[1]!);
    }
    if (i.keyword !== 'COPY') continue;
    const words = i.args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='));
    const sources = words.filter((w) => !w.startsWith('--')).slice(0, -1);
    if (from) {
      t.ok(named.includes(from.slice('--from='.length)), `${from}: a stage defined before`);
      continue;
    }
    for (const source of sources) {
      t.ok(fs.existsSync(path.join(REPO_ROOT, source)), `${source} exists`);
      const top = source.split('/')[0]!;
      t.notOk(IGNORED.includes(top), `${source} is not in .dockerignore`);
    }
  }
  for (const secret of ['keys', 'data', 'certs', 'node_modules', '.git']) t.ok(IGNORED.includes(secret), `${secret} stays out of the build context`);
});

t.test('a non-root user; volumes, port and health check files are where the configuration points', async (t) => {
  const user = only('USER').args;
  t.notMatch(user, /^(root|0)(:|$)/, `USER ${user}`);
  t.ok(DOCKERFILE.indexOf(only('USER')) < DOCKERFILE.indexOf(only('CMD')), 'set before the command');
  const dicomvaultEnv = Object.fromEntries(Object.entries(runtimeEnv).filter(([k]) => k.startsWith('DICOMVAULT_')));
  // Every DICOMVAULT_ variable must be a configuration key: an unknown one stops the start.
  const config = loadConfig({ env: dicomvaultEnv });
  const volumes = json(only('VOLUME').args);
  t.same(volumes.sort(), [config.storage.dataDir, path.dirname(config.keys.file), config.tls.devDir].sort(), 'data, keys and certs');
  t.equal(config.server.host, '0.0.0.0', 'listens beyond the container');
  t.equal(only('EXPOSE').args, String(config.server.port));
  for (const k of ['HEALTHCHECK_CA', 'HEALTHCHECK_CERT', 'HEALTHCHECK_KEY']) t.equal(path.dirname(runtimeEnv[k]!), config.tls.devDir, `${k} in the certs volume`);
  const prepared = runtime.find((i) => i.keyword === 'RUN' && i.args.startsWith('mkdir'))!.args;
  for (const v of volumes) t.ok(prepared.includes(`chown node:node`) && prepared.includes(v), `${v} made and given to the user`);
});

t.test('CMD runs the built CLI', async (t) => {
  const cmd = json(only('CMD').args);
  t.same(cmd, ['node', 'dist/cli/dicomvault.js', 'serve']);
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  t.equal(pkg.bin.dicomvault, cmd[1], 'the package bin');
  t.ok(fs.existsSync(path.join(REPO_ROOT, 'src/cli/dicomvault.ts')), 'compiled from src/cli/dicomvault.ts');
  t.equal(only('WORKDIR').args, '/app');
});

/** The node -e script of HEALTHCHECK, run as Docker would with the image's environment. */
async function healthcheck(env: Record<string, string>): Promise<number> {
  const [node, flag, script] = json(only('HEALTHCHECK').args.replace(/^.*?CMD\s+/, ''));
  t.equal(node, 'node');
  t.equal(flag, '-e');
  try {
    await run(process.execPath, ['-e', script!], { env: { ...runtimeEnv, ...env }, timeout: 10_000 });
    return 0;
  } catch (e) {
    return (e as { code?: number }).code ?? -1;
  }
}

async function listener(t: Test, env: Record<string, string>) {
  const certs = tempDir(t);
  const config = loadConfig({ env: { ...storageEnv(tempDir(t)), DICOMVAULT_TLS_DEV_DIR: certs, DICOMVAULT_SERVER_PORT: '0', ...env } });
  // What `dicomvault serve` runs: the development PKI is created in the certs folder, as in the image.
  const composed = await composeServer(config, createLogger('silent'));
  const app = buildApp(composed.deps);
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await app.close();
    await composed.storage.close();
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  // The image's HEALTHCHECK_* point into the certs volume: here the same file names in this test's folder.
  const files = Object.fromEntries(['HEALTHCHECK_CA', 'HEALTHCHECK_CERT', 'HEALTHCHECK_KEY'].map((k) => [k, path.join(certs, path.basename(runtimeEnv[k]!))]));
  return { app, port, env: { ...files, DICOMVAULT_SERVER_PORT: String(port) } };
}

t.test('HEALTHCHECK: the readiness route, asked over mutual TLS with the development client certificate', async (t) => {
  const script = only('HEALTHCHECK').args;
  t.match(script, /^--interval=\S+\s+--timeout=\S+\s+--start-period=\S+\s+--retries=\d+\s+CMD\s+\[/);
  const probed = /path:'([^']+)'/.exec(script)![1]!;
  const ready = await listener(t, {});
  t.ok(ready.app.hasRoute({ method: 'GET', url: probed }), `${probed} is a route`);
  t.equal(await healthcheck(ready.env), 0, 'ready: exit 0');
  t.equal(await healthcheck({ ...ready.env, HEALTHCHECK_SERVERNAME: 'not-the-server.example' }), 1, 'the server certificate is verified');
  const full = await listener(t, { DICOMVAULT_OPS_MIN_FREE_DISK_BYTES: String(2 ** 52) });
  t.equal(await healthcheck(full.env), 1, 'not ready (disk): exit 1');
  await full.app.close();
  t.equal(await healthcheck(full.env), 1, 'nothing listening: exit 1');
});
