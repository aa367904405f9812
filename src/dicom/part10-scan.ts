// Structural pre-scan of an untrusted DICOM Part 10 object, before any value is decoded.
//
// Why: dcmjs (and most parsers) accept truncated files, trust 4 GiB value lengths and recurse once per nested
// sequence, which turns a 700 KB upload into a minute of CPU (SECURITY.md section 8). The scan is iterative,
// reads only element headers (values are skipped by length, so a 2 GB file costs a few reads), checks every
// length against its container and the file, and stops at the caps in ScanLimits.
//
//   part10-meta.ts       preamble, DICM, File Meta group          (PS3.10 7.1)
//   deflated-dataset.ts  inflation of Deflated Explicit VR LE     (PS3.5 A.5)
//   dataset-walk.ts      the dataset: elements, sequences, items, encapsulated fragments (PS3.5 7, A.4)

import { walkDataset, type HeaderRange } from './dataset-walk.js';
import { inflateDataset } from './deflated-dataset.js';
import type { ByteSource, ParseFailure, PixelDataLocation, ScanLimits } from './part10.js';
import { readMeta, readPreamble, type Meta } from './part10-meta.js';
import { ScanError, cannot, tooBig } from './scan-error.js';
import type { TokenList } from './scan-tokens.js';
import { FailureReason } from './status-codes.js';
import { transferSyntax, type TransferSyntax } from './transfer-syntax.js';
import { isValidUid } from './uid.js';

export { INLINE_BINARY_MAX, type HeaderRange } from './dataset-walk.js';
export { formatTag } from './scan-error.js';

export interface ScanResult {
  transferSyntax: TransferSyntax;
  /**
   * The bytes every offset below refers to: the file itself, or for Deflated Explicit VR Little Endian a view in
   * which the dataset is inflated (offsets past `datasetOffset` count inflated bytes).
   */
  source: ByteSource;
  datasetOffset: number;
  mediaStorageSOPClassUID?: string;
  mediaStorageSOPInstanceUID?: string;
  /** Top-level (0008,0016) / (0008,0018) as seen while scanning (for failure reports). */
  sopClassUID?: string;
  sopInstanceUID?: string;
  tokens: TokenList;
  /** Ascending, disjoint ranges of the dataset that are not bulk values. */
  headerRanges: HeaderRange[];
  headerBytes: number;
  pixelData?: PixelDataLocation;
}

export type ScanOutcome = { ok: true; scan: ScanResult } | { ok: false; failure: ParseFailure };

function uidOrNothing(value: string | undefined): string | undefined {
  return value !== undefined && isValidUid(value) ? value : undefined;
}

/**
 * Checks the structure of a Part 10 object within the caps and locates its header and bulk values.
 * Never throws for bad input: every problem is a ParseFailure value with a PHI-free detail.
 */
export async function scanPart10(source: ByteSource, limits: ScanLimits): Promise<ScanOutcome> {
  let meta: Meta | undefined;
  const seen: { sopClassUID?: string; sopInstanceUID?: string } = {};
  try {
    await readPreamble(source);
    meta = await readMeta(source, limits);
    const tsUid = meta.transferSyntaxUID;
    if (tsUid === undefined) throw cannot('File Meta Information has no Transfer Syntax UID (0002,0010)');
    const ts = transferSyntax(tsUid);
    if (!ts) {
      throw new ScanError(
        FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
        isValidUid(tsUid) ? `transfer syntax ${tsUid} is not supported` : 'Transfer Syntax UID (0002,0010) is not a valid UID',
      );
    }
    const datasetSource = ts.deflated ? await inflateDataset(source, meta.datasetOffset, limits) : source;
    const walk = await walkDataset(datasetSource, meta.datasetOffset, ts, limits, seen);
    if (walk.headerBytes > limits.maxHeaderBytes) {
      throw tooBig(`non-bulk data is ${walk.headerBytes} bytes, over the ${limits.maxHeaderBytes}-byte cap`);
    }
    const scan: ScanResult = {
      transferSyntax: ts,
      source: datasetSource,
      datasetOffset: meta.datasetOffset,
      tokens: walk.tokens,
      headerRanges: walk.headerRanges,
      headerBytes: walk.headerBytes,
    };
    if (meta.mediaStorageSOPClassUID !== undefined) scan.mediaStorageSOPClassUID = meta.mediaStorageSOPClassUID;
    if (meta.mediaStorageSOPInstanceUID !== undefined) scan.mediaStorageSOPInstanceUID = meta.mediaStorageSOPInstanceUID;
    if (seen.sopClassUID !== undefined) scan.sopClassUID = seen.sopClassUID;
    if (seen.sopInstanceUID !== undefined) scan.sopInstanceUID = seen.sopInstanceUID;
    if (walk.pixelData) scan.pixelData = walk.pixelData;
    return { ok: true, scan };
  } catch (err) {
    if (!(err instanceof ScanError)) throw err;
    // Whatever UIDs were read before the failure go into the FailedSOPSequence item (PS3.18 I.2.2).
    const failure: ParseFailure = { reason: err.reason, detail: err.message };
    const sopClassUID = uidOrNothing(seen.sopClassUID ?? meta?.mediaStorageSOPClassUID);
    const sopInstanceUID = uidOrNothing(seen.sopInstanceUID ?? meta?.mediaStorageSOPInstanceUID);
    if (sopClassUID) failure.sopClassUID = sopClassUID;
    if (sopInstanceUID) failure.sopInstanceUID = sopInstanceUID;
    return { ok: false, failure };
  }
}
