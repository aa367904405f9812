// `dicomvault keys ...`: the key-encryption key (KEK) of the local key file (storage/keys/). `status` shows
// its versions and how many study keys each wraps; `rotate` adds a version and re-wraps everything under it
// (storage/keys/kek-rotation.ts) while the server keeps serving. Never prints key material.
// Exit codes: 0 done, 1 failed, 2 wrong command line, 3 rotation stopped early (--max-batches): run it again.

import fs from 'node:fs';
import path from 'node:path';
import { AUDIT_DIR, AUDIT_KEY_FILE, loadAuditKeys, rewrapAuditKeys } from '../audit/audit-keys.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { INDEX_DB_FILE, INDEX_KEY_FILE, loadOrCreateIndexKey, rewrapIndexKey } from '../index/sqlite/index-key.js';
import { SqliteIndexStore } from '../index/sqlite/sqlite-index-store.js';
import { StudyKeyTable } from '../index/sqlite/study-key-table.js';
import { DEFAULT_BATCH_SIZE, rotateKek } from '../storage/keys/kek-rotation.js';
import { LocalKeyfileProvider } from '../storage/keys/local-keyfile.js';
import { appendBesideWriter, commandSecurityConfigurationRecord } from './audit-access.js';
import { type CliIo, UsageError, parseOptions, runSubcommand } from './cli-args.js';
import { progressOn, type ProgressStream } from './progress.js';

export interface KeysCliIo extends CliIo {
  stderr: ProgressStream;
  env: Record<string, string | undefined>;
}

const USAGE = `usage: dicomvault keys <subcommand> [--config FILE]

subcommands:
  status
      The key file's versions (active, decrypt-only, retired) and how many study keys each wraps.
  rotate [--batch-size N] [--max-batches N]
      A new key version becomes active; the index key, the audit keys and every study key are re-wrapped under it,
      N study keys per transaction (default ${DEFAULT_BATCH_SIZE}); then the old versions are retired and their
      keys removed from the key file. The server keeps serving meanwhile. Safe to interrupt: running it
      again continues the same rotation. --max-batches stops early (exit code 3); run it again to go on.

The key file is keys.file of the configuration (default keys/kek.json, DICOMVAULT_KEYS_FILE);
the index is in storage.dataDir. Keep a backup of the key file made after each rotation.
`;

export function runKeysCommand(argv: string[], io: KeysCliIo): Promise<number> {
  return runSubcommand('keys', USAGE, { status, rotate }, argv, io);
}

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text)) throw new UsageError(`--${name} must be a positive whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** The key file, never created here: the server creates it with a new data folder. */
function openProvider(config: Config): LocalKeyfileProvider {
  return LocalKeyfileProvider.open(path.resolve(config.keys.file));
}

/** The index, when the data folder has one (encrypted when it has an index key file). */
async function openIndex(config: Config, provider: LocalKeyfileProvider): Promise<SqliteIndexStore | null> {
  const dataDir = config.storage.dataDir;
  const dbFile = path.join(dataDir, INDEX_DB_FILE);
  if (!fs.existsSync(dbFile)) return null;
  const key = fs.existsSync(path.join(dataDir, INDEX_KEY_FILE)) ? await loadOrCreateIndexKey(dataDir, provider) : undefined;
  try {
    return new SqliteIndexStore(dbFile, { key });
  } finally {
    key?.fill(0);
  }
}

async function status(args: string[], io: KeysCliIo): Promise<number> {
  const { values } = parseOptions(args, { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } });
  if (values.help === true) {
    io.stdout.write(USAGE);
    return 0;
  }
  const config = loadConfig({ configFile: values.config, env: io.env });
  const provider = openProvider(config);
  try {
    const index = await openIndex(config, provider);
    const counts = new Map<string | null, number>();
    try {
      for (const { version, count } of index ? new StudyKeyTable(index.database).countByVersion() : []) counts.set(version, count);
    } finally {
      index?.close();
    }
    const versions = provider.versions();
    const rows = versions.map((v) => [v.id, v.state, v.createdAt, String(counts.get(v.id) ?? 0), v.id === provider.currentVersion() ? 'current' : '']);
    const widths = [0, 1, 2].map((i) => Math.max(...[['version', 'state', 'created'][i]!, ...rows.map((r) => r[i]!)].map((s) => s.length)));
    const line = (cells: string[]) => `${cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ')}`.trimEnd();
    const out = [`key file ${provider.file}`, line(['version', 'state', 'created', 'study keys', '']), ...rows.map(line)];
    out.push(`erased studies: ${counts.get(null) ?? 0}`);
    if (!index) out.push(`no index in ${path.resolve(config.storage.dataDir)} yet`);
    const unknown = [...counts.keys()].filter((v) => v !== null && !versions.some((k) => k.id === v));
    for (const v of unknown) out.push(`WARNING: ${counts.get(v)} study keys are wrapped by version ${v}, which this key file does not have`);
    io.stdout.write(`${out.join('\n')}\n`);
    return unknown.length > 0 ? 1 : 0;
  } finally {
    provider.close();
  }
}

