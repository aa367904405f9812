// Picks the implementations (the only importer of the SQLite index and the filesystem blob store) and
// prepares what the server needs before it listens: data folders, TLS material, the crash sweeper.

import fs from 'node:fs';
import path from 'node:path';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { AppDeps } from './app.js';
import type { Config } from './config/schema.js';
import { readInstance } from './dicom/dataset-reader.js';
import { principalFromTls } from './http/plugins/authenticate.js';
import type { IndexStore } from './index/index-store.js';
import { SqliteIndexStore } from './index/sqlite/sqlite-index-store.js';
import type { Logger } from './logger.js';
import { createDevPki, devPkiExists, loadTlsMaterial } from './security/pki.js';
import { buildTlsServerOptions } from './security/tls-options.js';
import type { BlobStore } from './storage/blob-store.js';
import { FsBlobStore } from './storage/fs-blob-store.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

export interface TlsPaths {
  ca: string;
  cert: string;
  key: string;
  crl?: string;
  /** True when the development PKI was created by this start. */
  created: boolean;
  /** Set for the development PKI: where the client certificate the README's curl line uses lives. */
  devDir?: string;
}

/** Production: the configured files, all required (the schema already refused a missing one). Development: certs/dev. */
export async function resolveTlsPaths(config: Config): Promise<TlsPaths> {
  const { tls } = config;
  if (tls.ca && tls.cert && tls.key) return { ca: tls.ca, cert: tls.cert, key: tls.key, crl: tls.crl, created: false };
  if (config.profile === 'production') throw new StartupError('tls.ca, tls.cert and tls.key are required in the production profile');
  const dir = tls.devDir;
  let created = false;
  if (!(await devPkiExists(dir))) {
    await createDevPki(dir);
    created = true;
  }
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key'), crl: tls.crl, created, devDir: dir };
}

export async function httpsOptions(paths: TlsPaths): Promise<HttpsServerOptions> {
  try {
    return buildTlsServerOptions(await loadTlsMaterial({ caPath: paths.ca, certPath: paths.cert, keyPath: paths.key, crlPath: paths.crl }));
  } catch (e) {
    throw new StartupError(`TLS: ${(e as Error).message}`);
  }
}

export interface Storage {
  index: IndexStore;
  blobs: BlobStore;
}

export async function openStorage(config: Config): Promise<Storage> {
  const dataDir = config.storage.dataDir;
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const index = new SqliteIndexStore(path.join(dataDir, 'index.sqlite'));
  const blobs = await FsBlobStore.open(path.join(dataDir, 'blobs'));
  return { index, blobs };
}

/**
 * What a crash can leave (DESIGN.md two-phase writes): staged files, and blobs whose index commit never
 * happened (their pending marks). Both are removed before the server accepts requests.
 */
export async function sweepAfterCrash(storage: Storage, log: Logger, now = new Date()): Promise<{ staged: number; pending: number }> {
  const staged = await storage.blobs.sweepStaging();
  const pending = storage.index.listPending(now);
  for (const key of pending) {
    await storage.blobs.delete(key);
    storage.index.removePending(key);
  }
  if (staged + pending.length > 0) log.warn({ staged, pending: pending.length }, 'removed leftovers of an interrupted write');
  return { staged, pending: pending.length };
}

export async function composeServer(config: Config, logger: Logger): Promise<{ deps: AppDeps; tls: TlsPaths }> {
  const tls = await resolveTlsPaths(config);
  const https = await httpsOptions(tls);
  const storage = await openStorage(config);
  await sweepAfterCrash(storage, logger);
  return {
    tls,
    deps: { config, ...storage, readInstance, logger, principalOf: principalFromTls, https },
  };
}
