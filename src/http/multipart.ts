// A streaming, bounded reader of multipart/related request bodies (RFC 2046 5.1, RFC 2387), for STOW-RS
// (PS3.18 10.5). @fastify/multipart reads form-data only (DESIGN.md pitfalls), so this is our own.
//
//   multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF
//                     body-part *encapsulation close-delimiter transport-padding [CRLF epilogue]
//   encapsulation  := delimiter transport-padding CRLF body-part
//   delimiter      := CRLF dash-boundary          dash-boundary := "--" boundary
//   body-part      := MIME-part-headers [CRLF *OCTET]
//
// Choices where clients or the RFC leave room:
// - Line endings: CRLF only. RFC 2046 requires it and every client we interoperate with sends it (Orthanc,
//   dicomweb-client, OHIF, dcm4che). Tolerating bare LF would make a trailing CR of binary data ambiguous and
//   would let this parser and a stricter one (a proxy, a WAF) see different parts. A bare LF where a line end
//   is due is refused with its own message so the sender can tell what is wrong.
// - Preamble: allowed (dicomweb-client sends a CRLF first, Orthanc nothing), at most maxPartHeaderBytes of it.
// - Boundaries: 1-200 RFC 2046 bchars. RFC 2046 says at most 70, but Orthanc sends 73 (SECURITY.md 8.14).
// - Transport padding (SP/HTAB) after a boundary: up to MAX_TRANSPORT_PADDING bytes.
// - "\r\n--boundary" followed by a byte that cannot continue a boundary line (not "-", SP, HTAB, CR, LF) is
//   part data, not a delimiter (a longer boundary-like string inside a part).
// - A part with no body at all ("--b\r\n\r\n--b", or headers directly followed by the delimiter) is an empty
//   part: the CRLF before a boundary belongs to the delimiter (RFC 2046 5.1.1).
// - Part headers (RFC 5322 syntax): names are tokens, a repeated name is refused (two readers could pick
//   different values), obsolete line folding is unfolded.
// - Content-Length on a part is checked, not trusted: the part still ends at its delimiter, and a different
//   length is an error (400). A Content-Length over maxPartBytes is refused before any of the body is read.
// - The epilogue is read and discarded (still counted against maxTotalBytes), so the request is consumed.
//
// Errors are AppErrors: malformed framing or a body that ends early -> BAD_REQUEST; a limit exceeded ->
// PAYLOAD_TOO_LARGE. Once the reader has failed, every later call (the part's body, the next part) throws the
// same error, so a consumer that swallowed a body error still sees the failure.
//
// Memory stays flat: part bodies are passed on as slices of the chunks the source delivered; only a possible
// beginning of a delimiter (at most boundary length + 4 + padding bytes) or a part's header section is carried
// over between chunks. The delimiter is found with Buffer.indexOf (Boyer-Moore-Horspool in Node for needles
// of this length), so a part is scanned once, in native code.

import { AppError, isAppError } from '../errors.js';
import { isToken, MediaType, MediaTypeSyntaxError, parseMediaType, scanMediaType } from './media-types.js';

export interface MultipartLimits {
  /** More parts than this -> 413. */
  maxParts: number;
  /** A part body larger than this -> 413. */
  maxPartBytes: number;
  /** A part's header section (and the preamble) larger than this -> 413 (preamble: 400). */
  maxPartHeaderBytes: number;
  /** More body bytes in all than this -> 413. */
  maxTotalBytes: number;
}

export interface MultipartPart {
  /** 0-based position in the body. */
  index: number;
  /** Lowercased names, values with surrounding whitespace removed. */
  headers: Map<string, string>;
  /** The part's Content-Type header as sent, if any (parse it with parseMediaType). */
  contentType?: string;
  contentLocation?: string;
  /** The part's Content-Length, if sent; the body has been checked against it by the time it ends. */
  contentLength?: number;
  /**
   * The body, chunk by chunk. Read it (or leave it: it is discarded) before asking for the next part; it
   * cannot be read afterwards.
   */
  body: AsyncIterable<Buffer>;
}

export const MAX_BOUNDARY_LENGTH = 200;
export const MAX_TRANSPORT_PADDING = 256;

export const TRUNCATED_MESSAGE = 'multipart body ended before the closing boundary';

