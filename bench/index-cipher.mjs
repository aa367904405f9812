#!/usr/bin/env node
// The cost of encrypting the index (issue 4): the same archive built twice through SqliteIndexStore, once
// plain and once with a key (open-cipher.ts: AEGIS-256, raw key), then the same QIDO-like searches on both.
//
//   node --import tsx bench/index-cipher.mjs [--instances 20000] [--reps 20] [--dir DIR]
//
// STOW side: one commit per request of 20 instances, one synthetic study (test/helpers/synthetic-archive.ts):
// addPending for each, then commit, as store-instances.ts does; WAL + synchronous=FULL as in the server.
// The two stores take turns request by request, so background load hits both alike. QIDO side: each query runs --reps times per store, turns
// alternating. Prints one table and the ratios (encrypted / plain); a ratio of 1.25 is 25 % slower.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseQido } from '../src/index/query/parse-qido.ts';
import { SqliteIndexStore } from '../src/index/sqlite/sqlite-index-store.ts';
import { INSTANCES_PER_SERIES, SERIES_PER_STUDY, studyUid, syntheticStudy } from '../test/helpers/synthetic-archive.ts';

const { values: opt } = parseArgs({
  options: {
    instances: { type: 'string', default: '20000' },
    reps: { type: 'string', default: '20' },
    dir: { type: 'string', default: os.tmpdir() },
  },
});
const INSTANCES = Number(opt.instances);
const PER_REQUEST = SERIES_PER_STUDY * INSTANCES_PER_SERIES;
const REPS = Number(opt.reps);
const PAGING = { defaultLimit: 100, maxLimit: 1000 };

// Instance documents of a realistic size (~1.5 KB of DICOM JSON) and a random hash per instance.
const EXTRA = {
  '00080030': { vr: 'TM', Value: ['101500'] },
  '00080090': { vr: 'PN', Value: [{ Alphabetic: 'Referring^Doctor' }] },
  '00081030': { vr: 'LO', Value: ['Study description'] },
  '00100030': { vr: 'DA', Value: ['19700102'] },
  '00100040': { vr: 'CS', Value: ['F'] },
  '00180050': { vr: 'DS', Value: [1.25] },
  '00204000': { vr: 'LT', Value: ['x'.repeat(600)] },
  '00280010': { vr: 'US', Value: [512] },
  '00280011': { vr: 'US', Value: [512] },
};
/** One STOW request: the 20 instances of study k, each with a fresh SHA-256 and receive time. */
const request = (k) =>
  syntheticStudy(k, EXTRA).map((r) => ({ ...r, sha256: randomBytes(32).toString('hex'), receivedAt: new Date(), size: 500_000 }));

const REQUESTS = Math.ceil(INSTANCES / PER_REQUEST);
const QUERIES = [
  ['study-uid', 'study', `StudyInstanceUID=${studyUid(Math.floor(REQUESTS / 2))}`],
  ['patient-id', 'study', 'PatientID=PID12'],
  ['name-prefix GAR*', 'study', 'PatientName=GAR*'],
  ['date-range, limit 100', 'study', `StudyDate=${2010 + 5}0101-${2010 + 5}1231`],
  ['modality PT, limit 100', 'study', 'ModalitiesInStudy=PT'],
  ['paging offset 500', 'study', 'StudyDate=20000101-&limit=25&offset=500&includefield=00081030'],
  ['contains *ARN*', 'study', 'PatientName=*ARN*'],
  ['study-series', 'series', '', { studyInstanceUID: studyUid(321 % REQUESTS) }],
  ['study-instances', 'instance', '', { studyInstanceUID: studyUid(321 % REQUESTS) }],
].map(([label, level, params, scope = {}]) => ({ label, query: parseQido(level, scope, new URLSearchParams(params), PAGING) }));

