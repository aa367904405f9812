// RFC 8785 JSON Canonicalization Scheme (JCS): the bytes the audit hash chain and the checkpoint signatures
// cover. Object members sorted by their names' UTF-16 code units (3.2.3), no whitespace, strings and numbers
// as ECMAScript's JSON.stringify writes them (3.2.2.2, 3.2.2.3: Number::toString). Input must be I-JSON
// (RFC 7493): finite numbers, strings without lone surrogates; anything else throws rather than hashing a
// value that another implementation would serialise differently.
//
// Written here rather than taken from npm (`canonicalize`, `json-canonicalize`): it is short and the records
// are our own plain objects. It runs once per audit record, i.e. on every request, hence the shortcut through
// JSON.stringify for records built in order (audit-record.ts does), String#isWellFormed rather than a regular
// expression, and the path of a refused value put together only while the error unwinds (bench/README.md,
// "The audit trail: what it costs").

export class CanonicalJsonError extends Error {
  override name = 'CanonicalJsonError';

  constructor(
    readonly reason: string,
    /** Where, from the innermost value out ('.x', '[2]'); the message reads it outermost first. */
    readonly steps: string[] = [],
  ) {
    super(`$${steps.toReversed().join('')}: ${reason}`);
  }

  /** The same error one level further out. */
  within(step: string): CanonicalJsonError {
    return new CanonicalJsonError(this.reason, [...this.steps, step]);
  }
}

/** The JCS text of `value` (plain objects, arrays, strings, finite numbers, booleans, null). */
export function canonicalJson(value: unknown): string {
  // JSON.stringify writes exactly the JCS text of a value whose members are in order already and that holds
  // only I-JSON: checking that takes a walk without allocation, and the native serialiser is several times
  // faster than serialize(). Anything else (members to sort, values to refuse) takes the general path.
  return isInCanonicalForm(value) ? JSON.stringify(value) : serialize(value);
}

/** True when JSON.stringify(value) is its JCS text (false: not necessarily wrong, only not this shortcut). */
function isInCanonicalForm(value: unknown): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'string':
      return value.isWellFormed();
    case 'object': {
      if (Array.isArray(value)) {
        for (const v of value) if (v === undefined || !isInCanonicalForm(v)) return false;
        return true;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return false;
      const object = value as Record<string, unknown>;
      let previous: string | undefined;
      for (const name in object) {
        if (previous !== undefined && previous > name) return false;
        if (!name.isWellFormed()) return false;
        const member = object[name];
        // JSON.stringify leaves undefined members out, as serialize() does; it would drop a function silently.
        if (member !== undefined && !isInCanonicalForm(member)) return false;
        previous = name;
      }
      return true;
    }
    default:
      return false;
  }
}

function serialize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // Number::toString, as JSON.stringify; -0 becomes "0" (RFC 8785 3.2.2.3).
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`${value} is not an I-JSON number`);
      return JSON.stringify(value);
    case 'string':
      return quote(value);
    case 'object':
      return Array.isArray(value) ? serializeArray(value) : serializeObject(value as Record<string, unknown>);
    default:
      throw new CanonicalJsonError(`a ${typeof value} has no JSON form`);
  }
}

function quote(text: string): string {
  if (!text.isWellFormed()) throw new CanonicalJsonError('a string holds a lone surrogate');
  return JSON.stringify(text);
}

function serializeArray(values: unknown[]): string {
  let out = '[';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    try {
      out += serialize(values[i]);
    } catch (e) {
      throw e instanceof CanonicalJsonError ? e.within(`[${i}]`) : e;
    }
  }
  return `${out}]`;
}

function serializeObject(object: Record<string, unknown>): string {
  const proto = Object.getPrototypeOf(object) as unknown;
  if (proto !== Object.prototype && proto !== null) throw new CanonicalJsonError('not a plain object');
  // RFC 8785 3.2.3 orders members by UTF-16 code units: what `<` on strings and a comparator-less sort compare.
  // The audit records are built in that order already (audit-record.ts): checking costs less than sorting.
  const names = Object.keys(object);
  if (!inOrder(names)) names.sort();
  let out = '{';
  for (const name of names) {
    const member = object[name];
    if (member === undefined) continue;
    if (out.length > 1) out += ',';
    try {
      if (!name.isWellFormed()) throw new CanonicalJsonError('a member name holds a lone surrogate');
      out += `${JSON.stringify(name)}:${serialize(member)}`;
    } catch (e) {
      throw e instanceof CanonicalJsonError ? e.within(`.${name}`) : e;
    }
  }
  return `${out}}`;
}

function inOrder(names: string[]): boolean {
  for (let i = 1; i < names.length; i++) if (names[i - 1]! > names[i]!) return false;
  return true;
}
