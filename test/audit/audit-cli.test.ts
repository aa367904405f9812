// The audit keys beside the data (src/audit/audit-keys.ts) and `dicomvault audit verify` (src/cli/audit.ts),
// called as a function with a temporary data folder and key file configured through DICOMVAULT_* variables.
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { AUDIT_DIR, AUDIT_KEY_FILE, AUDIT_PUBLIC_KEY_FILE, AuditKeyError, loadAuditKeys, loadOrCreateAuditKeys, rewrapAuditKeys } from '../../src/audit/audit-keys.js';
import { AuditLog, auditFileName } from '../../src/audit/audit-log.js';
import { runAuditCommand } from '../../src/cli/audit.js';
import { createKekFile } from '../../src/storage/keys/kek-file.js';
import { LocalKeyfileProvider } from '../../src/storage/keys/local-keyfile.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { record } from './audit-log-fixtures.js';

async function archiveWithAuditLog(t: Test, count: number) {
  const env = storageEnv(tempDir(t));
  createKekFile(env.DICOMVAULT_KEYS_FILE);
  const provider = LocalKeyfileProvider.open(env.DICOMVAULT_KEYS_FILE);
  t.teardown(() => provider.close());
  const dataDir = env.DICOMVAULT_STORAGE_DATA_DIR;
  const keys = await loadOrCreateAuditKeys(dataDir, provider);
  const log = await AuditLog.open(path.join(dataDir, AUDIT_DIR), keys.auditKey, keys.signingKey, { checkpointEvery: 5, checkpointIntervalMs: 0 });
  for (let i = 0; i < count; i++) await log.append(record(i));
  await log.close();
  keys.close();
  return { env, dataDir, provider };
}

async function run(argv: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await runAuditCommand(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env });
  return { code, stdout, stderr };
}

t.test('audit keys: made once, wrapped by the KEK beside the data, public key in clear; fail closed', async (t) => {
  const { dataDir, provider } = await archiveWithAuditLog(t, 3);
  const stored = JSON.parse(fs.readFileSync(path.join(dataDir, AUDIT_KEY_FILE), 'utf8')) as Record<string, { kekVersion: string }>;
  t.match(stored, { version: 1, auditKey: { kekVersion: provider.currentVersion(), wrapped: String }, signingKey: { wrapped: String } });
  t.equal((fs.statSync(path.join(dataDir, AUDIT_KEY_FILE)).mode & 0o777).toString(8), '600');
  t.match(fs.readFileSync(path.join(dataDir, AUDIT_PUBLIC_KEY_FILE), 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/);
  const a = await loadOrCreateAuditKeys(dataDir, provider);
  const b = await loadAuditKeys(dataDir, provider);
  t.ok(a.auditKey.equals(b.auditKey), 'the same key on every load');
  t.ok(a.publicKey.equals(b.publicKey));
  a.close();
  t.ok(a.auditKey.equals(Buffer.alloc(32)), 'close() zeroes the audit key');
  t.same(await rewrapAuditKeys(dataDir, provider), { from: provider.currentVersion(), to: provider.currentVersion() });
  t.ok((await loadAuditKeys(dataDir, provider)).auditKey.equals(b.auditKey), 'rewrapped: the same key');

  fs.writeFileSync(path.join(dataDir, AUDIT_PUBLIC_KEY_FILE), generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }));
  await t.rejects(loadAuditKeys(dataDir, provider), { name: 'AuditKeyError', message: /is not the public key of the audit signing key/ });
  fs.rmSync(path.join(dataDir, AUDIT_KEY_FILE));
  await t.rejects(loadOrCreateAuditKeys(dataDir, provider), AuditKeyError);
  await t.rejects(loadOrCreateAuditKeys(dataDir, provider), /audit\.key\.json is missing but the audit log .* exists: restore the key file/);
});

t.test('audit verify: exit 0 and a summary on an intact log', async (t) => {
  const { env } = await archiveWithAuditLog(t, 12);
  const res = await run(['verify'], env);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, /^records 12, files 1, last checkpoint record 11 at \d{4}-\d\d-\d\dT[\d:.]+Z, problems 0\nOK\n$/);
  t.equal(res.stderr, '');
});

t.test('audit verify: exit 1 with one line per problem, no PHI; --public-key checks against an off-box key', async (t) => {
  const { env, dataDir } = await archiveWithAuditLog(t, 12);
  const file = path.join(dataDir, AUDIT_DIR, auditFileName(1));
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.splice(4, 1);
  fs.writeFileSync(file, lines.join('\n'));
  const res = await run(['verify'], env);
  t.equal(res.code, 1, res.stderr);
  const out = res.stdout.trimEnd().split('\n');
  t.match(out[0], /^records 4, files 1, last checkpoint record 11 at .*, problems 1$/);
  t.match(out[1], /^removed\t4\taudit-000001\.jsonl byte \d+: record 5 follows record 3: record 4 is missing$/);
  t.equal(out[2], 'FAILED');
  t.notMatch(res.stdout, /Doe\^Jane|PID-7734/);

  const intact = await archiveWithAuditLog(t, 6);
  const pem = path.join(tempDir(t), 'offbox.pem');
  fs.writeFileSync(pem, generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }));
  const foreign = await run(['verify', '--public-key', pem], intact.env);
  t.equal(foreign.code, 1);
  t.match(foreign.stdout, /\nbad-checkpoint-signature\t4\t.*\nbad-checkpoint-signature\t5\t/);
  const own = await run(['verify', '--public-key', path.join(intact.dataDir, AUDIT_PUBLIC_KEY_FILE)], intact.env);
  t.equal(own.code, 0, own.stdout);
});

t.test('audit: wrong command lines (2) and a folder without an audit log (1)', async (t) => {
  const env = storageEnv(tempDir(t));
  const none = await run([], env);
  t.equal(none.code, 2);
  t.match(none.stderr, /^usage: dicomvault audit <subcommand>/);
  t.equal((await run(['--help'], env)).code, 0);
  const unknown = await run(['frobnicate'], env);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /^dicomvault audit: unknown subcommand "frobnicate"/);
  const bogus = await run(['verify', '--bogus'], env);
  t.equal(bogus.code, 2);
  t.match(bogus.stderr, /^dicomvault audit: Unknown option '--bogus'/);
  const empty = await run(['verify'], env);
  t.equal(empty.code, 1);
  t.equal(empty.stderr, `dicomvault audit: no audit log in ${env.DICOMVAULT_STORAGE_DATA_DIR} (storage.dataDir): audit.key.json is missing\n`);
  t.notOk(fs.existsSync(env.DICOMVAULT_KEYS_FILE), 'no key file created');
});
