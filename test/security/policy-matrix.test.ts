// Issue 5: per-study authorization leaks nothing. The real app (SQLite, encrypted blobs) with the example
// policies (policies/examples.cedar, copied by the test), 7 studies with distinct attribute mixes stored by an
// admin, and every principal x study x endpoint:
// - QIDO (the six search resources, includefield=all, limit/offset paging): exactly the rows of the studies the
//   engine's per-study decision allows (decide() on index.studyAttributes, never the compiled filter), equal to
//   the admin's rows (derived counts and ModalitiesInStudy included), Warning counts and 204s as expected;
// - WADO-RS (3 levels), metadata (3 levels), frames, bulk data, WADO-URI: permitted -> 200 and the admin's
//   bytes; not permitted -> 404 indistinguishable (status, headers, body) from a study that does not exist;
// - STOW (per-instance 0x0124, nothing of a refused instance kept), break-glass (and its log line), share
//   principals (view/download scope), admin endpoints (403).
// The principal is picked per request from a test-only header (that replaces only the TLS/token layer, which
// test/tls and test/security/policy-e2e.test.ts cover).
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import type { Action } from '../../src/policy/actions.js';
import { CedarPolicyEngine } from '../../src/policy/policy-engine.js';
import type { Principal } from '../../src/security/principal.js';
import { certificatePrincipal, REPO_ROOT } from '../helpers/access.js';
import { testApp } from '../helpers/app.js';
import { multipartBody } from '../helpers/multipart.js';
import { splitMultipart } from '../helpers/multipart-response.js';
import { policyInstance, type InstanceSpec } from '../helpers/policy-dataset.js';
import { tempDir } from '../helpers/temp-dir.js';

type Row = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

// ---------------------------------------------------------------------------------------------------------
// Policies, principals, studies
// ---------------------------------------------------------------------------------------------------------

const policyFile = path.join(tempDir(t), 'examples.cedar');
fs.copyFileSync(path.join(REPO_ROOT, 'policies/examples.cedar'), policyFile);
/** The test's own engine, for expectations (the app loads the same file into another instance). */
const engine = CedarPolicyEngine.fromFile(policyFile);

const INST_A = 'GENERAL HOSPITAL';
const INST_B = 'NORTH CLINIC';
const REASON = 'unconscious patient, ED bay 2';
const BASE = '/dicomweb';

interface Who {
  name: string;
  principal: Principal;
  breakGlass?: boolean;
}
const shareOf = (id: string, study: string, scope: 'view' | 'download'): Principal => ({
  kind: 'share',
  id: `share:${id}`,
  roles: [],
  attributes: { institution: '', referringPhysician: '', npi: '', sites: [] },
  share: { shareId: id, studyInstanceUID: study, scope, expiresAt: new Date(Date.now() + 3_600_000) },
});

interface SeriesPlan {
  modality: string;
  instances: number;
  frames?: number;
}
interface StudyPlan {
  name: string;
  uid: string;
  institution?: string;
  referring?: string;
  date: string;
  confidentiality?: string;
  vip?: boolean;
  series: SeriesPlan[];
}
const STUDIES: StudyPlan[] = [
  { name: 'A-CT-smith', uid: '2.25.9100001', institution: INST_A, referring: 'Smith^John', date: '20240110', series: [{ modality: 'CT', instances: 2 }, { modality: 'CT', instances: 1, frames: 3 }] },
  { name: 'A-CT+MR-noref', uid: '2.25.9100002', institution: INST_A, date: '20230505', series: [{ modality: 'CT', instances: 2 }, { modality: 'MR', instances: 2 }] },
  { name: 'B-MR-smith', uid: '2.25.9100003', institution: INST_B, referring: 'SMITH^JOHN', date: '20220202', series: [{ modality: 'MR', instances: 1 }, { modality: 'MR', instances: 2 }] },
  { name: 'B-CT-noref', uid: '2.25.9100004', institution: INST_B, date: '20210303', series: [{ modality: 'CT', instances: 3 }, { modality: 'CT', instances: 1, frames: 2 }] },
  { name: 'A-CT-smith-vip', uid: '2.25.9100005', institution: INST_A, referring: 'Smith^John', date: '20200404', vip: true, series: [{ modality: 'CT', instances: 2 }] },
  { name: 'B-CT-doe-V', uid: '2.25.9100006', institution: INST_B, referring: 'Doe^Jane', date: '20190505', confidentiality: 'V', series: [{ modality: 'CT', instances: 1 }, { modality: 'CT', instances: 1 }] },
  { name: 'A-MR-doe-N', uid: '2.25.9100007', referring: 'Doe^Jane', institution: INST_A, date: '20180606', confidentiality: 'N', series: [{ modality: 'MR', instances: 2 }, { modality: 'MR', instances: 1 }] },
];
const byName = (name: string) => STUDIES.find((s) => s.name === name)!;
const seriesUid = (s: StudyPlan, k: number) => `${s.uid}.${k + 1}`;
const sopUid = (s: StudyPlan, k: number, i: number) => `${s.uid}.${k + 1}.${i + 1}`;
/** A study UID of the same shape that does not exist (last digits changed). */
const ghostOf = (uid: string) => uid.slice(0, -2) + '99';

