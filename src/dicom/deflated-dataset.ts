// Deflated Explicit VR Little Endian (PS3.5 A.5): everything after the File Meta group is one raw DEFLATE
// stream. It is inflated whole, on the thread pool, and never past maxInflatedBytes (a deflate bomb stops at
// the cap); the result is a ByteSource in which the dataset appears inflated at its original offset.

import { promisify } from 'node:util';
import { inflate, inflateRaw } from 'node:zlib';
import type { ByteSource, ScanLimits } from './part10.js';
import { cannot, tooBig } from './scan-error.js';

const inflateRawAsync = promisify(inflateRaw);
const inflateAsync = promisify(inflate);

export async function inflateDataset(source: ByteSource, datasetOffset: number, limits: ScanLimits): Promise<ByteSource> {
  const compressedLength = source.size - datasetOffset;
  if (compressedLength > limits.maxInflatedBytes) {
    throw tooBig(`deflated dataset is larger than the ${limits.maxInflatedBytes}-byte inflate cap`);
  }
  const compressed = await source.read(datasetOffset, compressedLength);
  // Asynchronous zlib runs on the thread pool, and maxOutputLength stops a deflate bomb at the cap.
  const options = { maxOutputLength: Math.max(1, limits.maxInflatedBytes) };
  let inflated: Buffer;
  try {
    inflated = await inflateRawAsync(compressed, options);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw tooBig(`inflated dataset exceeds the ${limits.maxInflatedBytes}-byte cap`);
    }
    try {
      // Some old writers wrapped the stream in a zlib header, against PS3.5 A.5; accept that too.
      inflated = await inflateAsync(compressed, options);
    } catch (err2) {
      if ((err2 as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw tooBig(`inflated dataset exceeds the ${limits.maxInflatedBytes}-byte cap`);
      }
      throw cannot('deflated dataset is not a valid DEFLATE stream');
    }
  }
  // Offsets keep counting from the start of the file, as if the dataset had been stored inflated.
  return {
    size: datasetOffset + inflated.length,
    read: async (offset, length) =>
      offset >= datasetOffset
        ? inflated.subarray(offset - datasetOffset, offset - datasetOffset + length)
        : source.read(offset, length),
  };
}