// RFC 2046 5.1.1: boundary := 0*69<bchars> bcharsnospace (length relaxed to MAX_BOUNDARY_LENGTH)
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]$/;

export function isValidBoundary(boundary: string): boolean {
  return boundary.length >= 1 && boundary.length <= MAX_BOUNDARY_LENGTH && BOUNDARY.test(boundary);
}

export interface MultipartContentType {
  boundary: string;
  /** The `type` parameter's essence, lowercased (RFC 2387 3.1), if present. */
  type: string | undefined;
  params: Map<string, string>;
}

/**
 * Checks a request Content-Type for STOW (PS3.18 10.5.1.1): `multipart/related; type="..."; boundary=...`,
 * `type` quoted or not and optional here (the route decides what it requires).
 * Missing, malformed, or not multipart/related -> UNSUPPORTED_MEDIA_TYPE; no or bad boundary -> BAD_REQUEST.
 */
export function parseMultipartContentType(header: string | undefined): MultipartContentType {
  if (header === undefined) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'missing Content-Type: expected multipart/related');
  const mediaType = parseMediaType(header);
  if (mediaType.essence !== MediaType.MULTIPART_RELATED) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `unsupported Content-Type ${mediaType.essence}: expected multipart/related`);
  }
  const boundary = mediaType.params.get('boundary');
  if (boundary === undefined) throw new AppError('BAD_REQUEST', 'multipart/related Content-Type has no boundary parameter');
  if (!isValidBoundary(boundary)) {
    throw new AppError('BAD_REQUEST', `multipart boundary must be 1 to ${MAX_BOUNDARY_LENGTH} characters allowed by RFC 2046`);
  }
  const rawType = mediaType.params.get('type');
  let type: string | undefined;
  if (rawType !== undefined) {
    try {
      type = scanMediaType(rawType, 0).mediaType.essence;
    } catch (e) {
      /* c8 ignore next */
      if (!(e instanceof MediaTypeSyntaxError)) throw e; // not reached: the scanner throws MediaTypeSyntaxError only
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', `malformed multipart/related type parameter: ${e.message}`);
    }
  }
  return { boundary, type, params: mediaType.params };
}

/**
 * Reads the parts of a multipart/related body. `source` is the raw request body (e.g. an IncomingMessage);
 * the caller owns it (it is never destroyed here). Parts come one at a time; each body streams.
 * Throws AppError BAD_REQUEST at once if `boundary` is not valid.
 */
