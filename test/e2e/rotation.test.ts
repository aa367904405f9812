// Key rotation end to end (issue 4, "Done when" 3): `dicomvault serve`, `dicomvault keys rotate` and
// `dicomvault keys status` as processes on one working folder, STOW and WADO-RS over mutual TLS. Store, rotate,
// restart: everything readable and byte-equal, metadata equal; the old KEK is gone from keys/kek.json and the
// archive still reads. And a rotation while the server runs: it keeps answering during and after.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { request } from '../helpers/https-client.js';
import { multipartBody } from '../helpers/multipart.js';
import { tempDir } from '../helpers/temp-dir.js';
import { generatedSet } from '../helpers/testdata.js';
import { runCli } from '../helpers/cli-process.js';
import { type RunningServer, auditRecordsOf, startServer } from './cli-process.js';

const { manifest, files } = generatedSet('ct-2studies');
const bytesOf = new Map(files.map((f) => [f.rel, f.bytes]));
const studies = manifest.studies.map((s) => ({
  uid: s.StudyInstanceUID,
  instances: s.series.flatMap((x) =>
    x.instances.map((i) => ({ series: x.SeriesInstanceUID, sop: i.SOPInstanceUID, bytes: bytesOf.get(path.join('generated', 'ct-2studies', i.file))! })),
  ),
}));
type Study = (typeof studies)[number];

interface KeyFile {
  versions: { id: string; state: string; key?: string }[];
}
const keyFile = (cwd: string): KeyFile => JSON.parse(fs.readFileSync(path.join(cwd, 'keys/kek.json'), 'utf8')) as KeyFile;

async function stow(t: Test, server: RunningServer, study: Study) {
  const { contentType, body } = multipartBody(study.instances.map((i) => i.bytes));
  const res = await request(`${server.base}/studies`, server.tls, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/dicom+json' }, body });
  t.equal(res.status, 200, `study ${study.uid} stored`);
}

/** Study metadata with the server's origin taken out of the BulkDataURIs (the port changes on a restart). */
async function metadata(server: RunningServer, study: Study): Promise<unknown> {
  const res = await request(`${server.base}/studies/${study.uid}/metadata`, server.tls, { headers: { accept: 'application/dicom+json' } });
  if (res.status !== 200) throw new Error(`metadata: ${res.status}`);
  return JSON.parse(res.body.toString('utf8').replaceAll(server.base, ''));
}

/** What did not come back byte-equal, as `status: body` (answers are JSON error bodies, no PHI). */
const failures: string[] = [];

/** Every instance of the study retrieved as application/dicom equals the file sent; the count of equal ones. */
async function retrieveAll(server: RunningServer, study: Study): Promise<number> {
  let equal = 0;
  for (const i of study.instances) {
    const res = await request(`${server.base}/studies/${study.uid}/series/${i.series}/instances/${i.sop}`, server.tls, { headers: { accept: 'application/dicom' } });
    if (res.status === 200 && res.body.equals(i.bytes)) equal++;
    else failures.push(`${res.status}: ${res.status === 200 ? `${res.body.length} bytes` : res.body.toString('utf8')}`);
  }
  return equal;
}

t.test('store, stop, rotate, restart: every object byte-equal, metadata equal, the old KEK gone', async (t) => {
  const cwd = tempDir(t);
  const first = await startServer(t, cwd);
  for (const s of studies) await stow(t, first, s);
  const before = await Promise.all(studies.map((s) => metadata(first, s)));
  t.equal(await first.stop(), 0, 'graceful stop');

  const [v1] = keyFile(cwd).versions;
  t.match(v1, { state: 'active', key: /\S{20,}/ });
  const rotated = await runCli(cwd, ['keys', 'rotate']);
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, new RegExp(`^new key version (v2-\\S+) is active\\nindex key re-wrapped from ${v1!.id} to v2-\\S+\\naudit keys re-wrapped from ${v1!.id} to v2-\\S+\\n2 study keys re-wrapped\\nretired ${v1!.id} `));
  const v2 = /new key version (\S+)/.exec(rotated.stdout)![1]!;
  const keyChange = (await auditRecordsOf(cwd)).filter((r) => r.eventId.code === '110113');
  t.match(keyChange, [{ eventTypes: [{ code: '110129' }], outcome: 0, objects: [{ id: 'dicomvault keys rotate', details: [{ value: new RegExp(`rotation to ${v2}: 2 study keys re-wrapped; retired ${v1!.id}`) }] }] }], 'the rotation is in the audit trail (110113/110129)');

  const status = await runCli(cwd, ['keys', 'status']);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, new RegExp(`${v1!.id} +retired +\\S+ +0\\n`), 'old version retired, wraps nothing');
  t.match(status.stdout, new RegExp(`${v2} +active +\\S+ +2  current\\n`), 'both study keys under the new version');
  const text = fs.readFileSync(path.join(cwd, 'keys/kek.json'), 'utf8');
  t.notOk(text.includes(v1!.key!), 'the old key material left keys/kek.json');
  t.notOk(keyFile(cwd).versions.find((v) => v.id === v1!.id)?.key, 'the retired version has no key');

  const second = await startServer(t, cwd);
  for (const s of studies) t.equal(await retrieveAll(second, s), s.instances.length, `study ${s.uid}: every instance byte-equal after rotation and restart`);
  t.same(await Promise.all(studies.map((s) => metadata(second, s))), before, 'metadata equal');
  t.equal(await second.stop(), 0);
});

