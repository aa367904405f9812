// The only module that touches the process: configuration from argv/env, listen, signals, exit codes.

import path from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';
import { composeServer, StartupError } from './compose.js';
import { createLogger } from './logger.js';
import { DEFAULT_PURGER } from './services/purge.js';
import { RetentionSweeper } from './services/retention-sweeper.js';

export interface ServeOptions {
  configFile?: string;
}

function listenerUrl(app: FastifyInstance, host: string, configuredPort: number, basePath: string, publicUrl: string | undefined): string {
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : configuredPort;
  const h = host.includes(':') ? `[${host}]` : host;
  return publicUrl ?? `https://${h}:${port}${basePath}`;
}

/** The web listener's line (browsers: no client certificate; OIDC bearer tokens and share links). */
function webHelp(webUrl: string | undefined): string {
  return webUrl ? `\nWeb listener for browsers (OIDC bearer tokens and share links, no client certificate): ${webUrl}\n` : '';
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
  const webApp = composed.webDeps ? buildApp(composed.webDeps) : undefined;
  // Certificates and CRLs are replaced without a restart (security/tls-reload.ts): on SIGHUP, and when the poll
  // sees a file change. Attached before listening, so every mTLS connection is tracked: after each reload the
  // open ones are checked against the new CRLs.
  const { tlsReload } = composed;
  tlsReload.attach({ mtls: app.server as unknown as TlsServer, web: webApp?.server as unknown as TlsServer | undefined, auditor: composed.storage.auditor });
  await app.listen({ host: config.server.host, port: config.server.port });
  if (webApp) await webApp.listen({ host: config.web.host, port: config.web.port });
  const url = listenerUrl(app, config.server.host, config.server.port, config.server.basePath, config.server.publicUrl);
  const webUrl = webApp ? listenerUrl(webApp, config.web.host, config.web.port, config.server.basePath, config.web.publicUrl) : undefined;
  // The audit trail's first record of this run (SECURITY.md 2). Fail closed: a server that cannot audit does not serve.
  const { auditor } = composed.storage;
  auditor.setSource({ id: url, typeCode: '4' });
  try {
    await auditor.applicationStart();
  } catch (err) {
    logger.error({ err }, 'cannot write to the audit log: stopping');
    await Promise.all([app.close(), webApp?.close()]).catch(() => undefined);
    await composed.storage.close().catch(() => undefined);
    process.exit(1);
  }
  // Said once, on the start that created it: without the key file the archive cannot be read (README "Keys and backups").
  const created = composed.storage.createdKeyFile;
  const keyNote = created
    ? `\nCreated the key file ${path.relative(process.cwd(), created) || created}: every stored study is encrypted under it. Back it up, apart from the data folder.\n`
    : '';
  process.stdout.write(`${connectHelp(url, composed.tls.devDir)}${webHelp(webUrl)}${keyNote}\n`);

  // The scheduled purge of the bin (issue 6 item 4); each run's 110105 records go through the one Auditor, and
  // nothing is purged while the audit trail cannot be written.
  const { storage } = composed;
  const sweeper = new RetentionSweeper({
    deps: { index: storage.index, lifecycle: storage.lifecycle, blobs: storage.blobs, keyring: storage.keyring, log: logger },
    batchSize: config.retention.sweepBatchSize,
    onPurged: async (report) => {
      await auditor.purged(report, DEFAULT_PURGER, logger);
    },
    canRun: () => !auditor.failed,
    log: logger,
  });
  sweeper.start(config.retention.sweepIntervalMs);

  tlsReload.start(config.tls.reloadIntervalMs);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    // Both listeners stop taking requests and finish the ones in flight; then the audit trail's last record;
    // then the storage closes (the audit log's final checkpoint first).
    let stopAudited = true;
    tlsReload.stop();
    const servers = [app.server, ...(webApp ? [webApp.server] : [])];
    // close() reaps the keep-alive connections idle at that moment only: one that goes idle later (an in-flight
    // request answered) would hold the close up for keepAliveTimeoutMs. Reap them as they go idle.
    const reapIdle = setInterval(() => servers.forEach((s) => s.closeIdleConnections()), 100);
    // An upload still running after server.shutdownTimeoutMs is cut (its staged parts are removed by the request's
    // own clean-up, or swept at the next start): a supervisor's kill would cut it anyway, and the audit trail's
    // last record and the index's clean close must come first.
    const cut = setTimeout(() => {
      logger.warn({ timeoutMs: config.server.shutdownTimeoutMs }, 'shutdown timeout: closing the connections still open');
      servers.forEach((s) => s.closeAllConnections());
    }, config.server.shutdownTimeoutMs);
    Promise.all([app.close(), webApp?.close(), sweeper.stop()])
      .finally(() => {
        clearInterval(reapIdle);
        clearTimeout(cut);
      })
      .then(() =>
        auditor.flush().then(() => auditor.applicationStop()).catch((err: unknown) => {
          stopAudited = false;
          logger.error({ err }, 'cannot write the Application Stop audit record');
        }),
      )
      .then(() => composed.storage.close())
      .then(
        () => process.exit(stopAudited ? 0 : 1),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // SIGHUP re-reads the policy file (as POST {base}/admin/policies/reload does): a bad file keeps the policies
  // in force, and the engine logs why.
  // The TLS material likewise: a bad file keeps the certificates and CRLs in force (tls-reload.ts logs why).
  process.on('SIGHUP', () => {
    composed.policy.reload();
    void tlsReload.reload('SIGHUP');
  });
}
