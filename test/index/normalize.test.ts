import t from 'tap';
import { matchValue, wildcardRegExp } from '../../src/index/query/match.js';
import {
  dateTimeBounds,
  foldPersonName,
  fuzzyQueryWords,
  normalizeText,
  parseIntegerString,
  personNameGroups,
  personNameWords,
  storedDate,
  storedDateTime,
  storedTime,
  timeBounds,
} from '../../src/index/query/normalize.js';
import { globPattern, literalPrefix, prefixUpperBound } from '../../src/index/sqlite/sql-patterns.js';

t.test('person names are folded: case, Latin accents, padding', (t) => {
  t.equal(foldPersonName('Müller^Jürgen'), 'MULLER^JURGEN');
  t.equal(foldPersonName('Mu\u0308ller'), 'MULLER', 'decomposed input');
  t.equal(foldPersonName('Ñúñez^Inés^^^'), 'NUNEZ^INES', 'trailing empty components');
  t.equal(foldPersonName(' Doe ^John  '), 'DOE ^JOHN');
  t.equal(foldPersonName('やまだ'), 'やまだ', 'voiced kana kept (U+3099 is not a Latin accent)');
  t.equal(foldPersonName('홍^길동'), '홍^길동', 'Hangul syllables recomposed');
  t.equal(foldPersonName('straße'), 'STRASSE');
  t.same(personNameGroups({ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }), ['YAMADA^TAROU', '山田^太郎', 'やまだ^たろう']);
  t.same(personNameGroups('Doe^John==ドウ'), ['DOE^JOHN', undefined, 'ドウ'], 'string form');
  t.same(personNameGroups(undefined), []);
  t.same(personNameWords(['GARCIA-LOPEZ^MARIA JOSE', '山田^太郎']), ['GARCIA', 'LOPEZ', 'MARIA', 'JOSE', '山田', '太郎']);
  t.same(fuzzyQueryWords('jo, doe^doe'), ['JO', 'DOE']);
  t.end();
});

t.test('text, integers, dates and times', (t) => {
  t.equal(normalizeText('  CT '), 'CT');
  t.equal(normalizeText(''), undefined);
  t.equal(normalizeText(42), '42');
  t.equal(normalizeText(null), undefined);
  t.same([parseIntegerString('+007'), parseIntegerString(' 3 '), parseIntegerString(5), parseIntegerString('1.0'), parseIntegerString(1.5)], [7, 3, 5, undefined, undefined]);
  t.same(timeBounds('07'), { lower: '070000.000000', upper: '075959.999999' });
  t.same(timeBounds('235960'), { lower: '235960.000000', upper: '235960.999999' }, 'leap second');
  t.equal(timeBounds('2400'), undefined);
  t.same(dateTimeBounds('2024'), { lower: '20240101000000.000000', upper: '20241231235959.999999' });
  t.same(dateTimeBounds('19990228235959.1+1400'), { lower: '19990228235959.100000', upper: '19990228235959.199999' });
  t.equal(dateTimeBounds('20240230'), undefined);
  t.equal(dateTimeBounds('2024+1500'), undefined);
  t.equal(storedDate('2020.01.15'), '20200115', 'ACR-NEMA date');
  t.equal(storedDate('20201315'), undefined);
  t.equal(storedTime('10:15:30'), '101530.000000', 'ACR-NEMA time');
  t.equal(storedTime('1015 '), '101500.000000');
  t.equal(storedDateTime('20200115101512-0500'), '20200115101512.000000');
  t.end();
});

t.test('wild cards (PS3.4 C.2.2.2.4) as regular expressions and GLOB patterns', (t) => {
  t.ok(wildcardRegExp('GAR*').test('GARCIA'));
  t.ok(wildcardRegExp('G?R*').test('GÜRCAN'), '? is one character, not one byte');
  t.ok(wildcardRegExp('*').test('a\nb'), '* spans line breaks');
  t.notOk(wildcardRegExp('a.c').test('abc'), 'regular expression characters are literal');
  t.ok(wildcardRegExp('(a)[b]{c}|$^+\\-/').test('(a)[b]{c}|$^+\\-/'));
  t.notOk(wildcardRegExp('GAR*').test('garcia'), 'case-sensitive');
  t.equal(globPattern('*[x]?'), '*[[]x]?');
  t.equal(literalPrefix('AB?C*'), 'AB');
  t.equal(literalPrefix('*AB'), '');
  t.equal(literalPrefix('ABC'), 'ABC');
  t.equal(prefixUpperBound('GAR'), 'GAS');
  t.equal(prefixUpperBound('A\u{10FFFF}'), undefined);
  t.equal(prefixUpperBound('A\uD7FF'), 'A\uE000', 'skips the surrogate range');
  t.equal(prefixUpperBound('山'), '屲');
  t.equal(prefixUpperBound(''), undefined);
  t.end();
});

t.test('matchValue per VR (PS3.4 C.2.2.2.1)', (t) => {
  t.ok(matchValue('PN', { kind: 'single', value: 'doe^john' }, { Alphabetic: 'DOE^JOHN' }));
  t.notOk(matchValue('LO', { kind: 'single', value: 'doe' }, 'DOE'), 'other VRs are case-sensitive');
  t.ok(matchValue('IS', { kind: 'single', value: '7' }, '007'));
  t.ok(matchValue('TM', { kind: 'range', from: '100000.000000' }, '1000'));
  t.notOk(matchValue('DA', { kind: 'range', to: '20200101' }, 'garbage'), 'an unparsable stored date never matches');
  t.notOk(matchValue('CS', { kind: 'single', value: 'CT' }, null), 'an empty value in a multi-valued attribute');
  t.ok(matchValue('DA', { kind: 'single', value: '20200101' }, '2020.01.01'));
  t.notOk(matchValue('PN', { kind: 'range' }, { Alphabetic: 'X' }), 'a range on a PN matches nothing');
  t.end();
});
