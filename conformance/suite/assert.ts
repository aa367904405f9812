// Assertions that explain themselves: a failed check prints what was asked and what came back.
import { essence, type HttpResponse } from './http.js';

export class CheckFailure extends Error {}

export function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailure(message);
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 200 ? `${s.slice(0, 200)}…` : s;
};

export function expectEqual<T>(actual: T, expected: T, what: string): void {
  expect(show(actual) === show(expected), `${what}: expected ${show(expected)}, got ${show(actual)}`);
}

/** The same members, in any order. */
export function expectSameSet(actual: readonly string[], expected: readonly string[], what: string): void {
  expectEqual([...actual].sort(), [...expected].sort(), what);
}

/** A short description of a response for failure messages: status, type and the start of a text body. */
export function describe(res: HttpResponse): string {
  const type = String(res.headers['content-type'] ?? '(no Content-Type)');
  const text = /json|xml|text/.test(type) ? ` ${res.body.toString('utf8', 0, 160).replace(/\s+/g, ' ')}` : ` (${res.body.length} bytes)`;
  return `${res.status} ${type}${text}`;
}

export function expectStatus(res: HttpResponse, expected: number | number[], what: string): void {
  const codes = Array.isArray(expected) ? expected : [expected];
  expect(codes.includes(res.status), `${what}: expected ${codes.join(' or ')}, got ${describe(res)}`);
}

export function expectType(res: HttpResponse, type: string, what: string): void {
  expect(essence(res.headers['content-type'] as string | undefined) === type, `${what}: expected Content-Type ${type}, got ${describe(res)}`);
}
