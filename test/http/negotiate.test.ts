import t from 'tap';
import { negotiate, parseAccept, selectOffer, type Offer } from '../../src/http/negotiate.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const J2K = '1.2.840.10008.1.2.4.90';

// QIDO-RS and metadata (PS3.18 10.4.4 / 10.6.3.3): JSON is the default, XML (multipart) is required.
const JSON_OFFER: Offer = { mediaType: 'application/dicom+json' };
const XML_OFFER: Offer = { mediaType: 'multipart/related', type: 'application/dicom+xml' };
const SEARCH = [JSON_OFFER, XML_OFFER];

// Frames (PS3.18 8.7.3.3.2): uncompressed by default, as stored with transfer-syntax=*, or baseline JPEG.
const OCTET_OFFER: Offer = {
  mediaType: 'multipart/related',
  type: 'application/octet-stream',
  transferSyntaxes: ['*', EXPLICIT_LE],
  defaultTransferSyntax: EXPLICIT_LE,
};
const JPEG_OFFER: Offer = {
  mediaType: 'multipart/related',
  type: 'image/jpeg',
  transferSyntaxes: [JPEG_BASELINE],
  defaultTransferSyntax: JPEG_BASELINE,
};
const FRAMES = [OCTET_OFFER, JPEG_OFFER];

const RENDERED: Offer[] = [{ mediaType: 'image/jpeg' }, { mediaType: 'image/png' }, { mediaType: 'image/gif' }];

/** Negotiates with the header only and returns the chosen offer (or undefined = 406). */
const pick = (accept: string | undefined, offers: Offer[] = SEARCH) => negotiate(accept, undefined, offers)?.offer;

t.test('parseAccept: weights, order, invalid entries, commas in quotes', async (t) => {
  const ranges = parseAccept('text/html;q=0.2, application/dicom+json , */*;q=0, x/y;q=1.0, a/b;q=0.123');
  t.same(
    ranges.map((r) => [r.essence, r.q]),
    [
      ['text/html', 0.2],
      ['application/dicom+json', 1],
      ['*/*', 0],
      ['x/y', 1],
      ['a/b', 0.123],
    ],
  );
  t.equal(ranges[0]?.params.has('q'), false, 'q is a weight, not a parameter');

  // invalid weights and invalid ranges are dropped; their neighbours survive (PS3.18 8.7.7)
  const valid = parseAccept('a/b;q=2, c/d;q=0.1234, e/f;q=x, g/h;Q=0.5, junk, */json, i/j\tjunk, k/l');
  t.same(
    valid.map((r) => [r.essence, r.q]),
    [
      ['g/h', 0.5],
      ['k/l', 1],
    ],
  );

  const quoted = parseAccept('multipart/related; type="a/b, c/d"; x="q\\",", e/f');
  t.same(
    quoted.map((r) => r.essence),
    ['multipart/related', 'e/f'],
  );
  t.equal(quoted[0]?.params.get('type'), 'a/b, c/d');
  t.same(parseAccept('a/b; x="unterminated, c/d').length, 0, 'an unterminated quote swallows the rest');
  t.same(
    parseAccept('a/b; x="q\\",y" junk, c/d').map((r) => r.essence),
    ['c/d'],
    'skipping an invalid entry honours quotes and escapes',
  );
  t.same(
    parseAccept(' , ,a/b,, c/d ,').map((r) => r.essence),
    ['a/b', 'c/d'],
    'empty list elements are skipped (RFC 9110 5.6.1)',
  );
  t.same(parseAccept(''), []);
});

t.test('no Accept header, or an empty one: the default (first) offer', async (t) => {
  t.same(negotiate(undefined, undefined, SEARCH), { offer: JSON_OFFER, index: 0, transferSyntax: undefined, source: 'default' });
  t.same(negotiate('  ', undefined, SEARCH), { offer: JSON_OFFER, index: 0, transferSyntax: undefined, source: 'default' });
  // dicomweb-client asks for frames without Accept: the default, uncompressed
  t.same(negotiate(undefined, undefined, FRAMES), { offer: OCTET_OFFER, index: 0, transferSyntax: EXPLICIT_LE, source: 'default' });
  t.equal(negotiate(undefined, undefined, []), undefined);
});

