/** The worker_threads checksum pool: same values as inline hashing, ordering, back-pressure, close. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createChecksummer } from '../../services/checksum/checksummer.js';
import { ChecksumWorkerPool } from '../../services/checksum/checksum-worker-pool.js';
import type { ChecksumAlg } from '../../services/transfer/types.js';

const inline = (alg: ChecksumAlg, data: Uint8Array): string => {
  const c = createChecksummer(alg);
  c.update(data);
  return c.digestHex();
};

test('pooled checksummers give the inline values for every algorithm, with uneven chunk sizes', async () => {
  // Small batches so one file spans many batches on several workers, finishing out of order.
  const pool = new ChecksumWorkerPool({ threads: 3, maxQueuedBytes: 256 * 1024, batchBytes: 48 * 1024 });
  try {
    const data = randomBytes(5 * 1024 * 1024 + 17);
    const algs: ChecksumAlg[] = ['adler32', 'crc32c', 'md5', 'sha256'];
    // Several files at once, like concurrent transfers sharing one pool.
    const results = await Promise.all(
      algs.map(async (alg) => {
        const c = pool.createChecksummer(alg);
        let pos = 0;
        let step = 1;
        while (pos < data.length) {
          const len = Math.min(data.length - pos, (step * 7919) % 300_000 || 1);
          await c.update(data.subarray(pos, pos + len));
          pos += len;
          step++;
        }
        return [alg, await c.digestHex()] as const;
      }),
    );
    for (const [alg, hex] of results) assert.equal(hex, inline(alg, data), alg);
  } finally {
    await pool.close();
  }
});

test('the caller may reuse its buffer as soon as update() returns (the pool hashes a copy)', async () => {
  const pool = new ChecksumWorkerPool({ threads: 2 });
  try {
    const data = randomBytes(2 * 1024 * 1024);
    const scratch = new Uint8Array(64 * 1024);
    const pooled = ['adler32', 'crc32c', 'sha256'].map((a) => pool.createChecksummer(a as ChecksumAlg));
    for (let pos = 0; pos < data.length; pos += scratch.length) {
      scratch.set(data.subarray(pos, pos + scratch.length));
      const queued = pooled.map((c) => c.update(scratch));
      scratch.fill(0xee); // clobber before even awaiting, as a reused read buffer would be
      await Promise.all(queued);
    }
    for (const c of pooled) assert.equal(await c.digestHex(), inline(c.alg, data), c.alg);
  } finally {
    await pool.close();
  }
});

test('back-pressure: updates issued without awaiting are held until the queue drains, order kept', async () => {
  const limit = 128 * 1024;
  const pool = new ChecksumWorkerPool({ threads: 2, maxQueuedBytes: limit, batchBytes: 64 * 1024 });
  try {
    const chunks = Array.from({ length: 64 }, () => randomBytes(64 * 1024));
    for (const alg of ['crc32c', 'md5'] as ChecksumAlg[]) {
      const c = pool.createChecksummer(alg);
      let settled = 0;
      let peak = 0;
      const sample = (): void => {
        peak = Math.max(peak, pool.queuedBytes);
      };
      // Without back-pressure all 64 chunks (4 MiB) would be queued at once.
      const pending = chunks.map((chunk) =>
        c.update(chunk).then(() => {
          settled++;
          sample();
        }),
      );
      sample();
      let sawWaiting = false;
      while (settled < chunks.length) {
        await new Promise((r) => setImmediate(r));
        sample();
        if (settled < chunks.length && pool.queuedBytes > 0) sawWaiting = true;
      }
      await Promise.all(pending);
      assert.ok(peak > 0 && peak <= limit, `${alg}: peak queued ${peak} bytes, limit ${limit}`);
      assert.ok(sawWaiting, `${alg}: producers were held while the queue was busy`);
      assert.equal(await c.digestHex(), inline(alg, Buffer.concat(chunks)), alg);
    }
  } finally {
    await pool.close();
  }
});

test('misuse and shutdown surface as CargoErrors', async () => {
  const pool = new ChecksumWorkerPool({ threads: 1 });
  const c = pool.createChecksummer('adler32');
  await c.update(new Uint8Array([87, 105, 107, 105])); // "Wiki"
  assert.equal(await c.digestHex(), '03da0195');
  await assert.rejects(c.update(new Uint8Array(1)), { code: 'CARGO_ERR_CHECKSUM_STATE' });
  const open = pool.createChecksummer('sha256');
  await pool.close();
  await assert.rejects(open.digestHex(), { code: 'CARGO_ERR_CHECKSUM_WORKER' });
  assert.throws(() => pool.createChecksummer('md5'), { code: 'CARGO_ERR_CHECKSUM_WORKER' });
});

test('discard() ends a checksummer without a value and leaves the pool usable', { timeout: 120_000 }, async () => {
  const pool = new ChecksumWorkerPool({ threads: 2, batchBytes: 64 * 1024 });
  try {
    const data = randomBytes(300 * 1024);
    for (const alg of ['crc32c', 'sha256'] as ChecksumAlg[]) {
      const aborted = pool.createChecksummer(alg);
      void aborted.update(data); // batches in flight when the transfer aborts
      aborted.discard();
      aborted.discard(); // idempotent
      await assert.rejects(aborted.digestHex(), { code: 'CARGO_ERR_CHECKSUM_STATE' });
      await assert.rejects(aborted.update(data), { code: 'CARGO_ERR_CHECKSUM_STATE' });
      const next = pool.createChecksummer(alg);
      await next.update(data);
      assert.equal(await next.digestHex(), inline(alg, data), alg);
      await assert.rejects(next.digestHex(), { code: 'CARGO_ERR_CHECKSUM_STATE' }, 'digestHex() runs once');
    }
    // Everything posted gets answered, discarded sessions' batches too: the queue drains to zero
    // (a leak would hang here until the test's hang guard fires).
    while (pool.queuedBytes > 0) await new Promise((r) => setImmediate(r));
    assert.equal(pool.queuedBytes, 0);
  } finally {
    await pool.close();
  }
});
