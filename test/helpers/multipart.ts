// Builds STOW request bodies the way real clients do (INTEROP.md): Orthanc (unquoted 73-char boundary,
// per-part Content-Length), dicomweb-client (quoted boundary, CRLF before the first boundary).
import { randomBytes } from 'node:crypto';

export interface BodyOptions {
  boundary?: string;
  quoteBoundary?: boolean;
  quoteType?: boolean;
  /** Bytes before the first boundary (dicomweb-client sends CRLF). */
  preamble?: string;
  partHeaders?: (part: Buffer, index: number) => Record<string, string>;
  /** Leave the closing delimiter out (a truncated upload). */
  omitClose?: boolean;
  type?: string;
}

export function multipartBody(parts: Buffer[], o: BodyOptions = {}): { contentType: string; body: Buffer } {
  const boundary = o.boundary ?? `dv-${randomBytes(12).toString('hex')}`;
  const type = o.type ?? 'application/dicom';
  const q = (v: string, quote: boolean | undefined) => (quote ? `"${v}"` : v);
  const contentType = `multipart/related; type=${q(type, o.quoteType ?? true)}; boundary=${q(boundary, o.quoteBoundary)}`;
  const chunks: Buffer[] = [Buffer.from(o.preamble ?? '')];
  parts.forEach((part, i) => {
    const headers = o.partHeaders?.(part, i) ?? { 'Content-Type': 'application/dicom' };
    const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    chunks.push(Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\n${head}\r\n`), part);
  });
  if (!o.omitClose) chunks.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return { contentType, body: Buffer.concat(chunks) };
}
