// DICOM wild cards (PS3.4 C.2.2.2.4: * any run, ? one character, no escape mechanism) as SQLite GLOB
// patterns. GLOB, not LIKE: GLOB is case-sensitive as C.2.2.2.1 requires for every VR but PN (PN
// columns hold folded values and folded keys), and LIKE is case-insensitive for ASCII unless a
// connection-wide pragma says otherwise. The pattern is always a bound parameter.

/** The GLOB pattern: '*' and '?' keep their meaning; '[', GLOB's only other special character, is escaped. */
export function globPattern(wildcard: string): string {
  return wildcard.replace(/\[/g, '[[]');
}

/** The literal text before the first wild card: every match starts with it. */
export function literalPrefix(wildcard: string): string {
  const i = wildcard.search(/[*?]/);
  return i === -1 ? wildcard : wildcard.slice(0, i);
}

/**
 * The smallest string greater than every string starting with `prefix`, in SQLite's BINARY order
 * (memcmp of UTF-8 = code point order): the prefix with its last code point incremented. With it,
 * `col >= prefix AND col < upper` is an index range scan, whatever the query planner's LIKE/GLOB
 * optimisation makes of a bound pattern. Undefined when the last code point cannot be incremented.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const cps = [...prefix];
  const last = cps.pop();
  if (last === undefined) return undefined;
  let next = last.codePointAt(0)! + 1;
  if (next > 0x10ffff) return undefined;
  if (next >= 0xd800 && next <= 0xdfff) next = 0xe000; // no code points there
  return cps.join('') + String.fromCodePoint(next);
}
