// PS3.18 8.9 Retrieve Capabilities and the general HTTP rules of chapter 8 (status codes of 8.5).
import { expect, expectStatus, expectType } from '../assert.js';
import type { Check } from '../suite.js';

export const generalChecks: Check[] = [
  {
    name: '8.9 Retrieve Capabilities: OPTIONS {base} answers 200 application/vnd.sun.wadl+xml by default, with Allow',
    async run(ctx) {
      const res = await ctx.http.request('OPTIONS', '');
      expectStatus(res, 200, 'OPTIONS {base}');
      expectType(res, 'application/vnd.sun.wadl+xml', 'OPTIONS {base}');
      expect(/<application[\s>]/.test(res.body.toString('utf8')), 'the body is not a WADL <application> document');
      expect(typeof res.headers.allow === 'string' && res.headers.allow.length > 0, 'no Allow header');
    },
  },
  {
    name: '8.9 Retrieve Capabilities: OPTIONS {base} with Accept application/json answers JSON',
    async run(ctx) {
      const res = await ctx.http.request('OPTIONS', '', { headers: { accept: 'application/json' } });
      expectStatus(res, 200, 'OPTIONS {base} Accept application/json');
      expectType(res, 'application/json', 'OPTIONS {base} Accept application/json');
      JSON.parse(res.body.toString('utf8'));
      expect(typeof res.headers.allow === 'string' && res.headers.allow.length > 0, 'no Allow header');
    },
  },
  {
    name: '8.5 a method the resource does not support (PUT /studies): 405 Method Not Allowed with Allow (RFC 9110 15.5.6)',
    async run(ctx) {
      const res = await ctx.http.request('PUT', '/studies', { headers: { 'content-type': 'application/dicom+json' }, body: '[]' });
      expectStatus(res, 405, 'PUT /studies');
      expect(typeof res.headers.allow === 'string' && /\bGET\b/.test(res.headers.allow), `Allow header is ${JSON.stringify(res.headers.allow)}`);
    },
  },
];
