/**
 * Reports resume state while a long transfer runs, not only when it fails: if the worker process dies
 * (OOM, node crash, host reboot) the last checkpoint still says which byte ranges of the part file are
 * durable. Each tick snapshots the ranges written so far, fdatasyncs the part file, then reports the
 * snapshot — so a reported range is always on disk.
 */
import type { FileHandle } from 'node:fs/promises';
import type { ResumeState } from '../types.js';

export class PeriodicCheckpoint {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly handle: FileHandle,
    private readonly snapshot: () => ResumeState | null,
    private readonly sink: ((s: ResumeState) => void) | undefined,
  ) {}

  start(): void {
    if (!this.sink || this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    const state = this.snapshot();
    if (!state || state.done.length === 0) return;
    this.busy = true;
    try {
      await this.handle.datasync();
      if (!this.stopped) this.sink!(state);
    } catch {
      // The handle was closed by publish/abort meanwhile: the final checkpoint (if any) comes from there.
    } finally {
      this.busy = false;
    }
  }
}
