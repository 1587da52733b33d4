/**
 * The arithmetic behind "a killed worker's files are claimed again within workers.lockDurationMs": BullMQ moves a job
 * back when its lock has expired at a stalled check, so the worst case is the lock (renewed before it expires) plus two
 * check periods (the dead worker may have taken the last check's turn). The integration test measures it for real.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { claimTimings } from '../../workers/transfer-pool.js';

test('lock + two stalled checks stay within workers.lockDurationMs, and renewals come well before expiry', () => {
  for (const L of [1000, 3000, 4000, 30_000, 600_000]) {
    const t = claimTimings(L);
    assert.ok(t.lockDuration + 2 * t.stalledInterval <= L, `L=${L}: ${JSON.stringify(t)}`);
    assert.ok(t.lockRenewTime * 2 <= t.lockDuration, `L=${L}: a missed renewal still leaves one more before expiry`);
    assert.ok(t.stalledInterval >= 100, 'the stalled check never spins');
  }
  assert.deepEqual(claimTimings(30_000), { lockDuration: 15_000, lockRenewTime: 7_500, stalledInterval: 3_750 });
});
