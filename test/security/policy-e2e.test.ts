// Issue 5 over real mutual TLS: `dicomvault serve` as a process with a principal registry (DICOMVAULT_PRINCIPALS)
// naming two client certificates issued by the development CA, and the example policies (DICOMVAULT_POLICY_FILE).
// The development admin stores one study per institution; each radiology certificate then sees only its own
// institution's study, the other one's metadata is a 404 like a missing study, and a CA-valid certificate the
// registry does not know is refused with 403.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createDevPki, issueClientCertificate } from '../../src/security/pki.js';
import { startServer } from '../e2e/cli-process.js';
import { REPO_ROOT } from '../helpers/access.js';
import { request, type ClientTls } from '../helpers/https-client.js';
import { multipartBody } from '../helpers/multipart.js';
import { policyInstance } from '../helpers/policy-dataset.js';
import { tempDir } from '../helpers/temp-dir.js';

const INST_A = 'GENERAL HOSPITAL';
const INST_B = 'NORTH CLINIC';
const STUDY_A = '2.25.9300001';
const STUDY_B = '2.25.9300002';

t.test('mTLS principals see only the studies the policies give them', async (t) => {
  const cwd = tempDir(t);
  const caDir = path.join(cwd, 'certs/dev');
  await createDevPki(caDir);
  const out = tempDir(t);
  const radA = await issueClientCertificate(caDir, { name: 'radiology-a', outDir: out });
  const radB = await issueClientCertificate(caDir, { name: 'radiology-b', outDir: out });
  const stranger = await issueClientCertificate(caDir, { name: 'stranger', role: 'admin', outDir: out });
  const policyFile = path.join(cwd, 'policies.cedar');
  fs.copyFileSync(path.join(REPO_ROOT, 'policies/examples.cedar'), policyFile);

  const server = await startServer(t, cwd, {
    DICOMVAULT_POLICY_FILE: policyFile,
    DICOMVAULT_PRINCIPALS: JSON.stringify([
      { id: 'radiology-a', match: { sanUri: 'urn:dicomvault:principal:radiology-a' }, roles: ['radiology'], attributes: { institution: INST_A } },
      { id: 'radiology-b', match: { fingerprint256: radB.fingerprint256 }, roles: ['radiology'], attributes: { institution: INST_B } },
    ]),
  });
  const ca = server.tls.ca;
  const tlsOf = (issued: { certPath: string; keyPath: string }): ClientTls => ({ ca, cert: fs.readFileSync(issued.certPath), key: fs.readFileSync(issued.keyPath) });
  const json = { accept: 'application/dicom+json' };

  // The development admin certificate stores one study per institution.
  const parts = [
    { study: STUDY_A, institution: INST_A },
    { study: STUDY_B, institution: INST_B },
  ].flatMap(({ study, institution }) =>
    [1, 2].map((i) => policyInstance({ study, series: `${study}.1`, sop: `${study}.1.${i}`, modality: 'CT', institution, instanceNumber: i, studyDate: '20240101' })),
  );
  const { contentType, body } = multipartBody(parts);
  const stored = await request(`${server.base}/studies`, server.tls, { method: 'POST', headers: { 'content-type': contentType, ...json }, body });
  t.equal(stored.status, 200, 'the admin stores both studies');

  const studiesOf = async (tls: ClientTls) => {
    const res = await request(`${server.base}/studies`, tls, { headers: json });
    t.equal(res.status, 200, 'QIDO /studies: 200');
    return (JSON.parse(res.body.toString('utf8')) as Record<string, { Value?: unknown[] }>[]).map((r) => r['0020000D']?.Value?.[0]).sort();
  };
  t.same(await studiesOf(server.tls), [STUDY_A, STUDY_B], 'admin: both studies');
  t.same(await studiesOf(tlsOf(radA)), [STUDY_A], 'radiology-a (by SAN URI): only its institution');
  t.same(await studiesOf(tlsOf(radB)), [STUDY_B], 'radiology-b (by fingerprint): only its institution');

  const metadata = (tls: ClientTls, study: string) => request(`${server.base}/studies/${study}/metadata`, tls, { headers: json });
  const own = await metadata(tlsOf(radA), STUDY_A);
  t.equal(own.status, 200, 'radiology-a: metadata of its study');
  const hidden = await metadata(tlsOf(radA), STUDY_B);
  const missing = await metadata(tlsOf(radA), '2.25.9300099');
  t.equal(hidden.status, 404, "radiology-a: the other institution's study is 404");
  t.equal(hidden.body.toString('utf8'), missing.body.toString('utf8'), 'the same body as a missing study');
  t.equal(hidden.headers['content-type'], missing.headers['content-type'], 'the same content-type');
  t.equal(hidden.headers['content-length'], missing.headers['content-length'], 'the same content-length');
  const stable = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => !['date', 'connection', 'keep-alive'].includes(k)));
  t.same(stable(hidden.headers), stable(missing.headers), 'the same headers and values (but Date)');
  const retrieveHidden = await request(`${server.base}/studies/${STUDY_B}`, tlsOf(radA));
  t.equal(retrieveHidden.status, 404, "radiology-a: WADO-RS of the other institution's study is 404");

  const refused = await request(`${server.base}/studies`, tlsOf(stranger));
  t.equal(refused.status, 403, 'a CA-valid certificate the registry does not know (even claiming a role) -> 403');
  t.same(JSON.parse(refused.body.toString('utf8')), { error: 'FORBIDDEN', message: 'client certificate is not registered' });

  t.equal(await server.stop(), 0, 'graceful stop');
});
