/**
 * Concurrency slots and per-host connection pacing: capacity, order, abort, live changes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConcurrencySlots } from '../../services/throttle/concurrency-slots.js';
import { ConnectionPacer } from '../../services/throttle/connection-pacer.js';

describe('ConcurrencySlots', () => {
  it('grants up to capacity, then queues in order', async () => {
    const s = new ConcurrencySlots(2);
    const r1 = await s.acquire();
    const r2 = await s.acquire();
    assert.equal(s.tryAcquire(), null);
    const order: number[] = [];
    const p3 = s.acquire().then((r) => { order.push(3); return r; });
    const p4 = s.acquire().then((r) => { order.push(4); return r; });
    r1();
    const r3 = await p3;
    assert.deepEqual(order, [3]);
    r2();
    const r4 = await p4;
    assert.deepEqual(order, [3, 4]);
    assert.equal(s.inUse, 2);
    r3(); r4();
    assert.equal(s.inUse, 0);
  });

  it('ignores a double release', async () => {
    const s = new ConcurrencySlots(1);
    const r = await s.acquire();
    r(); r();
    assert.equal(s.inUse, 0);
    const a = await s.acquire();
    assert.equal(s.tryAcquire(), null, 'the second release did not free a phantom slot');
    a();
  });

  it('drops an aborted waiter without consuming a slot', async () => {
    const s = new ConcurrencySlots(1);
    const r = await s.acquire();
    const ac = new AbortController();
    const p = s.acquire(ac.signal);
    ac.abort(new Error('cancelled'));
    await assert.rejects(p, /cancelled/);
    r();
    assert.equal(s.inUse, 0);
    assert.ok(s.tryAcquire());
  });

  it('applies capacity changes live', async () => {
    const s = new ConcurrencySlots(0);
    let got = 0;
    const ps = [s.acquire(), s.acquire(), s.acquire()].map((p) => p.then((r) => { got++; return r; }));
    await Promise.resolve();
    assert.equal(got, 0);
    s.setCapacity(2);
    await Promise.resolve(); await Promise.resolve();
    assert.equal(got, 2);
    s.setCapacity(3);
    await Promise.all(ps);
    assert.equal(s.inUse, 3);
  });
});

describe('ConnectionPacer', () => {
  it('keeps at most maxPending handshakes in flight per host, other hosts independent', async () => {
    const pacer = new ConnectionPacer({ maxPending: 4, perSecond: 100_000 });
    let pending = 0;
    let peak = 0;
    const connect = async (host: string): Promise<void> => {
      const release = await pacer.turn(host);
      pending++;
      peak = Math.max(peak, pending);
      await new Promise((r) => setImmediate(r));
      pending--;
      release();
    };
    await Promise.all(Array.from({ length: 50 }, () => connect('a.example')));
    assert.equal(peak, 4);
    peak = 0;
    await Promise.all([...Array.from({ length: 4 }, () => connect('a.example')), ...Array.from({ length: 4 }, () => connect('b.example'))]);
    assert.equal(peak, 8, 'two hosts, four each');
  });
});
