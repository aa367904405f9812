// Expected bytes of objects the server re-encodes on retrieve (Implicit VR LE / Explicit VR BE -> Explicit VR
// LE), and the independent check that a re-encoding holds what the stored file holds.
import type { Test } from 'tap';
import { bufferSource } from '../../src/dicom/byte-source.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import type { ParsedInstance } from '../../src/dicom/part10.js';
import { reencodeToExplicitLittleEndian } from '../../src/dicom/reencode.js';
import { transferSyntax } from '../../src/dicom/transfer-syntax.js';
import { TEST_LIMITS } from '../dicom/synthetic.js';

export async function parsed(bytes: Buffer): Promise<ParsedInstance> {
  const r = await readInstance(bufferSource(bytes), TEST_LIMITS);
  if (!r.ok) throw new Error(`not readable: ${r.failure.detail}`);
  return r.instance;
}

/** The Explicit VR Little Endian re-encoding of a stored Part 10 file, as the server sends it. */
export async function reencodedFile(stored: Buffer): Promise<Buffer> {
  const ts = transferSyntax((await parsed(stored)).transferSyntaxUID)!;
  const plan = await reencodeToExplicitLittleEndian(bufferSource(stored), ts, TEST_LIMITS);
  const chunks: Buffer[] = [];
  for await (const c of plan.chunks()) chunks.push(c);
  const out = Buffer.concat(chunks);
  if (out.length !== plan.size) throw new Error(`re-encoding yielded ${out.length} bytes, planned ${plan.size}`);
  return out;
}

/**
 * Native Pixel Data bytes of a file as little endian: swapped in 2-byte units when the file is Explicit VR
 * Big Endian and its Pixel Data is OW (PS3.5 A.3), else as stored.
 */
export function littleEndianPixels(file: Buffer, instance: ParsedInstance): Buffer {
  const px = instance.pixelData!;
  const bytes = Buffer.from(file.subarray(px.offset, px.offset + px.length));
  const ow = file.toString('latin1', px.offset - 8, px.offset - 6) === 'OW';
  if (instance.transferSyntaxUID === '1.2.840.10008.1.2.2' && ow) bytes.subarray(0, bytes.length & ~1).swap16();
  return bytes;
}

/** `sent` reads as Explicit VR Little Endian with the stored file's dataset and (little endian) pixel data. */
export async function expectSameObjectAsExplicitLE(t: Test, sent: Buffer, stored: Buffer, what: string): Promise<void> {
  const before = await parsed(stored);
  const after = await parsed(sent);
  t.equal(after.transferSyntaxUID, '1.2.840.10008.1.2.1', `${what}: reads as Explicit VR Little Endian`);
  t.same(after.dataset, before.dataset, `${what}: same DICOM JSON dataset`);
  t.equal(after.pixelData === undefined, before.pixelData === undefined, `${what}: Pixel Data present in both or neither`);
  if (before.pixelData && after.pixelData) {
    t.ok(littleEndianPixels(sent, after).equals(littleEndianPixels(stored, before)), `${what}: same pixel bytes (little endian)`);
  }
}
