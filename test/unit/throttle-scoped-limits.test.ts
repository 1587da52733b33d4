/**
 * Scoped rate caps (port, link, owner, job): which buckets a transfer passes, that caps set while it runs reach it,
 * and — on a simulated clock (mocked setTimeout + injected now()), so bytes are counted exactly — that the bytes
 * admitted over a window stay within 5 % of the cap, for a cap set mid-transfer and for a run of short transfers.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { RateLimiter } from '../../services/throttle/rate-limiter.js';
import { ScopedRateLimits, rateLimitKey, type RateLimitScope } from '../../services/throttle/scoped-rate-limits.js';
import type { TokenBucket } from '../../services/throttle/token-bucket.js';

const rates = (l: { limiters: readonly unknown[] }) => l.limiters.map((b) => (b as TokenBucket).bytesPerSec);

let clock = 0;
const now = (): number => clock;

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Simulated time in 1 ms steps, letting the consumers run between steps (timers fire with the clock in step). */
async function advance(ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    clock += 1;
    mock.timers.tick(1);
    await settle();
  }
}

/**
 * A transfer that always has its next chunk ready, passing its live limiter array the way the byte pumps do
 * (read again for every chunk); counts the bytes admitted.
 */
function greedy(limiters: readonly RateLimiter[], chunk: number, stop: { done: boolean }): { bytes: number } {
  const c = { bytes: 0 };
  void (async () => {
    while (!stop.done) {
      for (const l of limiters) {
        const w = l.take(chunk);
        if (w) await w;
      }
      c.bytes += chunk;
      // Unthrottled, a real pump yields to the event loop between chunks; so does this one (else it would spin).
      if (limiters.length === 0) await new Promise<void>((r) => setTimeout(r, 1));
    }
  })();
  return c;
}

