/**
 * Byte-rate caps by scope — the whole port, a link (source host → destination host), an owner, a job — applied to
 * every transfer of one worker process as a chain of token buckets (a transfer waits for all of its scopes).
 * Caps are port-wide: with several worker processes each takes an equal share (cap / live workers), the same rule
 * as a job's own `bandwidthBytesPerSec`.
 *
 * Caps change live, for every scope: each running transfer holds one *live* limiter array (`acquire().limiters`)
 * that is rewritten in place when a cap is set, changed or removed, and the byte pumps read it again for every
 * chunk. So a cap set on a link, an owner or a job that had none when its transfers started reaches them on their
 * next chunk (before, the array was fixed at the start and only scopes capped then were ever limited). A changed
 * cap re-times its bucket, queued waiters included; a removed cap releases its waiters and drops the bucket from
 * every array.
 *
 * A capped scope keeps its bucket while it has transfers *or* while the bucket is still paying off what it
 * admitted (not yet full again): one file after another in a scope otherwise got a fresh, full bucket each, a free
 * burst per file that let a run of small files exceed the cap.
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

export interface ScopedRateLimitsOptions {
  /** Clock in milliseconds for the buckets (tests inject a fake one). */
  now?: () => number;
}

interface ScopeEntry {
  /** Running transfers of this scope in this process. */
  users: number;
  /** Cap of the scope when no live limit is set (a job's submission cap), else undefined. */
  fallbackCap?: number;
  /** Only while the scope is capped. */
  bucket?: TokenBucket;
}

/** One running transfer: its scope keys, most specific last, and the live array the byte pumps read. */
interface Holder {
  keys: string[];
  limiters: RateLimiter[];
}

/** Idle scopes are looked at for removal at most this often (a walk over the scopes, off the per-chunk path). */
const PRUNE_EVERY_MS = 1000;

export class ScopedRateLimits {
  private caps = new Map<string, number>();
  private readonly scopes = new Map<string, ScopeEntry>();
  private readonly holders = new Set<Holder>();
  private workers = 1;
  private readonly now: () => number;
  private lastPrune = 0;

  constructor(opts: ScopedRateLimitsOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** Replaces every live cap (bytes/s, whole port) and re-times the transfers running, whatever their scopes. */
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

  /**
   * The limiters one transfer must pass, most specific last, as a live array: it changes in place while the
   * transfer runs (read it per chunk, never copy it). `release()` when the transfer ends.
   */
  acquire(s: TransferScopes): { limiters: readonly RateLimiter[]; release(): void } {
    const keys = [rateLimitKey('port'), rateLimitKey('link', s.link)];
    if (s.owner) keys.push(rateLimitKey('owner', s.owner));
    const jobKey = rateLimitKey('job', s.jobId);
    keys.push(jobKey);
    for (const key of keys) {
      let e = this.scopes.get(key);
      if (!e) this.scopes.set(key, e = { users: 0 });
      if (key === jobKey && s.jobCap !== undefined) e.fallbackCap = s.jobCap;
      e.users++;
      this.fitBucket(key, e, false);
    }
    const holder: Holder = { keys, limiters: [] };
    this.fill(holder);
    this.holders.add(holder);
    let released = false;
    return {
      limiters: holder.limiters,
      release: () => {
        if (released) return;
        released = true;
        this.holders.delete(holder);
        for (const key of keys) {
          const e = this.scopes.get(key)!;
          e.users--;
          // Uncapped and unused: nothing to remember. A capped one waits for the prune (see the file comment).
          if (e.users === 0 && !e.bucket) this.scopes.delete(key);
        }
        this.prune();
      },
    };
  }

  /** Per-process rate for a port-wide cap. */
  private share(cap: number): number {
    return cap / this.workers;
  }

  /**
   * Gives the scope a bucket at its current cap, re-times it, or removes it when the scope has no cap now. A bucket
   * made for transfers already running (`flowing`: a cap set mid-transfer) starts empty: they have just moved at
   * full speed, and a first burst would only add to what they take under the new cap.
   */
  private fitBucket(key: string, e: ScopeEntry, flowing: boolean): void {
    const cap = this.caps.get(key) ?? e.fallbackCap;
    if (cap !== undefined) {
      const rate = this.share(cap);
      if (!e.bucket) e.bucket = new TokenBucket({ bytesPerSec: rate, now: this.now, startEmpty: flowing && e.users > 0 });
      else if (e.bucket.bytesPerSec !== rate) e.bucket.setRate(rate);
    } else if (e.bucket) {
      // Unlimited first: its queued waiters go now, whichever transfer they belong to.
      e.bucket.setRate(Infinity);
      e.bucket = undefined;
    }
  }

  private fill(h: Holder): void {
    h.limiters.length = 0;
    for (const key of h.keys) {
      const b = this.scopes.get(key)?.bucket;
      if (b) h.limiters.push(b);
    }
  }

  private retime(): void {
    for (const [key, e] of this.scopes) {
      this.fitBucket(key, e, true);
      if (e.users === 0 && !e.bucket) this.scopes.delete(key);
    }
    for (const h of this.holders) this.fill(h);
  }

  /** Drops capped scopes nobody uses whose bucket is full again (a new one would be the same). */
  private prune(): void {
    const t = this.now();
    if (t - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = t;
    for (const [key, e] of this.scopes) if (e.users === 0 && (!e.bucket || e.bucket.idleFull)) this.scopes.delete(key);
  }
}
