/**
 * Byte-accurate token bucket (a RateLimiter for the transfer hot path). Over any interval T it admits at
 * most `burst + rate·T` bytes, whatever the chunk sizes; waiters are served strictly in arrival order so one
 * big chunk cannot be starved by a stream of small ones. The rate can be changed live (admin API) and
 * applies to waiters already queued.
 *
 * Fast path: when tokens are available and nobody is queued, `take()` returns null (no promise, no timer).
 */
import type { RateLimiter } from './rate-limiter.js';

export interface TokenBucketOptions {
  /** Bytes per second; `Infinity` (or ≤ 0) means unlimited. */
  bytesPerSec: number;
  /** Bucket depth in bytes (largest instantaneous burst). Defaults to 250 ms worth of rate, at least 16 KiB. */
  burstBytes?: number;
  /** Clock in milliseconds (tests inject a fake one). */
  now?: () => number;
  /** Start with no tokens instead of a full bucket: no burst for traffic that is already flowing. */
  startEmpty?: boolean;
}

interface Waiter {
  n: number;
  resolve: () => void;
}

function isUnlimited(rate: number): boolean {
  return !(rate > 0) || !Number.isFinite(rate);
}

/**
 * 250 ms of rate: enough to ride out an event-loop stall of that length without losing tokens (which would leave
 * the rate below its cap), small enough that the one burst a bucket grants adds at most 2.5 % over a 10 s window.
 * The floor used to be 1 MiB, which at 300 kB/s let 3.5 s of data through at once each time a bucket was made.
 * Chunks larger than the burst still pass (into debt), so the depth need not fit any chunk size.
 */
const BURST_SEC = 0.25;
const MIN_BURST_BYTES = 16 * 1024;

function defaultBurst(rate: number): number {
  return isUnlimited(rate) ? Infinity : Math.max(MIN_BURST_BYTES, Math.round(rate * BURST_SEC));
}

export class TokenBucket implements RateLimiter {
  private rate: number;
  private burst: number;
  private explicitBurst: boolean;
  private tokens: number;
  private last: number;
  private readonly queue: Waiter[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** Total bytes admitted (metrics). */
  admitted = 0;

  constructor(opts: TokenBucketOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.rate = opts.bytesPerSec;
    this.explicitBurst = opts.burstBytes !== undefined;
    this.burst = opts.burstBytes ?? defaultBurst(opts.bytesPerSec);
    this.tokens = opts.startEmpty && !isUnlimited(this.rate) ? 0 : this.burst;
    this.last = this.now();
  }

  get bytesPerSec(): number {
    return this.rate;
  }

  get waiting(): number {
    return this.queue.length - this.head;
  }

  take(n: number): Promise<void> | null {
    if (isUnlimited(this.rate) && this.waiting === 0) {
      this.admitted += n;
      return null;
    }
    this.refill();
    if (this.waiting === 0 && this.admissible(n)) {
      this.tokens -= n;
      this.admitted += n;
      return null;
    }
    return new Promise<void>((resolve) => {
      this.queue.push({ n, resolve });
      this.schedule();
    });
  }

  /** Changes the rate now; queued waiters are re-timed at the new rate. */
  setRate(bytesPerSec: number, burstBytes?: number): void {
    this.refill();
    this.rate = bytesPerSec;
    if (burstBytes !== undefined) this.explicitBurst = true;
    this.burst = burstBytes ?? (this.explicitBurst ? this.burst : defaultBurst(bytesPerSec));
    if (this.tokens > this.burst) this.tokens = this.burst;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    this.drain();
  }

  /**
   * Nobody waits and the bucket is full again (or unlimited): a new bucket made now would behave the same, so
   * this one may be dropped without handing anyone a burst they had already spent.
   */
  get idleFull(): boolean {
    if (this.waiting > 0) return false;
    if (isUnlimited(this.rate)) return true;
    this.refill();
    return this.tokens >= this.burst;
  }

  /** A chunk larger than the whole bucket goes once the bucket is full (it then runs into debt). */
  private admissible(n: number): boolean {
    return this.tokens >= Math.min(n, this.burst);
  }

  private refill(): void {
    const t = this.now();
    if (isUnlimited(this.rate)) {
      this.last = t;
      return;
    }
    const elapsed = t - this.last;
    this.last = t;
    if (elapsed > 0) this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
  }

  private drain(): void {
    this.refill();
    while (this.waiting > 0) {
      const w = this.queue[this.head]!;
      if (!isUnlimited(this.rate) && !this.admissible(w.n)) break;
      this.head++;
      if (!isUnlimited(this.rate)) this.tokens -= w.n;
      this.admitted += w.n;
      w.resolve();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.waiting > 0) this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.waiting === 0) return;
    const w = this.queue[this.head]!;
    const need = Math.min(w.n, this.burst) - this.tokens;
    const ms = isUnlimited(this.rate) ? 0 : Math.max(1, Math.ceil((need * 1000) / this.rate));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, ms);
  }
}

/** Several limiters as one (global ∧ link ∧ job ∧ owner): waits for each in turn. */
export class LimiterChain implements RateLimiter {
  constructor(private readonly limiters: readonly RateLimiter[]) {}

  take(n: number): Promise<void> | null {
    for (let i = 0; i < this.limiters.length; i++) {
      const w = this.limiters[i]!.take(n);
      if (w) return this.rest(w, i + 1, n);
    }
    return null;
  }

  private async rest(first: Promise<void>, from: number, n: number): Promise<void> {
    await first;
    for (let i = from; i < this.limiters.length; i++) {
      const w = this.limiters[i]!.take(n);
      if (w) await w;
    }
  }
}
