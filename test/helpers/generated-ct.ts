// Synthetic CT instances from the shared generator (../shared/tools/gen-ct.mjs), read into memory with their UIDs:
// for the tests that push many real-sized objects at a running server (crash safety, graceful shutdown).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TESTDATA } from './testdata.js';

export interface GeneratedInstance {
  study: string;
  series: string;
  sop: string;
  bytes: Buffer;
}

/** `count` CT instances of 256 x 256 (about 130 KB a file, so a body takes a while), written to `dir` and read back. */
export function generateCt(dir: string, options: { count: number; studies: number; series: number; seed: number }): GeneratedInstance[] {
  const { count, studies, series, seed } = options;
  execFileSync(
    process.execPath,
    [path.join(TESTDATA, '../tools/gen-ct.mjs'), '--out', dir, '--count', String(count), '--studies', String(studies), '--series', String(series), '--rows', '256', '--cols', '256', '--seed', String(seed), '--names', 'ascii'],
    { stdio: 'ignore' },
  );
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as {
    studies: { StudyInstanceUID: string; series: { SeriesInstanceUID: string; instances: { SOPInstanceUID: string; file: string }[] }[] }[];
  };
  return manifest.studies.flatMap((st) =>
    st.series.flatMap((se) =>
      se.instances.map((i) => ({ study: st.StudyInstanceUID, series: se.SeriesInstanceUID, sop: i.SOPInstanceUID, bytes: fs.readFileSync(path.join(dir, i.file)) })),
    ),
  );
}
