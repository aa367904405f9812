// Writes multipart/related responses (RFC 2046 5.1, RFC 2387) as a stream: WADO-RS retrieve of whole studies,
// frames and bulk data, QIDO-RS and metadata as XML (PS3.18 8.6.1.2, 8.7.3). Parts are written one after the
// other as their bodies stream; nothing is concatenated, so a study of many gigabytes needs no memory. Small
// answers whose parts are all in memory can instead be assembled into one Buffer (multipartBuffer), sent in one write.
//
//   --boundary CRLF headers CRLF CRLF body  (CRLF --boundary CRLF headers CRLF CRLF body)*  CRLF --boundary-- CRLF
//
// Each part carries Content-Type (PS3.18 8.7.3: with its transfer-syntax where it has one) and, when given,
// Content-Location (the part's resource, PS3.18 8.6.1.2) and Content-Length. The boundary is random
// (128 bits), so a part body containing it is as likely as guessing a 128-bit key; bodies are not scanned.

import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { formatMediaType, MediaType } from './media-types.js';
import { isValidBoundary } from './multipart.js';

export interface OutgoingPart {
  /** Full header value, e.g. `application/dicom; transfer-syntax=1.2.840.10008.1.2.1`. */
  contentType: string;
  contentLocation?: string;
  /** Sent as the part's Content-Length; checked against what the body yields. Known for Buffer bodies. */
  contentLength?: number;
  body: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

export type PartSource = Iterable<OutgoingPart> | AsyncIterable<OutgoingPart>;

/** A fresh random boundary: 43 token characters, so it needs no quoting. */
export function newBoundary(): string {
  return `dicomvault-${randomBytes(16).toString('hex')}`;
}

/** `multipart/related; type="<type>"; boundary=<boundary>` (RFC 2387 3.1, PS3.18 8.7.1). */
export function multipartContentType(type: string, boundary: string): string {
  return formatMediaType(MediaType.MULTIPART_RELATED, [
    ['type', type],
    ['boundary', boundary],
  ]);
}

// Header values come from our own code, but some hold client-chosen text (a Content-Location with a UID from
// the URL): a CR or LF would let it write its own headers or parts.
function headerValue(name: string, value: string): string {
  if (/[\0-\x08\x0a-\x1f\x7f]/.test(value)) throw new TypeError(`control character in multipart part header ${name}`);
  return value;
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function partHead(part: OutgoingPart, boundary: string, first: boolean): Buffer {
  let contentLength = part.contentLength;
  if (part.body instanceof Uint8Array) {
    if (contentLength !== undefined && contentLength !== part.body.byteLength) {
      throw new Error(`multipart part body is ${part.body.byteLength} bytes, not its contentLength ${contentLength}`);
    }
    contentLength = part.body.byteLength;
  }
  let head = `${first ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${headerValue('Content-Type', part.contentType)}\r\n`;
  if (part.contentLocation !== undefined) head += `Content-Location: ${headerValue('Content-Location', part.contentLocation)}\r\n`;
  if (contentLength !== undefined) {
    if (!Number.isSafeInteger(contentLength) || contentLength < 0) throw new RangeError('invalid part contentLength');
    head += `Content-Length: ${contentLength}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/**
 * Yields the bytes of a multipart/related body, part after part, streaming each body. Throws (ending the
 * stream) on an empty part list (RFC 2046 needs one part; answer 204/404 instead) or a body whose length
 * differs from its declared contentLength.
 */
export async function* multipartBody(parts: PartSource, boundary: string): AsyncGenerator<Buffer, void, undefined> {
  if (!isValidBoundary(boundary) || boundary.endsWith(' ')) throw new RangeError('invalid multipart boundary');
  let first = true;
  for await (const part of parts) {
    const head = partHead(part, boundary, first);
    const { body } = part;
    if (body instanceof Uint8Array) {
      first = false;
      yield head;
      if (body.byteLength > 0) yield asBuffer(body);
      continue;
    }
    const source = Symbol.asyncIterator in body ? body[Symbol.asyncIterator]() : body[Symbol.iterator]();
    try {
      // The first part's first chunk is read before any byte goes out: a read that fails at once (a stored object
      // failing authentication, an erased study, the key service down) still becomes the error handler's response
      // (500, 410, 503) instead of a 200 cut short. Later failures can only cut the stream.
      const pending = first ? await source.next() : undefined;
      first = false;
      yield head;
      let length = 0;
      for (let r = pending ?? (await source.next()); !r.done; r = await source.next()) {
        const chunk: unknown = r.value;
        if (!(chunk instanceof Uint8Array)) throw new TypeError('multipart part bodies must yield Buffers or Uint8Arrays');
        if (chunk.byteLength === 0) continue;
        length += chunk.byteLength;
        if (part.contentLength !== undefined && length > part.contentLength) {
          throw new Error(`multipart part body is longer than its contentLength ${part.contentLength}`);
        }
        yield asBuffer(chunk);
      }
      if (part.contentLength !== undefined && length !== part.contentLength) {
        throw new Error(`multipart part body is ${length} bytes, not its contentLength ${part.contentLength}`);
      }
    } finally {
      // As for-await would: the body is closed when the client goes away or a check above fails.
      await source.return?.();
    }
  }
  if (first) throw new Error('a multipart/related body needs at least one part');
  yield Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
}

/** A part whose body is already in memory. */
export type BufferedPart = OutgoingPart & { body: Uint8Array };

/**
 * The bytes multipartBody writes for parts that are all in memory, as one Buffer: an answer sent in one write.
 * Node's TLS socket seals and sends each write on its own, and a stream of 64 KiB chunks cost ~2-3x the server
 * CPU of one buffer per 512 KiB answer (bench/tls-write-cost.mjs); so small answers (a frame, a few frames) are
 * assembled, and large ones stream (multipartResponse), keeping memory bounded. Same checks as multipartBody.
 * Send it with reply.send(body), not as a one-chunk stream (Readable.from([body])): on the frames route that cost
 * ~3x the server CPU. A client that goes away mid-body is audited as for streams (plugins/audit-trail.ts).
 */
export function multipartBuffer(type: string, parts: readonly BufferedPart[], boundary: string = newBoundary()): { contentType: string; boundary: string; body: Buffer } {
  if (!isValidBoundary(boundary) || boundary.endsWith(' ')) throw new RangeError('invalid multipart boundary');
  if (parts.length === 0) throw new Error('a multipart/related body needs at least one part');
  const pieces: Buffer[] = [];
  parts.forEach((part, k) => {
    pieces.push(partHead(part, boundary, k === 0));
    if (part.body.byteLength > 0) pieces.push(asBuffer(part.body));
  });
  pieces.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  return { contentType: multipartContentType(type, boundary), boundary, body: Buffer.concat(pieces) };
}

export interface MultipartResponse {
  /** The response Content-Type header value. */
  contentType: string;
  boundary: string;
  /** Byte stream with backpressure: a part body is pulled only as fast as the client reads. */
  stream: Readable;
}

/**
 * A multipart/related response for `reply.type(r.contentType).send(r.stream)`. `type` is the root type, e.g.
 * `application/dicom` or `application/dicom+xml`. If the client goes away, the stream is destroyed and the
 * part bodies being read are closed (for-await calls their return()).
 */
export function multipartResponse(type: string, parts: PartSource, boundary: string = newBoundary()): MultipartResponse {
  return {
    contentType: multipartContentType(type, boundary),
    boundary,
    stream: Readable.from(multipartBody(parts, boundary), { objectMode: false }),
  };
}
