/**
 * Byte-rate caps by scope — the whole port, a link (source host → destination host), an owner, a job — applied to
 * every transfer of one worker process as a chain of token buckets (a transfer waits for all of its scopes).
 * Caps are port-wide: with several worker processes each takes an equal share (cap / live workers), the same rule
 * as a job's own `bandwidthBytesPerSec`. Caps change live: buckets in use are re-timed at once, including their
 * queued waiters; a removed cap makes its bucket unlimited for the transfers still holding it.
 */
import type { RateLimiter } from './rate-limiter.js';
import { TokenBucket } from './token-bucket.js';

export const RATE_LIMIT_SCOPES = ['port', 'link', 'owner', 'job'] as const;
export type RateLimitScope = (typeof RATE_LIMIT_SCOPES)[number];

/** `port:` / `link:<src>→<dst>` / `owner:<name>` / `job:<id>`, as stored (rate-limits store). */
export function rateLimitKey(scope: RateLimitScope, target = ''): string {
  return `${scope}:${scope === 'port' ? '' : target}`;
}

export interface TransferScopes {
  jobId: string;
  link: string;
  owner?: string;
  /** The job's own cap from its submission, used when no live `job` cap overrides it. */
  jobCap?: number;
}

interface HeldBucket {
  bucket: TokenBucket;
  users: number;
  /** Cap of the scope when no live limit is set (a job's submission cap), else undefined. */
  fallbackCap?: number;
}

export class ScopedRateLimits {
  private caps = new Map<string, number>();
  private readonly buckets = new Map<string, HeldBucket>();
  private workers = 1;

  /** Replaces every live cap (bytes/s, whole port) and re-times the buckets in use. */
  setCaps(caps: ReadonlyMap<string, number>): void {
    this.caps = new Map(caps);
    this.retime();
  }

  /** Number of live worker processes sharing each cap. */
  setWorkers(n: number): void {
    const next = Math.max(1, n);
    if (next === this.workers) return;
    this.workers = next;
    this.retime();
  }

  /** The limiters one transfer must pass, most specific last; `release()` when the transfer ends. */
  acquire(s: TransferScopes): { limiters: RateLimiter[]; release(): void } {
    const wanted: Array<[string, number | undefined]> = [
      [rateLimitKey('port'), undefined],
      [rateLimitKey('link', s.link), undefined],
      ...(s.owner ? [[rateLimitKey('owner', s.owner), undefined] as [string, undefined]] : []),
      [rateLimitKey('job', s.jobId), s.jobCap],
    ];
    const held: Array<[string, HeldBucket]> = [];
    for (const [key, fallbackCap] of wanted) {
      const cap = this.caps.get(key) ?? fallbackCap;
      const existing = this.buckets.get(key);
      // Scopes without any cap cost nothing: no bucket at all, unless one is already in use (a cap just removed).
      if (cap === undefined && !existing) continue;
      const entry = existing ?? { bucket: new TokenBucket({ bytesPerSec: this.share(cap) }), users: 0, fallbackCap };
      if (!existing) this.buckets.set(key, entry);
      if (fallbackCap !== undefined) entry.fallbackCap = fallbackCap;
      entry.users++;
      held.push([key, entry]);
    }
    let released = false;
    return {
      limiters: held.map(([, e]) => e.bucket),
      release: () => {
        if (released) return;
        released = true;
        for (const [key, e] of held) if (--e.users === 0) this.buckets.delete(key);
      },
    };
  }

  /** Per-process rate for a port-wide cap; undefined → unlimited. */
  private share(cap: number | undefined): number {
    return cap === undefined ? Infinity : cap / this.workers;
  }

  private retime(): void {
    for (const [key, e] of this.buckets) e.bucket.setRate(this.share(this.caps.get(key) ?? e.fallbackCap));
  }
}
