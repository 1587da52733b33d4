/**
 * Aborts an attempt that stopped making progress: no byte for `idleMs`, or fewer than `minBytesPerSec`
 * averaged over `windowMs` (XRootD/libcurl's low-speed limit, wlcg.md §3.3). While the pause gate is closed
 * the clocks stop, so an admin pause is never mistaken for a stall.
 */
import type { Gate } from '../throttle/pause-gate.js';
import { TransferError, TransferErrorCode } from './transfer-errors.js';

export interface StallPolicy {
  /** No byte at all for this long → stalled. 0 disables. */
  idleMs: number;
  /** Average below this over `windowMs` → stalled. 0 disables. */
  minBytesPerSec: number;
  windowMs: number;
}

export const defaultStallPolicy: StallPolicy = { idleMs: 60_000, minBytesPerSec: 10 * 1024, windowMs: 120_000 };

export class StallWatchdog {
  private lastByteAt: number;
  private windowStart: number;
  private windowBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly policy: StallPolicy,
    private readonly gate: Gate,
    private readonly onStall: (err: TransferError) => void,
  ) {
    const now = Date.now();
    this.lastByteAt = now;
    this.windowStart = now;
  }

  start(): void {
    if (this.policy.idleMs <= 0 && this.policy.minBytesPerSec <= 0) return;
    const smallest = Math.min(
      this.policy.idleMs > 0 ? this.policy.idleMs : Infinity,
      this.policy.minBytesPerSec > 0 ? this.policy.windowMs : Infinity,
    );
    // Check often enough that a stall is detected within its timeout + 10 %.
    const tick = Math.max(20, Math.min(1000, Math.floor(smallest / 20)));
    this.timer = setInterval(() => this.check(), tick);
    this.timer.unref();
  }

  /** Hot path: called per chunk, two stores. */
  bytesMoved(n: number): void {
    this.lastByteAt = Date.now();
    this.windowBytes += n;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const now = Date.now();
    if (!this.gate.isOpen) {
      // Paused: restart both clocks so the time spent paused never counts.
      this.lastByteAt = now;
      this.windowStart = now;
      this.windowBytes = 0;
      return;
    }
    const p = this.policy;
    if (p.idleMs > 0 && now - this.lastByteAt >= p.idleMs) {
      this.fire(`no bytes for ${now - this.lastByteAt} ms`);
      return;
    }
    if (p.minBytesPerSec > 0 && now - this.windowStart >= p.windowMs) {
      const rate = (this.windowBytes * 1000) / (now - this.windowStart);
      if (rate < p.minBytesPerSec) {
        this.fire(`average ${Math.round(rate)} B/s below ${p.minBytesPerSec} B/s over ${now - this.windowStart} ms`);
        return;
      }
      this.windowStart = now;
      this.windowBytes = 0;
    }
  }

  private fire(why: string): void {
    this.stop();
    this.onStall(new TransferError(TransferErrorCode.stalled, `transfer stalled: ${why}`, {
      httpStatus: 504, retryable: true,
    }));
  }
}
