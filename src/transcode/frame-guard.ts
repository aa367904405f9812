// The decompression-bomb guard (SECURITY.md: work on untrusted pixel data runs behind cheap checks with caps).
// Before a single frame is decoded or encoded:
//   1. the Image Pixel attributes must describe a frame this server decodes (PS3.3 C.7.6.3: Rows/Columns 1..65535,
//      SamplesPerPixel 1 or 3, BitsAllocated 8/16 (32 for RLE), BitsStored <= BitsAllocated);
//   2. the decoded size (Rows x Columns x Samples x BitsAllocated/8, per frame and x NumberOfFrames) must be within
//      the limits: a header claiming 65535 x 65535 is refused here, whatever the file size;
//   3. each compressed frame's own header (codestream-info.ts) must declare the same size, components and no more
//      bits than the dataset: a small dataset wrapped around a huge codestream is refused too.
// The worker checks the codec's output length against the same expected size (codec-worker.ts).

import { jpegInfo, j2kInfo, rleInfo, type CodestreamInfo } from './codestream-info.js';
import { decoderFor } from './codec-table.js';
import { TranscodeError } from './transcode-error.js';

/** The Image Pixel Module values a codec needs (PS3.3 C.7.6.3). */
export interface FrameFormat {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  planarConfiguration: number;
  photometricInterpretation: string;
}

export interface PixelLimits {
  /** Largest decoded frame, bytes. */
  maxFrameBytes: number;
  /** Largest decoded Pixel Data of one object (all frames), bytes. */
  maxDecodedBytes: number;
}

export const DEFAULT_PIXEL_LIMITS: PixelLimits = { maxFrameBytes: 256 * 1024 * 1024, maxDecodedBytes: 1024 * 1024 * 1024 };

const tooLarge = (msg: string) => new TranscodeError('too-large', msg);

/** Bytes of one decoded frame; throws when the attributes are outside what is decoded or over the limits. */
export function checkGeometry(f: FrameFormat, frames: number, limits: PixelLimits, allow32 = false): number {
  const inRange = (n: number) => Number.isInteger(n) && n >= 1 && n <= 0xffff;
  if (!inRange(f.rows) || !inRange(f.columns)) throw new TranscodeError('unsupported-source', 'Rows and Columns must be 1..65535');
  if (f.samplesPerPixel !== 1 && f.samplesPerPixel !== 3) {
    throw new TranscodeError('unsupported-source', `SamplesPerPixel ${f.samplesPerPixel} is not transcoded (1 or 3 only)`);
  }
  const bitsOk = f.bitsAllocated === 8 || f.bitsAllocated === 16 || (allow32 && f.bitsAllocated === 32);
  if (!bitsOk) throw new TranscodeError('unsupported-source', `BitsAllocated ${f.bitsAllocated} is not transcoded`);
  if (!(f.bitsStored >= 1 && f.bitsStored <= f.bitsAllocated)) {
    throw new TranscodeError('unsupported-source', `BitsStored ${f.bitsStored} does not fit BitsAllocated ${f.bitsAllocated}`);
  }
  if (!Number.isSafeInteger(frames) || frames < 1) throw new TranscodeError('unsupported-source', 'NumberOfFrames is not a positive integer');
  const frameBytes = f.rows * f.columns * f.samplesPerPixel * (f.bitsAllocated / 8);
  if (frameBytes > limits.maxFrameBytes) {
    throw tooLarge(`a decoded frame would be ${frameBytes} bytes (${f.columns} x ${f.rows}), over the ${limits.maxFrameBytes}-byte limit`);
  }
  if (frameBytes * frames > limits.maxDecodedBytes) {
    throw tooLarge(`the decoded pixel data would be ${frameBytes * frames} bytes (${frames} frames), over the ${limits.maxDecodedBytes}-byte limit`);
  }
  return frameBytes;
}

/** The compressed frame's own header, checked against the dataset; returns it for the caller (MCT, sampling). */
export function checkCodestream(transferSyntaxUID: string, frame: Uint8Array, f: FrameFormat): CodestreamInfo {
  const decoder = decoderFor(transferSyntaxUID);
  if (!decoder) throw new TranscodeError('unsupported-source', `no decoder for transfer syntax ${transferSyntaxUID}`);
  let info: CodestreamInfo;
  switch (decoder.fn) {
    case 'decodeJpeg':
      info = jpegInfo(frame);
      break;
    case 'decodeJpegLs':
      info = jpegInfo(frame, 'JPEG-LS');
      break;
    case 'decodeJpeg2000':
    case 'decodeHtJpeg2000':
      info = j2kInfo(frame);
      if ((info.tiles ?? 1) > 65535) throw tooLarge(`the JPEG 2000 codestream declares ${info.tiles} tiles (at most 65535)`);
      break;
    case 'decodeRle': {
      info = rleInfo(frame, f.rows, f.columns);
      const expected = f.samplesPerPixel * (f.bitsAllocated / 8);
      if (info.components !== expected) {
        throw new TranscodeError('undecodable', `the RLE frame has ${info.components} segments, the dataset needs ${expected}`);
      }
      return info;
    }
  }
  if (info.columns * info.rows > f.columns * f.rows) {
    throw tooLarge(`the codestream declares ${info.columns} x ${info.rows}, larger than the dataset's ${f.columns} x ${f.rows}`);
  }
  if (info.columns !== f.columns || info.rows !== f.rows || info.components !== f.samplesPerPixel) {
    throw new TranscodeError(
      'undecodable',
      `the codestream declares ${info.columns} x ${info.rows} x ${info.components}, the dataset ${f.columns} x ${f.rows} x ${f.samplesPerPixel}`,
    );
  }
  if (info.precision > f.bitsAllocated) {
    throw tooLarge(`the codestream declares ${info.precision}-bit samples, more than BitsAllocated ${f.bitsAllocated}`);
  }
  return info;
}
