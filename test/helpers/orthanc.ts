// A private Orthanc (Debian's 1.10 with its DICOMweb plugin) for the interop tests, as INTEROP.md describes it:
// its own configuration folder and database in a temporary directory, loopback port, no remote access, no DICOM
// listener, no gdcm plugin, UTF-8 by default, and the given DICOMweb peers (with or without a client certificate).
// It is killed by its own process handle when the test ends: never a system service, never by name.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** scripts/orthanc-deps.sh installs Orthanc and the plugin with apt when missing and prints where they are. */
export function orthancDeps(): { orthanc: string; dicomweb: string } {
  const out = execFileSync('bash', [path.join(root, 'scripts/orthanc-deps.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const printed = new Map(out.split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  const orthanc = printed.get('ORTHANC');
  const dicomweb = printed.get('ORTHANC_DICOMWEB');
  if (!orthanc || !dicomweb) throw new Error(`scripts/orthanc-deps.sh did not print ORTHANC= and ORTHANC_DICOMWEB=: ${out}`);
  return { orthanc, dicomweb };
}

/** A DICOMweb server Orthanc knows as a peer (`DicomWeb.Servers`): its base URL, and a client certificate or none. */
export interface DicomwebPeer {
  url: string;
  certificateFile?: string;
  certificateKeyFile?: string;
}

export interface OrthancOptions {
  /** PEM file of the CA(s) Orthanc's HTTP client trusts (`HttpsCACertificates`, peers verified). */
  caFile: string;
  servers: Record<string, DicomwebPeer>;
}

export interface OrthancReply {
  status: number;
  body: Buffer;
  headers: Headers;
}

export interface RunningOrthanc {
  /** http://127.0.0.1:PORT (Orthanc's REST API; plain HTTP on loopback). */
  url: string;
  /** One REST call; a JSON body for objects, the bytes as they are for a Buffer. */
  call(method: string, pathname: string, body?: Buffer | object): Promise<OrthancReply>;
  /** A REST call that must answer 200, parsed as JSON. */
  json<T>(method: string, pathname: string, body?: Buffer | object): Promise<T>;
  /** What Orthanc logged so far (stdout and stderr), for failure messages. */
  log(): string;
}

/** A TCP port free on loopback now (Orthanc 1.10 has no bind address and takes it on 0.0.0.0 just after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function configuration(o: OrthancOptions, dir: string, plugin: string, port: number): object {
  const db = path.join(dir, 'db');
  const servers = Object.fromEntries(
    Object.entries(o.servers).map(([name, p]) => [
      name,
      { Url: p.url, ...(p.certificateFile ? { CertificateFile: p.certificateFile, CertificateKeyFile: p.certificateKeyFile } : {}) },
    ]),
  );
  return {
    Name: 'dicomvault-interop',
    StorageDirectory: db,
    IndexDirectory: db,
    HttpPort: port,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomServerEnabled: false,
    DefaultEncoding: 'Utf8',
    Plugins: [plugin],
    HttpsCACertificates: o.caFile,
    HttpsVerifyPeers: true,
    DicomWeb: { Enable: true, Servers: servers },
  };
}

async function waitForStart(child: ChildProcess, url: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Orthanc exited (${child.exitCode ?? child.signalCode}):\n${log()}`);
    try {
      if ((await fetch(`${url}/system`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Orthanc did not answer within 30 s:\n${log()}`);
}

/**
 * Starts Orthanc with its configuration and database in a fresh temporary folder; when the test ends it is
 * stopped (SIGTERM, then SIGKILL) and the folder removed.
 */
export async function startOrthanc(t: Test, o: OrthancOptions): Promise<RunningOrthanc> {
  const { orthanc, dicomweb } = orthancDeps();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicomvault-orthanc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'db'));
  // A port taken by someone else between freePort() and Orthanc's bind makes it exit: try again with another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    fs.writeFileSync(path.join(dir, 'orthanc.json'), JSON.stringify(configuration(o, dir, dicomweb, port), null, 2));
    const child = spawn(orthanc, [dir], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    // 'close': exited and its output read to the end.
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    // Registered after the folder's removal: tap runs teardowns last-in first-out, so Orthanc stops first.
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await closed;
        clearTimeout(timer);
      }
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForStart(child, url, () => output);
    } catch (e) {
      if (child.exitCode !== null) await closed;
      if (attempt < 3 && /already in use/i.test(output)) continue;
      throw e;
    }
    const call = async (method: string, pathname: string, body?: Buffer | object): Promise<OrthancReply> => {
      const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body);
      const res = await fetch(`${url}${pathname}`, { method, ...(payload === undefined ? {} : { body: payload }) });
      return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
    };
    return {
      url,
      call,
      json: async <T>(method: string, pathname: string, body?: Buffer | object): Promise<T> => {
        const res = await call(method, pathname, body);
        if (res.status !== 200) throw new Error(`Orthanc ${method} ${pathname}: ${res.status} ${res.body.toString()}\n${output}`);
        return JSON.parse(res.body.toString('utf8')) as T;
      },
      log: () => output,
    };
  }
}
