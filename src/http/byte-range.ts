// HTTP Range requests (RFC 9110 14.1-14.4) for bulk data (PS3.18 8.7.3.3: 206 only for Range). One range only:
// `bytes=a-b`, `bytes=a-`, `bytes=-n`. A multi-range request is answered with the whole value (200), which RFC 9110
// 14.2 allows ("a server MAY ignore the Range header field"), rather than a multipart/byteranges body.

export type RangeDecision =
  /** Send everything with 200 (no Range, another unit, a syntax the server ignores, or several ranges). */
  | { kind: 'full' }
  /** Send [start, end) with 206 and `Content-Range: bytes start-(end-1)/size`. */
  | { kind: 'partial'; start: number; end: number }
  /** 416 with `Content-Range: bytes *\/size`. */
  | { kind: 'unsatisfiable' };

const SPEC = /^(\d*)-(\d*)$/;

export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return { kind: 'full' }; // unknown unit: ignored (RFC 9110 14.2)
  const specs = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return { kind: 'full' };
  const spec = SPEC.exec(specs[0]!);
  if (!spec || (spec[1] === '' && spec[2] === '')) return { kind: 'full' }; // invalid: ignored
  const [, first, last] = spec as unknown as [string, string, string];
  if (first === '') {
    // suffix range: the last n bytes
    const n = Number(last);
    if (!Number.isSafeInteger(n) || n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size };
  }
  const start = Number(first);
  if (!Number.isSafeInteger(start)) return { kind: 'unsatisfiable' };
  if (last !== '') {
    const lastByte = Number(last);
    if (!Number.isSafeInteger(lastByte) || lastByte < start) return { kind: 'full' }; // invalid: ignored
    if (start >= size) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start, end: Math.min(size, lastByte + 1) };
  }
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: size };
}
