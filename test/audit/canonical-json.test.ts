// RFC 8785 (JCS) examples: section 3.2.2 (values), 3.2.3 (member order by UTF-16 code units), Appendix B numbers.
import t from 'tap';
import { CanonicalJsonError, canonicalJson } from '../../src/audit/canonical-json.js';

t.test('RFC 8785 3.2.2: the sample object', async (t) => {
  const input = JSON.parse(
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
  ) as unknown;
  t.equal(canonicalJson(input), '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
});

t.test('RFC 8785 3.2.3: members sorted by UTF-16 code units, recursively', async (t) => {
  const input = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
  // Checked on the text: JSON.parse would put the integer-like name "1" first again.
  const names = [...canonicalJson(input).matchAll(/"([^"]*)":"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
  t.same(names, ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  t.equal(canonicalJson({ b: [{ z: 1, a: 2 }], a: { y: null, x: 'x' } }), '{"a":{"x":"x","y":null},"b":[{"a":2,"z":1}]}');
});

t.test('Appendix B numbers; -0 is 0; undefined members are left out', async (t) => {
  const cases: [number, string][] = [
    [0, '0'], [-0, '0'], [5e-324, '5e-324'], [1.7976931348623157e308, '1.7976931348623157e+308'], [9007199254740992, '9007199254740992'],
    [1e21, '1e+21'], [1e20, '100000000000000000000'], [0.000001, '0.000001'], [1e-7, '1e-7'], [295147905179352830000, '295147905179352830000'],
  ];
  for (const [n, text] of cases) t.equal(canonicalJson(n), text, String(n));
  t.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
});

t.test('non I-JSON input is refused, not serialised differently from other implementations', async (t) => {
  t.throws(() => canonicalJson(Number.NaN), CanonicalJsonError);
  t.throws(() => canonicalJson({ x: Infinity }), /\$\.x: Infinity/);
  t.throws(() => canonicalJson('a\ud800b'), /lone surrogate/);
  t.throws(() => canonicalJson({ ['\udc00']: 1 }), /lone surrogate/);
  t.throws(() => canonicalJson(new Map()), /not a plain object/);
  t.throws(() => canonicalJson({ f: () => 1 }), /function has no JSON form/);
  t.throws(() => canonicalJson(1n), /bigint/);
  t.throws(() => canonicalJson({ a: [1, { b: Number.NaN }] }), /^\$\.a\[1\]\.b: NaN is not an I-JSON number$/, 'the path of the refused value');
});

/** A deep copy with every object's members in reverse order (so canonicalJson has to sort them). */
function reversed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversed);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]));
}

t.test('values already in order (the JSON.stringify shortcut) and the same values to sort give the same text', async (t) => {
  const inOrder = {
    a: [null, true, false, 0, -0, 1e21, 5e-324, 'x\u000f\n"\\/€😀'],
    b: { c: '\u2028\u2029', d: [{ e: 1, f: undefined }] },
    'é': 'last: U+00E9 sorts after ASCII',
  };
  const expected = '{"a":[null,true,false,0,0,1e+21,5e-324,"x\\u000f\\n\\"\\\\/€😀"],"b":{"c":"\u2028\u2029","d":[{"e":1}]},"é":"last: U+00E9 sorts after ASCII"}';
  t.equal(canonicalJson(inOrder), expected);
  t.equal(canonicalJson(reversed(inOrder)), expected);
  // Integer-like names come first in property order whatever their text order: the shortcut must not apply.
  t.equal(canonicalJson({ 9: 'nine', 10: 'ten' }), '{"10":"ten","9":"nine"}');
  // What JSON.stringify would write silently is still refused in an object otherwise in order.
  t.throws(() => canonicalJson({ a: 1, b: [undefined] }), /\$\.b\[0\]: a undefined has no JSON form/);
  t.throws(() => canonicalJson({ a: 1, b: { toJSON: () => 'x' } }), /\$\.b\.toJSON: a function has no JSON form/);
  t.throws(() => canonicalJson({ a: 'ok', b: 'x\udc00' }), /\$\.b: a string holds a lone surrogate/);
  t.throws(() => canonicalJson({ a: new Date(0) }), /\$\.a: not a plain object/);
});

