#!/usr/bin/env node
// The cost of encryption at rest, measured (issue 4): the same application as `dicomvault serve`, over the
// same mutual TLS, but with the plain filesystem blob store and an unencrypted index. The server itself has no
// plaintext mode (issue 4: "there is no plaintext mode in the server's configuration"); this bench-only entry
// composes the plaintext stores itself, so the comparison runs through the same code path otherwise.
//
//   npm run build && node bench/serve-unencrypted.mjs      # reads DICOMVAULT_* like the server
//
// Prints "listening on https://..." and serves until SIGTERM/SIGINT. Never point it at real data.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildApp } from '../dist/app.js';
import { AuditLog } from '../dist/audit/audit-log.js';
import { Auditor } from '../dist/audit/auditor.js';
import { httpsOptions, openPolicy, resolveTlsPaths, sweepAfterCrash } from '../dist/compose.js';
import { loadConfig } from '../dist/config/load.js';
import { readInstance } from '../dist/dicom/dataset-reader.js';
import { mtlsResolver } from '../dist/http/plugins/authenticate.js';
import { SqliteIndexStore } from '../dist/index/sqlite/sqlite-index-store.js';
import { createLogger } from '../dist/logger.js';
import { PrincipalRegistry } from '../dist/security/principal-registry.js';
import { FsBlobStore } from '../dist/storage/fs-blob-store.js';

const config = loadConfig({ env: process.env });
const logger = createLogger(config.log.level);
const tls = await resolveTlsPaths(config);
const https = await httpsOptions(tls);
fs.mkdirSync(config.storage.dataDir, { recursive: true, mode: 0o700 });
const index = new SqliteIndexStore(path.join(config.storage.dataDir, 'index-unencrypted.sqlite'));
const blobs = await FsBlobStore.open(path.join(config.storage.dataDir, 'blobs-unencrypted'));
// The audit trail stays on (the comparison is about encryption at rest), with throwaway keys of this run.
const audit = await AuditLog.open(path.join(config.storage.dataDir, 'audit-unencrypted'), randomBytes(32), generateKeyPairSync('ed25519').privateKey, config.audit);
const auditor = new Auditor(audit, { id: `https://${config.server.host}:${config.server.port}${config.server.basePath}`, typeCode: '4' });
const storage = { index, blobs, close: async () => audit.close().then(() => index.close()) };
await sweepAfterCrash(storage, logger);
// The same principals and policies as the server (policy.file, principals), so the comparison includes them.
const policy = openPolicy(config, logger);
const app = buildApp({ config, index, blobs, auditor, readInstance, logger, policy, principalOf: mtlsResolver(new PrincipalRegistry(config)), https });
await app.listen({ host: config.server.host, port: config.server.port });
const address = app.server.address();
process.stdout.write(`dicomvault (UNENCRYPTED, bench only) listening on https://${config.server.host}:${address.port}${config.server.basePath}\n`);
const stop = () => app.close().then(() => storage.close()).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
