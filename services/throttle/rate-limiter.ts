/** Byte-rate limiter consulted on the hot path (token buckets: global, link, job, owner). */
export interface RateLimiter {
  /** Take `n` bytes; returns null when they are available now, else a promise that settles when they are. */
  take(n: number): Promise<void> | null;
}
