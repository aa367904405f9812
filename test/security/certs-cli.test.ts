import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { runCertsCommand } from '../../src/cli/certs.js';
import { loadTlsMaterial } from '../../src/security/pki.js';
import { certificateIdentity, rolesFromCertificate } from '../../src/security/principal.js';
import { buildTlsServerOptions } from '../../src/security/tls-options.js';
import { tempDir } from '../helpers/temp-dir.js';

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCertsCommand(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

const fingerprintOf = (file: string) => new X509Certificate(fs.readFileSync(file)).fingerprint256.replaceAll(':', '').toLowerCase();

t.test('help and usage errors', async (t) => {
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^usage: dicomvault certs <subcommand> \[options\]\n/);
  t.match(help.stdout, /issue-client --name NAME \[--role ROLE\] --out DIR \[--ca-dir DIR\] \[--days N\]/);
  t.match(help.stdout, /Every \.p12 file has the password "dicomvault"\./);
  t.equal(help.stderr, '');

  t.same(await run(['init', '--help']), { code: 0, stdout: help.stdout, stderr: '' });
  t.same(await run(['issue-client', '-h']), { code: 0, stdout: help.stdout, stderr: '' });
  t.same(await run([]), { code: 2, stdout: '', stderr: help.stdout }, 'no subcommand: usage on stderr');

  t.same(await run(['bogus']), { code: 2, stdout: '', stderr: 'dicomvault certs: unknown subcommand "bogus" (try: dicomvault certs --help)\n' });
  t.same(await run(['init', '--bogus']), { code: 2, stdout: '', stderr: "dicomvault certs: Unknown option '--bogus'\n" });
  t.same(await run(['init', 'extra']), { code: 2, stdout: '', stderr: "dicomvault certs: Unexpected argument 'extra'. This command does not take positional arguments\n" });
  t.same(await run(['issue-client', '--out', 'x']), { code: 2, stdout: '', stderr: 'dicomvault certs: issue-client needs --name NAME\n' });
  t.same(await run(['issue-client', '--name', 'x']), { code: 2, stdout: '', stderr: 'dicomvault certs: issue-client needs --out DIR\n' });
  t.same(await run(['issue-client', '--name', 'x', '--out', 'y', '--days', '7d']), {
    code: 2,
    stdout: '',
    stderr: 'dicomvault certs: --days must be a whole number of days, got "7d"\n',
  });
});

t.test('certs init writes the development PKI and refuses to overwrite it', async (t) => {
  const dir = path.join(tempDir(t), 'dev');
  const first = await run(['init', '--dir', dir, '--host', 'pacs.example.org']);
  t.equal(first.code, 0);
  t.equal(first.stderr, '');
  t.same(fs.readdirSync(dir).sort(), ['ca.crt', 'ca.key', 'client.crt', 'client.key', 'client.p12', 'server.crt', 'server.key']);
  t.match(first.stdout, `Development PKI written to ${dir}\n`);
  t.match(first.stdout, /password: dicomvault\n/);
  t.match(first.stdout, /server certificate \(localhost, 127\.0\.0\.1, ::1, pacs\.example\.org\), 825 days/);
  t.match(first.stdout, `Client certificate SHA-256: ${fingerprintOf(path.join(dir, 'client.crt'))}\n`);
  t.equal(new X509Certificate(fs.readFileSync(path.join(dir, 'server.crt'))).checkHost('pacs.example.org'), 'pacs.example.org');

  const caBefore = fingerprintOf(path.join(dir, 'ca.crt'));
  t.same(await run(['init', '--dir', dir]), {
    code: 1,
    stdout: '',
    stderr: `dicomvault certs: development PKI file already exists: ${path.join(dir, 'ca.crt')} (use --force to replace the PKI)\n`,
  });
  t.equal(fingerprintOf(path.join(dir, 'ca.crt')), caBefore);

  const forced = await run(['init', '--dir', dir, '--force']);
  t.equal(forced.code, 0);
  t.equal(forced.stderr, 'dicomvault certs: replaced the previous CA; certificates it issued are no longer trusted\n');
  t.not(fingerprintOf(path.join(dir, 'ca.crt')), caBefore);

  const badHost = await run(['init', '--dir', path.join(dir, 'other'), '--host', 'bad host']);
  t.same(badHost, { code: 1, stdout: '', stderr: 'dicomvault certs: not a DNS name or IP address: "bad host"\n' });
});

