// Why a rendering was refused or failed, as a value the HTTP layer maps (not wired yet): a bad parameter is a 400,
// an image this server cannot render (or not in the asked media type) a 406, a size over the limits a 413-like
// refusal the routes choose, a busy or stuck worker a 503. Decoding failures keep the transcoder's TranscodeError
// (src/transcode/transcode-error.ts). Messages are PHI-free: sizes, attribute names and media types only.

export type RenderFailure =
  /** A `quality`, `viewport` or `window` value outside PS3.18 10.4.1.1 syntax or range. */
  | 'bad-parameter'
  /** Not an image this server renders (1-bit, float pixels, a SOP class without pixels, ...). */
  | 'unsupported-source'
  /** The asked media type does not fit this object (e.g. application/pdf for an image, image/jpeg for a PDF). */
  | 'unsupported-media-type'
  /** The frame or the output image would exceed the size limits: refused before any pixel is touched. */
  | 'too-large'
  /** The render worker ran past its time limit or its memory limit, or could not be had. */
  | 'timeout'
  | 'memory'
  | 'unavailable'
  /** A frame number outside 1..NumberOfFrames. */
  | 'no-such-frame';

export class RenderError extends Error {
  constructor(
    readonly failure: RenderFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RenderError';
  }
}

export const isRenderError = (e: unknown): e is RenderError => e instanceof RenderError;
