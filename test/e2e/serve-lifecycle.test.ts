// `dicomvault serve` as shipped has issue 6's lifecycle wired in (compose.ts): a STOW computes the study's
// keep-until, the admin API shows it, and DELETE before it has passed is refused with the reason. The in-process
// tests (test/http/lifecycle.test.ts) build the app with a lifecycle store themselves, so only a real process shows
// that the composition gives it one.
import path from 'node:path';
import t from 'tap';
import { startServer } from './cli-process.js';
import { generateCt } from '../helpers/generated-ct.js';
import { request } from '../helpers/https-client.js';
import { multipartBody } from '../helpers/multipart.js';
import { tempDir } from '../helpers/temp-dir.js';

t.test('serve: STOW computes keep-until, the admin API shows it, an early DELETE is refused (403)', async (t) => {
  const cwd = tempDir(t);
  const [instance] = generateCt(path.join(cwd, 'ct'), { count: 1, studies: 1, series: 1, seed: 7 });
  const server = await startServer(t, cwd);
  const { contentType, body } = multipartBody([instance!.bytes]);
  const stored = await request(`${server.base}/studies`, server.tls, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/dicom+json' }, body });
  t.equal(stored.status, 200, stored.body.toString());

  const retention = await request(`${server.base}/admin/studies/${instance!.study}/retention`, server.tls);
  t.equal(retention.status, 200, retention.body.toString());
  const facts = JSON.parse(retention.body.toString()) as { keepUntil: unknown; computedAt: string | null; expired: boolean };
  t.type(facts.computedAt, 'string', 'keep-until was computed when the instance arrived');
  t.equal(facts.expired, false);

  const deleted = await request(`${server.base}/studies/${instance!.study}`, server.tls, { method: 'DELETE' });
  t.equal(deleted.status, 403, 'refused before its keep-until date');
  t.match(JSON.parse(deleted.body.toString()), { error: 'FORBIDDEN', message: /^retained until \d{4}-\d{2}-\d{2} \(rule default\)$/ }, 'with the reason');
  const search = await request(`${server.base}/studies?StudyInstanceUID=${instance!.study}`, server.tls, { headers: { accept: 'application/dicom+json' } });
  t.equal(JSON.parse(search.body.toString()).length, 1, 'and the study is still there');
  t.equal(await server.stop(), 0);
});
