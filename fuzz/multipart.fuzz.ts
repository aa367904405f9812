// Fuzz target: the STOW-RS request body path (PS3.18 10.5) up to the point where a part's bytes reach the store:
// the request Content-Type (parseMultipartContentType), the multipart/related reader (src/http/multipart.ts)
// and each part's Content-Type (parseMediaType), as routes/stow-rs.ts chains them.
//
// Input: the first line (up to LF) is the request's Content-Type header value, the rest is the body. When the
// header is refused (as the route would refuse it) the body is still read, with the boundary "fuzz", so that
// a mutated header line does not waste the input.
//
// Properties (a violation throws, which Jazzer.js reports as a crash):
// 1. Only the documented errors: AppError UNSUPPORTED_MEDIA_TYPE / BAD_REQUEST from the header parsers,
//    AppError BAD_REQUEST / PAYLOAD_TOO_LARGE from the reader (multipart.ts header comment). A TypeError,
//    RangeError or anything else is a bug.
// 2. Progress: every body chunk yielded carries bytes (no busy loop), and no more bytes come out than went in.
// 3. Chunking does not matter: the body read whole, in pseudo-random slices and (when small) byte by byte
//    gives the same parts, or the same error. A proxy that re-chunks must not change what is stored.
// 4. Round trip: parts read from a body, written again by our multipart writer (multipart-writer.ts) with the
//    same boundary and read back, are the same parts, byte for byte.
// Hangs are the fuzzer's --timeout; memory is bounded by -rss_limit_mb (fuzz/README.md).

import { AppError, isAppError } from '../src/errors.js';
import { parseMediaType } from '../src/http/media-types.js';
import { parseMultipartContentType, readMultipart, type MultipartLimits } from '../src/http/multipart.js';
import { multipartBody, type OutgoingPart } from '../src/http/multipart-writer.js';

/** Small caps, so that inputs of a few KB reach every limit (production: config/schema.ts). */
export const LIMITS: MultipartLimits = { maxParts: 16, maxPartBytes: 16 * 1024, maxPartHeaderBytes: 512, maxTotalBytes: 32 * 1024 };
const DEFAULT_BOUNDARY = 'fuzz';
const BYTE_BY_BYTE_MAX = 1024;

class PropertyViolation extends Error {
  override name = 'PropertyViolation';
}

interface Part {
  headers: [string, string][];
  body: Buffer;
}
interface Outcome {
  parts: Part[];
  error?: string;
}

