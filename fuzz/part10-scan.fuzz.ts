// Fuzz target: the structural pre-scan of an uploaded Part 10 object (src/dicom/part10-scan.ts with
// part10-meta.ts, dataset-walk.ts, deflated-dataset.ts, scan-tokens.ts), which STOW runs on every part before
// any value is decoded, then the decoding step that trusts the scan's output (dataset-reader.ts
// decodeDataset, what parse-pool.ts runs in a worker).
//
// Input: the bytes of one uploaded object.
//
// Properties (a violation throws, which Jazzer.js reports as a crash):
// 1. scanPart10 never throws for bad input (its contract): every problem is a ParseFailure with a PS3.4
//    reason we use, a short printable PHI-free detail, and only valid UIDs.
// 2. A successful scan describes the bytes it was given: header ranges ascending, disjoint, inside the
//    dataset and within maxHeaderBytes; every value (leaf, bulk, Pixel Data, fragment) inside the source;
//    every leaf value inside a header range (the decoder reads leaves from those bytes only); sequences and
//    items balanced; an inflated dataset within maxInflatedBytes.
// 3. The decoder takes any scan result without throwing (a throw there is a scan/decoder disagreement that
//    STOW would report to the client as "could not be decoded").
// Hangs are the fuzzer's --timeout; memory is bounded by -rss_limit_mb and the caps below (fuzz/README.md).

import { bufferSource } from '../src/dicom/byte-source.js';
import { decodeDataset } from '../src/dicom/dataset-reader.js';
import type { ScanLimits } from '../src/dicom/part10.js';
import { scanPart10, type ScanResult } from '../src/dicom/part10-scan.js';
import { TokenKind } from '../src/dicom/scan-tokens.js';
import { FailureReason } from '../src/dicom/status-codes.js';
import { isValidUid } from '../src/dicom/uid.js';

/** Small caps, so that inputs of a few KB reach every limit (production: config/schema.ts). */
export const LIMITS: ScanLimits = { maxSequenceDepth: 12, maxElements: 2000, maxInflatedBytes: 512 * 1024, maxHeaderBytes: 16 * 1024 };

/** The reasons the scan may give (part10-scan.ts, scan-error.ts). */
const SCAN_REASONS = new Set<number>([
  FailureReason.CANNOT_UNDERSTAND,
  FailureReason.OUT_OF_RESOURCES,
  FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
]);

class PropertyViolation extends Error {
  override name = 'PropertyViolation';
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new PropertyViolation(what);
}

function checkScan(scan: ScanResult, input: Buffer): void {
  const size = scan.source.size;
  check(scan.datasetOffset >= 132 && scan.datasetOffset <= input.length, `dataset offset ${scan.datasetOffset} outside the input`);
  if (scan.transferSyntax.deflated) check(size - scan.datasetOffset <= LIMITS.maxInflatedBytes, `inflated ${size - scan.datasetOffset} bytes`);
  else check(size === input.length, `source size ${size} for ${input.length} input bytes`);

  let end = scan.datasetOffset;
  let total = 0;
  for (const r of scan.headerRanges) {
    check(r.length > 0 && r.offset >= end && r.offset + r.length <= size, `header range ${r.offset}+${r.length} after ${end} in ${size}`);
    end = r.offset + r.length;
    total += r.length;
  }
  check(total === scan.headerBytes && total <= LIMITS.maxHeaderBytes, `header bytes ${scan.headerBytes}, ranges ${total}`);

  const inHeader = (offset: number, length: number): boolean =>
    length === 0 || scan.headerRanges.some((r) => offset >= r.offset && offset + length <= r.offset + r.length);
  const t = scan.tokens;
  let depth = 0;
  for (let i = 0; i < t.length; i++) {
    const kind = t.kind[i]!;
    const offset = t.offset[i]!;
    const length = t.valueLength[i]!;
    check(offset >= scan.datasetOffset && offset <= size, `token ${i} at ${offset} outside the dataset`);
    if (kind === TokenKind.Leaf) check(inHeader(offset, length), `leaf ${i} value ${offset}+${length} not in the header ranges`);
    if (kind === TokenKind.Leaf || kind === TokenKind.Bulk || kind === TokenKind.PixelData) {
      check(offset + length <= size, `token ${i} value ${offset}+${length} runs past ${size}`);
    }
    if (kind === TokenKind.SequenceStart || kind === TokenKind.ItemStart) depth++;
    if (kind === TokenKind.SequenceEnd || kind === TokenKind.ItemEnd) check(--depth >= 0, `token ${i} closes nothing`);
    // items inside sequences: 2 levels per nesting level
    check(depth <= 2 * LIMITS.maxSequenceDepth + 1, `nesting ${depth} over the cap`);
  }
  check(depth === 0, `${depth} sequences or items left open`);

  const px = scan.pixelData;
  if (px) {
    check(px.offset >= scan.datasetOffset && px.offset + px.length <= size, `pixel data ${px.offset}+${px.length} in ${size}`);
    for (const f of px.fragments ?? []) {
      check(f.offset >= px.offset && f.offset + f.length <= px.offset + px.length, `fragment ${f.offset}+${f.length} outside pixel data`);
    }
  }
}

export async function fuzz(data: Buffer): Promise<void> {
  let outcome: Awaited<ReturnType<typeof scanPart10>>;
  try {
    outcome = await scanPart10(bufferSource(data), LIMITS);
  } catch (e) {
    throw new PropertyViolation(`scanPart10 threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  if (!outcome.ok) {
    const f = outcome.failure;
    check(SCAN_REASONS.has(f.reason), `failure reason ${f.reason.toString(16)}`);
    // PHI-free: built from tags, offsets and numbers, never from value bytes.
    check(/^[\x20-\x7e]{1,300}$/.test(f.detail), `failure detail ${JSON.stringify(f.detail)}`);
    check(f.sopClassUID === undefined || isValidUid(f.sopClassUID), 'invalid SOP Class UID in the failure');
    check(f.sopInstanceUID === undefined || isValidUid(f.sopInstanceUID), 'invalid SOP Instance UID in the failure');
    return;
  }
  const scan = outcome.scan;
  checkScan(scan, data);

  const parts: Buffer[] = [];
  for (const r of scan.headerRanges) parts.push(await scan.source.read(r.offset, r.length));
  try {
    decodeDataset({ tokens: scan.tokens, ranges: scan.headerRanges, header: Buffer.concat(parts) });
  } catch (e) {
    throw new PropertyViolation(`the decoder refused a scanned object: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}