t.test('rotation while the server runs: retrieves keep answering during and after, new studies use the new key', async (t) => {
  const cwd = tempDir(t);
  failures.length = 0;
  // A 1 ms key cache TTL: every read unwraps its study key again, so reads during and after the rotation go
  // through whatever KEK version the row holds at that moment (and keys evicted mid-read must not break reads).
  const server = await startServer(t, cwd, { DICOMVAULT_KEYS_CACHE_TTL_MS: '1' });
  const [a, b] = studies as [Study, Study];
  await stow(t, server, a);
  const [v1] = keyFile(cwd).versions;

  let rotating = true;
  const during = { rounds: 0, equal: 0, expected: 0 };
  const reader = (async () => {
    while (rotating) {
      during.equal += await retrieveAll(server, a);
      during.expected += a.instances.length;
      during.rounds++;
    }
  })();
  const rotated = await runCli(cwd, ['keys', 'rotate']);
  rotating = false;
  await reader;
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, new RegExp(`retired ${v1!.id} `));
  t.ok(during.rounds >= 1, `${during.rounds} rounds of retrieves while rotating`);
  t.equal(during.equal, during.expected, 'every retrieve during the rotation answered with the stored bytes');

  t.equal(await retrieveAll(server, a), a.instances.length, 'after the rotation: byte-equal');
  await stow(t, server, b);
  t.equal(await retrieveAll(server, b), b.instances.length, 'a study stored after the rotation: byte-equal');
  const status = await runCli(cwd, ['keys', 'status']);
  const v2 = keyFile(cwd).versions.find((v) => v.state === 'active')!.id;
  t.match(status.stdout, new RegExp(`${v1!.id} +retired +\\S+ +0\\n`));
  t.match(status.stdout, new RegExp(`${v2} +active +\\S+ +2  current\\n`), 'the new study key is wrapped by the new version');
  t.equal(await server.stop(), 0);
  const keyChange = (await auditRecordsOf(cwd)).filter((r) => r.eventId.code === '110113' && r.objects[0]?.id === 'dicomvault keys rotate');
  t.equal(keyChange.length, 1, 'the rotation beside the running server reached its audit trail through the inbox');
  t.same(failures, [], 'no failed retrieve');
  if (failures.length > 0) t.comment(server.output().stdout.split('\n').filter((l) => l.includes('"level":50')).slice(0, 3).join('\n'));
});
