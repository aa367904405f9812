// The only module that touches the process: configuration from argv/env, listen, signals, exit codes.

import path from 'node:path';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';
import { composeServer, StartupError } from './compose.js';
import { createLogger } from './logger.js';

export interface ServeOptions {
  configFile?: string;
}

function connectHelp(url: string, devDir: string | undefined): string {
  if (!devDir) return `dicomvault is listening on ${url}`;
  const c = (f: string) => `${devDir}/${f}`;
  return [
    `dicomvault is listening on ${url} (mutual TLS: a client certificate from ${c('ca.crt')} is required)`,
    '',
    'Try it:',
    `  curl --cacert ${c('ca.crt')} --cert ${c('client.crt')} --key ${c('client.key')} ${url}/studies`,
    '',
    `Store a file:`,
    `  curl --cacert ${c('ca.crt')} --cert ${c('client.crt')} --key ${c('client.key')} \\`,
    `       -H 'Content-Type: application/dicom' --data-binary @image.dcm ${url}/studies`,
    '',
    `Browsers and OS key stores: import ${c('client.p12')} (see README.md).`,
    '',
  ].join('\n');
}

export async function serve(options: ServeOptions = {}): Promise<void> {
  let config;
  try {
    config = loadConfig({ configFile: options.configFile, env: process.env });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`dicomvault: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const logger = createLogger(config.log.level);
  let composed;
  try {
    composed = await composeServer(config, logger);
  } catch (e) {
    if (e instanceof StartupError) {
      process.stderr.write(`dicomvault: cannot start: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (composed.tls.created) logger.info({ dir: composed.tls.devDir }, 'created a development CA and certificates');
  const app = buildApp(composed.deps);
  await app.listen({ host: config.server.host, port: config.server.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = config.server.publicUrl ?? `https://${host}:${port}${config.server.basePath}`;
  // Said once, on the start that created it: without the key file the archive cannot be read (README "Keys and backups").
  const created = composed.storage.createdKeyFile;
  const keyNote = created
    ? `\nCreated the key file ${path.relative(process.cwd(), created) || created}: every stored study is encrypted under it. Back it up, apart from the data folder.\n`
    : '';
  process.stdout.write(`${connectHelp(url, composed.tls.devDir)}${keyNote}\n`);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    app
      .close()
      .then(() => composed.storage.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
