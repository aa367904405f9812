// The mixed load of issue 8 item 3 in its CI variant: bench/load.mjs, a second process, runs concurrent STOW of
// new instances, QIDO, series metadata and frames against `dicomvault serve` over mutual TLS for LOAD_SECONDS
// (default 20) and fails on any error or on a server RSS that keeps growing. The long variant is by hand, with
// its figures in the README ("Under load"): node bench/load.mjs URL --data DIR ... --seconds 600.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { TESTDATA } from '../helpers/testdata.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startServer } from './cli-process.js';

const repo = path.resolve(import.meta.dirname, '../..');
const seconds = process.env.LOAD_SECONDS ?? '20';

t.test('a mixed load from another process: no error, memory flat', async (t) => {
  const dir = tempDir(t, 'dicomvault-load-');
  // 40 small CT/MR/PET instances in 6 studies from the shared benchmark generator (deterministic).
  const data = path.join(dir, 'set');
  // The real path: gen.mjs runs only when argv[1] is its own URL, which a symlinked ../shared would not be.
  const gen = fs.realpathSync(path.resolve(TESTDATA, '../bench/gen.mjs'));
  execFileSync(process.execPath, [gen, '--out', data, '--count', '40', '--studies', '6', '--rows', '64', '--cols', '64', '--seed', '7'], { stdio: 'ignore' });
  const archive = path.join(dir, 'archive');
  fs.mkdirSync(archive);
  t.ok(fs.existsSync(path.join(data, 'manifest.json')), 'the generator wrote the data set');
  const server = await startServer(t, archive);
  const certs = path.join(dir, 'certs');
  fs.mkdirSync(certs);
  for (const [name, bytes] of Object.entries(server.tls)) fs.writeFileSync(path.join(certs, `${name}.pem`), bytes);
  const report = path.join(dir, 'load.json');
  const args = [path.join(repo, 'bench/load.mjs'), server.base, '--data', data, '--seconds', seconds, '--json', report];
  args.push('--cert', path.join(certs, 'cert.pem'), '--key', path.join(certs, 'key.pem'), '--ca', path.join(certs, 'ca.pem'), '--pid', String(server.pid));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.comment(out.trim());
  t.equal(code, 0, 'bench/load.mjs passed (no error, RSS flat)');
  const result = JSON.parse(fs.readFileSync(report, 'utf8')) as { errors: number; flat: boolean; stats: Record<string, { requests: number }>; rss: unknown[] };
  t.equal(result.errors, 0, 'no request failed');
  t.ok(result.flat, 'the server RSS did not keep growing');
  for (const kind of ['stow', 'qido', 'metadata', 'frames']) t.ok(result.stats[kind]!.requests > 0, `${kind} requests were made`);
  t.ok(result.rss.length >= 5, 'the server RSS was sampled');
  t.equal(await server.stop(), 0, 'the server still stops cleanly');
});
