// The real application over a real SQLite file and a real blob folder in a temporary directory, driven with
// app.inject(). Only the principal comes from a resolver instead of a TLS socket (test/tls covers that path).
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DestinationStream } from 'pino';
import type { Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { openStorage, shareLinks, sweepAfterCrash, type Storage } from '../../src/compose.js';
import { CedarPolicyEngine } from '../../src/policy/policy-engine.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { createLogger } from '../../src/logger.js';
import type { Principal } from '../../src/security/principal.js';
import { ADMIN_PRINCIPAL } from './access.js';
import { storageEnv, tempDir } from './temp-dir.js';
import { defaultPolicies } from './access.js';

/** The principal every request of a testApp comes from unless the test says otherwise: an administrator. */
export const TEST_PRINCIPAL: Principal = ADMIN_PRINCIPAL;

export interface TestApp extends Storage {
  app: FastifyInstance;
  config: Config;
  dataDir: string;
  /** Files under blobs/objects and blobs/staging: what a failed request must not leave behind. */
  blobFiles(): { objects: number; staging: number };
}

export interface TestAppOptions {
  /** Where the application log goes (pino JSON lines, level info unless env sets one); silent without it. */
  logTo?: DestinationStream;
  /** Who every request comes from (default TEST_PRINCIPAL, an admin); a function may pick per request. */
  principal?: Principal | ((request: FastifyRequest) => Principal | undefined);
  /** The Cedar policy file (default policies/default.cedar). */
  policyFile?: string;
}

export async function testApp(t: Test, env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const storageDirs = storageEnv(tempDir(t));
  const dataDir = storageDirs.DICOMVAULT_STORAGE_DATA_DIR;
  const level = options.logTo ? 'info' : 'silent';
  const config = loadConfig({ env: { ...storageDirs, DICOMVAULT_LOG_LEVEL: level, ...env } });
  const logger = createLogger(config.log.level, options.logTo);
  const storage = await openStorage(config);
  await sweepAfterCrash(storage, logger);
  const policy = options.policyFile ? CedarPolicyEngine.fromFile(options.policyFile) : defaultPolicies();
  const chosen = options.principal ?? TEST_PRINCIPAL;
  const principalOf = typeof chosen === 'function' ? chosen : () => chosen;
  const shares = shareLinks(config, storage, logger);
  const app = buildApp({ config, ...storage, readInstance, logger, policy, shares, principalOf });
  await app.ready();
  t.teardown(async () => {
    await app.close();
    await storage.close();
  });
  const count = (dir: string): number =>
    fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length : 0;
  return {
    app,
    config,
    dataDir,
    ...storage,
    blobFiles: () => ({ objects: count(path.join(dataDir, 'blobs', 'objects')), staging: count(path.join(dataDir, 'blobs', 'staging')) }),
  };
}
