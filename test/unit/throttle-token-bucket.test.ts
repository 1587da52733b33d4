/**
 * Token bucket on a simulated clock (mocked setTimeout + injected now()), so the byte accounting is checked
 * exactly and without wall-clock thresholds.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { LimiterChain, TokenBucket } from '../../services/throttle/token-bucket.js';

let clock = 0;
const now = (): number => clock;

function advance(ms: number): void {
  // Step in 1 ms increments so timers fire at their due time with the clock in step.
  for (let i = 0; i < ms; i++) {
    clock += 1;
    mock.timers.tick(1);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

beforeEach(() => {
  clock = 0;
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => mock.timers.reset());

describe('TokenBucket', () => {
  it('admits within the burst without a promise', () => {
    const b = new TokenBucket({ bytesPerSec: 1000, burstBytes: 500, now });
    assert.equal(b.take(200), null);
    assert.equal(b.take(300), null);
    assert.notEqual(b.take(1), null);
  });

  it('never admits more than burst + rate·T over a long run of mixed chunk sizes', async () => {
    const rate = 10_000;
    const burst = 2_000;
    const b = new TokenBucket({ bytesPerSec: rate, burstBytes: burst, now });
    let admitted = 0;
    const sizes = [100, 1500, 7, 3000, 512];
    let i = 0;
    // A greedy consumer: always has the next chunk waiting.
    const loop = async (): Promise<void> => {
      for (;;) {
        const n = sizes[i++ % sizes.length]!;
        const w = b.take(n);
        if (w) await w;
        admitted += n;
      }
    };
    void loop();
    for (let t = 1; t <= 5000; t += 50) {
      advance(50);
      await settle();
      const bound = burst + (rate * clock) / 1000 + 3000; // +largest chunk: a chunk > bucket runs into debt
      assert.ok(admitted <= bound, `t=${clock} admitted ${admitted} > ${bound}`);
    }
    // …and the limiter is not stingy either: within one largest chunk of the ideal.
    assert.ok(admitted >= (rate * clock) / 1000 - 3000, `admitted ${admitted} at t=${clock}`);
  });

  it('serves waiters in arrival order (a big chunk is not starved by small ones)', async () => {
    const b = new TokenBucket({ bytesPerSec: 1000, burstBytes: 1000, now });
    assert.equal(b.take(1000), null);
    const order: string[] = [];
    void b.take(900)!.then(() => order.push('big'));
    void b.take(10)!.then(() => order.push('small'));
    advance(1000);
    await settle();
    assert.deepEqual(order, ['big', 'small']);
  });

  it('applies a live rate change to queued waiters', async () => {
    const b = new TokenBucket({ bytesPerSec: 100, burstBytes: 1000, now });
    assert.equal(b.take(1000), null);
    let done = false;
    void b.take(1000)!.then(() => { done = true; });
    advance(100);
    await settle();
    assert.equal(done, false);
    b.setRate(100_000);
    advance(20);
    await settle();
    assert.equal(done, true, 'at 100 kB/s the waiter is served within 10 ms');
  });

  it('lowering the rate slows admission accordingly', async () => {
    const b = new TokenBucket({ bytesPerSec: 10_000, burstBytes: 100, now });
    b.setRate(100);
    assert.equal(b.take(100), null);
    let done = false;
    void b.take(100)!.then(() => { done = true; });
    advance(500);
    await settle();
    assert.equal(done, false);
    advance(600);
    await settle();
    assert.equal(done, true);
  });

  it('is a no-op when unlimited, and releases waiters when a limit is lifted', async () => {
    const free = new TokenBucket({ bytesPerSec: Infinity, now });
    for (let i = 0; i < 1000; i++) assert.equal(free.take(1 << 20), null);
    const b = new TokenBucket({ bytesPerSec: 1, burstBytes: 1, now });
    assert.equal(b.take(1), null);
    let done = false;
    void b.take(1000)!.then(() => { done = true; });
    b.setRate(Infinity);
    await settle();
    assert.equal(done, true);
  });
});

describe('LimiterChain', () => {
  it('takes the bytes from every limiter', async () => {
    const a = new TokenBucket({ bytesPerSec: 1000, burstBytes: 1000, now });
    const b = new TokenBucket({ bytesPerSec: 1000, burstBytes: 1000, now });
    const chain = new LimiterChain([a, b]);
    assert.equal(chain.take(600), null);
    const w = chain.take(600);
    assert.ok(w);
    advance(300);
    await settle();
    advance(300);
    await w;
    assert.equal(a.admitted, 1200);
    assert.equal(b.admitted, 1200);
  });
});
