// The audit trail's first wiring end to end (issue 6 item 5): `dicomvault serve` writes Application Start and,
// on SIGTERM, Application Stop with a final signed checkpoint; `dicomvault audit verify` (a process) checks
// the chain, before and after `dicomvault keys rotate` re-wraps the audit keys, and across a restart.
import path from 'node:path';
import t from 'tap';
import { runCli } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp-dir.js';
import { auditRecordsOf as records, startServer } from './cli-process.js';


const activity = (type: string, source: string) => ({
  eventId: { code: '110100', codeSystem: 'DCM' },
  action: 'E',
  outcome: 0,
  eventTypes: [{ code: type, codeSystem: 'DCM' }],
  participants: [{ userId: 'dicomvault', userIsRequestor: false, roleIdCode: { code: '110150', codeSystem: 'DCM' } }],
  source: { id: source, typeCode: '4' },
  objects: [],
});

t.test('serve writes Application Start and Stop; audit verify passes, also after keys rotate and a restart', async (t) => {
  const cwd = tempDir(t);
  const first = await startServer(t, cwd);
  t.equal(await first.stop(), 0, 'graceful stop');

  const verified = await runCli(cwd, ['audit', 'verify']);
  t.equal(verified.code, 0, verified.stderr);
  t.match(verified.stdout, /^records 2, files 1, last checkpoint record 1 at \S+, problems 0\nOK\n$/, 'start + stop, and the final checkpoint covers both');
  const logged = await records(cwd);
  t.match(logged, [activity('110120', first.base), activity('110121', first.base)], 'Application Start, then Application Stop');
  t.ok(logged.every((r) => !Number.isNaN(Date.parse(r.dateTime))), 'every record has its time');

  const rotated = await runCli(cwd, ['keys', 'rotate']);
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, /\naudit keys re-wrapped from \S+ to v2-\S+\n/, 'the audit keys follow the KEK');
  const again = await runCli(cwd, ['audit', 'verify']);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /^records 3, .*problems 0\nOK\n$/, 'still verifies under the new KEK version, with the rotation recorded');

  const second = await startServer(t, cwd);
  t.equal(await second.stop(), 0, 'the restarted server continues the chain and stops gracefully');
  const after = await runCli(cwd, ['audit', 'verify']);
  t.equal(after.code, 0, after.stderr);
  t.match(after.stdout, /^records 5, files 1, last checkpoint record 4 at \S+, problems 0\nOK\n$/);
  const all = await records(cwd);
  t.match(all[2], { eventId: { code: '110113' }, eventTypes: [{ code: '110129' }], objects: [{ id: 'dicomvault keys rotate' }] }, 'the key rotation (Security Configuration)');
  t.match(all.slice(3), [activity('110120', second.base), activity('110121', second.base)]);
});
