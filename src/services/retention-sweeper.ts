// The server's scheduled purge (issue 6 item 4): every retention.sweepIntervalMs, purge.ts removes what has waited
// in the bin for its grace period. Runs never overlap (the next is scheduled when one ends, not on a fixed
// interval), the timer does not keep the process alive, and stop() waits for a run in progress. Each run's report
// goes to onPurged (the composition root writes the 110105 audit records); errors go to the log without PHI (an
// error's message only: never the report, whose PatientIDs are for the audit trail).

import { purge, type PurgeDeps, type PurgeReport } from './purge.js';

export interface SweeperLog {
  info(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface SweeperOptions {
  deps: PurgeDeps;
  batchSize: number;
  /** Called after each run that purged something or kept something for a hold; awaited (an audit append). */
  onPurged: (report: PurgeReport) => Promise<void> | void;
  log: SweeperLog;
  now?: () => Date;
  /** Asked before each run; false skips it (the server: while the audit trail cannot be written, nothing is purged). */
  canRun?: () => boolean;
}

export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(private readonly options: SweeperOptions) {}

  /** Runs every `intervalMs` (the first run after one interval); 0 or less: never. */
  start(intervalMs: number): void {
    if (intervalMs <= 0 || !this.stopped) return;
    this.stopped = false;
    const schedule = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.runOnce().finally(schedule);
      }, intervalMs);
      this.timer.unref();
    };
    schedule();
  }

  /** One run now, or the run already in progress (never two at once). */
  runOnce(): Promise<void> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** No further runs; resolves when a run in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async run(): Promise<void> {
    const { options } = this;
    if (options.canRun && !options.canRun()) {
      options.log.warn({}, 'retention sweep skipped: the audit trail cannot be written');
      return;
    }
    try {
      const report = await purge(options.deps, { now: options.now?.(), batchSize: options.batchSize });
      if (report.instances > 0 || report.held > 0) {
        options.log.info(
          { instances: report.instances, studies: report.studies.length, keysDestroyed: report.keysDestroyed, held: report.held, blobErrors: report.blobErrors },
          'retention sweep purged the bin',
        );
        await options.onPurged(report);
      }
    } catch (err) {
      // The message only: an error from deep down could quote a value.
      options.log.error({ error: err instanceof Error ? `${err.name}: ${err.message}` : 'unknown' }, 'retention sweep failed; the next run tries again');
    }
  }
}
