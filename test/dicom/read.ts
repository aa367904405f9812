// Shared by the reader tests: read a Buffer or a corpus file with the test caps.

import { bufferSource } from '../../src/dicom/byte-source.js';
import { readInstance } from '../../src/dicom/dataset-reader.js';
import type { ParsedInstance, ParseFailure, ReadResult, ScanLimits } from '../../src/dicom/part10.js';
import { testFile } from '../helpers/testdata.js';
import { TEST_LIMITS } from './synthetic.js';

export function read(bytes: Buffer, limits: ScanLimits = TEST_LIMITS): Promise<ReadResult> {
  return readInstance(bufferSource(bytes), limits);
}

export function readFile(rel: string, limits: ScanLimits = TEST_LIMITS): Promise<ReadResult> {
  return read(testFile(rel), limits);
}

/** The instance of an accepted object; throws (failing the test) with the failure otherwise. */
export async function accepted(bytes: Buffer, limits: ScanLimits = TEST_LIMITS): Promise<ParsedInstance> {
  const r = await read(bytes, limits);
  if (!r.ok) throw new Error(`expected the object to be accepted, got ${JSON.stringify(r.failure)}`);
  return r.instance;
}

/** The failure of a refused object; throws (failing the test) if it was accepted. */
export async function refused(bytes: Buffer, limits: ScanLimits = TEST_LIMITS): Promise<ParseFailure> {
  const r = await read(bytes, limits);
  if (r.ok) throw new Error('expected the object to be refused, it was accepted');
  return r.failure;
}
