// Fail closed at runtime (issue 4 item 7): when the key provider cannot unwrap a study key (a KMS down, a key
// file swapped for another archive's), reads answer 503 and send nothing; once the keys are back, the same
// objects read byte-equal again.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createKekFile } from '../../src/storage/keys/kek-file.js';
import { testApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { tempDir } from '../helpers/temp-dir.js';
import { testFile } from '../helpers/testdata.js';

const CT = testFile('pydicom/test_files/CT_small.dcm');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('key provider unable to unwrap: 503, nothing sent; keys back: byte-equal again', async (t) => {
  // A 1 ms key cache, so every read asks the provider.
  const { app, config } = await testApp(t, { DICOMVAULT_KEYS_CACHE_TTL_MS: '1' });
  const { contentType, body } = multipartBody([CT]);
  const stow = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': contentType }, payload: body });
  t.equal(stow.statusCode, 200);
  const url = new URL(((stow.json() as Record<string, { Value: Record<string, { Value: string[] }>[] }>)['00081199']!.Value[0]!['00081190']!.Value[0]!)).pathname;
  const get = () => app.inject({ method: 'GET', url, headers: { accept: 'application/dicom; transfer-syntax=*' } });
  t.same((await get()).rawPayload, CT, 'readable');

  const keyFile = path.resolve(config.keys.file);
  const original = fs.readFileSync(keyFile);
  const foreign = path.join(tempDir(t), 'kek.json');
  createKekFile(foreign); // another archive's key file: none of our versions
  fs.copyFileSync(foreign, keyFile);
  fs.utimesSync(keyFile, new Date(), new Date(Date.now() + 5000)); // a new mtime, so the provider re-reads it
  await sleep(5);
  for (const [name, res] of [
    ['instance', await get()],
    ['study', await app.inject({ method: 'GET', url: url.replace(/\/series\/.*/, ''), headers: { accept: 'multipart/related; type="application/dicom"' } })],
  ] as const) {
    t.equal(res.statusCode, 503, `${name}: 503`);
    t.equal(res.rawPayload.indexOf(CT.subarray(200, 264)), -1, `${name}: no stored bytes sent`);
  }

  fs.writeFileSync(keyFile, original);
  fs.utimesSync(keyFile, new Date(), new Date(Date.now() + 10_000));
  await sleep(5);
  const back = await get();
  t.equal(back.statusCode, 200, 'keys back: served again');
  t.same(back.rawPayload, CT, 'byte-equal');
});
