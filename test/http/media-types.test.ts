import t from 'tap';
import { AppError } from '../../src/errors.js';
import { formatMediaType, isToken, MediaType, parseMediaType, scanMediaType } from '../../src/http/media-types.js';

const paramsOf = (header: string) => Object.fromEntries(parseMediaType(header).params);

t.test('a plain media type', async (t) => {
  const m = parseMediaType('application/dicom');
  t.equal(m.type, 'application');
  t.equal(m.subtype, 'dicom');
  t.equal(m.essence, 'application/dicom');
  t.equal(m.params.size, 0);
});

t.test('type, subtype and parameter names are case-insensitive; values keep their case', async (t) => {
  const m = parseMediaType('Multipart/Related; Type="Application/DICOM"; BOUNDARY=AbC-dEf');
  t.equal(m.type, 'multipart');
  t.equal(m.subtype, 'related');
  t.equal(m.essence, 'multipart/related');
  t.same(Object.fromEntries(m.params), { type: 'Application/DICOM', boundary: 'AbC-dEf' });
});

t.test('quoted and unquoted type= give the same value (PROTOCOL.md 3.2)', async (t) => {
  t.same(paramsOf('multipart/related; type="application/dicom"; boundary=x'), { type: 'application/dicom', boundary: 'x' });
  t.same(paramsOf('multipart/related; type=application/dicom; boundary=x'), { type: 'application/dicom', boundary: 'x' });
  t.same(paramsOf('multipart/related; type=application/dicom+xml'), { type: 'application/dicom+xml' });
  t.same(paramsOf('multipart/related; boundary="x"'), { boundary: 'x' });
});

t.test('parameters in any order give the same map', async (t) => {
  const a = parseMediaType('multipart/related; type="application/dicom"; boundary=b1; start="<x>"');
  const b = parseMediaType('multipart/related;start="<x>";boundary=b1;type=application/dicom');
  t.same(Object.fromEntries(a.params), Object.fromEntries(b.params));
  t.equal(a.params.get('start'), '<x>');
});

t.test('quoted-string: escapes, separators and obs-text inside quotes', async (t) => {
  t.equal(parseMediaType('a/b; x="q\\"uote\\\\d"').params.get('x'), 'q"uote\\d');
  t.equal(parseMediaType('a/b; x="a;b,c=d e\tf"').params.get('x'), 'a;b,c=d e\tf');
  t.equal(parseMediaType('a/b; x=""').params.get('x'), '');
  t.equal(parseMediaType('a/b; x="caf\u00e9"').params.get('x'), 'caf\u00e9');
  t.equal(parseMediaType('a/b; x="tab\\\there"').params.get('x'), 'tab\there', 'escaped HTAB');
  t.equal(parseMediaType('a/b; x="\\\u00e9\\ "').params.get('x'), '\u00e9 ', 'escaped obs-text and SP');
});

t.test('whitespace is accepted where RFC 9110 has OWS', async (t) => {
  t.same(paramsOf(' \ta/b \t; \tx=1 ;y=2\t'), { x: '1', y: '2' });
  t.equal(parseMediaType('application/dicom\t').essence, 'application/dicom');
  t.equal(parseMediaType('application/dicom ; charset=utf-8').params.get('charset'), 'utf-8');
});

t.test('empty parameters (";;", trailing ";") are allowed by RFC 9110', async (t) => {
  t.same(paramsOf('a/b;;x=1;'), { x: '1' });
  t.same(paramsOf('a/b; ; x=1 ; '), { x: '1' });
});

t.test('a repeated parameter with the same value is accepted', async (t) => {
  t.same(paramsOf('multipart/related; boundary=x; boundary="x"'), { boundary: 'x' });
});

// The CVE-2025-32442 / CVE-2026-25223 class: anything that is not exactly one media type is refused.
const rejected: Array<[string, string]> = [
  ['', 'empty'],
  ['   ', 'whitespace only'],
  ['application', 'no slash'],
  ['application/', 'no subtype'],
  ['/dicom', 'no type'],
  ['application /dicom', 'space before slash'],
  ['application/ dicom', 'space after slash'],
  ['application\t/dicom', 'tab before slash'],
  ['appli\tcation/dicom', 'tab inside the type'],
  ['application/dicom\tjunk', 'tab then junk after the subtype (CVE-2026-25223)'],
  ['application/dicom junk', 'space then junk'],
  ['application/dicom;x', 'parameter without value'],
  ['application/dicom; x =1', 'space before ='],
  ['application/dicom; x= 1', 'space after ='],
  ['application/dicom; x=', 'empty value'],
  ['application/dicom; =1', 'empty name'],
  ['application/dicom; x="unterminated', 'unterminated quoted-string'],
  ['application/dicom; x="a"b', 'junk after a quoted-string'],
  ['application/dicom; x=a b', 'space inside an unquoted value'],
  ['application/dicom; x="a\u0000b"', 'NUL inside quotes'],
  ['application/dicom; x="a\\\u0001"', 'escaped control character'],
  ['application/dicom; x="a\\', 'backslash at the end'],
  ['application/dicom\u0000', 'NUL after the subtype'],
  ['application/dicom, application/json', 'a list'],
  ['application/dicom; x=1; x=2', 'conflicting duplicate'],
  ['application/dicom; X=1; x=2', 'conflicting duplicate, different case'],
  ['multipart/related; boundary=a; boundary="b"', 'conflicting boundaries'],
  ['*/*', 'wildcard'],
  ['application/*', 'subtype wildcard'],
  ['applicati\u00f3n/dicom', 'non-ASCII in the type'],
  ['application/dicom; x=caf\u00e9', 'non-ASCII in an unquoted value'],
  ['application/dicom; x=a:b', 'non-token character in an unquoted value'],
];