t.test('*/* picks the default offer (PS3.18 8.7.7)', async (t) => {
  t.equal(pick('*/*'), JSON_OFFER);
  t.equal(pick('*/*;q=0.8'), JSON_OFFER);
  t.same(negotiate('*/*', undefined, FRAMES), { offer: OCTET_OFFER, index: 0, transferSyntax: EXPLICIT_LE, source: 'header' });
});

t.test('QIDO: JSON, XML, quoted and unquoted type= (PROTOCOL.md 3.2)', async (t) => {
  t.equal(pick('application/dicom+json'), JSON_OFFER);
  t.equal(pick('Application/DICOM+JSON'), JSON_OFFER);
  t.equal(pick('multipart/related; type="application/dicom+xml"'), XML_OFFER);
  t.equal(pick('multipart/related; type=application/dicom+xml'), XML_OFFER);
  t.equal(pick('multipart/related;type="Application/Dicom+XML"'), XML_OFFER);
  t.equal(pick('multipart/related'), XML_OFFER, 'multipart/related without type accepts any root type');
  t.equal(pick('application/dicom+xml'), undefined, 'single-part XML is not a search representation');
  t.equal(pick('application/json'), undefined);
  t.equal(pick('image/jpeg'), undefined);
  t.equal(pick('multipart/related; type="application/dicom"'), undefined);
  t.equal(pick('multipart/related; type=nonsense'), undefined, 'an invalid type parameter matches nothing');
});

t.test('Accept: multipart/* on QIDO gives XML, not 406 (PROTOCOL.md 3.15)', async (t) => {
  t.equal(pick('multipart/*'), XML_OFFER);
  t.equal(pick('application/*'), JSON_OFFER);
  t.equal(pick('text/*'), undefined);
});

t.test('multi-value Accept picks a supported entry, never 406 (PROTOCOL.md 3.3, OHIF metadata)', async (t) => {
  // what OHIF sends for metadata when a multipart accept header is configured
  t.equal(pick('application/dicom+json, multipart/related; type="application/octet-stream"; transfer-syntax=*'), JSON_OFFER);
  t.equal(pick('multipart/related; type=application/octet-stream; transfer-syntax=*, application/dicom+json'), JSON_OFFER);
  t.equal(pick('application/dicom+json, multipart/related; type="application/dicom"'), JSON_OFFER);
  t.equal(pick('text/html, garbage, application/dicom+json;q=0.9, image/*'), JSON_OFFER);
  t.equal(pick('application/dicom+json;q=bad, application/dicom+json'), JSON_OFFER, 'the valid duplicate counts');
});

t.test('q-values: highest wins, q=0 excludes', async (t) => {
  t.equal(pick('application/dicom+json;q=0.5, multipart/related; type="application/dicom+xml"'), XML_OFFER);
  t.equal(pick('application/dicom+json, multipart/related; type="application/dicom+xml";q=0.5'), JSON_OFFER);
  t.equal(pick('application/dicom+json;q=0, */*'), XML_OFFER, 'q=0 excludes JSON even under */*');
  t.equal(pick('application/dicom+json;q=0'), undefined);
  t.equal(pick('*/*;q=0'), undefined);
  t.equal(pick('multipart/*;q=0, */*'), JSON_OFFER);
  t.equal(pick('*/*;q=0.1, application/dicom+json;q=0.2, multipart/*;q=0.3'), XML_OFFER);
});

