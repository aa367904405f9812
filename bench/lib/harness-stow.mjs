// Fresh STOW request bodies made as the shared harness's stow scenario makes them (../shared/bench/run.mjs
// runStow: gen.mjs stowInstance, 512x512 pixels, lib/multipart.mjs stowBody), for the benchmarks that send STOW
// outside the harness (audit-cpu.mjs, stow-wakeups.mjs). Node built-ins and the harness only.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The shared harness: $DICOMVAULT_BENCH, else ../shared/bench next to the repository. */
export function harnessDir() {
  return path.resolve(process.env.DICOMVAULT_BENCH ?? path.join(import.meta.dirname, '../../../shared/bench'));
}

let kit;
async function harnessKit() {
  kit ??= (async () => {
    const harness = harnessDir();
    const load = (file) => import(pathToFileURL(path.join(harness, file)).href);
    const [gen, { stowBody }, { uid }] = await Promise.all([load('gen.mjs'), load('lib/multipart.mjs'), load('../tools/dicom-writer.mjs')]);
    return { stowInstance: gen.stowInstance, stowBody, uid, pixels: gen.makePixelPool(512, 512) };
  })();
  return kit;
}

/**
 * `count` instances never stored before (their UIDs derive from `tag`: give each server and round its own), in
 * multipart/related bodies of `perRequest` instances each: [{ body, contentType }].
 */
export async function freshStowBodies({ perRequest, count, tag }) {
  const { stowInstance, stowBody, uid, pixels } = await harnessKit();
  const studyUid = uid('fresh-stow', tag);
  const bodies = [];
  for (let i = 0; i < count; i += perRequest) {
    const files = [];
    for (let k = i; k < Math.min(i + perRequest, count); k++) {
      const seriesUid = uid('fresh-stow', tag, 'series', Math.floor(k / 100));
      files.push(stowInstance({ studyUid, seriesUid, sopUid: uid('fresh-stow', tag, 'sop', k), number: k + 1, pixels: pixels[k % pixels.length], rows: 512, cols: 512, tag }));
    }
    bodies.push(stowBody(files));
  }
  return bodies;
}
