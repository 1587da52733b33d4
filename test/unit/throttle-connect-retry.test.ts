/** The one connect-retry policy every connector follows (undici's and the bulk receive sessions'). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRetryDelayMs } from '../../services/throttle/connection-pacer.js';

test('refusals and resets get three jittered, doubling retries; other failures none', () => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE']) {
    for (const [retry, base] of [[1, 100], [2, 200], [3, 400]] as const) {
      const d = connectRetryDelayMs(code, retry)!;
      assert.ok(d >= base * 0.5 && d < base * 1.5, `${code} retry ${retry}: ${d} ms`);
    }
    assert.equal(connectRetryDelayMs(code, 4), undefined, `${code}: three retries only`);
  }
  for (const code of ['ENOTFOUND', 'EHOSTUNREACH', 'CERT_HAS_EXPIRED', undefined]) {
    assert.equal(connectRetryDelayMs(code, 1), undefined, `${String(code)} is final`);
  }
});
