// A STOW of more parts than the process may open files: every instance must still be stored (EMFILE
// otherwise: each staged part and each commit's fsync needs a descriptor).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { tempDir } from '../helpers/temp-dir.js';
import { TESTDATA } from '../helpers/testdata.js';

const here = path.dirname(fileURLToPath(import.meta.url));

t.test('600 parts in one request under a 256-descriptor limit: all stored', async (t) => {
  const source = tempDir(t);
  execFileSync(process.execPath, [path.join(TESTDATA, '../tools/gen-ct.mjs'), '--out', source, '--count', '600', '--studies', '1', '--series', '1', '--rows', '16', '--cols', '16'], { stdio: 'ignore' });
  const script = path.join(here, '../fixtures/stow-many-parts.ts');
  const tsx = import.meta.resolve('tsx');
  const out = execFileSync('bash', ['-c', `ulimit -n 256 && exec "${process.execPath}" --import "${tsx}" "${script}" "${source}" "${tempDir(t)}"`], { encoding: 'utf8' });
  t.same(JSON.parse(out), { status: 200, parts: 600, stored: 600 });
});
