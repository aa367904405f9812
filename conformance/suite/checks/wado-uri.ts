// PS3.18 9 URI Service (WADO-URI): GET {wado}?requestType=WADO&studyUID=&seriesUID=&objectUID=[&contentType=].
import { expect, expectStatus, expectType } from '../assert.js';
import type { Check, Context } from '../suite.js';
import { allInstances, randomUid, type Instance } from '../test-data.js';

/** Values as clients write them: UIDs and media types need no percent-encoding in a query (RFC 3986 3.4). */
function wado(ctx: Context, params: Record<string, string>) {
  return ctx.http.get(`${ctx.wadoUri}?${Object.entries(params).map(([k, v]) => `${k}=${v}`).join('&')}`);
}

const ids = (i: Instance) => ({ studyUID: i.study, seriesUID: i.series, objectUID: i.sop });

export const wadoUriChecks: Check[] = [
  {
    name: '9 WADO-URI requestType=WADO&contentType=application/dicom returns the stored object',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const res = await wado(ctx, { requestType: 'WADO', ...ids(i), contentType: 'application/dicom' });
      expectStatus(res, 200, 'WADO-URI application/dicom');
      expectType(res, 'application/dicom', 'WADO-URI application/dicom');
      expect(res.body.equals(i.bytes), `the answer (${res.body.length} bytes) is not byte-equal to the stored instance`);
    },
  },
  {
    name: '9 WADO-URI without objectUID: 400 Bad Request',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectStatus(await wado(ctx, { requestType: 'WADO', studyUID: i.study, seriesUID: i.series, contentType: 'application/dicom' }), 400, 'no objectUID');
    },
  },
  {
    name: '9 WADO-URI requestType other than WADO: 400 Bad Request',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectStatus(await wado(ctx, { requestType: 'NOTWADO', ...ids(i), contentType: 'application/dicom' }), 400, 'requestType=NOTWADO');
    },
  },
  {
    name: '9 WADO-URI unknown object: 404 Not Found',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectStatus(await wado(ctx, { requestType: 'WADO', ...ids(i), objectUID: randomUid(), contentType: 'application/dicom' }), 404, 'unknown objectUID');
    },
  },
];