t.test('certs issue-client end to end: the issued certificate opens a real mTLS connection', async (t) => {
  const root = tempDir(t);
  const caDir = path.join(root, 'ca');
  const outDir = path.join(root, 'clients');
  t.equal((await run(['init', '--dir', caDir])).code, 0);

  const issued = await run(['issue-client', '--name', 'modality-7', '--role', 'modality', '--out', outDir, '--ca-dir', caDir, '--days', '30']);
  t.equal(issued.code, 0);
  t.equal(issued.stderr, '');
  const certPath = path.join(outDir, 'modality-7.crt');
  const keyPath = path.join(outDir, 'modality-7.key');
  t.equal(
    issued.stdout,
    [
      'Issued urn:dicomvault:principal:modality-7',
      `  certificate: ${certPath}`,
      `  key:         ${keyPath}`,
      `  PKCS#12:     ${path.join(outDir, 'modality-7.p12')} (password: dicomvault)`,
      `  SHA-256:     ${fingerprintOf(certPath)}`,
      '',
    ].join('\n'),
  );

  const material = await loadTlsMaterial({ caPath: path.join(caDir, 'ca.crt'), certPath: path.join(caDir, 'server.crt'), keyPath: path.join(caDir, 'server.key') });
  const server = tls.createServer(buildTlsServerOptions(material), (socket) => {
    const principal = certificateIdentity(socket.getPeerX509Certificate()!);
    socket.end(JSON.stringify({ authorized: socket.authorized, id: principal.id, roles: rolesFromCertificate(principal), fingerprint256: principal.fingerprint256 }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => void server.close());
  const socket = tls.connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    servername: 'localhost',
    ca: fs.readFileSync(path.join(caDir, 'ca.crt')),
    cert: fs.readFileSync(certPath),
    key: fs.readFileSync(keyPath),
  });
  let body = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (body += chunk));
  await once(socket, 'end');
  t.same(JSON.parse(body), { authorized: true, id: 'urn:dicomvault:principal:modality-7', roles: ['modality'], fingerprint256: fingerprintOf(certPath) });

  t.same(await run(['issue-client', '--name', 'modality-7', '--out', outDir, '--ca-dir', caDir]), {
    code: 1,
    stdout: '',
    stderr: `dicomvault certs: ${certPath} already exists; remove it or choose another name\n`,
  });
  t.same(await run(['issue-client', '--name', '../escape', '--out', outDir, '--ca-dir', caDir]), {
    code: 1,
    stdout: '',
    stderr: 'dicomvault certs: name must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, got "../escape"\n',
  });
  t.same(await run(['issue-client', '--name', 'x', '--out', outDir, '--ca-dir', caDir, '--days', '900']), {
    code: 1,
    stdout: '',
    stderr: 'dicomvault certs: days must be an integer from 1 to 825, got 900\n',
  });
});

t.test('default directories are relative to the working directory', async (t) => {
  const cwd = tempDir(t);
  const previous = process.cwd();
  process.chdir(cwd);
  t.teardown(() => process.chdir(previous));

  const init = await run(['init']);
  t.equal(init.code, 0);
  t.ok(fs.existsSync(path.join(cwd, 'certs', 'dev', 'ca.crt')));
  t.match(init.stdout, 'curl --cacert certs/dev/ca.crt --cert certs/dev/client.crt --key certs/dev/client.key https://localhost:8443/dicomweb/studies');

  const issued = await run(['issue-client', '--name', 'nurse', '--out', 'clients']);
  t.equal(issued.code, 0);
  t.equal(issued.stderr, '');
  const cert = new X509Certificate(fs.readFileSync(path.join(cwd, 'clients', 'nurse.crt')));
  t.ok(cert.verify(new X509Certificate(fs.readFileSync(path.join(cwd, 'certs', 'dev', 'ca.crt'))).publicKey), 'signed by certs/dev/ca.crt');
});