function expectAppError(e: unknown, codes: readonly string[], where: string): AppError {
  if (isAppError(e) && codes.includes(e.code)) return e;
  throw new PropertyViolation(`${where}: undocumented error ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
}

async function* chunks(pieces: readonly Buffer[]): AsyncGenerator<Buffer> {
  yield* pieces;
}

/** Reads every part the way routes/stow-rs.ts does, checking properties 1 and 2. */
async function read(pieces: readonly Buffer[], boundary: string, limits: MultipartLimits): Promise<Outcome> {
  const total = pieces.reduce((n, p) => n + p.length, 0);
  const outcome: Outcome = { parts: [] };
  let out = 0;
  try {
    for await (const part of readMultipart(chunks(pieces), boundary, limits)) {
      if (part.contentType !== undefined) {
        try {
          parseMediaType(part.contentType);
        } catch (e) {
          expectAppError(e, ['UNSUPPORTED_MEDIA_TYPE'], 'part Content-Type');
        }
      }
      const body: Buffer[] = [];
      for await (const chunk of part.body) {
        if (chunk.length === 0) throw new PropertyViolation('the reader yielded an empty body chunk');
        out += chunk.length;
        if (out > total) throw new PropertyViolation(`the reader yielded ${out} body bytes from ${total} input bytes`);
        body.push(chunk);
      }
      outcome.parts.push({ headers: [...part.headers], body: Buffer.concat(body) });
    }
  } catch (e) {
    if (e instanceof PropertyViolation) throw e;
    const err = expectAppError(e, ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE'], 'multipart reader');
    outcome.error = `${err.code}: ${err.message}`;
  }
  return outcome;
}

/** Slices of 1 to 64 bytes, from a generator seeded by the input itself (so a crash replays exactly). */
function slices(body: Buffer): Buffer[] {
  let state = body.length ^ 0x9e3779b9;
  for (let i = 0; i < Math.min(body.length, 64); i++) state = Math.imul(state ^ body[i]!, 0x01000193);
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; ) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const n = 1 + ((state >>> 16) % 64);
    out.push(body.subarray(at, at + n));
    at += n;
  }
  return out;
}

function bytesOf(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i++) out.push(body.subarray(i, i + 1));
  return out;
}

function same(a: Outcome, b: Outcome): boolean {
  if (a.error !== b.error || a.parts.length !== b.parts.length) return false;
  return a.parts.every(
    (p, i) => JSON.stringify(p.headers) === JSON.stringify(b.parts[i]!.headers) && p.body.equals(b.parts[i]!.body),
  );
}

function describe(o: Outcome): string {
  return `${o.parts.length} parts [${o.parts.map((p) => p.body.length).join(', ')}] ${o.error ?? 'ok'}`;
}

/** Property 4: the writer's framing of the parts reads back as the same parts. */
async function roundTrip(parts: Part[], boundary: string): Promise<void> {
  const outgoing: OutgoingPart[] = parts.map((p) => {
    const h = new Map(p.headers);
    const o: OutgoingPart = { contentType: h.get('content-type') ?? 'application/octet-stream', body: p.body };
    const location = h.get('content-location');
    if (location !== undefined) o.contentLocation = location;
    return o;
  });
  const written: Buffer[] = [];
  for await (const b of multipartBody(outgoing, boundary)) written.push(b);
  const bytes = Buffer.concat(written);
  // The writer adds Content-Length and Content-Type headers: give the headers and the total room for them.
  const roomy: MultipartLimits = { ...LIMITS, maxPartHeaderBytes: LIMITS.maxPartHeaderBytes + 64, maxTotalBytes: bytes.length };
  const back = await read([bytes], boundary, roomy);
  if (back.error !== undefined || back.parts.length !== parts.length) {
    throw new PropertyViolation(`round trip: ${describe(back)} read back from ${parts.length} parts`);
  }
  back.parts.forEach((p, i) => {
    const h = new Map(p.headers);
    const o = outgoing[i]!;
    if (!p.body.equals(parts[i]!.body)) throw new PropertyViolation(`round trip: part ${i} body differs`);
    if (h.get('content-type') !== o.contentType || h.get('content-location') !== o.contentLocation) {
      throw new PropertyViolation(`round trip: part ${i} headers differ`);
    }
  });
}

export async function fuzz(data: Buffer): Promise<void> {
  const lf = data.indexOf(0x0a);
  const header = (lf === -1 ? data : data.subarray(0, lf)).toString('latin1').replace(/\r$/, '');
  const body = lf === -1 ? Buffer.alloc(0) : data.subarray(lf + 1);

  let boundary = DEFAULT_BOUNDARY;
  try {
    boundary = parseMultipartContentType(header).boundary;
  } catch (e) {
    expectAppError(e, ['UNSUPPORTED_MEDIA_TYPE', 'BAD_REQUEST'], 'request Content-Type');
  }

  const whole = await read([body], boundary, LIMITS);
  const sliced = await read(slices(body), boundary, LIMITS);
  if (!same(whole, sliced)) throw new PropertyViolation(`chunking changes the outcome: ${describe(whole)} / ${describe(sliced)}`);
  if (body.length <= BYTE_BY_BYTE_MAX) {
    const single = await read(bytesOf(body), boundary, LIMITS);
    if (!same(whole, single)) throw new PropertyViolation(`byte-by-byte changes the outcome: ${describe(whole)} / ${describe(single)}`);
  }
  if (whole.error === undefined) await roundTrip(whole.parts, boundary);
}
