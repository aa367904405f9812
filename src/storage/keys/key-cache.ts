// Unwrapped study keys kept briefly in memory (SECURITY.md 4: "one unwrap per study, short-TTL LRU"): at most
// `maxKeys`, least recently used first out, and none unused for longer than `ttlMs`. An evicted key is zeroed
// in place, at any moment (another request's get() may expire it): so the keyring hands its callers copies,
// never the cached Buffer (sqlite-study-keyring.ts), and they zero their copies when done.

export interface KeyCacheOptions {
  ttlMs: number;
  maxKeys: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Entry {
  key: Buffer;
  lastUsed: number;
}

export class KeyCache {
  /** Map order is use order: get() moves an entry to the end. */
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: KeyCacheOptions) {
    this.now = options.now ?? Date.now;
    const every = Math.min(60_000, Math.max(10, Math.floor(options.ttlMs / 2)));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: string): Buffer | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    const now = this.now();
    if (now - entry.lastUsed >= this.options.ttlMs) {
      this.delete(id);
      return undefined;
    }
    entry.lastUsed = now;
    this.entries.delete(id);
    this.entries.set(id, entry);
    return entry.key;
  }

  /** Keeps `key` (the cache owns it from now on and zeroes it on eviction). */
  set(id: string, key: Buffer): void {
    const old = this.entries.get(id);
    if (old && old.key !== key) old.key.fill(0);
    this.entries.delete(id);
    this.entries.set(id, { key, lastUsed: this.now() });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.options.maxKeys) break;
      this.delete(oldest);
    }
  }

  delete(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.key.fill(0);
    this.entries.delete(id);
  }

  /** Evicts (and zeroes) every key unused for ttlMs; runs on a timer too. */
  sweep(): void {
    const now = this.now();
    for (const [id, entry] of this.entries) {
      if (now - entry.lastUsed >= this.options.ttlMs) this.delete(id);
    }
  }

  /** Zeroes every key and stops the timer. */
  close(): void {
    clearInterval(this.timer);
    for (const id of [...this.entries.keys()]) this.delete(id);
  }
}