export function readMultipart(
  source: AsyncIterable<Uint8Array>,
  boundary: string,
  limits: MultipartLimits,
): AsyncGenerator<MultipartPart, void, undefined> {
  if (!isValidBoundary(boundary)) {
    throw new AppError('BAD_REQUEST', `multipart boundary must be 1 to ${MAX_BOUNDARY_LENGTH} characters allowed by RFC 2046`);
  }
  for (const key of ['maxParts', 'maxPartBytes', 'maxPartHeaderBytes', 'maxTotalBytes'] as const) {
    const v = limits[key];
    if (!(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`multipart limit ${key} must be a positive integer`);
  }
  return new MultipartReader(source, boundary, limits).parts();
}

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const SP = 0x20;
const HTAB = 0x09;

/** classify(): the stream must deliver more bytes before the candidate delimiter can be judged. */
const NEED_MORE = -1;
/** classify(): the candidate is part data. */
const NOT_DELIMITER = -2;

const EMPTY = Buffer.alloc(0);

type State = 'preamble' | 'headers' | 'body' | 'epilogue' | 'done';

const truncated = (): AppError => new AppError('BAD_REQUEST', TRUNCATED_MESSAGE);
const bareLf = (): AppError =>
  new AppError('BAD_REQUEST', 'multipart lines must end with CRLF, not a bare LF (RFC 2046 5.1.1)');

class MultipartReader {
  private readonly source: AsyncIterator<Uint8Array>;
  private readonly limits: MultipartLimits;
  /** CRLF "--" boundary. */
  private readonly delimiter: Buffer;

  /** Unconsumed bytes are buf[pos..]; buf may be a slice of a source chunk or of `owned`. */
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Body/preamble: the delimiter search resumes here (earlier candidates were judged already). */
  private scanFrom = 0;
  /** A buffer of ours that carries bytes between chunks, with room to append. */
  private owned: Buffer = EMPTY;
  /** Whether buf is a slice of `owned` (so more bytes can be appended in place). */
  private bufOwned = false;
  private ended = false;
  private total = 0;

  private state: State = 'preamble';
  /** Set by classify(): the delimiter just judged is the close delimiter. */
  private closing = false;
  private failure: unknown;
  private busy = false;
  private closed = false;

  /** pos is on the blank line that ended the current part's headers (see resolveBlankLine). */
  private atBlankLine = false;
  private partIndex = -1;
  private partBytes = 0;
  private partLength: number | undefined;

  constructor(source: AsyncIterable<Uint8Array>, boundary: string, limits: MultipartLimits) {
    this.source = source[Symbol.asyncIterator]();
    this.limits = limits;
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  async *parts(): AsyncGenerator<MultipartPart, void, undefined> {
    try {
      await this.guarded(() => this.readPreamble());
      for (;;) {
        while (this.state === 'body') await this.guarded(() => this.readBodyChunk());
        if (this.state !== 'headers') break;
        const part = await this.guarded(() => this.readPart());
        yield part;
      }
      await this.guarded(() => this.drainEpilogue());
      this.state = 'done';
    } finally {
      this.closed = true;
    }
  }

  /** Runs one step with the sticky-failure and no-concurrency rules. */
  private async guarded<T>(step: () => Promise<T>): Promise<T> {
    if (this.failure !== undefined) throw this.failure;
    if (this.busy) throw new Error('multipart reader used concurrently: finish reading a part body before asking for the next part');
    this.busy = true;
    try {
      return await step();
    } catch (e) {
      this.failure = e;
      throw e;
    } finally {
      this.busy = false;
    }
  }

  private async nextBodyChunk(index: number): Promise<IteratorResult<Buffer, undefined>> {
    if (index !== this.partIndex || this.closed) {
      if (this.failure !== undefined) throw this.failure;
      throw new Error('a multipart part body must be read before the next part is requested');
    }
    // the part ended at its delimiter (a failure inside the body leaves the state at 'body': guarded rethrows it)
    if (this.state !== 'body') return { done: true, value: undefined };
    const chunk = await this.guarded(() => this.readBodyChunk());
    return chunk === undefined ? { done: true, value: undefined } : { done: false, value: chunk };
  }

  // ---- input ----

  /** Appends the next source chunk to the unconsumed bytes. False at the end of the source. */
  private async fill(): Promise<boolean> {
    for (;;) {
      if (this.ended) return false;
      let result: IteratorResult<Uint8Array>;
      try {
        result = await this.source.next();
      } catch (e) {
        if (isAppError(e)) throw e;
        throw new AppError('BAD_REQUEST', 'the request body could not be read', { cause: e });
      }
      if (result.done) {
        this.ended = true;
        return false;
      }
      const value: unknown = result.value;
      if (!(value instanceof Uint8Array)) throw new TypeError('multipart source must yield Buffers or Uint8Arrays');
      if (value.length === 0) continue;
      this.total += value.length;
      if (this.total > this.limits.maxTotalBytes) {
        throw new AppError('PAYLOAD_TOO_LARGE', `request body is larger than ${this.limits.maxTotalBytes} bytes`);
      }
      this.append(Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      return true;
    }
  }

  private append(chunk: Buffer): void {
    const rest = this.buf.length - this.pos;
    if (rest === 0) {
      // the common case in a body: nothing carried over, search the source's chunk in place
      this.scanFrom = Math.max(0, this.scanFrom - this.pos);
      this.buf = chunk;
      this.bufOwned = false;
      this.pos = 0;
      return;
    }
    const end = this.buf.byteOffset - this.owned.byteOffset + this.buf.length;
    if (this.bufOwned && end + chunk.length <= this.owned.length) {
      // room left in our carry buffer: copy only the new bytes (many small chunks stay linear, not quadratic)
      chunk.copy(this.owned, end);
      this.buf = this.owned.subarray(this.buf.byteOffset - this.owned.byteOffset, end + chunk.length);
      return;
    }
    // A new carry buffer each time, never a reused one: slices of the old one may be in a consumer's hands.
    this.owned = Buffer.allocUnsafeSlow(Math.max(2 * (rest + chunk.length), 4096));
    this.buf.copy(this.owned, 0, this.pos);
    chunk.copy(this.owned, rest);
    this.buf = this.owned.subarray(0, rest + chunk.length);
    this.bufOwned = true;
    this.scanFrom = Math.max(0, this.scanFrom - this.pos);
    this.pos = 0;
  }

  /**
   * Judges a match of CRLF "--" boundary at `idx`. Returns NEED_MORE, NOT_DELIMITER, or the index just after
   * the boundary line (its CRLF, or the "--" of a close delimiter, which sets `closing`). A malformed boundary
   * line throws, unless `lenient` (then it is NOT_DELIMITER).
   */
  private classify(idx: number, lenient = false): number {
    try {
      return this.classifyStrict(idx);
    } catch (e) {
      if (lenient && isAppError(e)) return NOT_DELIMITER;
      throw e;
    }
  }

  private classifyStrict(idx: number): number {
    const buf = this.buf;
    let p = idx + this.delimiter.length;
    if (p >= buf.length) return NEED_MORE;
    let c = buf[p];
    if (c === DASH) {
      if (p + 1 >= buf.length) return NEED_MORE;
      if (buf[p + 1] !== DASH) return NOT_DELIMITER;
      this.closing = true;
      return p + 2;
    }
    if (c !== SP && c !== HTAB && c !== CR && c !== LF) return NOT_DELIMITER;
    const paddingStart = p;
    while (c === SP || c === HTAB) {
      p++;
      if (p - paddingStart > MAX_TRANSPORT_PADDING) throw new AppError('BAD_REQUEST', 'too much transport padding after a multipart boundary');
      if (p >= buf.length) return NEED_MORE;
      c = buf[p];
    }
    if (c === LF) throw bareLf();
    if (c !== CR) throw new AppError('BAD_REQUEST', 'malformed multipart boundary line');
    if (p + 1 >= buf.length) return NEED_MORE;
    if (buf[p + 1] !== LF) throw new AppError('BAD_REQUEST', 'malformed multipart boundary line');
    this.closing = false;
    return p + 2;
  }

  /** Length of the longest suffix of buf, starting at or after `from`, that is a proper prefix of the delimiter. */
  private partialSuffix(from: number): number {
    const buf = this.buf;
    const d = this.delimiter;
    let i = buf.indexOf(CR, Math.max(from, buf.length - d.length + 1));
    while (i !== -1) {
      if (buf.compare(d, 0, buf.length - i, i) === 0) return buf.length - i;
      i = buf.indexOf(CR, i + 1);
    }
    return 0;
  }

  // ---- states ----

  private async readPreamble(): Promise<void> {
    // RFC 2046 5.1.1: the CRLF before a boundary is part of the delimiter, and the first boundary may open the
    // body. A virtual CRLF in front makes "--b" at offset 0 and "preamble\r\n--b" the same search.
    this.buf = Buffer.from('\r\n', 'latin1');
    this.bufOwned = false;
    // preamble bytes dropped so far (the virtual CRLF is not the client's)
    let discarded = -2;
    for (;;) {
      const idx = this.buf.indexOf(this.delimiter, this.scanFrom);
      let keepFrom: number;
      if (idx !== -1) {
        // The cap before the candidate is judged: a malformed boundary line past the cap must give the same
        // error whether the bytes before it came in one chunk or trickled in (found by fuzz/multipart.fuzz.ts).
        if (discarded + idx - this.pos > this.limits.maxPartHeaderBytes) throw this.preambleTooLong();
        const next = this.classify(idx);
        if (next === NOT_DELIMITER) {
          this.scanFrom = idx + 1;
          continue;
        }
        if (next !== NEED_MORE) {
          // RFC 2046 requires at least one body part
          if (this.closing) throw new AppError('BAD_REQUEST', 'multipart body has no parts');
          this.pos = next;
          this.state = 'headers';
          return;
        }
        keepFrom = idx;
      } else {
        keepFrom = this.buf.length - this.partialSuffix(this.scanFrom);
      }
      discarded += keepFrom - this.pos;
      this.pos = keepFrom;
      this.scanFrom = Math.max(this.scanFrom, keepFrom);
      if (discarded > this.limits.maxPartHeaderBytes) throw this.preambleTooLong();
      if (!(await this.fill())) throw new AppError('BAD_REQUEST', 'multipart body has no opening boundary');
    }
  }

  private preambleTooLong(): AppError {
    return new AppError('BAD_REQUEST', `no multipart boundary in the first ${this.limits.maxPartHeaderBytes} bytes of the body`);
  }

  private async readPart(): Promise<MultipartPart> {
    const index = this.partIndex + 1;
    if (index >= this.limits.maxParts) {
      throw new AppError('PAYLOAD_TOO_LARGE', `multipart body has more than ${this.limits.maxParts} parts`);
    }
    const headers = await this.readHeaders(index);
    let contentLength: number | undefined;
    const cl = headers.get('content-length');
    if (cl !== undefined) {
      if (!/^[0-9]{1,16}$/.test(cl)) throw new AppError('BAD_REQUEST', `part ${index}: invalid Content-Length`);
      contentLength = Number(cl);
      if (contentLength > this.limits.maxPartBytes) {
        throw new AppError('PAYLOAD_TOO_LARGE', `part ${index} is larger than ${this.limits.maxPartBytes} bytes`);
      }
    }
    this.partIndex = index;
    this.partBytes = 0;
    this.partLength = contentLength;
    this.state = 'body';
    this.scanFrom = this.pos;

    const body: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => ({
        next: () => this.nextBodyChunk(index),
        // leaving a body early is allowed: the rest is discarded when the next part is requested
        return: async () => ({ done: true, value: undefined }),
      }),
    };
    const part: MultipartPart = { index, headers, body };
    const contentType = headers.get('content-type');
    if (contentType !== undefined) part.contentType = contentType;
    const contentLocation = headers.get('content-location');
    if (contentLocation !== undefined) part.contentLocation = contentLocation;
    if (contentLength !== undefined) part.contentLength = contentLength;
    return part;
  }

  private async readHeaders(index: number): Promise<Map<string, string>> {
    const headers = new Map<string, string>();
    const max = this.limits.maxPartHeaderBytes;
    const tooLarge = () => new AppError('PAYLOAD_TOO_LARGE', `part ${index}: headers are larger than ${max} bytes`);
    let headerBytes = 0;
    let scanned = 0;
    let lastName: string | undefined;
    for (;;) {
      const lf = this.buf.indexOf(LF, this.pos + scanned);
      if (lf === -1) {
        scanned = this.buf.length - this.pos;
        // (+1: a lone CR waiting for its LF may be the blank line, which does not count)
        if (headerBytes + scanned > max + 1) throw tooLarge();
        if (!(await this.fill())) throw truncated();
        continue;
      }
      scanned = 0;
      // The same cap as above, for a line that arrived whole: without it a long line ending in a bare LF would
      // be 400 when it comes in one chunk and 413 when it trickles in (found by fuzz/multipart.fuzz.ts).
      if (headerBytes + (lf - this.pos) > max + 1) throw tooLarge();
      if (lf === this.pos || this.buf[lf - 1] !== CR) throw bareLf();
      const lineLength = lf + 1 - this.pos;

      if (lineLength === 2) {
        // The blank line ending the headers. Left unconsumed: it may also be the CRLF of the next delimiter
        // (see resolveBlankLine), which only the body's first bytes can tell, and those are not read here.
        this.pos = lf - 1;
        this.atBlankLine = true;
        return headers;
      }

      // maxPartHeaderBytes counts the header lines with their CRLFs, not the blank line
      if (headerBytes + lineLength > max) throw tooLarge();
      headerBytes += lineLength;
      const line = this.buf.toString('latin1', this.pos, lf - 1);
      this.pos = lf + 1;
      if (/[\0-\x08\x0a-\x1f\x7f]/.test(line)) throw new AppError('BAD_REQUEST', `part ${index}: control character in a header`);
      const first = line.charCodeAt(0);
      if (first === SP || first === HTAB) {
        // obs-fold (RFC 5322 2.2.3): a continuation of the previous header
        if (lastName === undefined) throw new AppError('BAD_REQUEST', `part ${index}: header block starts with whitespace`);
        const folded = line.trim();
        const previous = headers.get(lastName) as string;
        headers.set(lastName, previous === '' ? folded : folded === '' ? previous : `${previous} ${folded}`);
        continue;
      }
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      // a token only: "Name : value" and "Name\t:" are refused, as RFC 9112 5.1 refuses them in HTTP
      if (!isToken(name)) throw new AppError('BAD_REQUEST', `part ${index}: malformed header line`);
      const lower = name.toLowerCase();
      if (headers.has(lower)) throw new AppError('BAD_REQUEST', `part ${index}: header ${lower} appears twice`);
      headers.set(lower, line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, ''));
      lastName = lower;
    }
  }

  /**
   * body-part is `headers [CRLF *OCTET]` (RFC 2046 5.1.1): a part without a body is followed by the delimiter
   * directly, and the delimiter's CRLF then looks like the blank line. If a well-formed boundary line follows
   * the CRLF, it is the delimiter (an empty body: pos stays on it); otherwise the CRLF is the blank line and
   * is skipped ("--boundary junk" at the start of a body is body data).
   */
  private async resolveBlankLine(): Promise<void> {
    const dl = this.delimiter.length;
    for (;;) {
      const available = this.buf.length - this.pos;
      const n = Math.min(available, dl);
      if (this.buf.compare(this.delimiter, 0, n, this.pos, this.pos + n) === 0) {
        const next = available >= dl ? this.classify(this.pos, true) : NEED_MORE;
        if (next === NEED_MORE && (await this.fill())) continue;
        if (next >= 0) break;
      }
      this.pos += 2;
      this.scanFrom = this.pos;
      break;
    }
    this.atBlankLine = false;
  }

  /** The next slice of the current part's body, or undefined when the part has ended (at its delimiter). */
  private async readBodyChunk(): Promise<Buffer | undefined> {
    if (this.atBlankLine) await this.resolveBlankLine();
    for (;;) {
      const start = this.pos;
      const idx = this.buf.indexOf(this.delimiter, this.scanFrom);
      if (idx !== -1) {
        // The part's caps apply to the bytes before the candidate first, as they would had those bytes come
        // in an earlier chunk: the error must not depend on the chunking (found by fuzz/multipart.fuzz.ts).
        this.checkRoom(idx - start);
        const next = this.classify(idx);
        if (next === NOT_DELIMITER) {
          this.scanFrom = idx + 1;
          continue;
        }
        if (next !== NEED_MORE) {
          const chunk = this.buf.subarray(start, idx);
          this.count(chunk.length);
          if (this.partLength !== undefined && this.partBytes !== this.partLength) {
            throw new AppError(
              'BAD_REQUEST',
              `part ${this.partIndex}: Content-Length ${this.partLength} does not match its delimited length ${this.partBytes}`,
            );
          }
          this.pos = next;
          this.scanFrom = next;
          this.state = this.closing ? 'epilogue' : 'headers';
          return chunk.length > 0 ? chunk : undefined;
        }
        if (idx > start) return this.emit(start, idx);
      } else {
        const end = this.buf.length - this.partialSuffix(Math.max(this.scanFrom, start));
        if (end > start) return this.emit(start, end);
      }
      if (!(await this.fill())) throw truncated();
    }
  }

  private emit(start: number, end: number): Buffer {
    this.count(end - start);
    this.pos = end;
    this.scanFrom = Math.max(this.scanFrom, end);
    return this.buf.subarray(start, end);
  }

  private count(n: number): void {
    this.checkRoom(n);
    this.partBytes += n;
  }

  /** Throws if `n` more bytes would take the current part over its Content-Length or maxPartBytes. */
  private checkRoom(n: number): void {
    const bytes = this.partBytes + n;
    // Content-Length first: it is at most maxPartBytes (readPart), so it is always the first limit a growing
    // part crosses, and the error does not depend on how the bytes were chunked.
    if (this.partLength !== undefined && bytes > this.partLength) {
      throw new AppError('BAD_REQUEST', `part ${this.partIndex} is longer than its Content-Length ${this.partLength}`);
    }
    if (bytes > this.limits.maxPartBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `part ${this.partIndex} is larger than ${this.limits.maxPartBytes} bytes`);
    }
  }

  private async drainEpilogue(): Promise<void> {
    // RFC 2046: the epilogue is to be ignored. It is read (and counted) so the request is fully consumed.
    do {
      this.buf = EMPTY;
      this.bufOwned = false;
      this.pos = 0;
      this.scanFrom = 0;
    } while (await this.fill());
  }
}
