// Orthanc (Debian's 1.10 + DICOMweb plugin 1.7) as a modality gateway in front of this archive (issue 7,
// INTEROP.md): `dicomvault serve` runs as a process on a loopback mutual-TLS listener; a private Orthanc knows it
// as the DICOMweb peer "target" with a client certificate from the archive's CA, registered as the principal
// orthanc-gw (role gateway: search, read, store). Orthanc pushes a CT series, a 30-frame image and a Japanese
// (ISO 2022 IR 87) object with its STOW client, finds them with its QIDO client and retrieves them with /get and
// /retrieve, byte-equal to the files it was given. Peers with no client certificate, with one from a foreign CA,
// or with a certificate the registry does not name fail to push, and nothing is stored.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createCa, issueCertificate, issueClientCertificate } from '../../src/security/pki.js';
import { startServer } from '../e2e/cli-process.js';
import { request } from '../helpers/https-client.js';
import { filesUnder } from '../helpers/lifecycle.js';
import { splitMultipart } from '../helpers/multipart-response.js';
import { orthancDeps, startOrthanc } from '../helpers/orthanc.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';
import { indexRows, testFile } from '../helpers/testdata.js';

// Installs Orthanc and the plugin first (apt, on a clean machine), outside the timed test below.
orthancDeps();

const CT_SERIES = 'generated/ct-2studies/study001/series01/';
const MULTIFRAME = 'generated/ct-multiframe/study001/series01/multiframe.dcm';
const JAPANESE = 'pydicom/charset_files/chrH31.dcm';

const files = indexRows()
  .filter((r) => r.path.startsWith(CT_SERIES) || r.path === MULTIFRAME || r.path === JAPANESE)
  .map((r) => ({ ...r, bytes: testFile(r.path) }));
const studyUids = [...new Set(files.map((f) => f.studyUid))];

const POLICY = `
@id("admin-all")
permit (principal in Role::"admin", action, resource);

@id("gateway-search-read-store")
permit (principal in Role::"gateway", action in [Action::"search", Action::"read", Action::"store"], resource);
`;

/** One dataset of Orthanc's QIDO client answer: it flattens DICOM JSON to the first value as a string. */
type OrthancQidoItem = Record<string, { Value?: string }>;

const sorted = (xs: string[]) => [...xs].sort();

