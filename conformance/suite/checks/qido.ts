// PS3.18 10.6 Search Transaction (QIDO-RS), 8.3.4 query parameters (matching per PS3.4 C.2.2.2), 10.6.3
// return attributes, and the JSON model of the answers (Annex F). Every query is scoped to this run's UIDs or
// Patient IDs so that other data on the server cannot change the expected answer.
import { expect, expectEqual, expectSameSet, expectStatus } from '../assert.js';
import { column, datasetArray, first, firstString, type Dataset } from '../dicom-json.js';
import { essence, mediaParam } from '../http.js';
import { parseMultipart } from '../multipart.js';
import type { Check, Context } from '../suite.js';
import { allInstances } from '../test-data.js';

const StudyInstanceUID = '0020000D';
const SeriesInstanceUID = '0020000E';
const SOPInstanceUID = '00080018';
const PatientID = '00100020';

/** A search: 200 with datasets, or 204 No Content meaning none (PS3.18 10.6.3). */
async function search(ctx: Context, path: string): Promise<Dataset[]> {
  const res = await ctx.http.get(path, { accept: 'application/dicom+json' });
  if (res.status === 204) return [];
  return datasetArray(res, `GET ${path}`);
}

/** The search finds exactly `expected` (values of `tag`). */
async function expectFinds(ctx: Context, path: string, tag: string, expected: string[]): Promise<Dataset[]> {
  const found = await search(ctx, path);
  expectSameSet(column(found, tag), expected, `GET ${path} (${tag})`);
  return found;
}

/** Each tag is present in the dataset (with or without a value: type 2 attributes may be empty). */
function expectAttributes(ds: Dataset | undefined, tags: string[], what: string): void {
  expect(ds !== undefined, `${what}: no result`);
  const missing = tags.filter((t) => ds[t] === undefined);
  expect(missing.length === 0, `${what}: missing ${missing.join(', ')}`);
}

const studyList = (ctx: Context) => ctx.data.studies.map((s) => s.uid).join(',');

