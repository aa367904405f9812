// `dicomvault retention sweep|show` as a process on the data folder of an app that deleted a study (grace period
// P0D): the dry run reports and changes nothing; the sweep purges (files gone, key destroyed, tombstones, a 110105
// record per study in the audit log) with progress on stderr; a second sweep does nothing; wrong command lines exit 2.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { AuditRecord } from '../../src/audit/audit-record.js';
import { openStorage } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { INDEX_DB_FILE } from '../../src/index/sqlite/index-key.js';
import { testApp } from '../helpers/app.js';
import { runCli } from '../helpers/cli-process.js';
import { OLD, RECENT, filesUnder, stow, studyInstances } from '../helpers/lifecycle.js';
import { tempDir } from '../helpers/temp-dir.js';

t.test('retention sweep: dry run, sweep, idempotent; show; usage', async (t) => {
  const app = await testApp(t, { DICOMVAULT_RETENTION_GRACE_PERIOD: 'P0D' });
  await stow(t, app.app, [...studyInstances(OLD), ...studyInstances(RECENT)].map((i) => i.bytes));
  t.equal((await app.app.inject({ method: 'DELETE', url: `/dicomweb/studies/${OLD.study}` })).statusCode, 204);
  const bytes = app.lifecycle.listBin({ studyInstanceUID: OLD.study }).reduce((n, b) => n + b.record.size, 0);
  // The server's process would hold the audit log: it is closed before the sweep (the dry run needs no audit log).
  await app.app.close();
  await app.close();
  const env = { DICOMVAULT_STORAGE_DATA_DIR: app.config.storage.dataDir, DICOMVAULT_KEYS_FILE: app.config.keys.file, DICOMVAULT_RETENTION_GRACE_PERIOD: 'P0D' };
  const objects = () => filesUnder(path.join(app.dataDir, 'blobs', 'objects'));
  const before = objects();
  const indexFile = () => fs.readFileSync(path.join(app.dataDir, INDEX_DB_FILE));
  const db = indexFile();
  const cwd = tempDir(t);

  const dry = await runCli(cwd, ['retention', 'sweep', '--dry-run'], env);
  t.equal(dry.code, 0, dry.stderr);
  t.equal(
    dry.stdout,
    `dry run: would purge 3 instances (${bytes} bytes) of 1 studies; study keys to destroy 1; held 0 instances of 0 studies\nstudy\t${OLD.study}\t3 instances\tkey destroyed\n`,
  );
  t.same(objects(), before, 'dry run: the same files');
  t.ok(indexFile().equals(db), 'dry run: the index file unchanged (same rows)');

  const run = await runCli(cwd, ['retention', 'sweep'], env);
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, `purged 3 instances (${bytes} bytes) of 1 studies; study keys destroyed 1; held 0 instances of 0 studies\nstudy\t${OLD.study}\t3 instances\tkey destroyed\n`);
  t.match(run.stderr, /bin instances purged: 3\/\d+ \(\d+%\)\n/, 'progress on stderr');
  t.notOk((run.stdout + run.stderr).includes(OLD.patientId), 'no PatientID printed');
  t.equal(objects().length, before.length - 3, 'three files gone');

  const again = await runCli(cwd, ['retention', 'sweep'], env);
  t.equal(again.code, 0, again.stderr);
  t.equal(again.stdout, 'purged 0 instances (0 bytes) of 0 studies; study keys destroyed 0; held 0 instances of 0 studies\n', 'a second sweep does nothing');

  const show = await runCli(cwd, ['retention', 'show', '--study', RECENT.study], env);
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, /^study 2\.25\.7100002\nkeep until 2031-01-01 \(rule default; computed .*\)\nrules now: 2031-01-01\n {2}default\t2031-01-01\tStudyDate \+ P7Y\nin the bin: 0 instances\n$/);

  t.equal((await runCli(cwd, ['retention', 'sweep', '--bogus'], env)).code, 2, 'unknown option');
  const noStudy = await runCli(cwd, ['retention', 'show'], env);
  t.same([noStudy.code, noStudy.stderr], [2, 'dicomvault retention: --study UID is required (a valid StudyInstanceUID)\n']);
  const empty = await runCli(cwd, ['retention', 'sweep'], { DICOMVAULT_STORAGE_DATA_DIR: path.join(cwd, 'none'), DICOMVAULT_KEYS_FILE: path.join(cwd, 'k.json') });
  t.equal(empty.code, 1, 'no archive: 1');

  // What the sweep left: the key destroyed, tombstones, and a 110105 record for the study.
  const storage = await openStorage(loadConfig({ env }));
  t.teardown(() => storage.close());
  t.ok(storage.keyring.isErased(OLD.study), 'study key destroyed');
  t.equal(storage.lifecycle.listTombstones({ studyInstanceUID: OLD.study }).length, 3, 'tombstones');
  const records: AuditRecord[] = [];
  for await (const e of storage.audit.read({ fromN: 0 })) records.push(e.record);
  const deleted = records.filter((r) => r.eventId.code === '110105');
  t.equal(deleted.length, 1, 'one 110105 record');
  t.match(deleted[0], {
    action: 'D',
    outcome: 0,
    participants: [{ userId: 'retention-sweep', userIsRequestor: true }],
    objects: [
      { id: OLD.study, idTypeCode: { code: '110180' }, details: [{ type: 'RemovedBy', value: 'test-admin' }, { type: 'RemovalCode', value: 'delete' }, { type: 'StudyKeyDestroyed', value: 'true' }] },
      { id: OLD.patientId },
    ],
  });
});