t.test('Orthanc pushes with STOW-RS over mutual TLS, finds with QIDO-RS, retrieves byte-equal', async (t) => {
  t.equal(files.length, 8, 'six CT slices, one multi-frame image, one ISO 2022 IR 87 object');
  const cwd = tempDir(t, 'dicomvault-orthanc-');
  fs.writeFileSync(path.join(cwd, 'policy.cedar'), POLICY);
  const principals = [{ id: 'orthanc-gw', match: { sanUri: 'urn:dicomvault:principal:orthanc-gw' }, roles: ['gateway'] }];
  const server = await startServer(t, cwd, { DICOMVAULT_POLICY_FILE: 'policy.cedar', DICOMVAULT_PRINCIPALS: JSON.stringify(principals) });

  // The gateway's certificate from the archive's (development) CA, as `dicomvault certs issue-client` makes it;
  // a second one the registry does not name; and one from a foreign CA with the gateway's very SAN URI, so
  // only the chain check can refuse it.
  const certs = path.join(cwd, 'gateway-certs');
  const gateway = await issueClientCertificate(path.join(cwd, 'certs/dev'), { name: 'orthanc-gw', outDir: certs });
  const stranger = await issueClientCertificate(path.join(cwd, 'certs/dev'), { name: 'stranger', outDir: certs });
  const foreignCa = await createCa('foreign CA');
  const foreign = await issueCertificate(foreignCa, { commonName: 'orthanc-gw', sans: { uri: ['urn:dicomvault:principal:orthanc-gw'] }, eku: 'clientAuth' });
  fs.writeFileSync(path.join(certs, 'foreign.crt'), foreign.certPem);
  fs.writeFileSync(path.join(certs, 'foreign.key'), foreign.keyPem, { mode: 0o600 });

  const url = `${server.base}/`;
  const orthanc = await startOrthanc(t, {
    caFile: path.join(cwd, 'certs/dev/ca.crt'),
    servers: {
      target: { url, certificateFile: gateway.certPath, certificateKeyFile: gateway.keyPath },
      'no-certificate': { url },
      'foreign-ca': { url, certificateFile: path.join(certs, 'foreign.crt'), certificateKeyFile: path.join(certs, 'foreign.key') },
      unregistered: { url, certificateFile: stranger.certPath, certificateKeyFile: stranger.keyPath },
    },
  });
  t.comment(`Orthanc at ${orthanc.url}, archive at ${server.base}`);

  const loaded: string[] = [];
  for (const f of files) {
    const res = await orthanc.json<{ ID: string; Status: string }>('POST', '/instances', f.bytes);
    t.equal(res.Status, 'Success', `Orthanc loaded ${f.path}`);
    loaded.push(res.ID);
  }
  const stow = (peer: string) => orthanc.call('POST', `/dicom-web/servers/${peer}/stow`, { Resources: loaded, Synchronous: true });
  const archiveQido = (pathname: string) => request(`${server.base}${pathname}`, server.tls);

  // Refused pushes first, into an empty archive, so "nothing stored" is exact.
  // Orthanc answers 500 to all three; its log tells a refused handshake (a libcurl error) from an HTTP answer.
  const refusedPush = async (peer: string, logged: RegExp, why: string) => {
    const logStart = orthanc.log().length;
    const res = await stow(peer);
    t.equal(res.status, 500, `${why}: Orthanc answers 500`);
    await until(() => logged.test(orthanc.log().slice(logStart)), 5000).catch(() => undefined);
    t.match(orthanc.log().slice(logStart), logged, `${why}: Orthanc logged ${logged}`);
  };
  await refusedPush('no-certificate', /libCURL error/, 'no client certificate: the TLS handshake fails');
  await refusedPush('foreign-ca', /libCURL error/, 'a certificate from a foreign CA: the TLS handshake fails');
  await refusedPush('unregistered', /received HTTP status 403/, 'a trusted certificate no principal entry names: the archive answers 403');
  t.equal((await archiveQido('/instances')).status, 204, 'nothing was stored: QIDO finds no instance');
  t.same(filesUnder(path.join(cwd, 'data/blobs/objects')), [], 'and no object was written');

  // The push.
  const pushed = await stow('target');
  t.equal(pushed.status, 200, `STOW through Orthanc: ${pushed.body.toString()}`);
  t.match(JSON.parse(pushed.body.toString()), { InstancesCount: String(files.length) }, 'Orthanc sent every instance in one request');
  const stored = await archiveQido('/instances?includefield=00080018');
  t.equal(stored.status, 200, 'QIDO on the archive finds the instances');
  const storedSops = (JSON.parse(stored.body.toString()) as Record<string, { Value: string[] }>[]).map((d) => d['00080018']!.Value[0]!);
  t.same(sorted(storedSops), sorted(files.map((f) => f.sopUid)), 'the archive holds exactly the pushed instances');
  t.equal(filesUnder(path.join(cwd, 'data/blobs/objects')).length, files.length, 'one stored object per instance (where the refused pushes left none)');

  // Orthanc's QIDO client.
  const qido = (uri: string, args: Record<string, string> = {}) =>
    orthanc.json<OrthancQidoItem[]>('POST', '/dicom-web/servers/target/qido', { Uri: uri, Arguments: args });
  const studies = await qido('/studies');
  t.same(sorted(studies.map((s) => s['0020000D']!.Value!)), sorted(studyUids), 'QIDO /studies finds the three studies');
  const japanese = files.find((f) => f.path === JAPANESE)!;
  const byKanji = await qido('/studies', { PatientName: '山田*' });
  t.same(
    byKanji.map((s) => s['0020000D']!.Value),
    [japanese.studyUid],
    'a PatientName query in kanji, sent UTF-8 by Orthanc, matches the ideographic group of the ISO 2022 IR 87 name',
  );
  const ct = files.find((f) => f.path.startsWith(CT_SERIES))!;
  const ctInstances = await qido(`/studies/${ct.studyUid}/series/${ct.seriesUid}/instances`);
  t.same(
    sorted(ctInstances.map((i) => i['00080018']!.Value!)),
    sorted(files.filter((f) => f.path.startsWith(CT_SERIES)).map((f) => f.sopUid)),
    'QIDO instances of the CT series',
  );
  const multiframe = files.find((f) => f.path === MULTIFRAME)!;
  const mfInstances = await qido(`/studies/${multiframe.studyUid}/instances`);
  // Orthanc's QIDO client flattens each attribute to its first value and drops JSON numbers (IS, US: PS3.18
  // F.2.3 sends them as numbers), so NumberOfFrames comes back without a value: check what is a string.
  t.match(mfInstances, [{ '00080018': { Value: multiframe.sopUid }, '00080016': { Value: '1.2.840.10008.5.1.4.1.1.7.3' }, '00280008': { vr: 'IS' } }], 'QIDO finds the multi-frame instance');

  // /get relays the archive's WADO-RS answer (multipart/related) untouched: every part is the original file.
  for (const study of studyUids) {
    const res = await orthanc.call('POST', '/dicom-web/servers/target/get', { Uri: `/studies/${study}` });
    t.equal(res.status, 200, `WADO-RS study ${study} through Orthanc`);
    const parts = splitMultipart(res.headers.get('content-type') ?? '', res.body);
    const expected = files.filter((f) => f.studyUid === study);
    t.equal(parts.length, expected.length, 'one part per instance');
    for (const f of expected) t.ok(parts.some((p) => p.body.equals(f.bytes)), `${f.path}: a part byte-equal to the file`);
  }

  // /retrieve stores what it fetches in Orthanc itself: delete Orthanc's copies first, then compare what it
  // fetched (GET /instances/{id}/file: Orthanc keeps received files as they came) with the originals.
  for (const id of loaded) await orthanc.json('DELETE', `/instances/${id}`);
  t.same(await orthanc.json('GET', '/instances'), [], "Orthanc's own copies removed");
  const retrieved = await orthanc.json<{ ReceivedInstancesCount: string }>('POST', '/dicom-web/servers/target/retrieve', {
    Resources: studyUids.map((Study) => ({ Study })),
  });
  t.equal(retrieved.ReceivedInstancesCount, String(files.length), 'Orthanc retrieved every instance with WADO-RS');
  const ids = await orthanc.json<string[]>('GET', '/instances');
  const copies = await Promise.all(ids.map(async (id) => (await orthanc.call('GET', `/instances/${id}/file`)).body));
  t.equal(copies.length, files.length);
  for (const f of files) t.ok(copies.some((c) => c.equals(f.bytes)), `${f.path}: retrieved byte-equal`);
});
