import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScopedRateLimits, rateLimitKey } from '../../services/throttle/scoped-rate-limits.js';
import type { TokenBucket } from '../../services/throttle/token-bucket.js';

const rates = (l: { limiters: unknown[] }) => l.limiters.map((b) => (b as TokenBucket).bytesPerSec);

test('scoped rate limits: only capped scopes cost a bucket; caps are shared by live workers', () => {
  const s = new ScopedRateLimits();
  const t = { jobId: 'j1', link: 'a→b', owner: 'alice' };
  assert.deepEqual(rates(s.acquire(t)), [], 'no caps, no buckets');
  s.setCaps(new Map([[rateLimitKey('port'), 1000], [rateLimitKey('owner', 'alice'), 400], [rateLimitKey('link', 'x→y'), 50]]));
  const l = s.acquire(t);
  assert.deepEqual(rates(l), [1000, 400], 'port then owner; another link is not ours');
  s.setWorkers(2);
  assert.deepEqual(rates(l), [500, 200], 'each of two workers takes half, live');
  const withJobCap = s.acquire({ ...t, jobCap: 300 });
  assert.deepEqual(rates(withJobCap), [500, 200, 150], 'the submission cap is a job bucket');
  s.setCaps(new Map([[rateLimitKey('job', 'j1'), 100]]));
  assert.deepEqual(rates(withJobCap), [Infinity, Infinity, 50], 'a live job cap overrides the submission cap; removed caps unlimit their buckets');
  s.setCaps(new Map());
  assert.deepEqual(rates(withJobCap), [Infinity, Infinity, 150], 'without the live cap the submission cap applies again');
  withJobCap.release();
  l.release();
  l.release();
  assert.deepEqual(rates(s.acquire(t)), [], 'released buckets are gone');
});

test('scoped rate limits: transfers of one scope share one bucket', () => {
  const s = new ScopedRateLimits();
  s.setCaps(new Map([[rateLimitKey('link', 'a→b'), 1000]]));
  const one = s.acquire({ jobId: 'j1', link: 'a→b' });
  const two = s.acquire({ jobId: 'j2', link: 'a→b' });
  assert.equal(one.limiters[0], two.limiters[0]);
  one.release();
  assert.equal(s.acquire({ jobId: 'j3', link: 'a→b' }).limiters[0], two.limiters[0], 'still held by the second transfer');
});
