// `dicomvault serve` as a process, the way `npm start` runs it: first start creates the development PKI,
// prints a working curl line, serves QIDO over mutual TLS, and stops cleanly on SIGTERM. A bad setting
// stops the start with one message.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { request } from '../helpers/https-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'src/cli/dicomvault.ts');
// Resolved here: the server runs in a temporary cwd where a bare 'tsx' cannot be found.
const tsx = import.meta.resolve('tsx');

function start(cwd: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', tsx, cli, 'serve'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', DICOMVAULT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 60 s: ${stdout} ${stderr}`)), 60_000);
    child.stdout.on('data', () => {
      const m = /listening on (https:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  return { child, listening, exited, output: () => ({ stdout, stderr }) };
}

t.test('first start: development PKI, curl line, QIDO over mutual TLS, clean stop', async (t) => {
  const cwd = tempDir(t);
  const server = start(cwd, { DICOMVAULT_SERVER_PORT: '0' });
  t.teardown(() => {
    server.child.kill('SIGKILL');
  });
  const url = await server.listening;
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+\/dicomweb$/);
  for (const f of ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt', 'client.key', 'client.p12']) {
    t.ok(fs.existsSync(path.join(cwd, 'certs/dev', f)), `certs/dev/${f}`);
  }
  t.equal(fs.statSync(path.join(cwd, 'certs/dev/client.key')).mode & 0o777, 0o600, 'private key readable by the owner only');
  t.ok(fs.existsSync(path.join(cwd, 'data/index.sqlite')), 'data folder created');
  const { stdout } = server.output();
  const curl = stdout.split('\n').find((l) => l.trim().startsWith('curl ') && l.includes('/studies') && !l.endsWith('\\'));
  t.ok(curl, 'a ready-to-paste curl line');
  t.match(stdout, /Created the key file keys\/kek\.json: every stored study is encrypted under it\. Back it up/, 'the new key file is announced');
  t.equal(fs.statSync(path.join(cwd, 'keys/kek.json')).mode & 0o777, 0o600, 'key file readable by the owner only');
  t.match(curl, /--cacert certs\/dev\/ca\.crt --cert certs\/dev\/client\.crt --key certs\/dev\/client\.key https:\/\/127\.0\.0\.1:\d+\/dicomweb\/studies/);
  const tls = {
    ca: fs.readFileSync(path.join(cwd, 'certs/dev/ca.crt')),
    cert: fs.readFileSync(path.join(cwd, 'certs/dev/client.crt')),
    key: fs.readFileSync(path.join(cwd, 'certs/dev/client.key')),
  };
  const res = await request(`${url}/studies`, tls);
  t.equal(res.status, 204, 'empty archive: no match');
  await t.rejects(request(`${url}/studies`, { ca: tls.ca }), 'no client certificate, no answer');
  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0, 'SIGTERM: graceful exit 0');
  // Second start reuses the PKI (no new CA: existing clients keep working).
  const caBefore = fs.readFileSync(path.join(cwd, 'certs/dev/ca.crt'), 'utf8');
  const again = start(cwd, { DICOMVAULT_SERVER_PORT: '0' });
  t.teardown(() => {
    again.child.kill('SIGKILL');
  });
  const url2 = await again.listening;
  t.notMatch(again.output().stdout, /Created the key file/, 'announced only when created');
  t.equal(fs.readFileSync(path.join(cwd, 'certs/dev/ca.crt'), 'utf8'), caBefore);
  t.equal((await request(`${url2}/studies`, tls)).status, 204);
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
});

t.test('a bad setting stops the start with one message', async (t) => {
  const cwd = tempDir(t);
  const server = start(cwd, { DICOMVAULT_SERVER_PORT: '99999' });
  t.equal(await server.exited, 2);
  await t.rejects(server.listening);
  t.match(server.output().stderr, /^dicomvault: configuration server\.port \(from DICOMVAULT_SERVER_PORT\): .*\n$/);
});

t.test('production profile without TLS files refuses to start and creates nothing', async (t) => {
  const cwd = tempDir(t);
  const server = start(cwd, { DICOMVAULT_PROFILE: 'production', DICOMVAULT_SERVER_PORT: '0' });
  t.equal(await server.exited, 2);
  await t.rejects(server.listening);
  t.match(server.output().stderr, /tls\.ca: is required in the production profile/);
  t.notOk(fs.existsSync(path.join(cwd, 'certs')), 'no certificate generated');
});

t.test('production profile with a missing key file names the file', async (t) => {
  const cwd = tempDir(t);
  const server = start(cwd, {
    DICOMVAULT_PROFILE: 'production',
    DICOMVAULT_SERVER_PORT: '0',
    DICOMVAULT_TLS_CA: path.join(cwd, 'ca.crt'),
    DICOMVAULT_TLS_CERT: path.join(cwd, 'server.crt'),
    DICOMVAULT_TLS_KEY: path.join(cwd, 'server.key'),
  });
  t.equal(await server.exited, 2);
  await t.rejects(server.listening);
  t.match(server.output().stderr, /^dicomvault: cannot start: TLS: .*ca\.crt/);
});