t.test('ties: the more specific range, then the client order, then the server order', async (t) => {
  t.equal(pick('*/*, multipart/related; type="application/dicom+xml"'), XML_OFFER, 'named beats wildcard');
  t.equal(pick('*/*, application/dicom+json'), JSON_OFFER);
  t.equal(pick('multipart/related; type="application/dicom+xml", application/dicom+json'), XML_OFFER, 'client order');
  t.equal(pick('application/dicom+json, multipart/related; type="application/dicom+xml"'), JSON_OFFER, 'client order');
  t.equal(pick('multipart/*, application/*'), XML_OFFER, 'same q and level: the client order');
  t.equal(pick('application/*, multipart/*'), JSON_OFFER, 'same q and level: the client order');
  t.equal(pick('*/*', [XML_OFFER, JSON_OFFER]), XML_OFFER, 'one range for all: the server order');
  // the most specific range decides an offer's weight, whatever its position
  t.equal(pick('multipart/related;q=0.1, */*, application/dicom+json;q=0.5'), JSON_OFFER);
  t.equal(pick('multipart/related; type="application/dicom+xml";q=0.4, multipart/*;q=1, application/dicom+json;q=0.5'), JSON_OFFER);
});

t.test('frames: transfer-syntax quoted or not, * and the default (PROTOCOL.md 3.4, OHIF, dicomweb-client)', async (t) => {
  const ts = (accept: string) => {
    const r = negotiate(accept, undefined, FRAMES);
    return r && [r.offer, r.transferSyntax];
  };
  // OHIF, omitQuotationForMultipartRequest
  t.same(ts('multipart/related; type=application/octet-stream; transfer-syntax=*'), [OCTET_OFFER, '*']);
  t.same(ts('multipart/related; type="application/octet-stream"; transfer-syntax="*"'), [OCTET_OFFER, '*']);
  // dicomweb-client: no transfer-syntax -> the default for octet-stream, Explicit VR Little Endian
  t.same(ts('multipart/related; type="application/octet-stream"'), [OCTET_OFFER, EXPLICIT_LE]);
  t.same(ts(`multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT_LE}`), [OCTET_OFFER, EXPLICIT_LE]);
  t.same(ts(`multipart/related; type="application/octet-stream"; transfer-syntax="${EXPLICIT_LE}"`), [OCTET_OFFER, EXPLICIT_LE]);
  t.same(ts(`multipart/related; type="image/jpeg"; transfer-syntax=${JPEG_BASELINE}`), [JPEG_OFFER, JPEG_BASELINE]);
  t.same(ts('multipart/related; type="image/jpeg"'), [JPEG_OFFER, JPEG_BASELINE]);
  t.same(ts('multipart/related; type="image/jpeg"; transfer-syntax=*'), [JPEG_OFFER, JPEG_BASELINE], '* on an offer without "as stored": its first');
  t.same(ts('multipart/related; type="image/*"'), [JPEG_OFFER, JPEG_BASELINE], 'a wildcard root type');
  t.equal(ts(`multipart/related; type="application/octet-stream"; transfer-syntax=${J2K}`), undefined, 'cannot produce -> 406');
  t.equal(ts(`multipart/related; type="image/jpeg"; transfer-syntax=${EXPLICIT_LE}`), undefined);
  t.same(
    ts(`multipart/related; type="application/octet-stream"; transfer-syntax=${J2K}, multipart/related; type="image/jpeg"`),
    [JPEG_OFFER, JPEG_BASELINE],
    'an unsupported entry is skipped, a supported one chosen',
  );
  t.same(
    ts(`multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT_LE}, multipart/related; type="application/octet-stream"; transfer-syntax=*;q=0.5`),
    [OCTET_OFFER, EXPLICIT_LE],
    'equally specific ranges for one offer: the higher q decides the transfer syntax',
  );
  t.same(
    ts(`multipart/related; type="application/octet-stream"; transfer-syntax=*;q=0.5, multipart/related; type="application/octet-stream"; transfer-syntax=${EXPLICIT_LE}`),
    [OCTET_OFFER, EXPLICIT_LE],
  );
  t.same(
    ts('multipart/related; type="application/octet-stream", multipart/related; type="application/octet-stream"; transfer-syntax=*'),
    [OCTET_OFFER, '*'],
    'the range naming a transfer syntax is more specific',
  );
  t.equal(ts('multipart/related; type="application/dicom"'), undefined);
  t.equal(ts('application/octet-stream'), undefined, 'single part is not offered here');
  const none: Offer = { mediaType: 'application/dicom', transferSyntaxes: [] };
  t.equal(negotiate('application/dicom; transfer-syntax=*', undefined, [none]), undefined, 'no transfer syntax to give for *');
  t.same(negotiate('application/dicom', undefined, [none])?.transferSyntax, undefined);
});

