// fdatasync of SQLite's log through a descriptor kept open (src/index/sqlite/log-file-sync.ts): one descriptor
// across flushes, a new one when the path names another file, an error when there is none.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { LogFileSync } from '../../src/index/sqlite/log-file-sync.js';
import { tempDir } from '../helpers/temp-dir.js';

/** What this process's descriptors point at, for those that name `file` (deleted or not). */
function descriptorsOf(file: string): string[] {
  const links: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(file)) links.push(target);
    } catch {
      // closed meanwhile (the readdir's own descriptor)
    }
  }
  return links;
}

t.test('one descriptor for every flush; a replaced file is reopened; close lets it go', async (t) => {
  const file = path.join(tempDir(t), 'index.sqlite-wal');
  fs.writeFileSync(file, 'log');
  const log = new LogFileSync(file);
  await log.sync();
  await log.sync();
  await log.sync();
  t.same(descriptorsOf(file), [file], 'one descriptor, kept between flushes');
  // SQLite deletes the log when its last connection closes, and the next one writes a new file.
  fs.rmSync(file);
  fs.writeFileSync(file, 'new log');
  t.same(descriptorsOf(file), [`${file} (deleted)`], 'the one held is now of a deleted file');
  await log.sync();
  t.same(descriptorsOf(file), [file], 'the flush went to the file the path names now');
  log.close();
  t.same(descriptorsOf(file), []);
});

t.test('no log file: the flush fails (the caller fails the write)', async (t) => {
  const file = path.join(tempDir(t), 'missing-wal');
  const log = new LogFileSync(file);
  await t.rejects(log.sync(), { code: 'ENOENT' });
  fs.writeFileSync(file, 'log');
  await log.sync();
  fs.rmSync(file);
  await t.rejects(log.sync(), { code: 'ENOENT' }, 'nor when it went away after a flush');
  t.same(descriptorsOf(file), [], 'and the descriptor of the deleted file is let go');
  log.close();
});
