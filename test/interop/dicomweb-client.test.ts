// The npm dicomweb-client (the library inside OHIF) against the server on a real mutual-TLS listener:
// STOW -> QIDO -> metadata -> frames -> retrieve, as INTEROP.md describes it (xhr2 as XMLHttpRequest).
import { createRequire } from 'node:module';
import https from 'node:https';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { openStorage } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import { mtlsResolver } from '../../src/http/plugins/authenticate.js';
import { PrincipalRegistry } from '../../src/security/principal-registry.js';
import { defaultPolicies } from '../helpers/access.js';
import { createLogger } from '../../src/logger.js';
import { createCa, issueCertificate } from '../../src/security/pki.js';
import { buildTlsServerOptions } from '../../src/security/tls-options.js';
import { storageEnv, tempDir } from '../helpers/temp-dir.js';
import { generatedSet } from '../helpers/testdata.js';

const require = createRequire(import.meta.url);
// Both are CommonJS builds; dicomweb-client reads the global XMLHttpRequest when it sends.
const XMLHttpRequest = require('xhr2') as { nodejsSet(o: { httpsAgent: https.Agent }): void };
const { api } = require('dicomweb-client') as { api: { DICOMwebClient: new (o: { url: string }) => DicomwebClient } };

interface DicomwebClient {
  storeInstances(o: { datasets: ArrayBuffer[] }): Promise<unknown>;
  searchForStudies(o?: { queryParams?: Record<string, string> }): Promise<Record<string, { Value?: unknown[] }>[]>;
  searchForSeries(o: { studyInstanceUID: string }): Promise<Record<string, { Value?: unknown[] }>[]>;
  retrieveSeriesMetadata(o: { studyInstanceUID: string; seriesInstanceUID: string }): Promise<Record<string, { Value?: unknown[]; BulkDataURI?: string }>[]>;
  retrieveInstanceFrames(o: { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string; frameNumbers: number[] }): Promise<ArrayBuffer[]>;
  retrieveInstance(o: { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string }): Promise<ArrayBuffer>;
}

const arrayBuffer = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

t.test('dicomweb-client over mutual TLS: STOW, QIDO, metadata, frames, retrieve', async (t) => {
  const ca = await createCa('interop CA');
  const server = await issueCertificate(ca, { commonName: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, eku: 'serverAuth' });
  const client = await issueCertificate(ca, { commonName: 'viewer', sans: { uri: ['urn:dicomvault:principal:viewer'] }, eku: 'clientAuth' });
  const principals = [{ id: 'viewer', match: { sanUri: 'urn:dicomvault:principal:viewer' }, roles: ['admin'] }];
  const config = loadConfig({ env: { ...storageEnv(tempDir(t)), DICOMVAULT_LOG_LEVEL: 'silent', DICOMVAULT_PRINCIPALS: JSON.stringify(principals) } });
  const storage = await openStorage(config);
  const app = buildApp({
    config,
    ...storage,
    readInstance,
    logger: createLogger('silent'),
    principalOf: mtlsResolver(new PrincipalRegistry(config)),
    policy: defaultPolicies(),
    https: buildTlsServerOptions({ ca: ca.certPem, cert: server.certPem, key: server.keyPem }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const agent = new https.Agent({ ca: ca.certPem, cert: client.certPem, key: client.keyPem, keepAlive: true });
  t.teardown(async () => {
    agent.destroy();
    await app.close();
    await storage.close();
  });
  XMLHttpRequest.nodejsSet({ httpsAgent: agent });
  (globalThis as Record<string, unknown>).XMLHttpRequest = XMLHttpRequest;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const dw = new api.DICOMwebClient({ url: `https://127.0.0.1:${port}/dicomweb` });

  const { manifest, files } = generatedSet('ct-2studies');
  const study = manifest.studies[0]!;
  const series = study.series[0]!;
  const studyFiles = files.filter((f) => f.rel.includes('study001'));
  await dw.storeInstances({ datasets: studyFiles.map((f) => arrayBuffer(f.bytes)) });
  t.equal(storage.index.counts().instances, studyFiles.length, 'STOW (no Accept, quoted boundary, CRLF preamble) stored all');

  const studies = await dw.searchForStudies({ queryParams: { PatientID: study.PatientID } });
  t.same(studies.map((s) => s['0020000D']?.Value?.[0]), [study.StudyInstanceUID], 'QIDO finds the study');
  const seriesFound = await dw.searchForSeries({ studyInstanceUID: study.StudyInstanceUID });
  t.equal(seriesFound.length, study.series.length);

  const metadata = await dw.retrieveSeriesMetadata({ studyInstanceUID: study.StudyInstanceUID, seriesInstanceUID: series.SeriesInstanceUID });
  t.equal(metadata.length, series.instances.length, 'series metadata: one dataset per instance');
  t.match(metadata[0]!['7FE00010'], { BulkDataURI: /\/bulk\/7FE00010$/ });

  const first = series.instances[0]!;
  const ids = { studyInstanceUID: study.StudyInstanceUID, seriesInstanceUID: series.SeriesInstanceUID, sopInstanceUID: first.SOPInstanceUID };
  const frames = await dw.retrieveInstanceFrames({ ...ids, frameNumbers: [1] });
  t.equal(frames.length, 1);
  t.equal(frames[0]!.byteLength, 256 * 256 * 2, 'one native 256x256 16-bit frame');

  const instance = await dw.retrieveInstance(ids);
  const sent = studyFiles.find((f) => f.rel.endsWith(first.file))!.bytes;
  t.ok(Buffer.from(instance).equals(sent), 'retrieved instance byte-equal to what was stored');
});
