// Contract of the Part 10 reader: what STOW needs to know about one uploaded object.
// The implementation (part10-scan.ts + dataset-reader.ts) walks the structure with caps *before*
// handing anything to dcmjs, because dcmjs accepts truncated files and burns seconds on deep sequences
// (DESIGN.md "Known pitfalls").

import type { DicomJsonDataset } from './json-model.js';
import type { FailureReasonCode } from './status-codes.js';

/** Random-access view of bytes that may live in a file or in memory. */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes from `offset` (the caller stays within size). */
  read(offset: number, length: number): Promise<Buffer>;
}

export interface ScanLimits {
  /** Deepest sequence nesting accepted (fo-dicom guards at 256; we are stricter). */
  maxSequenceDepth: number;
  /** Most data elements accepted in one object, all nesting levels counted. */
  maxElements: number;
  /** Largest inflated size of a Deflated Explicit VR Little Endian dataset. */
  maxInflatedBytes: number;
  /** Largest non-pixel header (everything but Pixel Data and other bulk values) read into memory. */
  maxHeaderBytes: number;
}

/**
 * Where the pixel data sits in the stored Part 10 bytes; frames are computed from it (WADO-RS frames).
 * For Deflated Explicit VR Little Endian the offsets count bytes of the file as if its dataset were inflated
 * (the File Meta group, then the inflated dataset): inflate before slicing.
 */
export interface PixelDataLocation {
  /** Offset of the value field (after the element header) in the file. */
  offset: number;
  /** Value length in bytes; undefined length (encapsulated) is resolved to the real length. */
  length: number;
  encapsulated: boolean;
  /** For encapsulated pixel data: each fragment's value offset and length in the file, BOT item excluded. */
  fragments?: { offset: number; length: number }[];
  /** Basic Offset Table entries, when present and non-empty. */
  basicOffsetTable?: number[];
  /**
   * Without a Basic Offset Table and with more fragments than frames: the index of each frame's first fragment,
   * from the Extended Offset Table or the codec's start markers (frame-starts.ts). Absent when not needed or
   * not found.
   */
  frameStarts?: number[];
}

/**
 * A value left out of `dataset` because it is large (it gets a BulkDataURI, PS3.18 F.2.7): Float/Double Float
 * Pixel Data, and binary or numeric-array values over the reader's inline threshold (64 KiB), at any depth.
 * Offsets are as in PixelDataLocation.
 */
export interface BulkDataLocation {
  /** Attribute path from the top level: tag, item index (0-based), tag, ... e.g. ['54000100', 0, '54001010']. */
  path: (string | number)[];
  vr: string;
  offset: number;
  length: number;
  /** True for an encapsulated (fragmented) value nested in a sequence, e.g. an icon in a compressed syntax. */
  encapsulated?: boolean;
}

export interface ParsedInstance {
  transferSyntaxUID: string;
  /** From the dataset; may be absent (the store service decides what that means). */
  sopClassUID?: string;
  sopInstanceUID?: string;
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
  /** (0002,0003) and (0002,0002), to detect a meta header that contradicts the dataset. */
  mediaStorageSOPInstanceUID?: string;
  mediaStorageSOPClassUID?: string;
  /**
   * Every top-level and nested attribute in the DICOM JSON Model, values decoded with the object's
   * Specific Character Set. Bulk values (Pixel Data, and binary values over the inline threshold)
   * are omitted here; their locations are in `pixelData` / `bulk`.
   */
  dataset: DicomJsonDataset;
  pixelData?: PixelDataLocation;
  /** Values omitted from `dataset` other than the top-level Pixel Data. */
  bulk?: BulkDataLocation[];
}

/** A part that is not an acceptable DICOM object, with the PS3.4 reason and a PHI-free explanation. */
export interface ParseFailure {
  reason: FailureReasonCode;
  /** Short, PHI-free, for the client and the log: e.g. "value length of (0008,1030) runs past the end". */
  detail: string;
  /** Whatever UIDs could be read before the failure, for the FailedSOPSequence item. */
  sopClassUID?: string;
  sopInstanceUID?: string;
}

export type ReadResult = { ok: true; instance: ParsedInstance } | { ok: false; failure: ParseFailure };

export type InstanceReader = (source: ByteSource, limits: ScanLimits) => Promise<ReadResult>;
