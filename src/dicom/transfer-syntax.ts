// The transfer syntaxes this server accepts (PS3.5 Annex A, PS3.6 Annex A) and the WADO-RS media type of
// their frames (PS3.18 8.7.3, Table 8.7.3-2). Anything else is refused with C122 at STOW time.

export interface TransferSyntax {
  uid: string;
  name: string;
  explicitVr: boolean;
  littleEndian: boolean;
  /** Dataset after the File Meta group is a raw DEFLATE stream (PS3.5 A.5). */
  deflated: boolean;
  /** Pixel Data is encapsulated in fragments (PS3.5 A.4). */
  encapsulated: boolean;
  lossy: boolean;
  /** Media type of one frame in a WADO-RS frames response. */
  frameMediaType: string;
}

const OCTET = 'application/octet-stream';

function native(uid: string, name: string, explicitVr: boolean, littleEndian: boolean, deflated = false): TransferSyntax {
  return { uid, name, explicitVr, littleEndian, deflated, encapsulated: false, lossy: false, frameMediaType: OCTET };
}

// Encapsulated syntaxes are all Explicit VR Little Endian (PS3.5 A.4).
function encapsulated(uid: string, name: string, lossy: boolean, frameMediaType: string): TransferSyntax {
  return { uid, name, explicitVr: true, littleEndian: true, deflated: false, encapsulated: true, lossy, frameMediaType };
}

export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';
export const EXPLICIT_VR_BIG_ENDIAN = '1.2.840.10008.1.2.2';

const ALL: TransferSyntax[] = [
  native(IMPLICIT_VR_LITTLE_ENDIAN, 'Implicit VR Little Endian', false, true),
  native(EXPLICIT_VR_LITTLE_ENDIAN, 'Explicit VR Little Endian', true, true),
  native(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, 'Deflated Explicit VR Little Endian', true, true, true),
  native(EXPLICIT_VR_BIG_ENDIAN, 'Explicit VR Big Endian (retired)', true, false),
  encapsulated('1.2.840.10008.1.2.4.50', 'JPEG Baseline (Process 1)', true, 'image/jpeg'),
  encapsulated('1.2.840.10008.1.2.4.51', 'JPEG Extended (Process 2 & 4)', true, 'image/jpeg'),
  encapsulated('1.2.840.10008.1.2.4.57', 'JPEG Lossless, Non-Hierarchical (Process 14)', false, 'image/jpeg'),
  encapsulated('1.2.840.10008.1.2.4.70', 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 SV1)', false, 'image/jpeg'),
  encapsulated('1.2.840.10008.1.2.4.80', 'JPEG-LS Lossless', false, 'image/jls'),
  encapsulated('1.2.840.10008.1.2.4.81', 'JPEG-LS Lossy (Near-Lossless)', true, 'image/jls'),
  encapsulated('1.2.840.10008.1.2.4.90', 'JPEG 2000 (Lossless Only)', false, 'image/jp2'),
  encapsulated('1.2.840.10008.1.2.4.91', 'JPEG 2000', true, 'image/jp2'),
  encapsulated('1.2.840.10008.1.2.4.92', 'JPEG 2000 Part 2 Multi-component (Lossless Only)', false, 'image/jpx'),
  encapsulated('1.2.840.10008.1.2.4.93', 'JPEG 2000 Part 2 Multi-component', true, 'image/jpx'),
  encapsulated('1.2.840.10008.1.2.5', 'RLE Lossless', false, 'image/dicom-rle'),
  encapsulated('1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile @ Main Level', true, 'video/mpeg2'),
  encapsulated('1.2.840.10008.1.2.4.101', 'MPEG2 Main Profile @ High Level', true, 'video/mpeg2'),
  encapsulated('1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264 High Profile / Level 4.1', true, 'video/mp4'),
  encapsulated('1.2.840.10008.1.2.4.103', 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1', true, 'video/mp4'),
  encapsulated('1.2.840.10008.1.2.4.104', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video', true, 'video/mp4'),
  encapsulated('1.2.840.10008.1.2.4.105', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video', true, 'video/mp4'),
  encapsulated('1.2.840.10008.1.2.4.106', 'MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2', true, 'video/mp4'),
  encapsulated('1.2.840.10008.1.2.4.107', 'HEVC/H.265 Main Profile / Level 5.1', true, 'video/mp4'),
  encapsulated('1.2.840.10008.1.2.4.108', 'HEVC/H.265 Main 10 Profile / Level 5.1', true, 'video/mp4'),
  // HTJ2K (PS3.18 Table 8.7.3-2, added by Sup 235): image/jphc.
  encapsulated('1.2.840.10008.1.2.4.201', 'High-Throughput JPEG 2000 (Lossless Only)', false, 'image/jphc'),
  encapsulated('1.2.840.10008.1.2.4.202', 'High-Throughput JPEG 2000 with RPCL Options (Lossless Only)', false, 'image/jphc'),
  encapsulated('1.2.840.10008.1.2.4.203', 'High-Throughput JPEG 2000', true, 'image/jphc'),
];

const BY_UID: ReadonlyMap<string, TransferSyntax> = new Map(ALL.map((ts) => [ts.uid, ts]));

/** Every supported transfer syntax, in a stable order. */
export const TRANSFER_SYNTAXES: readonly TransferSyntax[] = ALL;

/** The supported transfer syntax with this UID, or undefined (caller answers C122). */
export function transferSyntax(uid: string): TransferSyntax | undefined {
  return BY_UID.get(uid);
}

/**
 * The transfer syntax a frame media type stands for when the client names none (PS3.18 8.7.3.5.2 and Table
 * 8.7.3-2: the default of each frame media type). image/jpx has no entry: nothing here encodes JPEG 2000 Part 2.
 */
export const FRAME_MEDIA_TYPE_DEFAULT_SYNTAX: Readonly<Record<string, string>> = {
  'application/octet-stream': EXPLICIT_VR_LITTLE_ENDIAN,
  'image/jpeg': '1.2.840.10008.1.2.4.70',
  'image/jls': '1.2.840.10008.1.2.4.80',
  'image/jp2': '1.2.840.10008.1.2.4.90',
  'image/jphc': '1.2.840.10008.1.2.4.201',
  'image/dicom-rle': '1.2.840.10008.1.2.5',
};

/**
 * Pre-standard names of frame media types that clients still send, with the registered name (PS3.18 Table
 * 8.7.3-2). dicomweb-client 0.11.3 asks for RLE frames as image/x-dicom-rle, JPEG-LS as image/x-jls and HTJ2K as
 * image/jhc. Answers use the registered name.
 */
export const FRAME_MEDIA_TYPE_ALIASES: Readonly<Record<string, string>> = {
  'image/x-dicom-rle': 'image/dicom-rle',
  'image/x-jls': 'image/jls',
  'image/jhc': 'image/jphc',
};

/** The media type of one frame in this syntax (application/octet-stream for the native ones). */
export function frameMediaTypeOf(uid: string): string {
  return transferSyntax(uid)?.frameMediaType ?? OCTET;
}