t.test('transfer-syntax on an offer without transfer syntaxes is an ignored parameter (PS3.18 8.7.7)', async (t) => {
  t.same(negotiate('application/dicom+json; transfer-syntax=1.2.3; charset=utf-8', undefined, SEARCH), {
    offer: JSON_OFFER,
    index: 0,
    transferSyntax: undefined,
    source: 'header',
  });
});

t.test('rendered: image/* gives the default, a named type wins', async (t) => {
  t.equal(pick('image/*', RENDERED), RENDERED[0]);
  t.equal(pick('image/png', RENDERED), RENDERED[1]);
  t.equal(pick('image/*;q=0.5, image/gif', RENDERED), RENDERED[2]);
  t.equal(pick('image/jpeg;q=0, image/*', RENDERED), RENDERED[1]);
  t.equal(pick('application/dicom', RENDERED), undefined);
});

t.test('accept query parameter comes first, then the header (PS3.18 8.3.3.1, 8.7.8.1)', async (t) => {
  const xmlHeader = 'multipart/related; type="application/dicom+xml"';
  t.same(negotiate(xmlHeader, 'application/dicom+json', SEARCH), { offer: JSON_OFFER, index: 0, transferSyntax: undefined, source: 'query' });
  t.equal(negotiate(undefined, 'multipart/related; type="application/dicom+xml"', SEARCH)?.offer, XML_OFFER);
  t.equal(negotiate(undefined, ['image/png', 'multipart/related;type=application/dicom+xml'], SEARCH)?.offer, XML_OFFER, 'repeated parameter');
  t.equal(negotiate(undefined, 'image/png,multipart/related;type=application/dicom+xml', SEARCH)?.offer, XML_OFFER, 'comma list');
  t.equal(negotiate(undefined, 'application/dicom+json;q=0.5,multipart/related;type=application/dicom+xml', SEARCH)?.offer, XML_OFFER);
  // nothing supported in the query: the header decides
  t.same(negotiate(xmlHeader, 'image/png', SEARCH), { offer: XML_OFFER, index: 1, transferSyntax: undefined, source: 'header' });
  t.equal(negotiate('image/png', 'image/gif', SEARCH), undefined);
  // wildcards are not allowed in the query parameter: ignored
  t.same(negotiate(xmlHeader, '*/*', SEARCH)?.source, 'header');
  t.same(negotiate(undefined, 'multipart/*', SEARCH)?.source, 'default');
  t.equal(negotiate(undefined, 'multipart/*', SEARCH)?.offer, JSON_OFFER);
  t.equal(negotiate(undefined, '', SEARCH)?.source, 'default');
  // OHIF thumbnailDirect: <img src=".../thumbnail?accept=image/jpeg">, with the browser's own Accept
  t.same(negotiate('image/avif,image/webp,image/png,*/*;q=0.8', 'image/jpeg', RENDERED)?.offer, RENDERED[0]);
  t.same(negotiate(undefined, `multipart/related; type="image/jpeg"; transfer-syntax=${JPEG_BASELINE}`, FRAMES)?.transferSyntax, JPEG_BASELINE);
});

t.test('the chosen offer is the caller object, with extra fields kept', async (t) => {
  interface RouteOffer extends Offer {
    render: string;
  }
  const offers: RouteOffer[] = [
    { mediaType: 'image/jpeg', render: 'jpeg' },
    { mediaType: 'image/png', render: 'png' },
  ];
  const r = negotiate('image/png', undefined, offers);
  t.equal(r?.offer, offers[1]);
  t.equal(r?.offer.render, 'png');
  t.equal(r?.index, 1);
  t.equal(selectOffer(parseAccept('image/png'), offers)?.index, 1);
  t.equal(selectOffer([], offers), undefined);
});
