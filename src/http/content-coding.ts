// Content codings for buffered responses (RFC 9110 8.4, 12.5.3): choose br or gzip from Accept-Encoding and
// compress with node:zlib off the event loop. Used by WADO-RS metadata, whose JSON for a large study is
// megabytes of highly repetitive text (PROTOCOL.md 2 "Perf", 3.5: slow study metadata).

import { promisify } from 'node:util';
import zlib from 'node:zlib';

export type ContentCoding = 'br' | 'gzip';

/** Bodies smaller than this are sent as they are: the coding would save less than it costs. */
export const MIN_COMPRESSIBLE_BYTES = 1024;

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

/**
 * The coding to use for an Accept-Encoding value: br before gzip (smaller at similar speed at quality 4),
 * each only with q > 0; `*` stands for codings not listed (RFC 9110 12.5.3). Undefined: identity.
 */
export function chooseContentCoding(acceptEncoding: string | string[] | undefined): ContentCoding | undefined {
  if (acceptEncoding === undefined) return undefined;
  const weights = new Map<string, number>();
  for (const entry of (Array.isArray(acceptEncoding) ? acceptEncoding.join(',') : acceptEncoding).split(',')) {
    const [name, ...params] = entry.split(';').map((s) => s.trim().toLowerCase());
    if (!name) continue;
    let q = 1;
    for (const p of params) {
      const m = /^q\s*=\s*([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (Number.isFinite(q)) weights.set(name === 'x-gzip' ? 'gzip' : name, q);
  }
  const weightOf = (coding: ContentCoding) => weights.get(coding) ?? weights.get('*') ?? 0;
  const br = weightOf('br');
  const gz = weightOf('gzip');
  if (br > 0 && br >= gz) return 'br';
  if (gz > 0) return 'gzip';
  return undefined;
}

/** Compresses a body; brotli at quality 4, a speed close to gzip's default with a better ratio. */
export async function encodeBody(body: Buffer, coding: ContentCoding): Promise<Buffer> {
  if (coding === 'br') {
    return brotli(body, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: 4,
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    });
  }
  return gzip(body, { level: 6 });
}
