/**
 * bench/processing-zstd-credits — the zstd thread pool's credit grouping (ZstdPoolOptions.creditBatch): 64 MiB of
 * random bytes in 16 KiB chunks through compress (level 1) → decompress on one pool thread, credits returned one per
 * output (1, as before) or in groups (2, 4 = the default), alternating in one process; medians of the runs.
 * CPU = this process (main thread and the pool's thread).
 *
 * Run: npm run build && node dist/bench/processing-zstd-credits.js [runs=6]
 */
import { randomFillSync } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZstdThreadPool } from '../services/processing/zstd-thread-pool.js';

const SIZE = 64 * 1024 * 1024;
const RUNS = Number(process.argv[2] ?? 6);
const BATCHES = [1, 2, 4];
const data = Buffer.allocUnsafe(SIZE);
randomFillSync(data);
const pools = new Map(BATCHES.map((b) => [b, new ZstdThreadPool({ threads: 1, creditBatch: b })]));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function once(batch: number): Promise<{ mbs: number; cpu: number }> {
  const p = pools.get(batch)!;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let out = 0;
  await pipeline(
    Readable.from((function* () { for (let o = 0; o < SIZE; o += 16384) yield data.subarray(o, o + 16384); })()),
    p.createStream({ mode: 'compress', level: 1 }),
    p.createStream({ mode: 'decompress' }),
    new Writable({ write(c: Buffer, _e, cb) { out += c.length; cb(); } }),
  );
  if (out !== SIZE) throw new Error('short output');
  const c = process.cpuUsage(c0);
  return { mbs: SIZE / 1e6 / ((performance.now() - t0) / 1000), cpu: (c.user + c.system) / 1e6 / (SIZE / 2 ** 30) };
}

const results = new Map<number, Array<{ mbs: number; cpu: number }>>(BATCHES.map((b) => [b, []]));
for (let i = 0; i < RUNS; i++) for (const b of i % 2 ? BATCHES : [...BATCHES].reverse()) results.get(b)!.push(await once(b));
for (const b of BATCHES) {
  const r = results.get(b)!;
  console.log(`creditBatch ${b}: ${median(r.map((x) => x.mbs)).toFixed(0)} MB/s, ${median(r.map((x) => x.cpu)).toFixed(2)} cpu-s/GiB (process, both threads)`);
}
for (const p of pools.values()) await p.close();