const root = fs.mkdtempSync(path.join(opt.dir, 'dicomvault-index-cipher-'));
const key = randomBytes(32);
const variants = [
  { name: 'plain', file: path.join(root, 'plain.sqlite'), options: {} },
  { name: 'encrypted', file: path.join(root, 'encrypted.sqlite'), options: { key } },
];
try {
  for (const v of variants) {
    v.store = new SqliteIndexStore(v.file, v.options);
    v.stowMs = 0;
  }

  // STOW: the same requests, the two stores taking turns.
  for (let k = 0; k < REQUESTS; k++) {
    const records = request(k);
    for (const v of k % 2 === 0 ? variants : [...variants].reverse()) {
      const started = performance.now();
      for (const r of records) v.store.addPending(r.blobKey, r.receivedAt);
      v.store.commit(records, 'reject');
      v.stowMs += performance.now() - started;
    }
  }

  // QIDO: per query, REPS runs on each store, alternating.
  const qido = QUERIES.map(({ label, query }) => {
    const samples = Object.fromEntries(variants.map((v) => [v.name, []]));
    for (const v of variants) v.store.search(query); // prepare and warm
    for (let i = 0; i < REPS; i++) {
      for (const v of i % 2 === 0 ? variants : [...variants].reverse()) {
        const started = performance.now();
        const result = v.store.search(query);
        samples[v.name].push(performance.now() - started);
        v.matches = `${result.matches.length}/${result.total}`;
      }
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const total = (xs) => xs.reduce((a, b) => a + b, 0);
    return { label, matches: variants[0].matches, ...Object.fromEntries(variants.map((v) => [v.name, { median: median(samples[v.name]), total: total(samples[v.name]) }])) };
  });

  // Cold QIDO: every query once on a fresh connection (empty page cache: each page read is decrypted and
  // authenticated), as after a restart or in an archive larger than the cache. The OS file cache stays warm.
  for (const v of variants) {
    v.store.close();
    v.coldMs = 0;
  }
  for (let i = 0; i < 5; i++) {
    for (const v of i % 2 === 0 ? variants : [...variants].reverse()) {
      const store = new SqliteIndexStore(v.file, v.options);
      const started = performance.now();
      for (const { query } of QUERIES) store.search(query);
      v.coldMs += performance.now() - started;
      store.close();
    }
  }

  // Open: constructor to first answer (a KDF would show here).
  for (const v of variants) {
    const started = performance.now();
    v.store = new SqliteIndexStore(v.file, v.options);
    v.store.counts();
    v.openMs = performance.now() - started;
    v.store.close();
    v.bytes = fs.statSync(v.file).size;
  }

  const [plain, enc] = variants;
  const ratio = (a, b) => (b / a).toFixed(2);
  const rows = [
    ['STOW commits (instances/s)', (INSTANCES / (plain.stowMs / 1000)).toFixed(0), (INSTANCES / (enc.stowMs / 1000)).toFixed(0), ratio(plain.stowMs, enc.stowMs)],
    ...qido.map((q) => [`QIDO ${q.label} [${q.matches}] median ms`, q.plain.median.toFixed(3), q.encrypted.median.toFixed(3), ratio(q.plain.median, q.encrypted.median)]),
  ];
  const qidoPlain = qido.reduce((a, q) => a + q.plain.total, 0);
  const qidoEnc = qido.reduce((a, q) => a + q.encrypted.total, 0);
  const searches = QUERIES.length * REPS;
  rows.push(['QIDO all (searches/s)', (searches / (qidoPlain / 1000)).toFixed(0), (searches / (qidoEnc / 1000)).toFixed(0), ratio(qidoPlain, qidoEnc)]);
  rows.push(['QIDO cold, all queries once (ms)', (plain.coldMs / 5).toFixed(1), (enc.coldMs / 5).toFixed(1), ratio(plain.coldMs, enc.coldMs)]);
  rows.push(['open + first read (ms)', plain.openMs.toFixed(1), enc.openMs.toFixed(1), ratio(plain.openMs, enc.openMs)]);
  rows.push(['file size (MB)', (plain.bytes / 1e6).toFixed(1), (enc.bytes / 1e6).toFixed(1), ratio(plain.bytes, enc.bytes)]);

  console.log(`${INSTANCES} instances in ${REQUESTS} commits of ${PER_REQUEST}; ${REPS} runs per query and store; node ${process.version}`);
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log(`${'measure'.padEnd(width)}  ${'plain'.padStart(9)}  ${'encrypted'.padStart(9)}  ratio (time enc/plain)`);
  for (const [label, a, b, r] of rows) console.log(`${label.padEnd(width)}  ${a.padStart(9)}  ${b.padStart(9)}  ${r}`);
} finally {
  for (const v of variants) v.store?.close();
  fs.rmSync(root, { recursive: true, force: true });
}