function specs(s: StudyPlan): InstanceSpec[] {
  return s.series.flatMap((x, k) =>
    Array.from({ length: x.instances }, (_, i) => ({
      study: s.uid,
      series: seriesUid(s, k),
      sop: sopUid(s, k, i),
      modality: x.modality,
      institution: s.institution,
      referringPhysician: s.referring,
      accessionNumber: `ACC-${s.uid.slice(-2)}`,
      studyDate: s.date,
      patientId: `PID-${s.uid.slice(-2)}`,
      patientName: `PATIENT^${s.name.replaceAll(/[^A-Za-z]/g, '')}`,
      confidentiality: s.confidentiality,
      seriesNumber: k + 1,
      instanceNumber: i + 1,
      frames: x.frames,
    })),
  );
}

const admin: Who = { name: 'admin', principal: certificatePrincipal('matrix-admin', ['admin']) };
const physician = certificatePrincipal('physician-1', ['physician']);
const S2 = byName('A-CT+MR-noref').uid;
const WHO: Who[] = [
  admin,
  { name: 'radiology-A', principal: certificatePrincipal('radiology-a', ['radiology'], { institution: INST_A }) },
  { name: 'referrer-smith', principal: certificatePrincipal('referrer-smith', [], { referringPhysician: 'SMITH^JOHN' }) },
  { name: 'gateway-A', principal: certificatePrincipal('gateway-a', ['modality-gateway'], { institution: INST_A }) },
  { name: 'nobody', principal: certificatePrincipal('nobody') },
  { name: 'physician', principal: physician },
  { name: 'physician+break-glass', principal: physician, breakGlass: true },
  { name: 'share-view(S2)', principal: shareOf('sv', S2, 'view') },
  { name: 'share-download(S2)', principal: shareOf('sd', S2, 'download') },
];
const who = (name: string) => WHO.find((w) => w.name === name)!;
const PRINCIPALS = new Map(WHO.map((w) => [w.name, w.principal]));

// ---------------------------------------------------------------------------------------------------------
// The app, loaded once
// ---------------------------------------------------------------------------------------------------------

const logLines: Record<string, unknown>[] = [];
const ctx = await testApp(
  t,
  {},
  {
    policyFile,
    logTo: { write: (s: string) => void logLines.push(JSON.parse(s) as Record<string, unknown>) },
    principal: (request: FastifyRequest) => PRINCIPALS.get(String(request.headers['x-test-principal'])),
  },
);
const { app } = ctx;
let requests = 0;

function send(w: Who, method: 'GET' | 'POST' | 'PUT', url: string, headers: Record<string, string> = {}, payload?: Buffer | string | object) {
  requests++;
  return app.inject({
    method,
    url,
    headers: { 'x-test-principal': w.name, ...(w.breakGlass ? { 'break-glass-reason': REASON } : {}), ...headers },
    ...(payload === undefined ? {} : { payload }),
  });
}
const get = (w: Who, url: string, headers: Record<string, string> = {}) => send(w, 'GET', url, headers);

