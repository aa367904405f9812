// How a module starts one of our worker threads, from the build (dist/) or from the sources under tsx.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What `new Worker(entry, { eval })` takes. */
export interface WorkerEntry {
  entry: string | URL;
  eval: boolean;
}

/**
 * The worker script `name` (without extension) next to the module at `moduleUrl` (its import.meta.url): the
 * compiled .js in dist/. Running from the sources under tsx (tests, `npm run dicomvault`), the worker would inherit
 * `--import tsx` but Node 20 loads a worker's entry before that hook is in place (ERR_UNKNOWN_FILE_EXTENSION), so a
 * one-line bootstrap registers tsx in the worker first.
 */
export function workerEntry(moduleUrl: string, name: string): WorkerEntry {
  const js = new URL(`./${name}.js`, moduleUrl);
  if (existsSync(fileURLToPath(js))) return { entry: js, eval: false };
  const ts = new URL(`./${name}.ts`, moduleUrl).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return { entry: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(ts)}); });`, eval: true };
}
