// PS3.18 10.5 Store Transaction (STOW-RS) and the Store Instances Response Module (Annex I).
import { expect, expectEqual, expectSameSet, expectStatus, expectType } from '../assert.js';
import { firstString, items, singleDataset, type Dataset } from '../dicom-json.js';
import { multipartRelated } from '../multipart.js';
import type { Check, Context } from '../suite.js';
import { allInstances } from '../test-data.js';

const RetrieveURL = '00081190';
const FailedSOPSequence = '00081198';
const ReferencedSOPSequence = '00081199';
const ReferencedSOPClassUID = '00081150';
const ReferencedSOPInstanceUID = '00081155';
const FailureReason = '00081197';

const NOT_DICOM = Buffer.from('This part is plain text, not a DICOM Part 10 file.\n');

function stow(ctx: Context, path: string, parts: Buffer[], accept = 'application/dicom+json') {
  const { contentType, body } = multipartRelated(parts);
  return ctx.http.request('POST', path, { headers: { 'content-type': contentType, accept }, body });
}

/** A FailureReason is a failure status (PS3.4 / Annex I): not 0000 (success) and not a Bxxx warning. */
function expectFailureReason(item: Dataset, what: string): void {
  const reason = Number(item[FailureReason]?.Value?.[0]);
  expect(Number.isInteger(reason) && reason !== 0 && (reason & 0xf000) !== 0xb000, `${what}: FailureReason (0008,1197) is ${JSON.stringify(item[FailureReason])}`);
}

export const stowChecks: Check[] = [
  {
    name: '10.5 STOW-RS POST /studies storing every instance answers 200 with application/dicom+json',
    async run(ctx) {
      expectStatus(ctx.stored.both, 200, 'POST /studies');
      singleDataset(ctx.stored.both, 'POST /studies');
    },
  },
  {
    name: '10.5.3 STOW-RS ReferencedSOPSequence (0008,1199) lists each stored instance with class, instance and RetrieveURL',
    async run(ctx) {
      const [s1, s2] = ctx.data.studies;
      const sent = [...allInstances(s1), ...allInstances(s2)];
      const refs = items(singleDataset(ctx.stored.both, 'POST /studies'), ReferencedSOPSequence);
      expectSameSet(refs.map((r) => firstString(r, ReferencedSOPInstanceUID) ?? ''), sent.map((i) => i.sop), 'ReferencedSOPInstanceUIDs');
      for (const r of refs) {
        const sop = firstString(r, ReferencedSOPInstanceUID)!;
        const i = sent.find((x) => x.sop === sop)!;
        expectEqual(firstString(r, ReferencedSOPClassUID), i.sopClass, `ReferencedSOPClassUID of ${sop}`);
        const url = firstString(r, RetrieveURL) ?? '';
        expect(url.endsWith(`/studies/${i.study}/series/${i.series}/instances/${i.sop}`), `RetrieveURL of ${sop} is ${JSON.stringify(url)}`);
      }
    },
  },
  {
    name: '10.5.3 STOW-RS POST /studies/{study} answers 200 and RetrieveURL (0008,1190) names that study',
    async run(ctx) {
      const mf = ctx.data.studies[2];
      expectStatus(ctx.stored.multiframe, 200, `POST /studies/${mf.uid}`);
      const url = firstString(singleDataset(ctx.stored.multiframe, 'POST /studies/{study}'), RetrieveURL) ?? '';
      expect(url.endsWith(`/studies/${mf.uid}`), `RetrieveURL is ${JSON.stringify(url)}`);
      expect(/^https?:\/\//.test(url), `RetrieveURL is not an absolute URL: ${JSON.stringify(url)}`);
    },
  },
  {
    name: '10.5.3 STOW-RS POST /studies/{study} with an instance of another study: 409, FailedSOPSequence names it',
    async run(ctx) {
      const [s1, , mf] = ctx.data.studies;
      const other = allInstances(mf)[0]!;
      const res = await stow(ctx, `/studies/${s1.uid}`, [other.bytes]);
      expectStatus(res, 409, 'Study Instance UID mismatch');
      const failed = items(singleDataset(res, 'mismatch response'), FailedSOPSequence);
      expectEqual(failed.map((f) => firstString(f, ReferencedSOPInstanceUID)), [other.sop], 'FailedSOPSequence instances');
      expectFailureReason(failed[0]!, 'mismatch');
    },
  },
  {
    name: '10.5.3 STOW-RS with no storable instance (a part that is not DICOM): 409, FailedSOPSequence with a failure reason (A7xx/A9xx/Cxxx)',
    async run(ctx) {
      const res = await stow(ctx, '/studies', [NOT_DICOM]);
      expectStatus(res, 409, 'not-DICOM part');
      const failed = items(singleDataset(res, 'not-DICOM response'), FailedSOPSequence);
      expectEqual(failed.length, 1, 'FailedSOPSequence items');
      expectFailureReason(failed[0]!, 'not-DICOM part');
    },
  },
  {
    name: '10.5.3 STOW-RS partial success: 202 with the stored instance in ReferencedSOPSequence and the failure in FailedSOPSequence',
    async run(ctx) {
      const res = await stow(ctx, '/studies', [ctx.data.spare.bytes, NOT_DICOM]);
      expectStatus(res, 202, 'one good instance and one bad part');
      const ds = singleDataset(res, 'partial response');
      expectEqual(items(ds, ReferencedSOPSequence).map((r) => firstString(r, ReferencedSOPInstanceUID)), [ctx.data.spare.sop], 'ReferencedSOPSequence');
      expectEqual(items(ds, FailedSOPSequence).length, 1, 'FailedSOPSequence items');
    },
  },
  {
    name: '10.5.1.1 STOW-RS with a Content-Type other than multipart/related: 415 Unsupported Media Type',
    async run(ctx) {
      const res = await ctx.http.request('POST', '/studies', { headers: { 'content-type': 'text/plain', accept: 'application/dicom+json' }, body: NOT_DICOM });
      expectStatus(res, 415, 'POST /studies text/plain');
    },
  },
  {
    name: '10.5.3 STOW-RS answers in application/dicom+xml when the Accept header asks for it',
    async run(ctx) {
      const again = allInstances(ctx.data.studies[0])[0]!;
      const res = await stow(ctx, '/studies', [again.bytes], 'application/dicom+xml');
      expectStatus(res, [200, 202], 'STOW with Accept application/dicom+xml');
      expectType(res, 'application/dicom+xml', 'STOW with Accept application/dicom+xml');
      expect(res.body.toString('utf8').includes('NativeDicomModel'), 'the body is not a PS3.19 NativeDicomModel');
    },
  },
];
