// Differential test: the SQLite store must answer every query exactly as the memory store (the
// plain-JS reference built on match.ts) does. A seeded generator makes an archive with awkward
// values (accents, Japanese three-group names, case variants, GLOB/LIKE characters, numbers stored
// as strings, absent attributes) and hundreds of queries drawn from those values.
import t from 'tap';
import type { DicomJsonDataset } from '../../src/dicom/json-model.js';
import type { InstanceRecord } from '../../src/index/index-store.js';
import type { QueryLevel } from '../../src/index/query/ast.js';
import { MemoryIndexStore } from '../../src/index/memory/memory-index-store.js';
import { parseQido } from '../../src/index/query/parse-qido.js';
import { SqliteIndexStore } from '../../src/index/sqlite/sqlite-index-store.js';

/** mulberry32: small, seeded, good enough to pick test values. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

const NAMES = [
  { Alphabetic: 'García^María' },
  { Alphabetic: 'GARCIA^Jose' },
  { Alphabetic: 'Garner^Ann-Marie' },
  { Alphabetic: 'Müller^Jürgen' },
  { Alphabetic: 'muller^jurgen' },
  { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
  { Alphabetic: 'Yamada^Hanako', Ideographic: '山田^花子', Phonetic: 'やまだ^はなこ' },
  { Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' },
  { Alphabetic: "O'Brien^Seán" },
  { Alphabetic: 'Smith^John^^Dr^' },
  { Alphabetic: '100%^under_score' },
  { Alphabetic: '[bracket]^x' },
];
const DESCRIPTIONS = ['CT Chest', 'ct chest', 'MR Brain', 'Head, neck', "50%_off [x] \\ 'OR 1=1--", 'PET*CT?', ''];
const MODALITIES = ['CT', 'MR', 'PT', 'OT', 'ct'];
const SOP_CLASSES = ['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.4', '1.2.840.10008.5.1.4.1.1.128'];

function archive(seed: number): InstanceRecord[][] {
  const r = prng(seed);
  const batches: InstanceRecord[][] = [];
  for (let k = 0; k < 60; k++) {
    const study = `2.25.77.${k}`;
    const pid = `PID-${r.int(25)}`;
    const name = r.pick(NAMES);
    const date = `${2000 + r.int(25)}${String(1 + r.int(12)).padStart(2, '0')}${String(1 + r.int(28)).padStart(2, '0')}`;
    const time = r.next() < 0.1 ? undefined : `${String(r.int(24)).padStart(2, '0')}${String(r.int(60)).padStart(2, '0')}${r.next() < 0.5 ? String(r.int(60)).padStart(2, '0') : ''}`;
    const studyAttrs: DicomJsonDataset = {
      '00080020': { vr: 'DA', Value: [date] },
      '00080050': { vr: 'SH', Value: [r.pick(['ACC', 'acc', 'Acc']) + r.int(40)] },
      '00081030': { vr: 'LO', Value: [r.pick(DESCRIPTIONS)] },
      '00100010': { vr: 'PN', Value: [name] },
      '00100020': { vr: 'LO', Value: [pid] },
      '0020000D': { vr: 'UI', Value: [study] },
      ...(time === undefined ? {} : { '00080030': { vr: 'TM', Value: [time] } }),
      ...(r.next() < 0.7 ? { '00080090': { vr: 'PN', Value: [r.pick(NAMES)] } } : {}),
    };
    const batch: InstanceRecord[] = [];
    for (let s = 0; s < 1 + r.int(3); s++) {
      const series = `${study}.${s}`;
      const seriesAttrs: DicomJsonDataset = {
        '00080060': { vr: 'CS', Value: [r.pick(MODALITIES)] },
        '0020000E': { vr: 'UI', Value: [series] },
        '00200011': { vr: 'IS', Value: [r.next() < 0.5 ? s + 1 : String(s + 1).padStart(2, '0')] },
        ...(r.next() < 0.5
          ? { '00400275': { vr: 'SQ', Value: [{ '00400009': { vr: 'SH', Value: [`SPS-${r.int(5)}`] }, '00401001': { vr: 'SH', Value: [`RP-${r.int(5)}`] } }] } }
          : {}),
      };
      for (let i = 0; i < 1 + r.int(4); i++) {
        const sop = `${series}.${i}`;
        batch.push({
          studyInstanceUID: study,
          seriesInstanceUID: series,
          sopInstanceUID: sop,
          sopClassUID: r.pick(SOP_CLASSES),
          transferSyntaxUID: '1.2.840.10008.1.2.1',
          blobKey: `blob-${sop}`,
          size: 1,
          sha256: `sha-${sop}`,
          receivedAt: new Date(0),
          dataset: { ...studyAttrs, ...seriesAttrs, '00200013': { vr: 'IS', Value: [String(i + 1)] } },
        });
      }
    }
    batches.push(batch);
  }
  return batches;
}

function queries(seed: number): { level: QueryLevel; scope: { studyInstanceUID?: string; seriesInstanceUID?: string }; params: string }[] {
  const r = prng(seed);
  const enc = encodeURIComponent;
  const nameKeys = NAMES.flatMap((n) => Object.values(n) as string[]);
  const generators: (() => string)[] = [
    () => `PatientName=${enc(r.pick(nameKeys))}`,
    () => `PatientName=${enc(r.pick(nameKeys).toLowerCase())}`,
    () => `PatientName=${enc(r.pick(nameKeys).slice(0, 1 + r.int(4)))}*`,
    () => `PatientName=*${enc(r.pick(nameKeys).slice(1 + r.int(3), 4 + r.int(3)))}*`,
    () => `PatientName=${enc(r.pick(nameKeys).replace(/^./, '?'))}`,
    () => `fuzzymatching=true&PatientName=${enc(r.pick(nameKeys).split(/[\^=]/)[r.int(2)]!.slice(0, 1 + r.int(4)))}`,
    () => `ReferringPhysicianName=${enc(r.pick(nameKeys).slice(0, 2))}*`,
    () => `PatientID=PID-${r.int(25)}`,
    () => `PatientID=PID-${r.int(3)}*`,
    () => `AccessionNumber=${r.pick(['ACC', 'acc', 'A?C', '*c'])}${r.int(4)}*`,
    () => `StudyDescription=${enc(r.pick(['*%*', '*_*', '*[*', '*\\*', 'CT*', 'ct*', '*Chest', 'Head, neck', '*', '?T*']))}`,
    () => {
      const [a, b] = [2000 + r.int(25), 2000 + r.int(25)].sort();
      return `StudyDate=${a}0101-${b}1231`;
    },
    () => `StudyDate=-${2000 + r.int(25)}0615`,
    () => `StudyDate=${2000 + r.int(25)}0615-`,
    () => {
      const [a, b] = [r.int(24), r.int(24)].sort((x, y) => x - y).map((h) => String(h).padStart(2, '0'));
      return `StudyTime=${a}-${b}59`;
    },
    () => `StudyTime=${String(r.int(24)).padStart(2, '0')}${String(r.int(60)).padStart(2, '0')}`,
    () => `ModalitiesInStudy=${r.pick(MODALITIES)}`,
    () => `ModalitiesInStudy=${r.pick(MODALITIES)},${r.pick(MODALITIES)}`,
    () => `ModalitiesInStudy=${r.pick(['C*', '?T', '*'])}`,
    () => `StudyInstanceUID=2.25.77.${r.int(60)},2.25.77.${r.int(60)}`,
    () => `SOPClassesInStudy=${r.pick(SOP_CLASSES)}`,
  ];
  const lower: Record<'series' | 'instance', (() => string)[]> = {
    series: [
      () => `Modality=${r.pick(MODALITIES)}`,
      () => `SeriesNumber=${1 + r.int(3)}`,
      () => `00400275.00400009=SPS-${r.int(5)}`,
      () => `00400275.00400009=SPS-${r.int(5)}&00400275.00401001=RP-${r.int(5)}`,
      () => `RequestAttributesSequence.RequestedProcedureID=RP-*`,
    ],
    instance: [() => `InstanceNumber=${1 + r.int(4)}`, () => `SOPClassUID=${r.pick(SOP_CLASSES)}`],
  };
  const out: ReturnType<typeof queries> = [];
  for (let n = 0; n < 400; n++) {
    const level = r.pick(['study', 'study', 'series', 'instance'] as const);
    const pool = level === 'study' ? generators : [...generators, ...lower[level], ...(level === 'instance' ? lower.series : [])];
    const keys = new Map<string, string>();
    for (let k = 0; k < 1 + r.int(2); k++) {
      const p = r.pick(pool)();
      keys.set(p.replace(/^fuzzymatching=true&/, '').split('=')[0]!, p);
    }
    const scope: { studyInstanceUID?: string; seriesInstanceUID?: string } = {};
    if (level !== 'study' && r.next() < 0.3) scope.studyInstanceUID = `2.25.77.${r.int(60)}`;
    if (level === 'instance' && scope.studyInstanceUID && r.next() < 0.5) scope.seriesInstanceUID = `${scope.studyInstanceUID}.${r.int(3)}`;
    const paging = r.next() < 0.3 ? `&limit=${1 + r.int(10)}&offset=${r.int(20)}` : '';
    const include = r.next() < 0.2 ? '&includefield=all' : r.next() < 0.3 ? '&includefield=00081030,00080060,00080062' : '';
    out.push({ level, scope, params: [...keys.values()].join('&') + paging + include });
  }
  return out;
}

t.test('SQLite answers exactly as the memory reference', (t) => {
  const memory = new MemoryIndexStore();
  const sqlite = new SqliteIndexStore(':memory:');
  t.teardown(() => sqlite.close());
  for (const batch of archive(20240501)) {
    t.same(sqlite.commit(batch, 'reject'), memory.commit(batch, 'reject'));
  }
  t.same(sqlite.counts(), memory.counts());

  let nonEmpty = 0;
  let failures = 0;
  for (const q of queries(42)) {
    const query = parseQido(q.level, q.scope, new URLSearchParams(q.params), { defaultLimit: 1000, maxLimit: 1000 });
    const expected = memory.search(query);
    const actual = sqlite.search(query);
    if (expected.total > 0) nonEmpty++;
    if (!t.strictSame(actual, expected, `${q.level} ${JSON.stringify(q.scope)} ?${q.params}`) && ++failures > 5) break;
  }
  t.ok(nonEmpty > 150, `most queries match something (${nonEmpty} of 400), so the comparison means something`);
  t.end();
});
