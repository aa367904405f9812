// Recently made thumbnails, in process memory (issue 9 item 3): a study list shows the same thumbnails again and
// again, and each one costs a decode. Bounded by bytes, least recently used out first.
//
// Keyed by the stored object (blob key and SHA-256 of its bytes) and the thumbnail's parameters: an instance
// replaced with other bytes (stow.duplicatePolicy=replace) has another blob, so its old thumbnail is never found
// again and ages out. The cache is consulted only after the route's access and existence checks, so a deleted,
// purged or unreadable instance is never answered from it; `forget` drops a blob's entries when the caller knows
// it is gone. Nothing is written to disk: the thumbnails are derived PHI and live as long as the process, like the
// decoded frames a request holds. (A cache on disk would have to go through the blob store's encryption and the
// purge: not done, see docs/rendering.md.)

import type { StoredInstanceRef } from '../index/index-store.js';
import type { Rendered } from '../render/renderer.js';

export class ThumbnailCache {
  private readonly entries = new Map<string, Rendered>();
  private bytes = 0;

  /** maxBytes 0: nothing is kept. */
  constructor(private readonly maxBytes: number) {}

  static key(ref: StoredInstanceRef, frame: number, box: { vw: number; vh: number }): string {
    return `${ref.blobKey}\0${ref.sha256}\0${frame}\0${box.vw}x${box.vh}`;
  }

  get(key: string): Rendered | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      // Most recently used last: Map keeps insertion order.
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  set(key: string, value: Rendered): void {
    const size = value.bytes.length;
    if (size > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.bytes.length;
    }
    this.entries.set(key, value);
    this.bytes += size;
    while (this.bytes > this.maxBytes) {
      const [oldest, v] = this.entries.entries().next().value as [string, Rendered];
      this.entries.delete(oldest);
      this.bytes -= v.bytes.length;
    }
  }

  /** Drops every entry of a blob. */
  forget(blobKey: string): void {
    for (const [k, v] of this.entries) {
      if (k.startsWith(`${blobKey}\0`)) {
        this.entries.delete(k);
        this.bytes -= v.bytes.length;
      }
    }
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}
