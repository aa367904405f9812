// The archive as the viewer test runs it: `dicomvault serve` as its own process (the way `npm start` runs it)
// in a temporary working directory, where its first start creates the development PKI and data folder.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientTls } from '../helpers/https-client.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/dicomvault.ts');

export interface Archive {
  /** https://127.0.0.1:<port>/dicomweb */
  url: string;
  /** The development client certificate (principal dev-admin), with the CA that signed the server's. */
  tls: Required<ClientTls>;
  /** Everything the process wrote, for a failure report. */
  output(): string;
  stop(): Promise<void>;
}

export async function startArchive(cwd: string, env: Record<string, string>): Promise<Archive> {
  // import.meta.resolve: the server runs in a temporary cwd where a bare 'tsx' cannot be found.
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), cli, 'serve'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', DICOMVAULT_LOG_LEVEL: 'warn', DICOMVAULT_SERVER_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (c: Buffer) => (out += c.toString());
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`archive did not start within 60 s:\n${out}`)), 60_000);
    child.stdout.on('data', () => {
      const listening = /listening on (https:\/\/\S+)/.exec(out)?.[1];
      if (listening) {
        clearTimeout(timer);
        resolve(listening);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`archive exited before listening (code ${child.exitCode}):\n${out}`));
    });
  });
  const dev = (f: string) => fs.readFileSync(path.join(cwd, 'certs/dev', f));
  return {
    url,
    tls: { ca: dev('ca.crt'), cert: dev('client.crt'), key: dev('client.key') },
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
