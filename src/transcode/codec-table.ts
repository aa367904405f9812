// Which codec of dcmjs-codecs (docs/transcoding.md) reads and writes each encapsulated transfer syntax
// (PS3.5 Annex A.4, PS3.6 Annex A), and how a lossy encoding is recorded in Lossy Image Compression Method
// (0028,2114), PS3.3 C.7.6.1.1.5.1 (Defined Terms ISO_10918_1, ISO_14495_1, ISO_15444_1, ISO_15444_15).

export type DecodeFunction = 'decodeJpeg' | 'decodeJpegLs' | 'decodeJpeg2000' | 'decodeHtJpeg2000' | 'decodeRle';
export type EncodeFunction = 'encodeJpeg' | 'encodeJpegLs' | 'encodeJpeg2000' | 'encodeHtJpeg2000' | 'encodeRle';

export interface EncodeEntry {
  fn: EncodeFunction;
  params: Record<string, number | boolean>;
  lossy: boolean;
  /** PS3.3 C.7.6.1.1.5.1 Defined Term for Lossy Image Compression Method. */
  method: string;
  /** Bits Allocated values the encoder takes (JPEG baseline is 8-bit only, ISO 10918-1 process 1). */
  bitsAllocated: readonly number[];
}

const JPEG = 'ISO_10918_1';
const JPEG_LS = 'ISO_14495_1';
const JPEG_2000 = 'ISO_15444_1';
const HTJ2K = 'ISO_15444_15';

const DECODERS: Readonly<Record<string, { fn: DecodeFunction; method: string }>> = {
  '1.2.840.10008.1.2.4.50': { fn: 'decodeJpeg', method: JPEG },
  '1.2.840.10008.1.2.4.51': { fn: 'decodeJpeg', method: JPEG },
  '1.2.840.10008.1.2.4.57': { fn: 'decodeJpeg', method: JPEG },
  '1.2.840.10008.1.2.4.70': { fn: 'decodeJpeg', method: JPEG },
  '1.2.840.10008.1.2.4.80': { fn: 'decodeJpegLs', method: JPEG_LS },
  '1.2.840.10008.1.2.4.81': { fn: 'decodeJpegLs', method: JPEG_LS },
  '1.2.840.10008.1.2.4.90': { fn: 'decodeJpeg2000', method: JPEG_2000 },
  '1.2.840.10008.1.2.4.91': { fn: 'decodeJpeg2000', method: JPEG_2000 },
  '1.2.840.10008.1.2.4.201': { fn: 'decodeHtJpeg2000', method: HTJ2K },
  '1.2.840.10008.1.2.4.202': { fn: 'decodeHtJpeg2000', method: HTJ2K },
  '1.2.840.10008.1.2.4.203': { fn: 'decodeHtJpeg2000', method: HTJ2K },
  '1.2.840.10008.1.2.5': { fn: 'decodeRle', method: '' },
};

// JpegSampleFactor.Sf422 = 1 and Jpeg2000ProgressionOrder.Rpcl = 2 in dcmjs-codecs' constants.
const SF_422 = 1;
const RPCL = 2;
const ANY = [8, 16] as const;

const ENCODERS: Readonly<Record<string, EncodeEntry>> = {
  // Lossy JPEG baseline, 8-bit, colour as YCbCr 4:2:2 (PS3.5 8.2.1: YBR_FULL_422).
  '1.2.840.10008.1.2.4.50': { fn: 'encodeJpeg', params: { lossy: true, quality: 90, sampleFactor: SF_422 }, lossy: true, method: JPEG, bitsAllocated: [8] },
  // Process 14, selection value 1 (PS3.5 A.4.1).
  '1.2.840.10008.1.2.4.70': { fn: 'encodeJpeg', params: { lossy: false, predictor: 1, pointTransform: 0 }, lossy: false, method: JPEG, bitsAllocated: ANY },
  '1.2.840.10008.1.2.4.80': { fn: 'encodeJpegLs', params: { lossy: false }, lossy: false, method: JPEG_LS, bitsAllocated: ANY },
  // NEAR = 2: each sample within +-2 of the original (ISO 14495-1).
  '1.2.840.10008.1.2.4.81': { fn: 'encodeJpegLs', params: { lossy: true, allowedLossyError: 2 }, lossy: true, method: JPEG_LS, bitsAllocated: ANY },
  '1.2.840.10008.1.2.4.90': { fn: 'encodeJpeg2000', params: { lossy: false }, lossy: false, method: JPEG_2000, bitsAllocated: ANY },
  '1.2.840.10008.1.2.4.91': { fn: 'encodeJpeg2000', params: { lossy: true, rate: 10 }, lossy: true, method: JPEG_2000, bitsAllocated: ANY },
  '1.2.840.10008.1.2.4.201': { fn: 'encodeHtJpeg2000', params: { lossy: false }, lossy: false, method: HTJ2K, bitsAllocated: ANY },
  '1.2.840.10008.1.2.4.202': { fn: 'encodeHtJpeg2000', params: { lossy: false, progressionOrder: RPCL }, lossy: false, method: HTJ2K, bitsAllocated: ANY },
  '1.2.840.10008.1.2.4.203': { fn: 'encodeHtJpeg2000', params: { lossy: true }, lossy: true, method: HTJ2K, bitsAllocated: ANY },
  '1.2.840.10008.1.2.5': { fn: 'encodeRle', params: {}, lossy: false, method: '', bitsAllocated: [8, 16, 32] },
};

export const decoderFor = (uid: string) => DECODERS[uid];
export const encoderFor = (uid: string) => ENCODERS[uid];

/** Every transfer syntax this server can transcode into, for the negotiation (src/http/negotiate.ts). */
export const ENCODABLE_TRANSFER_SYNTAXES: readonly string[] = ['1.2.840.10008.1.2.1', ...Object.keys(ENCODERS)];
/** Every encapsulated transfer syntax this server can decode. */
export const DECODABLE_TRANSFER_SYNTAXES: readonly string[] = Object.keys(DECODERS);
