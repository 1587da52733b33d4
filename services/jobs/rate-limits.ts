/**
 * Live byte-rate caps (admin API) persisted in Redis and announced on the control channel, so every worker process
 * re-times its buckets within one message (services/throttle/scoped-rate-limits.ts applies them). A cap is
 * port-wide: the port, one link (`src-host→dst-host`, as in job files), one owner, or one job.
 */
import type { Redis } from 'ioredis';
import { InvalidSubmissionError } from './job-errors.js';
import { RedisKeys } from './redis-keys.js';
import { RATE_LIMIT_SCOPES, rateLimitKey, type RateLimitScope } from '../throttle/scoped-rate-limits.js';

export interface RateLimitRecord {
  scope: RateLimitScope;
  target?: string;
  bytesPerSec: number;
}

const TARGET_FORM = /^[^\s]{1,300}$/;

export class RateLimitStore {
  private readonly keys: RedisKeys;

  constructor(private readonly redis: Redis, prefix: string) {
    this.keys = new RedisKeys(prefix);
  }

  private get key(): string {
    return this.keys.port('rateLimits');
  }

  /** Sets (`bytesPerSec` > 0) or removes (`null`) a cap, and tells the workers. */
  async set(scope: RateLimitScope, target: string | undefined, bytesPerSec: number | null): Promise<RateLimitRecord[]> {
    if (!RATE_LIMIT_SCOPES.includes(scope)) throw new InvalidSubmissionError('CARGO_ERR_BAD_SCOPE', `unknown scope ${scope}`, 'scope');
    if (scope !== 'port' && (!target || !TARGET_FORM.test(target))) {
      throw new InvalidSubmissionError('CARGO_ERR_BAD_SCOPE', `scope ${scope} needs a target (1-300 characters, no spaces)`, 'target');
    }
    if (scope === 'port' && target) throw new InvalidSubmissionError('CARGO_ERR_BAD_SCOPE', 'scope port takes no target', 'target');
    if (bytesPerSec !== null && !(Number.isSafeInteger(bytesPerSec) && bytesPerSec > 0)) {
      throw new InvalidSubmissionError('CARGO_ERR_BAD_LIMIT', 'bytesPerSec must be a positive integer, or null to remove the limit', 'bytesPerSec');
    }
    const field = rateLimitKey(scope, target);
    const tx = this.redis.multi();
    if (bytesPerSec === null) tx.hdel(this.key, field);
    else tx.hset(this.key, field, bytesPerSec);
    tx.publish(this.keys.port('control'), JSON.stringify({ op: 'limits' }));
    await tx.exec();
    return this.list();
  }

  async list(): Promise<RateLimitRecord[]> {
    const all = await this.redis.hgetall(this.key);
    return Object.entries(all).map(([field, v]) => {
      const i = field.indexOf(':');
      const scope = field.slice(0, i) as RateLimitScope;
      const target = field.slice(i + 1);
      return { scope, ...(target ? { target } : {}), bytesPerSec: Number(v) };
    });
  }

  /** Every cap as the worker side wants it: key → bytes/s. */
  async caps(): Promise<Map<string, number>> {
    const all = await this.redis.hgetall(this.key);
    return new Map(Object.entries(all).map(([k, v]) => [k, Number(v)]));
  }
}