t.test('malformed media types throw UNSUPPORTED_MEDIA_TYPE (415)', async (t) => {
  for (const [header, why] of rejected) {
    t.throws(() => parseMediaType(header), { name: 'AppError', code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 }, why);
  }
  const e = (() => {
    try {
      parseMediaType('application/dicom\tjunk');
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  t.ok(e instanceof AppError);
  t.match((e as AppError).message, /^malformed media type: /);
});

t.test('a different but valid media type parses as itself (no prefix matching)', async (t) => {
  const m = parseMediaType('application/dicomjunk;');
  t.equal(m.essence, 'application/dicomjunk');
  t.not(m.essence, MediaType.DICOM);
  t.equal(parseMediaType('application/dicom+json').essence, MediaType.DICOM_JSON);
  t.not(parseMediaType('application/dicom+json').essence, MediaType.DICOM);
});

t.test('scanMediaType in range mode accepts wildcards and stops at a comma', async (t) => {
  const { mediaType, end } = scanMediaType('*/*;q=0.5, x/y', 0, { range: true, stopAtComma: true });
  t.equal(mediaType.essence, '*/*');
  t.equal(mediaType.params.get('q'), '0.5');
  t.equal(end, 9);
  t.equal(scanMediaType('image/*', 0, { range: true }).mediaType.essence, 'image/*');
  t.throws(() => scanMediaType('*/json', 0, { range: true }), { name: 'MediaTypeSyntaxError' });
});

t.test('constants are the PS3.18 8.7 media types', async (t) => {
  t.equal(MediaType.DICOM, 'application/dicom');
  t.equal(MediaType.DICOM_JSON, 'application/dicom+json');
  t.equal(MediaType.DICOM_XML, 'application/dicom+xml');
  t.equal(MediaType.OCTET_STREAM, 'application/octet-stream');
  t.equal(MediaType.MULTIPART_RELATED, 'multipart/related');
  t.equal(MediaType.JPEG, 'image/jpeg');
  t.equal(MediaType.DICOM_RLE, 'image/dicom-rle');
  t.equal(MediaType.JLS, 'image/jls');
  t.equal(MediaType.JP2, 'image/jp2');
  t.equal(MediaType.JPX, 'image/jpx');
  t.equal(MediaType.MP4, 'video/mp4');
  t.equal(MediaType.MPEG2, 'video/mpeg2');
});

t.test('isToken', async (t) => {
  t.ok(isToken('dicomvault-0123'));
  t.ok(isToken("!#$%&'*+-.^_`|~"));
  t.notOk(isToken(''));
  t.notOk(isToken('a/b'));
  t.notOk(isToken('a b'));
  t.notOk(isToken('caf\u00e9'));
});

t.test('formatMediaType quotes what is not a token and round-trips', async (t) => {
  const s = formatMediaType('multipart/related', { type: 'application/dicom', boundary: 'abc' });
  t.equal(s, 'multipart/related; type="application/dicom"; boundary=abc');
  t.equal(formatMediaType('application/dicom'), 'application/dicom');
  t.equal(
    formatMediaType('application/dicom', [['transfer-syntax', '1.2.840.10008.1.2.1']]),
    'application/dicom; transfer-syntax=1.2.840.10008.1.2.1',
  );
  const tricky = formatMediaType('a/b', { x: 'say "hi" \\ there', y: '' });
  t.equal(tricky, 'a/b; x="say \\"hi\\" \\\\ there"; y=""');
  t.same(paramsOf(tricky), { x: 'say "hi" \\ there', y: '' });
  t.throws(() => formatMediaType('a/b', { 'bad name': 'x' }), TypeError);
  t.throws(() => formatMediaType('a/b', { x: 'a\r\nInjected: 1' }), TypeError);
});