async function rotate(args: string[], io: KeysCliIo): Promise<number> {
  const { values } = parseOptions(args, {
    config: { type: 'string', short: 'c' },
    'batch-size': { type: 'string' },
    'max-batches': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    io.stdout.write(USAGE);
    return 0;
  }
  const batchSize = positive('batch-size', values['batch-size']);
  const maxBatches = positive('max-batches', values['max-batches']);
  const config = loadConfig({ configFile: values.config, env: io.env });
  const dataDir = config.storage.dataDir;
  const provider = openProvider(config);
  try {
    const index = await openIndex(config, provider);
    const progress = progressOn(io.stderr, 'study keys re-wrapped');
    let indexKey = 'no index key file';
    let auditKeys = 'no audit key file';
    try {
      const result = await rotateKek(provider, index ? new StudyKeyTable(index.database) : null, {
        batchSize,
        maxBatches,
        onProgress: ({ done, total }) => progress.update(done, total),
        rewrapOthers: async (p) => {
          if (fs.existsSync(path.join(dataDir, INDEX_KEY_FILE))) {
            const { from, to } = await rewrapIndexKey(dataDir, p);
            indexKey = from === to ? `index key re-wrapped under ${to}` : `index key re-wrapped from ${from} to ${to}`;
          }
          const audit = await rewrapAuditKeys(dataDir, p);
          if (audit) auditKeys = audit.from === audit.to ? `audit keys re-wrapped under ${audit.to}` : `audit keys re-wrapped from ${audit.from} to ${audit.to}`;
        },
      });
      progress.end();
      const out = [
        result.started ? `new key version ${result.current} is active` : `continuing the rotation to ${result.current}`,
        indexKey,
        auditKeys,
        `${result.rewrapped} study keys re-wrapped`,
      ];
      if (result.complete) {
        out.push(result.from.length > 0 ? `retired ${result.from.join(', ')} (removed from ${provider.file})` : 'no version to retire');
        out.push('back up the key file now: older backups hold retired keys');
      } else {
        out.push(`stopped early: ${result.remaining} study keys still under ${result.from.join(', ')}; run dicomvault keys rotate again to continue`);
      }
      // A key change is a security configuration change (SECURITY.md 2): recorded in the archive's audit trail,
      // beside a running server through its inbox. A data folder without an audit log yet has nothing to record in.
      if (fs.existsSync(path.join(dataDir, AUDIT_KEY_FILE))) {
        const what = `key-encryption key rotation to ${result.current}: ${result.rewrapped} study keys re-wrapped; ${
          result.complete ? `retired ${result.from.join(', ') || 'none'}` : `stopped early, ${result.remaining} left`
        }`;
        const keys = await loadAuditKeys(dataDir, provider);
        try {
          await appendBesideWriter(config, path.join(dataDir, AUDIT_DIR), keys, [commandSecurityConfigurationRecord('keys rotate', what, 0, io.env)], io.stderr);
        } finally {
          keys.close();
        }
      }
      io.stdout.write(`${out.join('\n')}\n`);
      return result.complete ? 0 : 3;
    } finally {
      progress.end();
      index?.close();
    }
  } finally {
    provider.close();
  }
}