export const qidoChecks: Check[] = [
  {
    name: '10.6.1 QIDO-RS SearchForStudies returns 200 application/dicom+json (a JSON array)',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const res = await ctx.http.get(`/studies?StudyInstanceUID=${s1.uid}`, { accept: 'application/dicom+json' });
      expectEqual(column(datasetArray(res, 'SearchForStudies'), StudyInstanceUID), [s1.uid], 'studies found');
    },
  },
  {
    name: '10.6.1 QIDO-RS SearchForStudies with no Accept header answers application/dicom+json (the default)',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const res = await ctx.http.get(`/studies?StudyInstanceUID=${s1.uid}`);
      expectEqual(column(datasetArray(res, 'SearchForStudies without Accept'), StudyInstanceUID), [s1.uid], 'studies found');
    },
  },
  {
    name: '10.6.1 QIDO-RS SearchForStudies as multipart/related; type="application/dicom+xml" (one NativeDicomModel part per result)',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const res = await ctx.http.get(`/studies?StudyInstanceUID=${s1.uid}`, { accept: 'multipart/related; type="application/dicom+xml"' });
      expectStatus(res, 200, 'SearchForStudies as XML');
      const ct = String(res.headers['content-type']);
      expect(essence(ct) === 'multipart/related' && mediaParam(ct, 'type') === 'application/dicom+xml', `Content-Type is ${ct}`);
      const parts = parseMultipart(res);
      expectEqual(parts.length, 1, 'parts');
      const xml = parts[0]!.body.toString('utf8');
      expect(xml.includes('NativeDicomModel') && xml.includes(s1.uid), 'the part is not a NativeDicomModel naming the study');
    },
  },
  {
    name: '10.6.3 QIDO-RS study results carry the required attributes of Table 10.6.3-3',
    async run(ctx) {
      const [ds] = await search(ctx, `/studies?StudyInstanceUID=${ctx.data.studies[0].uid}`);
      const required = ['00080020', '00080030', '00080050', '00080061', '00080090', '00081190', '00100010', '00100020', '00100030', '00100040', '0020000D', '00200010', '00201206', '00201208'];
      expectAttributes(ds, required, 'study result');
    },
  },
  {
    name: '10.6.3 QIDO-RS NumberOfStudyRelatedSeries/Instances and ModalitiesInStudy describe what was stored',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const [ds] = await search(ctx, `/studies?StudyInstanceUID=${s1.uid}`);
      expectEqual(Number(first(ds, '00201206')), s1.series.length, 'NumberOfStudyRelatedSeries (0020,1206)');
      expectEqual(Number(first(ds, '00201208')), allInstances(s1).length, 'NumberOfStudyRelatedInstances (0020,1208)');
      expectEqual(ds?.['00080061']?.Value, ['CT'], 'ModalitiesInStudy (0008,0061)');
    },
  },
  {
    name: '10.6.3 QIDO-RS series results carry the required attributes of Table 10.6.3-4 and NumberOfSeriesRelatedInstances',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const x = s1.series[0]!;
      const [ds] = await search(ctx, `/studies/${s1.uid}/series?SeriesInstanceUID=${x.uid}`);
      expectAttributes(ds, ['00080060', '00081190', '0020000E', '00200011', '00201209'], 'series result');
      expectEqual(Number(first(ds, '00201209')), x.instances.length, 'NumberOfSeriesRelatedInstances (0020,1209)');
    },
  },
  {
    name: '10.6.3 QIDO-RS instance results carry the required attributes of Table 10.6.3-5',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const i = allInstances(s1)[0]!;
      const [ds] = await search(ctx, `/studies/${s1.uid}/series/${i.series}/instances?SOPInstanceUID=${i.sop}`);
      expectAttributes(ds, ['00080016', '00080018', '00081190', '00200013', '00280010', '00280011', '00280100'], 'instance result');
      expectEqual(firstString(ds, '00080016'), i.sopClass, 'SOPClassUID');
      expectEqual(Number(first(ds, '00280010')), i.rows, 'Rows');
    },
  },
  {
    name: "10.6.1 QIDO-RS SearchForSeries /studies/{study}/series returns exactly the study's series",
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      await expectFinds(ctx, `/studies/${s1.uid}/series`, SeriesInstanceUID, s1.series.map((x) => x.uid));
    },
  },
  {
    name: '10.6.1 QIDO-RS SearchForSeries /series (all series) matches on StudyInstanceUID and carries study attributes',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const found = await expectFinds(ctx, `/series?StudyInstanceUID=${s1.uid}`, SeriesInstanceUID, s1.series.map((x) => x.uid));
      expectEqual(column(found, StudyInstanceUID), s1.series.map(() => s1.uid), 'StudyInstanceUID of each series');
      expectEqual(column(found, PatientID), s1.series.map(() => s1.patientId), 'PatientID (study level) of each series');
    },
  },
  {
    name: "10.6.1 QIDO-RS SearchForInstances /studies/{study}/series/{series}/instances returns exactly the series' instances",
    async run(ctx) {
      const x = ctx.data.studies[0].series[0]!;
      await expectFinds(ctx, `/studies/${x.instances[0]!.study}/series/${x.uid}/instances`, SOPInstanceUID, x.instances.map((i) => i.sop));
    },
  },
  {
    name: '10.6.1 QIDO-RS SearchForInstances /studies/{study}/instances returns every instance with its series attributes',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const found = await expectFinds(ctx, `/studies/${s1.uid}/instances`, SOPInstanceUID, allInstances(s1).map((i) => i.sop));
      for (const ds of found) {
        const i = allInstances(s1).find((x) => x.sop === firstString(ds, SOPInstanceUID))!;
        expectEqual(firstString(ds, SeriesInstanceUID), i.series, `SeriesInstanceUID of ${i.sop}`);
      }
    },
  },
  {
    name: '10.6.1 QIDO-RS SearchForInstances /instances (all instances) matches on SOPInstanceUID',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[1])[1]!;
      const [ds] = await expectFinds(ctx, `/instances?SOPInstanceUID=${i.sop}`, SOPInstanceUID, [i.sop]);
      expectEqual(firstString(ds, StudyInstanceUID), i.study, 'StudyInstanceUID');
    },
  },
  {
    name: '10.6.3 QIDO-RS search matching nothing: 204 No Content',
    async run(ctx) {
      const res = await ctx.http.get(`/studies?PatientID=C${ctx.data.runTag}-NO-SUCH-PATIENT`, { accept: 'application/dicom+json' });
      expectStatus(res, 204, 'no match');
    },
  },
  {
    name: '8.3.4.1 QIDO-RS single value matching on PatientID',
    async run(ctx) {
      const [s1, s2] = ctx.data.studies;
      await expectFinds(ctx, `/studies?PatientID=${s1.patientId}`, StudyInstanceUID, [s1.uid]);
      await expectFinds(ctx, `/studies?PatientID=${s2.patientId}`, StudyInstanceUID, [s2.uid]);
    },
  },
  {
    name: '8.3.4.1 QIDO-RS attributes named by tag number or by keyword match alike (00100020 = PatientID)',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      await expectFinds(ctx, `/studies?00100020=${s1.patientId}`, StudyInstanceUID, [s1.uid]);
    },
  },
  {
    name: '8.3.4.1 QIDO-RS single value matching on AccessionNumber',
    async run(ctx) {
      const s2 = ctx.data.studies[1];
      await expectFinds(ctx, `/studies?StudyInstanceUID=${studyList(ctx)}&AccessionNumber=${s2.accession}`, StudyInstanceUID, [s2.uid]);
    },
  },
  {
    name: '8.3.4.1 QIDO-RS UID list matching: comma-separated StudyInstanceUID values',
    async run(ctx) {
      const [s1, s2] = ctx.data.studies;
      await expectFinds(ctx, `/studies?StudyInstanceUID=${s1.uid},${s2.uid}`, StudyInstanceUID, [s1.uid, s2.uid]);
    },
  },
  {
    name: '8.3.4.1 QIDO-RS wildcard matching with * (PatientID prefix)',
    async run(ctx) {
      const tag = ctx.data.runTag;
      const found = await search(ctx, `/studies?PatientID=C${tag}0*`);
      const ours = ctx.data.studies.map((s) => s.uid);
      expect(ours.every((u) => column(found, StudyInstanceUID).includes(u)), `PatientID=C${tag}0* did not find every study of this run`);
      const stray = column(found, PatientID).filter((p) => !p.startsWith(`C${tag}0`));
      expect(stray.length === 0, `results that do not match the pattern: ${stray.join(', ')}`);
    },
  },
  {
    name: '8.3.4.1 QIDO-RS wildcard matching with ? (exactly one character)',
    async run(ctx) {
      const [s1, s2] = ctx.data.studies;
      const pattern = `${s1.patientId.slice(0, -1)}?`;
      await expectFinds(ctx, `/studies?StudyInstanceUID=${studyList(ctx)}&PatientID=${pattern}`, StudyInstanceUID, [s1.uid, s2.uid]);
      await expectFinds(ctx, `/studies?StudyInstanceUID=${studyList(ctx)}&PatientID=${s1.patientId.slice(0, -2)}?`, StudyInstanceUID, []);
    },
  },
  {
    name: '8.3.4.1 QIDO-RS range matching on StudyDate (a-b, -b, a-)',
    async run(ctx) {
      const [s1, s2, mf] = ctx.data.studies;
      const scope = `/studies?StudyInstanceUID=${studyList(ctx)}`;
      await expectFinds(ctx, `${scope}&StudyDate=20200101-20221231`, StudyInstanceUID, [mf.uid]);
      await expectFinds(ctx, `${scope}&StudyDate=-20200101`, StudyInstanceUID, [s1.uid]);
      await expectFinds(ctx, `${scope}&StudyDate=20220101-`, StudyInstanceUID, [s2.uid]);
      await expectFinds(ctx, `${scope}&StudyDate=${s1.studyDate}`, StudyInstanceUID, [s1.uid]);
    },
  },
  {
    name: '8.3.4.1 QIDO-RS ModalitiesInStudy matches a study by a modality of its series',
    async run(ctx) {
      const [s1, s2] = ctx.data.studies;
      const scope = `/studies?StudyInstanceUID=${s1.uid},${s2.uid}`;
      await expectFinds(ctx, `${scope}&ModalitiesInStudy=CT`, StudyInstanceUID, [s1.uid, s2.uid]);
      await expectFinds(ctx, `${scope}&ModalitiesInStudy=MR`, StudyInstanceUID, []);
    },
  },
  {
    name: '8.3.4.1 QIDO-RS series matching on SeriesNumber and Modality',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const second = s1.series.find((x) => x.number === 2)!;
      await expectFinds(ctx, `/studies/${s1.uid}/series?SeriesNumber=2`, SeriesInstanceUID, [second.uid]);
      await expectFinds(ctx, `/studies/${s1.uid}/series?Modality=CT`, SeriesInstanceUID, s1.series.map((x) => x.uid));
    },
  },
  {
    name: '8.3.4.1 QIDO-RS instance matching on InstanceNumber and SOPClassUID',
    async run(ctx) {
      const x = ctx.data.studies[0].series[0]!;
      const base = `/studies/${x.instances[0]!.study}/series/${x.uid}/instances`;
      await expectFinds(ctx, `${base}?InstanceNumber=2`, SOPInstanceUID, x.instances.filter((i) => i.instanceNumber === 2).map((i) => i.sop));
      await expectFinds(ctx, `${base}?SOPClassUID=${x.instances[0]!.sopClass}`, SOPInstanceUID, x.instances.map((i) => i.sop));
    },
  },
  {
    name: '8.3.4.1 QIDO-RS single value matching on PatientName, percent-encoded as RFC 3986 asks (DOE%5EJANE)',
    async run(ctx) {
      const [s1, , mf] = ctx.data.studies;
      await expectFinds(ctx, `/studies?StudyInstanceUID=${studyList(ctx)}&PatientName=${encodeURIComponent(s1.patientName)}`, StudyInstanceUID, [s1.uid, mf.uid]);
    },
  },
  {
    name: '8.3.4 QIDO-RS fuzzymatching=true is accepted (200; a literal match still matches)',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      await expectFinds(ctx, `/studies?PatientID=${s1.patientId}&fuzzymatching=true`, StudyInstanceUID, [s1.uid]);
    },
  },
  {
    name: '8.3.4 QIDO-RS limit and offset page through the matches without overlap',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const all = allInstances(s1).map((i) => i.sop);
      const pages: string[][] = [];
      for (let offset = 0; offset < all.length; offset += 2) {
        pages.push(column(await search(ctx, `/studies/${s1.uid}/instances?limit=2&offset=${offset}`), SOPInstanceUID));
      }
      expectEqual(pages.map((p) => p.length), [2, 2, 1], 'page sizes for limit=2');
      expectSameSet(pages.flat(), all, 'the pages together');
    },
  },
  {
    name: '8.3.4 QIDO-RS a page that leaves matches behind carries Warning: 299 ... additional results',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const res = await ctx.http.get(`/studies/${s1.uid}/instances?limit=2`, { accept: 'application/dicom+json' });
      expectStatus(res, 200, 'limit=2');
      const warning = String(res.headers.warning ?? '');
      expect(/^299 /.test(warning) && /additional results/i.test(warning), `Warning header is ${JSON.stringify(res.headers.warning)}`);
    },
  },
  {
    name: '8.3.4 QIDO-RS includefield adds an attribute (by tag number and by keyword)',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      for (const field of ['00081030', 'StudyDescription']) {
        const [ds] = await search(ctx, `/studies?StudyInstanceUID=${s1.uid}&includefield=${field}`);
        expectEqual(firstString(ds, '00081030'), s1.description, `StudyDescription with includefield=${field}`);
      }
      const [series] = await search(ctx, `/studies/${s1.uid}/series?SeriesNumber=1&includefield=0008103E`);
      expect(typeof first(series, '0008103E') === 'string', 'SeriesDescription (0008,103E) missing with includefield=0008103E');
    },
  },
  {
    name: '8.3.4 QIDO-RS includefield=all returns the optional attributes too',
    async run(ctx) {
      const s1 = ctx.data.studies[0];
      const [ds] = await search(ctx, `/studies?StudyInstanceUID=${s1.uid}&includefield=all`);
      expectEqual(firstString(ds, '00081030'), s1.description, 'StudyDescription with includefield=all');
    },
  },
  {
    name: '10.6.3 QIDO-RS invalid value of a supported parameter (StudyDate=notadate): 400',
    async run(ctx) {
      const res = await ctx.http.get('/studies?StudyDate=notadate', { accept: 'application/dicom+json' });
      expectStatus(res, 400, 'StudyDate=notadate');
    },
  },
  {
    name: '8.7.3 QIDO-RS Accept with no supported media type (text/plain): 406 Not Acceptable',
    async run(ctx) {
      const res = await ctx.http.get(`/studies?StudyInstanceUID=${ctx.data.studies[0].uid}`, { accept: 'text/plain' });
      expectStatus(res, 406, 'Accept text/plain');
    },
  },
  {
    name: 'F.2.2 PN values are objects with Alphabetic, Ideographic and Phonetic groups (UTF-8)',
    async run(ctx) {
      const [s1, s2] = ctx.data.studies;
      const found = await search(ctx, `/studies?StudyInstanceUID=${s1.uid},${s2.uid}`);
      const name = (uid: string) => first(found.find((ds) => firstString(ds, StudyInstanceUID) === uid), '00100010');
      const [alphabetic, ideographic, phonetic] = s2.patientName.split('=');
      const groups = (v: unknown) => {
        const pn = (v ?? {}) as Record<string, unknown>;
        return [pn.Alphabetic, pn.Ideographic, pn.Phonetic, Object.keys(pn).length];
      };
      expectEqual(groups(name(s1.uid)), [s1.patientName, undefined, undefined, 1], 'PatientName of the first study (Alphabetic, Ideographic, Phonetic, group count)');
      expectEqual(groups(name(s2.uid)), [alphabetic, ideographic, phonetic, 3], 'PatientName of the second study (Alphabetic, Ideographic, Phonetic, group count)');
    },
  },
];
