// Why a transcoding was refused or failed. A value the service layer can map to its answer: the HTTP layer
// (not wired yet) answers an unsupported or refused conversion with 406 and the original syntax stays
// available; an overloaded or stuck codec is a 503. Messages are PHI-free (sizes, syntaxes, codec names only).

export type TranscodeFailure =
  /** The target syntax is not one this server encodes (or not from this source, e.g. 16-bit to JPEG baseline). */
  | 'unsupported-target'
  /** The stored object cannot be decoded here (no codec for its syntax, bit-packed or float pixels, ...). */
  | 'unsupported-source'
  /** Decompression bomb guard: the decoded size or the declared geometry is over the limits, or the codestream
   * and the dataset disagree about the image size. Refused before any decoding. */
  | 'too-large'
  /** The codec could not decode the stored bytes (corrupt, or a codestream it does not understand). */
  | 'undecodable'
  /** The codec ran past its time limit; its worker was terminated. */
  | 'timeout'
  /** The codec worker ran out of its memory limit; it was terminated. */
  | 'memory'
  /** No codec worker could be had (pool closed, worker failed to start). */
  | 'unavailable'
  /** A frame number outside 1..NumberOfFrames was asked for. */
  | 'no-such-frame';

export class TranscodeError extends Error {
  constructor(
    readonly failure: TranscodeFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TranscodeError';
  }
}

export const isTranscodeError = (e: unknown): e is TranscodeError => e instanceof TranscodeError;
