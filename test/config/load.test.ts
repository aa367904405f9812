import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { configKeys } from '../../src/config/keys.js';
import { envNameToPath, loadConfig, pathToEnvName } from '../../src/config/load.js';
import { tempDir } from '../helpers/temp-dir.js';

t.test('embedded defaults are the documented development defaults', async (t) => {
  const c = loadConfig();
  t.equal(c.profile, 'development');
  t.equal(c.server.host, '127.0.0.1');
  t.equal(c.server.port, 8443);
  t.equal(c.server.basePath, '/dicomweb');
  t.equal(c.storage.dataDir, 'data');
  t.equal(c.tls.devDir, 'certs/dev');
  t.equal(c.stow.duplicatePolicy, 'reject');
  t.ok(c.server.requestTimeoutMs > 0, 'request timeout is never 0 (Fastify default)');
});

t.test('environment names map to keys and back', async (t) => {
  t.same(envNameToPath('DICOMVAULT_SERVER_REQUEST_TIMEOUT_MS'), ['server', 'requestTimeoutMs']);
  t.same(envNameToPath('DICOMVAULT_PROFILE'), ['profile']);
  for (const key of configKeys()) t.same(envNameToPath(pathToEnvName(key)), key, key.join('.'));
});

t.test('file < environment, with types from the schema', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ server: { port: 9000, host: '::1' }, stow: { duplicatePolicy: 'replace' } }));
  const c = loadConfig({ configFile: file, env: { DICOMVAULT_SERVER_PORT: '9443', DICOMVAULT_QIDO_MAX_LIMIT: '50', DICOMVAULT_QIDO_DEFAULT_LIMIT: '20', UNRELATED: 'x' } });
  t.equal(c.server.port, 9443, 'environment wins');
  t.equal(c.server.host, '::1', 'file value kept');
  t.equal(c.stow.duplicatePolicy, 'replace');
  t.equal(c.qido.maxLimit, 50);
  t.same(
    loadConfig({ env: { DICOMVAULT_CORS_ORIGINS: 'https://viewer.example.org, http://localhost:3000' } }).cors.origins,
    ['https://viewer.example.org', 'http://localhost:3000'],
    'a list key from a comma-separated variable',
  );
});

t.test('a bad value stops with one message naming the key and the source', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ DICOMVAULT_SERVER_PORT: '70000' }, /^configuration server\.port \(from DICOMVAULT_SERVER_PORT\): .*65535/],
    [{ DICOMVAULT_SERVER_PORT: 'abc' }, /^configuration server\.port \(from DICOMVAULT_SERVER_PORT\): /],
    [{ DICOMVAULT_SERVER_PROT: '1' }, /^configuration server\.prot \(from DICOMVAULT_SERVER_PROT\): is not a configuration key/],
    [{ DICOMVAULT_STOW_DUPLICATE_POLICY: 'overwrite' }, /^configuration stow\.duplicatePolicy .*/],
    [{ DICOMVAULT_SERVER_BASE_PATH: 'dicomweb/' }, /^configuration server\.basePath .*must be empty or start with \//],
    [{ DICOMVAULT_QIDO_DEFAULT_LIMIT: '500', DICOMVAULT_QIDO_MAX_LIMIT: '100' }, /^configuration qido\.defaultLimit \(from DICOMVAULT_QIDO_DEFAULT_LIMIT\): must not exceed qido\.maxLimit/],
    [{ DICOMVAULT_PROFILE: 'production' }, /^configuration tls\.ca: is required in the production profile/],
    [{ DICOMVAULT_CORS_ORIGINS: 'https://viewer.example.org,*' }, /^configuration cors\.origins\.1 \(from DICOMVAULT_CORS_ORIGINS\): must be an origin/],
  ];
  for (const [env, message] of cases) {
    t.throws(() => loadConfig({ env }), { name: 'ConfigError', message }, JSON.stringify(env));
  }
  const dir = tempDir(t);
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '{"server": ');
  t.throws(() => loadConfig({ configFile: bad }), { message: /^config file .*bad\.json: not a JSON object/ });
  t.throws(() => loadConfig({ configFile: path.join(dir, 'missing.json') }), { message: /cannot be read \(ENOENT\)/ });
});

t.test('README documents every configuration key as its environment variable', async (t) => {
  const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const key of configKeys()) {
    const env = pathToEnvName(key);
    t.ok(readme.includes(`\`${key.join('.')}\``) && readme.includes(env), `${key.join('.')} / ${env} in README.md`);
  }
});
