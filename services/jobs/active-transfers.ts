import type { ResumeState } from '../transfer/types.js';

/** The transfers running in this worker process, so control messages (cancel, stop) can reach them. */
export type AbortReason = 'cancel' | 'stop' | 'shutdown';

export interface ActiveTransfer {
  jobId: string;
  idx: number;
  /** The file's run number (START): a checkpoint is saved for this run only. */
  run: number;
  link: string;
  controller: AbortController;
  bytes: number;
  /** Bytes already written to Redis by the progress flusher. */
  reportedBytes: number;
  startedAt: number;
  /** Latest durable checkpoint from the engine not yet written to Redis. */
  pendingCheckpoint?: ResumeState;
}

export class ActiveTransfers {
  private readonly byKey = new Map<string, ActiveTransfer>();

  get size(): number {
    return this.byKey.size;
  }

  add(t: ActiveTransfer): void {
    this.byKey.set(`${t.jobId}_${t.idx}`, t);
  }

  remove(t: ActiveTransfer): void {
    this.byKey.delete(`${t.jobId}_${t.idx}`);
  }

  values(): IterableIterator<ActiveTransfer> {
    return this.byKey.values();
  }

  /** Aborts every transfer matching `pred` with `reason`; returns how many. */
  abortWhere(pred: (t: ActiveTransfer) => boolean, reason: AbortReason): number {
    let n = 0;
    for (const t of this.byKey.values()) {
      if (pred(t) && !t.controller.signal.aborted) {
        t.controller.abort(reason);
        n++;
      }
    }
    return n;
  }
}
