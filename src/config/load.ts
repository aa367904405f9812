// Configuration = schema defaults < JSON file (--config) < DICOMVAULT_* environment variables.
// Any problem stops the start with one message that names the key, where it came from, and what is wrong.

import fs from 'node:fs';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const ENV_PREFIX = 'DICOMVAULT_';

/** DICOMVAULT_SERVER_REQUEST_TIMEOUT_MS -> ['server', 'requestTimeoutMs']; DICOMVAULT_PROFILE -> ['profile']. */
export function envNameToPath(name: string): string[] {
  const words = name.slice(ENV_PREFIX.length).toLowerCase().split('_').filter(Boolean);
  if (words.length <= 1) return words;
  const [section, ...rest] = words as [string, ...string[]];
  return [section, rest.map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1))).join('')];
}

export function pathToEnvName(path: string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()).join('_');
}

function defaultAt(path: string[]): unknown {
  const defaults = configSchema.safeParse({});
  let node: unknown = defaults.success ? defaults.data : configSchema.parse({ profile: 'development' });
  for (const p of path) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[p] : undefined;
  return node;
}

/** Environment values are strings; give them the type the key's default has, so zod reports real problems. */
function coerce(raw: string, path: string[]): unknown {
  const d = defaultAt(path);
  if (typeof d === 'number') return raw.trim() === '' ? raw : Number(raw);
  if (typeof d === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  // Lists of objects (principals) are JSON; a malformed one is left as text for zod to refuse.
  if (Array.isArray(d) && raw.trimStart().startsWith('[')) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  // Lists (cors.origins) are comma-separated; blanks around commas and empty entries are dropped.
  if (Array.isArray(d)) return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return raw;
}

function setAt(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const p of path.slice(0, -1)) {
    if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

export interface LoadOptions {
  configFile?: string;
  env?: Record<string, string | undefined>;
}

export function loadConfig({ configFile, env = {} }: LoadOptions = {}): Config {
  let raw: Record<string, unknown> = {};
  if (configFile) {
    let text: string;
    try {
      text = fs.readFileSync(configFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`config file ${configFile}: cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      raw = parsed as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`config file ${configFile}: not a JSON object (${(e as Error).message})`);
    }
  }
  const fromEnv = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = envNameToPath(name);
    if (path.length === 0) continue;
    setAt(raw, path, coerce(value, path));
    fromEnv.set(path.join('.'), name);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') path.push(issue.keys[0]!);
    const key = path.join('.') || '(root)';
    const message = issue.code === 'unrecognized_keys' ? 'is not a configuration key' : issue.message;
    // An issue inside a list (cors.origins.1) comes from the variable that set the list.
    const envName = path.map((_, i) => fromEnv.get(path.slice(0, path.length - i).join('.'))).find(Boolean);
    const source = envName ? ` (from ${envName})` : configFile ? ` (in ${configFile})` : '';
    throw new ConfigError(`configuration ${key}${source}: ${message}`);
  }
  return result.data;
}
