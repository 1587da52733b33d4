/**
 * bench/queue — the port's bookkeeping cost, against plain BullMQ measured in the same run.
 *
 *   1. accept: one POST /api/v1/jobs with N files (default 100,000) through the real HTTPS/2 gateway.
 *   2. memory: Redis used_memory growth per queued file (workers paused, so every file is waiting).
 *   3. dispatch: zero-byte file:// → file:// transfers (tmpfs) through feeder → BullMQ → worker → engine →
 *      atomic publish → Redis state, files/s; and plain BullMQ no-op jobs/s with the same concurrency.
 *
 * Run: npm run build && node dist/bench/queue.js [files] [dispatchFiles]
 * Needs a Redis at CARGOPORT_TEST_REDIS_URL (default redis://127.0.0.1:6379); uses a private key prefix.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { startHarness } from '../test/support/port-harness.js';
import { TransferPool } from '../workers/transfer-pool.js';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../test/support/redis.js';

const N = Number(process.argv[2] ?? 100_000);
const D = Number(process.argv[3] ?? 20_000);
const CONCURRENCY = 64;

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function plainBullmq(count: number): Promise<number> {
  const prefix = uniquePrefix();
  const connection = { host: '127.0.0.1', port: Number(new URL(TEST_REDIS_URL).port || 6379), maxRetriesPerRequest: null } as ConnectionOptions;
  const q = new Queue('noop', { connection, prefix });
  for (let i = 0; i < count; i += 1000) {
    await q.addBulk(Array.from({ length: Math.min(1000, count - i) }, (_, k) => ({ name: 'n', data: { i: i + k }, opts: { removeOnComplete: true } })));
  }
  let done = 0;
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    const w = new Worker('noop', async () => {
      if (++done === count) resolve();
    }, { connection, prefix, concurrency: CONCURRENCY });
    void w.waitUntilReady();
    finish.push(() => w.close());
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(finish.splice(0).map((f) => f()));
  await q.close();
  const r = new Redis(TEST_REDIS_URL);
  await dropPrefix(r, prefix);
  r.disconnect();
  return count / secs;
}
const finish: Array<() => Promise<void>> = [];

async function main(): Promise<void> {
  const h = await startHarness({ logLevel: 'error', workers: { concurrency: CONCURRENCY }, scheduler: { linkMaxActive: 100000, endpointMaxActive: 100000, feedBatch: 500 } }, { workers: 0 });
  const redis = new Redis(TEST_REDIS_URL);
  try {
    // 1 + 2: accept N files while no worker runs, measure memory per waiting file
    await redis.call('MEMORY', 'PURGE').catch(() => undefined);
    const mem0 = await usedMemory(redis);
    const files = Array.from({ length: N }, (_, i) => ({
      source: `https://data.example.org:8443/lsst/raw/2026-11-22/exposure-${String(i).padStart(7, '0')}.fits`,
      destination: `https://archive.example.net/store/lsst/raw/2026-11-22/exposure-${String(i).padStart(7, '0')}.fits`,
      size: 16 * 1024 * 1024,
      checksum: 'adler32:0a1b2c3d',
    }));
    const body = JSON.stringify({ files });
    const t0 = process.hrtime.bigint();
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', body, { 'content-type': 'application/json' });
    const acceptSecs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    const mem1 = await usedMemory(redis);
    const perFile = (mem1 - mem0) / N;
    console.log(`accept: ${N} files (${(body.length / 1e6).toFixed(1)} MB JSON) in ${acceptSecs.toFixed(2)} s  [target ≤ 5 s]`);
    console.log(`memory: ${perFile.toFixed(0)} B of Redis per queued file  [target ≤ 2048 B]`);
    await h.api('DELETE', `/api/v1/jobs/${r.body.jobId}`);

    // 3: dispatch D zero-byte files through the whole port
    const dir = `/dev/shm/cargoport-bench-${process.pid}`;
    mkdirSync(`${dir}/src`, { recursive: true });
    mkdirSync(`${dir}/dst`, { recursive: true });
    for (let i = 0; i < D; i++) writeFileSync(`${dir}/src/${i}`, '');
    const zr = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: Array.from({ length: D }, (_, i) => ({ source: `file://${dir}/src/${i}`, destination: `file://${dir}/dst/${i}`, size: 0 })),
      params: { verifyChecksum: 'none' },
    });
    const t1 = process.hrtime.bigint();
    await h.addWorker();
    const job = await h.waitJob(zr.body.jobId, 600_000);
    const dispatchSecs = Number(process.hrtime.bigint() - t1) / 1e9;
    const ours = D / dispatchSecs;
    rmSync(dir, { recursive: true, force: true });
    if (job['state'] !== 'FINISHED') throw new Error(`dispatch job ended ${job['state']}`);
    // 3b: the same pipeline with a transfer function that returns at once: the port's own bookkeeping only
    const nr = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: Array.from({ length: D }, (_, i) => ({ source: `file:///nonexistent/s${i}`, destination: `file:///nonexistent/d${i}`, size: 0 })),
      params: { verifyChecksum: 'none' },
    });
    await Promise.all(h.workers.splice(0).map((w) => w.close()));
    const noop = new TransferPool(h.cfg, {
      redisUrl: TEST_REDIS_URL,
      transfer: async () => ({ bytes: 0, resumedBytes: 0, protocol: 'file', connections: 1, streams: 1, durationMs: 0 }),
    });
    const t2 = process.hrtime.bigint();
    await noop.start();
    const nj = await h.waitJob(nr.body.jobId, 600_000);
    const bookkeeping = D / (Number(process.hrtime.bigint() - t2) / 1e9);
    await noop.close();
    if (nj['state'] !== 'FINISHED') throw new Error(`bookkeeping job ended ${nj['state']}`);
    const peer = await plainBullmq(D);
    console.log(`dispatch: ${ours.toFixed(0)} zero-byte transfers/s (cargoport, real engine on tmpfs, concurrency ${CONCURRENCY})  [target ≥ 5000]`);
    console.log(`dispatch, bookkeeping only (transfer returns at once): ${bookkeeping.toFixed(0)} files/s  (ratio to BullMQ ${(bookkeeping / peer).toFixed(3)})`);
    console.log(`peer: plain BullMQ no-op jobs/s, same run, same concurrency: ${peer.toFixed(0)}`);
    console.log(`ratio: cargoport / plain BullMQ = ${(ours / peer).toFixed(3)}  (bookkeeping cost ${(peer / ours).toFixed(2)}×; target ≤ ~5×)`);
  } finally {
    await h.close();
    redis.disconnect();
  }
}

await main();
