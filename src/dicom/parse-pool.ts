// A small pool of worker threads that decode untrusted DICOM (DESIGN.md: work that can block the event loop runs
// behind the pre-scan, in workers with resource limits). The pre-scan (part10-scan.ts) stays on the main thread:
// it is cheap and bounded by the caps. What it cannot bound well is the decoding of what it let through: a
// 14 MB object of 240,000 small sequence items is within every cap and costs seconds of CPU and hundreds of MB
// to turn into DICOM JSON. Here that costs one worker (worker-pool.ts), which is terminated and replaced when it
// runs past `stow.parseTimeoutMs` or its heap passes `stow.parseMemoryMb`; the object fails with C000 (PS3.4
// "cannot understand") and the reason, and every other request goes on.
//
// What crosses: the token columns (typed arrays) and one contiguous copy of the header bytes are transferred
// (no copy); the worker sends back only the dataset and the bulk-value locations (structured clone), which is
// what the store path keeps. Pixel data never leaves the staged file.

import { workerEntry } from '../worker-entry.js';
import { WorkerPool, type WorkerPoolOptions, type WorkerReady } from '../worker-pool.js';
import { createInstanceReader, DecodeLimitError, DecodeUnavailableError, type DecodedDataset, type DecodeInput, type TokenColumns } from './dataset-reader.js';
import type { HeaderRange } from './dataset-walk.js';
import type { InstanceReader } from './part10.js';

/** Worker threads each decode one object at a time; `timeoutMs` bounds the decode of one object. */
export type ParsePoolOptions = WorkerPoolOptions;

/** Main thread -> worker: one object to decode. */
export interface DecodeRequest {
  tokens: TokenColumns;
  ranges: HeaderRange[];
  header: ArrayBuffer;
}

/** Worker -> main thread. */
export type WorkerReply = WorkerReady | ({ ok: true } & DecodedDataset) | { ok: false; error: string };

/** The typed arrays of the token columns, trimmed to their length (a copy only when a column has spare room). */
function transferableTokens(tokens: TokenColumns): { tokens: TokenColumns; buffers: ArrayBuffer[] } {
  const n = tokens.length;
  const trim = <A extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(a: A): A => (a.length === n ? a : (a.slice(0, n) as A));
  const out: TokenColumns = {
    length: n,
    kind: trim(tokens.kind),
    flags: trim(tokens.flags),
    vr: trim(tokens.vr),
    tag: trim(tokens.tag),
    offset: trim(tokens.offset),
    valueLength: trim(tokens.valueLength),
  };
  const buffers = [out.kind, out.flags, out.vr, out.tag, out.offset, out.valueLength].map((a) => a.buffer as ArrayBuffer);
  return { tokens: out, buffers };
}

/** The message for one object, and the buffers it transfers. */
function decodeRequest(input: DecodeInput): { message: DecodeRequest; transfer: ArrayBuffer[] } {
  const { tokens, buffers } = transferableTokens(input.tokens);
  const header = input.header;
  // The header copy is owned (dataset-reader.ts readHeader) unless it is a view into a larger buffer.
  const own = header.byteOffset === 0 && header.byteLength === header.buffer.byteLength;
  const bytes = (own ? header.buffer : header.buffer.slice(header.byteOffset, header.byteOffset + header.byteLength)) as ArrayBuffer;
  return { message: { tokens, ranges: input.ranges, header: bytes }, transfer: [...new Set([...buffers, bytes])] };
}

export class ParsePool extends WorkerPool<DecodeInput, DecodedDataset, WorkerReply> {
  constructor(options: ParsePoolOptions) {
    super(options, {
      entry: workerEntry(import.meta.url, 'parse-worker'),
      name: 'DICOM parse worker',
      message: decodeRequest,
      outcome: (reply) =>
        reply.ok ? { ok: true, value: { dataset: reply.dataset, bulk: reply.bulk } } : { ok: false, error: new Error(`decoding failed in the worker (${reply.error})`) },
      errors: {
        closed: () => new DecodeUnavailableError('the parse pool is closed'),
        timeout: (_input, ms) => new DecodeLimitError(`decoding the dataset took longer than the ${ms} ms limit`),
        memory: (mb) => new DecodeLimitError(`decoding the dataset needed more than the ${mb} MiB memory limit`),
        stopped: () => new Error('the parse worker stopped'),
        notStarted: (cause) => new DecodeUnavailableError('the parse worker could not start', { cause }),
        dropped: () => new DecodeUnavailableError('dropped: its request was aborted'),
      },
    });
  }

  /** The STOW reader: pre-scan here, decode in a worker. */
  reader(): InstanceReader {
    return createInstanceReader((input) => this.decode(input));
  }

  decode(input: DecodeInput): Promise<DecodedDataset> {
    return this.run(input);
  }
}
