// Entity tags for buffered responses (RFC 9110 8.8.3) and If-None-Match (13.1.2).
//
// The tag is the SHA-256 of the identity-coded body, base64url, quoted: strong, because equal tags mean equal
// bytes. A content-coded body is other bytes, so its tag gets the coding as a suffix (`"<hash>-br"`), as a
// strong validator must differ between codings (8.8.3); a cache that stored the gzip form revalidates with
// its own tag and gets 304.

import { createHash } from 'node:crypto';

export function strongEtag(body: Buffer | string, coding?: string): string {
  const hash = createHash('sha256').update(body).digest('base64url');
  return coding === undefined ? `"${hash}"` : `"${hash}-${coding}"`;
}

/**
 * True when If-None-Match names this tag (weak comparison, RFC 9110 13.1.2: `W/` is ignored) or is `*`:
 * a GET then gets 304 Not Modified.
 */
export function ifNoneMatchHits(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value.trim() === '*') return true;
  const tags = value.match(/(?:W\/)?"[^"]*"/g) ?? [];
  return tags.some((t) => t.replace(/^W\//, '') === etag);
}
