// `dicomvault serve` as a process in a working folder (data/, keys/, certs/dev/ relative to it), for the
// end-to-end and viewer tests, until it says where it listens (one-shot commands: test/helpers/cli-process.ts).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { AUDIT_DIR, loadAuditKeys } from '../../src/audit/audit-keys.js';
import { readAuditLog } from '../../src/audit/audit-log.js';
import type { AuditRecord } from '../../src/audit/audit-record.js';
import { LocalKeyfileProvider } from '../../src/storage/keys/local-keyfile.js';
import type { ClientTls } from '../helpers/https-client.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/dicomvault.ts');
// Resolved here: the commands run in a temporary cwd where a bare 'tsx' cannot be found.
const tsx = import.meta.resolve('tsx');
const ENV = { DICOMVAULT_LOG_LEVEL: 'warn', DICOMVAULT_SERVER_PORT: '0' };

function launch(cwd: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', tsx, cli, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (c: Buffer) => (out.stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out.stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out, exited };
}

export interface RunningServer {
  /** https://127.0.0.1:PORT/dicomweb */
  base: string;
  /** The web listener's base URL (https://127.0.0.1:PORT/dicomweb), when env enables it (DICOMVAULT_WEB_ENABLED=true). */
  web?: string;
  /** The server's process id (to sample its memory, as bench/load.mjs does). */
  pid: number;
  /** The development client certificate the server created in cwd/certs/dev. */
  tls: Required<ClientTls>;
  /** What the server wrote so far (its log goes to stdout, at warn level and above). */
  output(): { stdout: string; stderr: string };
  /** SIGTERM, and the exit code (0: graceful). */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash: no shutdown code runs), resolved once the process is gone. */
  kill(): Promise<void>;
}

/** `dicomvault serve` (more DICOMVAULT_* settings in env), killed at the end of the test if still running. */
export async function startServer(t: Test, cwd: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const p = launch(cwd, ['serve'], env);
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  const webEnabled = env.DICOMVAULT_WEB_ENABLED === 'true';
  const { base, web } = await new Promise<{ base: string; web?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 60 s: ${p.out.stderr}`)), 60_000);
    p.child.stdout.on('data', () => {
      const m = /listening on (https:\/\/\S+)/.exec(p.out.stdout);
      // src/server.ts: "Web listener for browsers (...): URL", in the same start message.
      const w = /Web listener for browsers[^\n]*?: (https?:\/\/\S+)/.exec(p.out.stdout);
      if (m && (!webEnabled || w)) {
        clearTimeout(timer);
        resolve({ base: m[1]!, ...(w ? { web: w[1]! } : {}) });
      }
    });
    void p.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${code}: ${p.out.stderr}`));
    });
  });
  const dev = (f: string) => fs.readFileSync(path.join(cwd, 'certs/dev', f));
  return {
    base,
    pid: p.child.pid!,
    ...(web ? { web } : {}),
    tls: { ca: dev('ca.crt'), cert: dev('client.crt'), key: dev('client.key') },
    output: () => ({ ...p.out }),
    stop: () => {
      p.child.kill('SIGTERM');
      return p.exited;
    },
    kill: async () => {
      p.child.kill('SIGKILL');
      await p.exited;
    },
  };
}

/** Every record of the audit log of the archive in `cwd` (data/, keys/kek.json), decrypted, in order. */
export async function auditRecordsOf(cwd: string): Promise<AuditRecord[]> {
  const provider = LocalKeyfileProvider.open(path.join(cwd, 'keys/kek.json'));
  try {
    const keys = await loadAuditKeys(path.join(cwd, 'data'), provider);
    try {
      const out: AuditRecord[] = [];
      for await (const e of readAuditLog(path.join(cwd, 'data', AUDIT_DIR), keys.auditKey)) out.push(e.record);
      return out;
    } finally {
      keys.close();
    }
  } finally {
    provider.close();
  }
}
