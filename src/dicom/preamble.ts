// The PS3.10 preamble (PS3.10 7.1, 7.5): the 128 bytes before "DICM". An application profile may put a TIFF header
// there (dual-format files); otherwise it should be zeros, though viewers and converters often leave their name in
// it. A program header makes the file a valid program too (a PE/ELF polyglot, CVE-2019-11687; SECURITY.md 8 case
// 26): the archive stores such a preamble as zeros, and keeps any other one as sent (retrieval stays byte-equal).

export const PREAMBLE_BYTES = 128;

/** What a preamble holds: only 'executable' is zeroed on store. */
export type PreambleContent = 'zeros' | 'tiff' | 'executable' | 'other';

/** Program headers a polyglot would carry: PE (MZ), ELF, Mach-O (both byte orders, 32/64 bit), a script (#!). */
const EXECUTABLE_MAGIC = [Buffer.from('MZ'), Buffer.from('\x7fELF', 'latin1'), Buffer.from('#!')];
const MACH_O = new Set([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe]);

export function preambleContent(preamble: Buffer): PreambleContent {
  if (!preamble.some((b) => b !== 0)) return 'zeros';
  const magic = preamble.toString('latin1', 0, 4);
  if (magic === 'II*\0' || magic === 'MM\0*') return 'tiff';
  if (EXECUTABLE_MAGIC.some((m) => preamble.subarray(0, m.length).equals(m))) return 'executable';
  if (preamble.length >= 4 && MACH_O.has(preamble.readUInt32BE(0))) return 'executable';
  return 'other';
}

/**
 * Passes an object's bytes through, with its preamble zeroed when it starts with a program header.
 * The first 128 bytes are held back until they are all in (chunks may be smaller); an object shorter than that is
 * passed on as it is (the pre-scan refuses it). Never changes a chunk it was given: the zeroed preamble is a copy.
 */
export class PreambleGuard {
  private head: Buffer[] = [];
  private headBytes = 0;
  private released = false;
  /** What the preamble held when it was zeroed (undefined: left as it was). */
  zeroed: 'executable' | undefined;

  /** The bytes to write for `chunk` (none while the preamble is still incomplete). */
  pass(chunk: Buffer): Buffer[] {
    if (this.released) return [chunk];
    this.head.push(chunk);
    this.headBytes += chunk.length;
    return this.headBytes < PREAMBLE_BYTES ? [] : this.release();
  }

  /** What is still held back, at the end of the object. */
  end(): Buffer[] {
    return this.released ? [] : this.release();
  }

  private release(): Buffer[] {
    this.released = true;
    const head = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head, this.headBytes);
    this.head = [];
    if (head.length < PREAMBLE_BYTES) return head.length > 0 ? [head] : [];
    if (preambleContent(head.subarray(0, PREAMBLE_BYTES)) !== 'executable') return [head];
    this.zeroed = 'executable';
    return [Buffer.alloc(PREAMBLE_BYTES), head.subarray(PREAMBLE_BYTES)].filter((b) => b.length > 0);
  }
}