beforeEach(() => {
  clock = 0;
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => mock.timers.reset());

describe('ScopedRateLimits', () => {
  it('only capped scopes cost a bucket; caps are shared by live workers; arrays follow the caps live', () => {
    const s = new ScopedRateLimits({ now });
    const t = { jobId: 'j1', link: 'a>b', owner: 'alice' };
    const first = s.acquire(t);
    assert.deepEqual(rates(first), [], 'no caps, no buckets');
    s.setCaps(new Map([[rateLimitKey('port'), 1000], [rateLimitKey('owner', 'alice'), 400], [rateLimitKey('link', 'x>y'), 50]]));
    assert.deepEqual(rates(first), [1000, 400], 'caps set after the start reach the running transfer; another link is not ours');
    const l = s.acquire(t);
    assert.deepEqual(rates(l), [1000, 400], 'port then owner');
    assert.equal(l.limiters[0], first.limiters[0], 'one bucket per scope, shared');
    s.setWorkers(2);
    assert.deepEqual(rates(l), [500, 200], 'each of two workers takes half, live');
    const withJobCap = s.acquire({ ...t, jobId: 'j2', jobCap: 300 });
    assert.deepEqual(rates(withJobCap), [500, 200, 150], 'the submission cap is a job bucket');
    s.setCaps(new Map([[rateLimitKey('job', 'j2'), 100]]));
    assert.deepEqual(rates(withJobCap), [50], 'a live job cap overrides the submission cap; removed caps leave the arrays');
    assert.deepEqual(rates(l), []);
    s.setCaps(new Map());
    assert.deepEqual(rates(withJobCap), [150], 'without the live cap the submission cap applies again');
    for (const x of [withJobCap, l, first]) x.release();
    l.release();
    assert.deepEqual(rates(s.acquire({ ...t, jobId: 'j3' })), [], 'nothing capped is left over');
  });

  for (const scope of ['port', 'link', 'owner', 'job'] as RateLimitScope[]) {
    it(`a ${scope} cap set while a transfer runs re-times it within one setCaps (the control message) and holds it within 5 %`, async () => {
      const s = new ScopedRateLimits({ now });
      const t = { jobId: 'j1', link: 'src:443>local', owner: 'alice' };
      const target = { port: '', link: t.link, owner: t.owner, job: t.jobId }[scope];
      const held = s.acquire(t);
      const stop = { done: false };
      const c = greedy(held.limiters, 16 * 1024, stop);
      await advance(200);
      assert.ok(c.bytes > 2 * 1024 * 1024, `uncapped, it ran freely (${c.bytes} B in 200 ms)`);
      const cap = scope === 'job' ? 300_000 : 800_000;
      s.setCaps(new Map([[rateLimitKey(scope, target), cap]]));
      const from = c.bytes;
      await advance(2_000);
      // No burst for a transfer already flowing: even the first 2 s after the change keep within 5 %.
      const first = (c.bytes - from) / 2;
      await advance(8_000);
      const got = (c.bytes - from) / 10;
      stop.done = true;
      s.setCaps(new Map());
      await settle();
      held.release();
      assert.ok(Math.abs(got - cap) <= cap * 0.05, `${scope} cap ${cap} B/s: ${got.toFixed(0)} B/s over 10 s after it was set`);
      assert.ok(Math.abs(first - cap) <= cap * 0.05, `${scope} cap ${cap} B/s: ${first.toFixed(0)} B/s over the first 2 s`);
    });
  }

  it('a port cap over several transfers with different chunk sizes: within 5 %', async () => {
    const s = new ScopedRateLimits({ now });
    s.setCaps(new Map([[rateLimitKey('port'), 2_000_000]]));
    const stop = { done: false };
    const ts = [16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024].map((chunk, i) => greedy(s.acquire({ jobId: `j${i}`, link: `h${i}:443>local` }).limiters, chunk, stop));
    await advance(1000);
    const from = ts.reduce((n, c) => n + c.bytes, 0);
    await advance(10_000);
    const got = (ts.reduce((n, c) => n + c.bytes, 0) - from) / 10;
    stop.done = true;
    s.setCaps(new Map());
    await settle();
    assert.ok(Math.abs(got - 2_000_000) <= 2_000_000 * 0.05, `${got.toFixed(0)} B/s under a 2,000,000 B/s port cap`);
  });

  it('one short transfer after another in a capped scope gets no fresh burst each: within 5 %', async () => {
    const s = new ScopedRateLimits({ now });
    const cap = 500_000;
    s.setCaps(new Map([[rateLimitKey('link', 'a>b'), cap]]));
    let bytes = 0;
    let stop = false;
    // Files of 100 kB, one at a time (a slot running a bundle), each acquiring and releasing its limiters.
    void (async () => {
      for (let i = 0; !stop; i++) {
        const h = s.acquire({ jobId: `j${i % 3}`, link: 'a>b' });
        for (let sent = 0; sent < 100_000 && !stop; sent += 20_000) {
          for (const l of h.limiters) {
            const w = l.take(20_000);
            if (w) await w;
          }
          bytes += 20_000;
        }
        h.release();
        // The next file's start: a few ms of queue and open (time enough to refill a bucket made anew).
        await new Promise<void>((r) => setTimeout(r, 5));
      }
    })();
    await advance(10_000);
    stop = true;
    await advance(100);
    const got = bytes / 10;
    assert.ok(got <= cap * 1.05, `${got.toFixed(0)} B/s under a ${cap} B/s cap`);
    assert.ok(got >= cap * 0.9, `${got.toFixed(0)} B/s: the 5 ms gaps cost at most 5 % (and the burst), not more`);
  });

  it('a removed cap releases the waiters of the transfers it held and leaves their arrays', async () => {
    const s = new ScopedRateLimits({ now });
    s.setCaps(new Map([[rateLimitKey('owner', 'bob'), 1000]]));
    const h = s.acquire({ jobId: 'j', link: 'a>b', owner: 'bob' });
    const b = h.limiters[0]!;
    assert.equal(b.take(16 * 1024), null, 'the first chunk fits the (16 KiB) burst');
    let done = false;
    void b.take(1000)!.then(() => { done = true; });
    await settle();
    assert.equal(done, false);
    s.setCaps(new Map());
    await settle();
    assert.equal(done, true);
    assert.equal(h.limiters.length, 0);
    h.release();
  });
});