{
  const parts = STUDIES.flatMap((s) => specs(s).map((spec, n) => policyInstance(spec, Number(s.uid.slice(-1)) * 100 + n * 10)));
  const { contentType, body } = multipartBody(parts);
  const res = await send(admin, 'POST', `${BASE}/studies`, { 'content-type': contentType, accept: 'application/dicom+json' }, body);
  if (res.statusCode !== 200) throw new Error(`load failed: ${res.statusCode} ${res.body}`);
  for (const s of STUDIES.filter((x) => x.vip)) {
    const labelled = await send(admin, 'PUT', `${BASE}/admin/studies/${s.uid}/labels`, {}, { labels: ['vip'] });
    if (labelled.statusCode !== 200) throw new Error(`labels failed: ${labelled.statusCode} ${labelled.body}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Expectations: the engine's decision per study (or a share's grant), never the search filter
// ---------------------------------------------------------------------------------------------------------

function allowed(w: Who, action: Action, uid: string, purpose: 'view' | 'download' = 'view'): boolean {
  const p = w.principal;
  if (p.kind === 'share') {
    const grant = p.share!;
    return (action === 'search' || action === 'read') && uid === grant.studyInstanceUID && (purpose === 'view' || grant.scope === 'download');
  }
  const study = ctx.index.studyAttributes(uid);
  if (!study) return false;
  return engine.decide(p, action, { study }, { breakGlassReason: w.breakGlass ? REASON : '' }).allowed;
}
const permittedNames = (w: Who, action: Action) => STUDIES.filter((s) => allowed(w, action, s.uid)).map((s) => s.name);

t.test('the dataset exercises every policy (engine decisions as the matrix expects them)', async (t) => {
  const expected: Record<string, string[]> = {
    admin: STUDIES.map((s) => s.name),
    'radiology-A': ['A-CT-smith', 'A-CT+MR-noref', 'A-MR-doe-N'],
    'referrer-smith': ['A-CT-smith', 'B-MR-smith'],
    'gateway-A': [],
    nobody: [],
    physician: [],
    'physician+break-glass': ['A-CT-smith', 'A-CT+MR-noref', 'B-MR-smith', 'B-CT-noref', 'A-MR-doe-N'],
    'share-view(S2)': ['A-CT+MR-noref'],
    'share-download(S2)': ['A-CT+MR-noref'],
  };
  for (const w of WHO) {
    t.same(permittedNames(w, 'search'), expected[w.name], `${w.name}: search`);
    t.same(permittedNames(w, 'read'), expected[w.name], `${w.name}: read`);
  }
  t.same(ctx.index.studyAttributes(byName('A-CT-smith-vip').uid)?.labels, ['vip'], 'the vip label is set');
  t.equal(ctx.index.studyAttributes(byName('B-CT-doe-V').uid)?.confidentiality, 'V');
  t.same(ctx.index.studyAttributes(S2)?.modalities, ['CT', 'MR']);
  t.equal(ctx.index.studyAttributes(byName('B-CT-noref').uid)?.referringPhysician, '');
});

// ---------------------------------------------------------------------------------------------------------
// QIDO
// ---------------------------------------------------------------------------------------------------------

const first = (row: Row, tag: string) => row[tag]?.Value?.[0];
const KEY = { study: '0020000D', series: '0020000E', instance: '00080018' } as const;
const sortRows = (rows: Row[], key: string) => [...rows].sort((a, b) => String(first(a, key)).localeCompare(String(first(b, key))));
const withParams = (url: string, params: string) => `${url}${url.includes('?') ? '&' : '?'}${params}`;

function warningCount(res: LightMyRequestResponse): number | undefined {
  const w = res.headers.warning;
  if (w === undefined) return undefined;
  const m = /^299 \S+: There are (\d+) additional results that can be requested$/.exec(String(w));
  return m ? Number(m[1]) : Number.NaN;
}

const adminRows = new Map<string, Row[]>();
async function adminQido(url: string): Promise<Row[]> {
  let rows = adminRows.get(url);
  if (!rows) {
    const res = await get(admin, url);
    rows = res.statusCode === 200 ? (res.json() as Row[]) : [];
    adminRows.set(url, rows);
  }
  return rows;
}

const LIMIT = 2;
/**
 * One QIDO resource for one principal: unpaged, then page by page (limit 2) one page past the end. Rows equal
 * `expected` (the admin's rows of the permitted studies); each page has the expected size, status and Warning.
 */
async function checkQido(t: Test, w: Who, url: string, expected: Row[], key: string, label: string): Promise<void> {
  const full = await get(w, url);
  if (expected.length === 0) {
    t.equal(full.statusCode, 204, `${label}: 204`);
    t.equal(full.body, '', `${label}: empty body`);
  } else {
    t.equal(full.statusCode, 200, `${label}: 200`);
    t.same(sortRows(full.json() as Row[], key), sortRows(expected, key), `${label}: exactly the permitted rows, equal to the admin's`);
  }
  t.equal(warningCount(full), undefined, `${label}: no Warning unpaged`);

  const collected: Row[] = [];
  for (let offset = 0; offset <= expected.length; offset += LIMIT) {
    const page = await get(w, withParams(url, `limit=${LIMIT}&offset=${offset}`));
    const size = Math.max(0, Math.min(LIMIT, expected.length - offset));
    const remaining = Math.max(0, expected.length - offset - size);
    const where = `${label} offset=${offset}`;
    t.equal(page.statusCode, size === 0 ? 204 : 200, `${where}: status`);
    t.equal(warningCount(page), remaining === 0 ? undefined : remaining, `${where}: Warning count`);
    if (page.statusCode === 200) {
      const rows = page.json() as Row[];
      t.equal(rows.length, size, `${where}: page size`);
      collected.push(...rows);
    }
  }
  const keys = collected.map((r) => String(first(r, key)));
  t.equal(new Set(keys).size, keys.length, `${label}: no row twice across pages`);
  t.same(sortRows(collected, key), sortRows(expected, key), `${label}: the pages together are the permitted rows`);
}

const rowsOfPermitted = (w: Who, rows: Row[]) => rows.filter((r) => allowed(w, 'search', String(first(r, KEY.study))));

t.test('the admin view is the plan (derived attributes are right to begin with)', async (t) => {
  const studies = await adminQido(`${BASE}/studies?includefield=all`);
  t.equal(studies.length, STUDIES.length);
  for (const s of STUDIES) {
    const row = studies.find((r) => first(r, KEY.study) === s.uid)!;
    t.equal(first(row, '00201206'), s.series.length, `${s.name}: NumberOfStudyRelatedSeries`);
    t.equal(first(row, '00201208'), s.series.reduce((n, x) => n + x.instances, 0), `${s.name}: NumberOfStudyRelatedInstances`);
    t.same(row['00080061']?.Value, [...new Set(s.series.map((x) => x.modality))].sort(), `${s.name}: ModalitiesInStudy`);
    const series = await adminQido(`${BASE}/studies/${s.uid}/series?includefield=all`);
    s.series.forEach((x, k) => {
      const r = series.find((row) => first(row, KEY.series) === seriesUid(s, k))!;
      t.equal(first(r, '00201209'), x.instances, `${s.name} series ${k + 1}: NumberOfSeriesRelatedInstances`);
    });
  }
});

t.test('QIDO: every principal sees exactly the studies the engine allows it to search', async (t) => {
  for (const w of WHO) {
    t.test(w.name, async (t) => {
      for (const [resource, key] of [['studies', KEY.study], ['series', KEY.series], ['instances', KEY.instance]] as const) {
        const url = `${BASE}/${resource}?includefield=all`;
        await checkQido(t, w, url, rowsOfPermitted(w, await adminQido(url)), key, `${w.name} x all x /${resource}`);
      }
      for (const s of STUDIES) {
        const may = allowed(w, 'search', s.uid);
        const label = `${w.name} x ${s.name}`;
        const byUid = `${BASE}/studies?StudyInstanceUID=${s.uid}&includefield=all`;
        await checkQido(t, w, byUid, may ? await adminQido(byUid) : [], KEY.study, `${label} x /studies?StudyInstanceUID`);
        const seriesUrl = `${BASE}/studies/${s.uid}/series?includefield=all`;
        await checkQido(t, w, seriesUrl, may ? await adminQido(seriesUrl) : [], KEY.series, `${label} x /studies/{s}/series`);
        const instancesUrl = `${BASE}/studies/${s.uid}/instances?includefield=all`;
        await checkQido(t, w, instancesUrl, may ? await adminQido(instancesUrl) : [], KEY.instance, `${label} x /studies/{s}/instances`);
        for (let k = 0; k < s.series.length; k++) {
          const url = `${BASE}/studies/${s.uid}/series/${seriesUid(s, k)}/instances?includefield=all`;
          await checkQido(t, w, url, may ? await adminQido(url) : [], KEY.instance, `${label} x /studies/{s}/series/{x}/instances [${k + 1}]`);
        }
        if (!may) {
          // The 204 of a hidden study and of a study that does not exist are the same response.
          const hidden = await get(w, byUid);
          const ghost = await get(w, byUid.replace(s.uid, ghostOf(s.uid)));
          t.same(comparable(hidden), comparable(ghost), `${label} x /studies?StudyInstanceUID: 204 like a missing study`);
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Retrieval: permitted -> the admin's bytes; not permitted -> a missing study's response
// ---------------------------------------------------------------------------------------------------------

/** Headers that differ between any two responses whatever they are about. */
const VOLATILE_HEADERS = new Set(['date', 'x-request-id', 'request-id', 'connection', 'keep-alive']);
const MULTIPART = /^multipart\//i;

/** A response as a client can observe it: status, headers (but date-like ones), body; multipart boundaries factored out. */
function comparable(res: LightMyRequestResponse) {
  const contentType = String(res.headers['content-type'] ?? '');
  const headers = Object.entries(res.headers)
    .filter(([k]) => !VOLATILE_HEADERS.has(k.toLowerCase()))
    .map(([k, v]) => [k.toLowerCase(), k.toLowerCase() === 'content-type' ? contentType.replace(/boundary=("[^"]*"|[^;\s]+)/i, 'boundary=B') : String(v)] as const)
    .filter(([k]) => !(MULTIPART.test(contentType) && k === 'content-length'))
    .sort(([a], [b]) => a.localeCompare(b));
  const body = MULTIPART.test(contentType) && res.statusCode === 200
    ? splitMultipart(contentType, res.rawPayload).map((p) => ({ headers: p.headers, body: p.body.toString('base64') }))
    : res.rawPayload.toString('base64');
  return { status: res.statusCode, headers: Object.fromEntries(headers), body };
}

interface Endpoint {
  name: string;
  purpose: 'view' | 'download';
  url: (study: string) => string;
  headers?: Record<string, string>;
}

const adminBulkUri = new Map<string, string>();

function endpointsOf(s: StudyPlan): Endpoint[] {
  const x = seriesUid(s, 0);
  const i = sopUid(s, 0, 0);
  const mk = s.series.findIndex((y) => (y.frames ?? 1) > 1);
  const frameSeries = mk >= 0 ? mk : 0;
  const frames = s.series[frameSeries]!.frames ?? 1;
  const fx = seriesUid(s, frameSeries);
  const fi = sopUid(s, frameSeries, 0);
  const frameList = Array.from({ length: frames }, (_, n) => n + 1).join(',');
  return [
    { name: 'WADO-RS study', purpose: 'download', url: (st) => `${BASE}/studies/${st}` },
    { name: 'WADO-RS series', purpose: 'download', url: (st) => `${BASE}/studies/${st}/series/${x}` },
    { name: 'WADO-RS instance (multipart)', purpose: 'download', url: (st) => `${BASE}/studies/${st}/series/${x}/instances/${i}` },
    { name: 'WADO-RS instance (application/dicom)', purpose: 'download', url: (st) => `${BASE}/studies/${st}/series/${x}/instances/${i}`, headers: { accept: 'application/dicom' } },
    { name: 'metadata study', purpose: 'view', url: (st) => `${BASE}/studies/${st}/metadata` },
    { name: 'metadata series', purpose: 'view', url: (st) => `${BASE}/studies/${st}/series/${x}/metadata` },
    { name: 'metadata instance', purpose: 'view', url: (st) => `${BASE}/studies/${st}/series/${x}/instances/${i}/metadata` },
    { name: `frames ${frameList}`, purpose: 'view', url: (st) => `${BASE}/studies/${st}/series/${fx}/instances/${fi}/frames/${frameList}` },
    { name: 'frames 1 of 1 past the end', purpose: 'view', url: (st) => `${BASE}/studies/${st}/series/${fx}/instances/${fi}/frames/${frames + 1}` },
    { name: 'bulk data (BulkDataURI)', purpose: 'view', url: (st) => adminBulkUri.get(s.uid)!.replace(s.uid, st) },
    { name: 'bulk data (Range)', purpose: 'view', url: (st) => adminBulkUri.get(s.uid)!.replace(s.uid, st), headers: { range: 'bytes=2-9' } },
    {
      name: 'WADO-URI',
      purpose: 'download',
      url: (st) => `${BASE}/wado?requestType=WADO&studyUID=${st}&seriesUID=${x}&objectUID=${i}&contentType=application%2Fdicom`,
    },
  ];
}

t.test('retrieval: permitted -> 200 and the admin bytes; otherwise exactly a missing study', async (t) => {
  for (const s of STUDIES) {
    const md = await get(admin, `${BASE}/studies/${s.uid}/series/${seriesUid(s, 0)}/instances/${sopUid(s, 0, 0)}/metadata`);
    const uri = (md.json() as Row[])[0]!['7FE00010']?.BulkDataURI;
    t.ok(uri, `${s.name}: the admin's metadata has a BulkDataURI`);
    adminBulkUri.set(s.uid, new URL(uri!).pathname);
  }
  const adminResponse = new Map<string, ReturnType<typeof comparable>>();
  for (const w of WHO) {
    t.test(w.name, async (t) => {
      for (const s of STUDIES) {
        for (const e of endpointsOf(s)) {
          const label = `${w.name} x ${s.name} x ${e.name}`;
          const key = `${s.uid} ${e.name}`;
          if (!adminResponse.has(key)) adminResponse.set(key, comparable(await get(admin, e.url(s.uid), e.headers)));
          const expectedAdmin = adminResponse.get(key)!;
          const res = await get(w, e.url(s.uid), e.headers);
          if (allowed(w, 'read', s.uid, e.purpose)) {
            t.equal(res.statusCode, expectedAdmin.status, `${label}: the admin's status`);
            t.same(comparable(res), expectedAdmin, `${label}: the admin's response`);
          } else {
            const ghost = await get(w, e.url(ghostOf(s.uid)), e.headers);
            t.equal(res.statusCode, 404, `${label}: 404`);
            t.same(comparable(res), comparable(ghost), `${label}: no status, header or body difference from a missing study`);
          }
        }
      }
    });
  }
  t.test('the admin gets what the matrix compared against', async (t) => {
    for (const s of STUDIES) {
      for (const e of endpointsOf(s)) {
        const status = adminResponse.get(`${s.uid} ${e.name}`)!.status;
        const expected = e.name.includes('past the end') ? 400 : e.name.includes('Range') ? 206 : 200;
        t.equal(status, expected, `admin x ${s.name} x ${e.name}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Share principals, break-glass, admin endpoints
// ---------------------------------------------------------------------------------------------------------

t.test('share principal: only its study; whole objects only with the download scope', async (t) => {
  const view = who('share-view(S2)');
  const download = who('share-download(S2)');
  const s2 = byName('A-CT+MR-noref');
  const other = byName('A-CT-smith');
  const studies = await get(view, `${BASE}/studies`);
  t.same((studies.json() as Row[]).map((r) => first(r, KEY.study)), [S2], 'QIDO: only S2');
  t.equal((await get(view, `${BASE}/studies/${S2}/metadata`)).statusCode, 200, 'metadata of S2');
  t.equal((await get(view, `${BASE}/studies/${S2}/series/${seriesUid(s2, 0)}/instances/${sopUid(s2, 0, 0)}/frames/1`)).statusCode, 200, 'frames of S2');
  t.equal((await get(view, `${BASE}/studies/${S2}`)).statusCode, 404, 'view scope: WADO-RS retrieve of S2 404');
  t.equal((await get(download, `${BASE}/studies/${S2}`)).statusCode, 200, 'download scope: WADO-RS retrieve of S2 200');
  const hidden = await get(download, `${BASE}/studies/${other.uid}/metadata`);
  const missing = await get(download, `${BASE}/studies/${ghostOf(other.uid)}/metadata`);
  t.equal(hidden.statusCode, 404);
  t.same(comparable(hidden), comparable(missing), 'another study: 404 like a missing one');
  const share = await send(view, 'POST', `${BASE}/shares`, {}, { studyInstanceUID: S2, scope: 'download' });
  t.not(share.statusCode, 201, 'a share session cannot create links');
});

t.test('break-glass: nothing without the header; with it what the policy grants, and a security log line', async (t) => {
  const plain = who('physician');
  const bg = who('physician+break-glass');
  const s1 = byName('A-CT-smith');
  const vip = byName('A-CT-smith-vip');
  const mdUrl = `${BASE}/studies/${s1.uid}/metadata`;

  logLines.length = 0;
  t.equal((await get(plain, `${BASE}/studies`)).statusCode, 204, 'no header: QIDO finds nothing');
  t.equal((await get(plain, mdUrl)).statusCode, 404, 'no header: metadata 404');
  t.same(logLines.filter((l) => l.event === 'break-glass'), [], 'no header: no break-glass line');

  logLines.length = 0;
  const md = await get(bg, mdUrl);
  t.equal(md.statusCode, 200, 'with the header: metadata 200');
  const lines = logLines.filter((l) => l.event === 'break-glass');
  t.equal(lines.length, 1, 'one break-glass line for one allowed read');
  t.match(lines[0], { security: true, event: 'break-glass', principal: physician.id, action: 'read', reason: REASON, policies: ['physician-break-glass'] });

  logLines.length = 0;
  t.equal((await get(bg, `${BASE}/studies/${vip.uid}/metadata`)).statusCode, 404, 'vip stays out of reach with break-glass');
  t.same(logLines.filter((l) => l.event === 'break-glass'), [], 'a refused break-glass request logs no break-glass access');

  logLines.length = 0;
  const search = await get(bg, `${BASE}/studies`);
  t.equal(search.statusCode, 200, 'with the header: QIDO finds studies');
  const searchLines = logLines.filter((l) => l.event === 'break-glass');
  t.equal(searchLines.length, 1, 'a break-glass search is logged too');
  t.match(searchLines[0], { security: true, event: 'break-glass', principal: physician.id, action: 'search', reason: REASON });

  const empty = await app.inject({ method: 'GET', url: `${BASE}/studies`, headers: { 'x-test-principal': plain.name, 'break-glass-reason': '  ' } });
  t.equal(empty.statusCode, 400, 'an empty reason is refused');
});

t.test('admin endpoints: 403 for everyone but the admin, whatever the study', async (t) => {
  const s1 = byName('A-CT-smith');
  for (const w of WHO.filter((x) => x !== admin)) {
    const label = w.name;
    const calls: [string, 'GET' | 'POST' | 'PUT', string, unknown?][] = [
      ['GET /admin/policies', 'GET', `${BASE}/admin/policies`],
      ['GET /admin/principals', 'GET', `${BASE}/admin/principals`],
      ['POST /admin/policies/reload', 'POST', `${BASE}/admin/policies/reload`],
      ['PUT /admin/policies', 'PUT', `${BASE}/admin/policies`, 'permit (principal, action, resource);'],
      ['PUT labels (existing study)', 'PUT', `${BASE}/admin/studies/${s1.uid}/labels`, { labels: [] }],
      ['PUT labels (missing study)', 'PUT', `${BASE}/admin/studies/${ghostOf(s1.uid)}/labels`, { labels: [] }],
      ['PUT confidentiality', 'PUT', `${BASE}/admin/studies/${s1.uid}/confidentiality`, { confidentiality: '' }],
    ];
    let reference: ReturnType<typeof comparable> | undefined;
    for (const [name, method, url, payload] of calls) {
      const headers: Record<string, string> = typeof payload === 'string' ? { 'content-type': 'text/plain' } : {};
      const res = await send(w, method, url, headers, payload as string | object | undefined);
      t.equal(res.statusCode, 403, `${label} x ${name}: 403`);
      const c = comparable(res);
      reference ??= c;
      t.same(c, reference, `${label} x ${name}: the same 403`);
    }
  }
  t.equal((await get(admin, `${BASE}/admin/policies`)).statusCode, 200, 'admin: 200');
  t.same(ctx.index.studyAttributes(byName('A-CT-smith-vip').uid)?.labels, ['vip'], 'labels unchanged');
  t.equal(engine.text(), fs.readFileSync(policyFile, 'utf8'), 'policy file unchanged');
});

// ---------------------------------------------------------------------------------------------------------
// STOW (last: it adds studies)
// ---------------------------------------------------------------------------------------------------------

const FAILED_SOP_SEQUENCE = '00081198';
const REFERENCED_SOP_SEQUENCE = '00081199';
const FAILURE_REASON = '00081197';
const REFERENCED_SOP_INSTANCE = '00081155';
const NOT_AUTHORIZED = 0x0124;

function stowOutcome(res: LightMyRequestResponse) {
  const ds = res.json() as Row;
  const items = (tag: string) => (ds[tag]?.Value ?? []) as Row[];
  return {
    failed: items(FAILED_SOP_SEQUENCE).map((i) => ({ sop: first(i, REFERENCED_SOP_INSTANCE), reason: first(i, FAILURE_REASON) })),
    stored: items(REFERENCED_SOP_SEQUENCE).map((i) => first(i, REFERENCED_SOP_INSTANCE)),
  };
}

t.test('STOW: the gateway stores only CT of its institution; refused instances leave nothing behind', async (t) => {
  const gateway = who('gateway-A');
  const base = { modality: 'CT', institution: INST_A, studyDate: '20250101', accessionNumber: 'GW1', patientId: 'PID-GW' };
  const newCt = { ...base, study: '2.25.9200001', series: '2.25.9200001.1', sop: '2.25.9200001.1.1' };
  const newCt2 = { ...newCt, sop: '2.25.9200001.1.2', instanceNumber: 2 };
  const newMr = { ...base, modality: 'MR', study: '2.25.9200002', series: '2.25.9200002.1', sop: '2.25.9200002.1.1' };
  const otherInstitution = { ...base, institution: INST_B, study: '2.25.9200003', series: '2.25.9200003.1', sop: '2.25.9200003.1.1' };
  const s2 = byName('A-CT+MR-noref');
  const intoMixed = { ...base, study: s2.uid, series: `${s2.uid}.9`, sop: `${s2.uid}.9.1` };
  const s1 = byName('A-CT-smith');
  const intoOwnCt = { ...base, study: s1.uid, series: `${s1.uid}.9`, sop: `${s1.uid}.9.1` };

  const blobsBefore = ctx.blobFiles();
  const countBefore = ctx.index.counts().instances;
  const s2Before = ctx.index.studyAttributes(s2.uid);
  const { contentType, body } = multipartBody([newCt, newMr, otherInstitution, intoMixed, newCt2, intoOwnCt].map((spec) => policyInstance(spec)));
  const res = await send(gateway, 'POST', `${BASE}/studies`, { 'content-type': contentType, accept: 'application/dicom+json' }, body);
  t.equal(res.statusCode, 202, 'some stored, some refused');
  const outcome = stowOutcome(res);
  t.same(
    outcome.failed,
    [newMr, otherInstitution, intoMixed].map((s) => ({ sop: s.sop, reason: NOT_AUTHORIZED })),
    'MR, another institution and a CT added to an MR study: 0x0124 each',
  );
  t.same(outcome.stored, [newCt.sop, newCt2.sop, intoOwnCt.sop], 'the CT instances of its institution are stored');

  t.equal(ctx.index.counts().instances, countBefore + 3, 'three instances indexed');
  t.same(ctx.blobFiles(), { objects: blobsBefore.objects + 3, staging: 0 }, 'three blobs, nothing staged left');
  for (const refused of [newMr, otherInstitution]) {
    t.equal(ctx.index.studyAttributes(refused.study), undefined, `refused ${refused.sop}: no study`);
    t.equal((await get(admin, `${BASE}/studies?StudyInstanceUID=${refused.study}`)).statusCode, 204, `refused ${refused.sop}: admin QIDO finds nothing`);
  }
  t.equal((await get(admin, `${BASE}/instances?SOPInstanceUID=${intoMixed.sop}`)).statusCode, 204, 'the refused instance of S2 is not there');
  t.same(ctx.index.studyAttributes(s2.uid), s2Before, "S2's policy attributes unchanged");
  const stored = await get(admin, `${BASE}/studies/${newCt.study}/instances`);
  t.same((stored.json() as Row[]).map((r) => first(r, KEY.instance)).sort(), [newCt.sop, newCt2.sop], 'admin QIDO: the stored CT study has its two instances');
  t.equal((await get(gateway, `${BASE}/studies?StudyInstanceUID=${newCt.study}`)).statusCode, 204, 'the gateway stores but cannot search');

  const nobody = who('nobody');
  const specsNobody = [
    { ...base, study: '2.25.9200004', series: '2.25.9200004.1', sop: '2.25.9200004.1.1' },
    { ...base, study: s1.uid, series: `${s1.uid}.8`, sop: `${s1.uid}.8.1` },
  ];
  const blobsMid = ctx.blobFiles();
  const countMid = ctx.index.counts().instances;
  const { contentType: ct2, body: b2 } = multipartBody(specsNobody.map((spec) => policyInstance(spec)));
  const refused = await send(nobody, 'POST', `${BASE}/studies`, { 'content-type': ct2, accept: 'application/dicom+json' }, b2);
  t.equal(refused.statusCode, 409, 'no permission: 409');
  t.same(stowOutcome(refused), { failed: specsNobody.map((s) => ({ sop: s.sop, reason: NOT_AUTHORIZED })), stored: [] }, 'all 0x0124');
  t.equal(ctx.index.counts().instances, countMid, 'nothing indexed');
  t.same(ctx.blobFiles(), blobsMid, 'no blob, nothing staged');

  const radiology = who('radiology-A');
  const { contentType: ct3, body: b3 } = multipartBody([policyInstance({ ...base, study: '2.25.9200005', series: '2.25.9200005.1', sop: '2.25.9200005.1.1' })]);
  const byRadiology = await send(radiology, 'POST', `${BASE}/studies`, { 'content-type': ct3, accept: 'application/dicom+json' }, b3);
  t.equal(byRadiology.statusCode, 409, 'reading radiology may not store');
});

t.test('request count', async (t) => {
  t.ok(requests > 0);
  t.comment(`${WHO.length} principals x ${STUDIES.length} studies; ${requests} requests`);
});
