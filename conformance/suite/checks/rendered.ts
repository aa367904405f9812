// PS3.18 10.4 rendered and thumbnail resources (Table 10.4.1-1; rendered media types 8.7.4; thumbnails from
// Supplement 203), and the WADO-URI image default (PS3.18 9: contentType absent means image/jpeg).
import { expect, expectStatus, expectType } from '../assert.js';
import type { HttpResponse } from '../http.js';
import type { Check } from '../suite.js';
import { allInstances, type Instance } from '../test-data.js';

const instancePath = (i: Instance) => `/studies/${i.study}/series/${i.series}/instances/${i.sop}`;

/** A JPEG starts with SOI and a marker (ISO 10918-1 B.1.1.3); checked without decoding it. */
function expectJpeg(res: HttpResponse, what: string): void {
  expectStatus(res, 200, what);
  expectType(res, 'image/jpeg', what);
  expect(res.body.length > 4 && res.body[0] === 0xff && res.body[1] === 0xd8 && res.body[2] === 0xff, `${what}: the body is not a JPEG`);
}

export const renderedChecks: Check[] = [
  {
    name: '10.4 WADO-RS rendered instance as image/jpeg',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectJpeg(await ctx.http.get(`${instancePath(i)}/rendered`, { accept: 'image/jpeg' }), 'rendered instance');
    },
  },
  {
    name: '10.4 WADO-RS rendered frame of a multi-frame instance as image/jpeg',
    async run(ctx) {
      const mf = allInstances(ctx.data.studies[2])[0]!;
      expectJpeg(await ctx.http.get(`${instancePath(mf)}/frames/2/rendered`, { accept: 'image/jpeg' }), 'rendered frame 2');
    },
  },
  {
    name: '10.4 WADO-RS rendered instance with quality=10 and viewport: a smaller JPEG than the default',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      const full = await ctx.http.get(`${instancePath(i)}/rendered`, { accept: 'image/jpeg' });
      const small = await ctx.http.get(`${instancePath(i)}/rendered?quality=10&viewport=32,32`, { accept: 'image/jpeg' });
      expectJpeg(small, 'quality=10&viewport=32,32');
      expect(small.body.length < full.body.length, `quality=10&viewport=32,32 (${small.body.length} bytes) is not smaller than the default (${full.body.length} bytes)`);
    },
  },
  {
    name: '10.4 WADO-RS thumbnail of an instance and of a series as image/jpeg',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectJpeg(await ctx.http.get(`${instancePath(i)}/thumbnail`, { accept: 'image/jpeg' }), 'instance thumbnail');
      expectJpeg(await ctx.http.get(`/studies/${i.study}/series/${i.series}/thumbnail`, { accept: 'image/jpeg' }), 'series thumbnail');
    },
  },
  {
    name: '9 WADO-URI without contentType: image/jpeg',
    async run(ctx) {
      const i = allInstances(ctx.data.studies[0])[0]!;
      expectJpeg(await ctx.http.get(`${ctx.wadoUri}?requestType=WADO&studyUID=${i.study}&seriesUID=${i.series}&objectUID=${i.sop}`), 'WADO-URI default');
    },
  },
];
