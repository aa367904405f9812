// Group commit of the index's write-ahead log (issue 8): a flush (fdatasync) is run at most once at a time, and
// every caller that arrives while one runs shares the next one. The flush that is running may have started
// before a caller's write reached the log, so it cannot count for that caller; the next one starts after it,
// hence after the write. N concurrent STOW requests thus pay one or two fdatasyncs between them instead of N,
// and none of them on the event loop.

export class GroupFlush {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly flushOnce: () => Promise<void>) {}

  /** Resolves once a flush that started after this call has completed; rejects with that flush's error. */
  flush(): Promise<void> {
    if (this.running === undefined) return this.start();
    this.next ??= this.running
      .catch(() => undefined) // the running flush's failure is its own callers' business
      .then(() => {
        this.next = undefined;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<void> {
    const run: Promise<void> = this.flushOnce().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }
}
