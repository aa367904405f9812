// RFC 8785 JSON Canonicalization Scheme (JCS): the bytes the audit hash chain and the checkpoint signatures
// cover. Object members sorted by their names' UTF-16 code units (3.2.3), no whitespace, strings and numbers
// as ECMAScript's JSON.stringify writes them (3.2.2.2, 3.2.2.3: Number::toString). Input must be I-JSON
// (RFC 7493): finite numbers, strings without lone surrogates; anything else throws rather than hashing a
// value that another implementation would serialise differently.
//
// Written here rather than taken from npm (`canonicalize`, `json-canonicalize`): it is 40 lines and the
// records are our own plain objects.

export class CanonicalJsonError extends Error {
  override name = 'CanonicalJsonError';
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The JCS text of `value` (plain objects, arrays, strings, finite numbers, booleans, null). */
export function canonicalJson(value: unknown): string {
  return serialize(value, '$');
}

function serialize(value: unknown, where: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // Number::toString, as JSON.stringify; -0 becomes "0" (RFC 8785 3.2.2.3).
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`${where}: ${value} is not an I-JSON number`);
      return JSON.stringify(value);
    case 'string':
      if (LONE_SURROGATE.test(value)) throw new CanonicalJsonError(`${where}: a string holds a lone surrogate`);
      return JSON.stringify(value);
    case 'object':
      if (Array.isArray(value)) return `[${value.map((v, i) => serialize(v, `${where}[${i}]`)).join(',')}]`;
      return serializeObject(value as Record<string, unknown>, where);
    default:
      throw new CanonicalJsonError(`${where}: a ${typeof value} has no JSON form`);
  }
}

function serializeObject(object: Record<string, unknown>, where: string): string {
  const proto = Object.getPrototypeOf(object) as unknown;
  if (proto !== Object.prototype && proto !== null) throw new CanonicalJsonError(`${where}: not a plain object`);
  // Array.prototype.sort without a comparator compares UTF-16 code units: the order RFC 8785 3.2.3 asks for.
  const names = Object.keys(object)
    .filter((k) => object[k] !== undefined)
    .sort();
  const members = names.map((k) => {
    if (LONE_SURROGATE.test(k)) throw new CanonicalJsonError(`${where}: a member name holds a lone surrogate`);
    return `${JSON.stringify(k)}:${serialize(object[k], `${where}.${k}`)}`;
  });
  return `{${members.join(',')}}`;
}
