#!/usr/bin/env node
// The cost of writing the audit trail, measured (issue 6: "audit writing costs under 5 % of QIDO and STOW
// throughput"): the same composition as `dicomvault serve` (mutual TLS, encrypted stores, policies, the audit
// trail's hooks collecting every request's facts) except that the Auditor builds and writes no record. The
// server itself cannot run so (fail closed: SECURITY.md 2); this bench-only entry swaps the Auditor, so that
// `bench/audit-cost.sh` compares two builds of the same tree that differ in exactly that.
//
//   npm run build && node bench/serve-unaudited.mjs      # reads DICOMVAULT_* like the server
//
// Prints "listening on https://..." and serves until SIGTERM/SIGINT. Never point it at real data.

import { buildApp } from '../dist/app.js';
import { Auditor } from '../dist/audit/auditor.js';
import { composeServer } from '../dist/compose.js';
import { loadConfig } from '../dist/config/load.js';
import { createLogger } from '../dist/logger.js';

/** Writes nothing: no record is built, canonicalised, hashed, encrypted or synced. */
class UnwrittenAuditor extends Auditor {
  request() {}
  write() {
    return Promise.resolve(true);
  }
}

const config = loadConfig({ env: process.env });
const logger = createLogger(config.log.level);
const composed = await composeServer(config, logger);
const auditor = new UnwrittenAuditor({ append: () => Promise.reject(new Error('not written')) }, composed.storage.auditor.source);
const app = buildApp({ ...composed.deps, auditor });
await app.listen({ host: config.server.host, port: config.server.port });
const address = app.server.address();
process.stdout.write(`dicomvault (AUDIT RECORDS NOT WRITTEN, bench only) listening on https://${config.server.host}:${address.port}${config.server.basePath}\n`);
const stop = () => app.close().then(() => composed.storage.close()).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
