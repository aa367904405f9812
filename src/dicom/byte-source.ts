// ByteSource implementations (the interface is in part10.ts): one over a Buffer, one over an open file.

import { open, type FileHandle } from 'node:fs/promises';
import type { ByteSource } from './part10.js';

/** A ByteSource over bytes already in memory; reads are views, not copies. */
export function bufferSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    read: async (offset, length) => buf.subarray(offset, offset + length),
  };
}

/** A ByteSource over a file, read positionally; close it when done. */
export async function fileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const handle: FileHandle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    size,
    async read(offset, length) {
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new Error('file shrank while being read');
        done += bytesRead;
      }
      return buf;
    },
    close: () => handle.close(),
  };
}
