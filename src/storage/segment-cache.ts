// The last few decrypted segments of one blob. Readers ask for windows that straddle segment boundaries
// (the DICOM scan reads 256 KiB windows at arbitrary offsets): without this each segment is decrypted twice.
// Holds plaintext, so it is per blob, tiny, and zeroes what it drops.

export class SegmentCache {
  private readonly entries = new Map<number, Buffer>();

  constructor(private readonly capacity: number) {}

  get(index: number): Buffer | undefined {
    return this.entries.get(index);
  }

  set(index: number, plain: Buffer): void {
    this.entries.delete(index);
    this.entries.set(index, plain);
    if (this.entries.size > this.capacity) {
      const [oldest, buf] = this.entries.entries().next().value as [number, Buffer];
      buf.fill(0);
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    for (const buf of this.entries.values()) buf.fill(0);
    this.entries.clear();
  }
}
