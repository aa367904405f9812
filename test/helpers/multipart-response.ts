// Splits a multipart/related response body (RFC 2046 5.1) into parts, independently of src/http/multipart.ts,
// so retrieve tests do not check the server's writer with the server's own reader. Strict: a body that does
// not start with the first delimiter or lacks the close delimiter fails the test.

export interface ResponsePart {
  /** Header names lowercased. */
  headers: Record<string, string>;
  body: Buffer;
}

/** The boundary parameter of a multipart Content-Type (quoted or not). */
export function boundaryOf(contentType: string): string {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  return (m[1] ?? m[2])!;
}

export function splitMultipart(contentType: string, body: Buffer): ResponsePart[] {
  const boundary = boundaryOf(contentType);
  // With a CRLF in front, every delimiter (the first included) is CRLF "--" boundary.
  const data = Buffer.concat([Buffer.from('\r\n'), body]);
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  if (data.indexOf(delimiter) !== 0) throw new Error('body does not start with the first boundary');
  const parts: ResponsePart[] = [];
  let at = delimiter.length;
  for (;;) {
    if (data.subarray(at, at + 2).toString('latin1') === '--') {
      if (data.subarray(at + 2).toString('latin1') !== '\r\n') throw new Error('unexpected bytes after the close delimiter');
      return parts;
    }
    if (data.subarray(at, at + 2).toString('latin1') !== '\r\n') throw new Error('delimiter not followed by CRLF');
    const headEnd = data.indexOf('\r\n\r\n', at + 2, 'latin1');
    if (headEnd < 0) throw new Error('part without a header end');
    const headers: Record<string, string> = {};
    const head = data.subarray(at + 2, headEnd).toString('latin1');
    for (const line of head === '' ? [] : head.split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const next = data.indexOf(delimiter, headEnd + 4);
    if (next < 0) throw new Error('no close delimiter');
    parts.push({ headers, body: data.subarray(headEnd + 4, next) });
    at = next + delimiter.length;
  }
}
