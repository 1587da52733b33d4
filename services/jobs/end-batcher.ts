/**
 * Group commit of END: runs that end close together are closed by one end-batch.lua call (JobStore.endMany) instead
 * of one END script and round trip each. A run's close is queued; the queue flushes on the next turn of the event
 * loop (so every run that ended in the same I/O phase goes together), and while one batch is in Redis the next
 * gathers, so under load a batch holds about the files that ended during one round trip; alone, a run waits for no
 * timer. Each caller gets its own run's result, and only after the script that closed it returned.
 */
import type { AttemptEnd, EndResult, JobStore } from './job-store.js';

interface PendingEnd {
  e: AttemptEnd;
  resolve(r: EndResult): void;
  reject(err: unknown): void;
}

/** Most runs in one END script call (bounds the script's time inside Redis). */
export const END_BATCH_MAX = 128;

export class EndBatcher {
  private pending: PendingEnd[] = [];
  private flushing = false;
  private scheduled = false;

  /**
   * `afterBatch`: called once a batch is closed (the worker kicks its feeder: the slots those runs held are free now,
   * not only when their whole bundle is done).
   */
  constructor(private readonly store: Pick<JobStore, 'endMany'>, private readonly afterBatch?: () => void, private readonly maxBatch = END_BATCH_MAX) {}

  /** Closes one run, with the others that end close to it. */
  end(e: AttemptEnd): Promise<EndResult> {
    return new Promise<EndResult>((resolve, reject) => {
      this.pending.push({ e, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, this.maxBatch);
        try {
          const results = await this.store.endMany(batch.map((p) => p.e));
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
          this.afterBatch?.();
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
