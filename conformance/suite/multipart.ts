// multipart/related (RFC 2387) as PS3.18 8.6.1.2 / 8.7.3 use it: building STOW-RS request bodies and
// splitting WADO-RS answers into parts.
import { randomBytes } from 'node:crypto';
import { mediaParam, type HttpResponse } from './http.js';

export interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** A STOW-RS body: one application/dicom part per instance (PS3.18 10.5.1.1), or parts with their own types. */
export function multipartRelated(parts: (Buffer | { contentType: string; body: Buffer })[], type = 'application/dicom'): { contentType: string; body: Buffer } {
  const boundary = `conformance-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const { contentType, body } = Buffer.isBuffer(p) ? { contentType: type, body: p } : p;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`), body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/related; type="${type}"; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

/** The parts of a multipart response; throws when the Content-Type has no boundary or the body is not multipart. */
export function parseMultipart(res: HttpResponse): Part[] {
  const contentType = String(res.headers['content-type'] ?? '');
  const boundary = mediaParam(contentType, 'boundary');
  if (!boundary) throw new Error(`not a multipart answer: Content-Type ${contentType || '(none)'}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let at = res.body.indexOf(delimiter);
  if (at === -1) throw new Error('multipart body has no boundary delimiter');
  for (;;) {
    const after = at + delimiter.length;
    if (res.body.subarray(after, after + 2).toString() === '--') return parts;
    const headerEnd = res.body.indexOf('\r\n\r\n', after);
    if (headerEnd === -1) throw new Error('multipart part without a header block');
    const next = res.body.indexOf(Buffer.from(`\r\n--${boundary}`), headerEnd + 4);
    if (next === -1) throw new Error('multipart body is not closed');
    const headers: Record<string, string> = {};
    for (const line of res.body.subarray(after, headerEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: res.body.subarray(headerEnd + 4, next) });
    at = next + 2;
  }
}
