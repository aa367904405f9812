// `dicomvault verify` as a process, configured through DICOMVAULT_* variables like an operator's shell, on the
// data folder of a running app (verify is read-only: it runs beside the server): exit 0 on a clean store,
// 1 with one report line per tampered object, 2 on a wrong command line.
import t from 'tap';
import type { TestApp } from '../helpers/app.js';
import { runCli } from '../helpers/cli-process.js';
import { storedArchive, tamperedArchive } from '../helpers/tamper.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { generatedSet } from '../helpers/testdata.js';

const run = (cwd: string, env: Record<string, string>, args: string[]) => runCli(cwd, ['verify', ...args], env);

const envOf = (app: TestApp) => ({ DICOMVAULT_STORAGE_DATA_DIR: app.config.storage.dataDir, DICOMVAULT_KEYS_FILE: app.config.keys.file });

t.test('a clean store verifies: exit 0, counts, progress on stderr', async (t) => {
  const archive = await storedArchive(t);
  const total = archive.studies[0].length + archive.studies[1].length;
  const res = await run(tempDir(t), envOf(archive), []);
  t.equal(res.code, 0, res.stderr);
  t.equal(res.stdout, `checked ${total}, verified ${total}, problems 0, erased 0, changed while checking 0\nOK\n`);
  t.match(res.stderr, new RegExp(`objects verified: ${total}/${total} \\(100%\\)\\n$`), 'plain progress lines when stderr is not a terminal');
});

t.test('a tampered store: exit 1, one line per problem, --study narrows the check', async (t) => {
  const archive = await tamperedArchive(t);
  const total = archive.intact.length + archive.otherStudy.length + 5;
  const res = await run(tempDir(t), envOf(archive), []);
  t.equal(res.code, 1, res.stderr);
  const [counts, ...lines] = res.stdout.trimEnd().split('\n');
  t.equal(counts, `checked ${total}, verified ${total - 5}, problems 5, erased 0, changed while checking 0`);
  t.equal(lines.pop(), 'FAILED');
  const expected = [
    `integrity\t${archive.flipped.sop}\tblob ${archive.flipped.blobKey}\tencrypted blob ${archive.flipped.blobKey}: segment 0 failed authentication`,
    `size-mismatch\t${archive.truncated.sop}\tblob ${archive.truncated.blobKey}\tthe index recorded ${archive.truncated.bytes.length} bytes, the blob holds `,
    ...archive.swapped.map((f) => `integrity\t${f.sop}\tblob ${f.blobKey}\tencrypted blob ${f.blobKey}: object key failed authentication`),
    `missing\t${archive.deleted.sop}\tblob ${archive.deleted.blobKey}\tno blob under this key`,
  ];
  t.equal(lines.length, expected.length, 'one line per problem, nothing else');
  for (const e of expected) t.ok(lines.some((l) => l.startsWith(e)), e.split('\t')[0]!);
  const { manifest } = generatedSet('ct-2studies');
  t.notOk(manifest.patients.some((p) => res.stdout.includes(p.PatientID)), 'no patient IDs in the report');

  const clean = await run(tempDir(t), envOf(archive), ['--study', archive.otherStudy[0]!.study]);
  t.equal(clean.code, 0, clean.stderr);
  t.match(clean.stdout, new RegExp(`^checked ${archive.otherStudy.length}, verified ${archive.otherStudy.length}, problems 0`));
});

t.test('wrong command lines and a folder without an archive', async (t) => {
  const cwd = tempDir(t);
  const env = storageEnv(cwd);
  const unknown = await run(cwd, env, ['--bogus']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /^dicomvault verify: Unknown option '--bogus'/);
  const badUid = await run(cwd, env, ['--study', 'Doe^John']);
  t.equal(badUid.code, 2);
  t.match(badUid.stderr, /--study must be a UID/);
  const empty = await run(cwd, env, []);
  t.equal(empty.code, 1);
  t.equal(empty.stderr, `dicomvault verify: no archive in ${env.DICOMVAULT_STORAGE_DATA_DIR} (storage.dataDir)\n`);
  t.equal(empty.stdout, '');
});
