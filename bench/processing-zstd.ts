/**
 * zstd throughput per core, ours next to the `zstd` command-line tool on the same bytes in the same run, and the
 * event-loop delay while compressing: the pool (worker thread) next to zstd-napi's CompressStream on the main
 * thread.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/processing-zstd.js [sizeMiB=256]
 *
 * Data: a compressible FITS-like text corpus (header cards, numbers) and incompressible random bytes, written to a
 * tmpfs-backed file for the CLI (`zstd -LEVEL -T1 -c FILE > /dev/null` and `zstd -d -T1 -c`; process start
 * included, page cache warm). Ours: the thread pool's stream fed 256 KiB chunks from memory (what a transfer
 * gives it), output discarded. MB/s = input MB per wall second for compression, output MB for decompression,
 * best of 3. Event-loop delay: perf_hooks.monitorEventLoopDelay (1 ms resolution; the figures include it) during
 * one level-3 compression fed from the file, next to the same read without compression (the floor), with the
 * main thread's event-loop utilisation (the share of time it was busy: what is left for byte movement, lock
 * renewal and the gateway).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { PassThrough, Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompressStream, compress } from 'zstd-napi';
import { ZstdThreadPool } from '../services/processing/zstd-thread-pool.js';

const sizeMiB = Number(process.argv[2] ?? 256);
const size = sizeMiB * 1024 * 1024;
const CHUNK = 256 * 1024;

function corpus(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = 0; at < bytes; i++) {
    const card = `${'KEY' + (i % 211).toString(36).toUpperCase()}`.padEnd(8) + `= ${((i * 7919) % 100003) / 13}`.padEnd(30) + ` / value ${i % 1013}`;
    at += out.write(card.padEnd(80), at);
  }
  return out;
}

async function feed(data: Buffer, stage: Duplex): Promise<number> {
  let out = 0;
  const chunks = function* () {
    for (let i = 0; i < data.length; i += CHUNK) yield data.subarray(i, i + CHUNK);
  };
  await pipeline(Readable.from(chunks()), stage, new Writable({ write(c: Buffer, _e, cb) { out += c.length; cb(); } }));
  return out;
}

function best(n: number, f: () => number): number {
  let b = Infinity;
  for (let i = 0; i < n; i++) b = Math.min(b, f());
  return b;
}

async function bestAsync(n: number, f: () => Promise<number>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < n; i++) b = Math.min(b, await f());
  return b;
}

function cliSeconds(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync('zstd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`zstd ${args.join(' ')}: ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

const mb = (bytes: number, s: number) => bytes / 1e6 / s;
const dir = mkdtempSync('/dev/shm/cargoport-zstd-bench-');
const pool = new ZstdThreadPool({ threads: 1 });
try {
  console.log(`zstd bench: ${sizeMiB} MiB per data set, 1 thread each, best of 3; MB/s (ours / CLI = ratio)`);
  for (const [name, data] of [['compressible', corpus(size)], ['random', randomBytes(size)]] as const) {
    const file = join(dir, `${name}.bin`);
    writeFileSync(file, data);
    for (const level of [1, 3]) {
      const zfile = `${file}.${level}.zst`;
      writeFileSync(zfile, compress(data, { compressionLevel: level }));
      const oursC = await bestAsync(3, async () => {
        const t0 = performance.now();
        await feed(data, pool.createStream({ mode: 'compress', level }));
        return (performance.now() - t0) / 1000;
      });
      const cliC = best(3, () => cliSeconds([`-${level}`, '-T1', '-q', '-c', file]));
      const zdata = readFileSync(zfile);
      const oursD = await bestAsync(3, async () => {
        const t0 = performance.now();
        await feed(zdata, pool.createStream({ mode: 'decompress', windowLogMax: 27 }));
        return (performance.now() - t0) / 1000;
      });
      const cliD = best(3, () => cliSeconds(['-d', '-T1', '-q', '-c', zfile]));
      console.log(`${name.padEnd(12)} level ${level}: compress ${mb(size, oursC).toFixed(0)} / ${mb(size, cliC).toFixed(0)} = ${(cliC / oursC).toFixed(2)}x;`
        + ` decompress ${mb(size, oursD).toFixed(0)} / ${mb(size, cliD).toFixed(0)} = ${(cliD / oursD).toFixed(2)}x`);
    }
  }
  // Event-loop delay while a level-3 compression of the compressible set runs, the bytes read from a file as a
  // transfer would: nothing but the read (the floor), the pool, and zstd-napi's CompressStream on the main thread.
  const file = join(dir, 'compressible.bin');
  const variants: Array<[string, () => Duplex]> = [
    ['read only (floor)', () => new PassThrough()],
    ['pool (worker thread)', () => pool.createStream({ mode: 'compress', level: 3 })],
    ['zstd-napi CompressStream (main thread)', () => new CompressStream({ compressionLevel: 3 })],
  ];
  for (const [name, make] of variants) {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    let out = 0;
    await pipeline(createReadStream(file, { highWaterMark: CHUNK }), make(), new Writable({ write(c: Buffer, _e, cb) { out += c.length; cb(); } }));
    const s = (performance.now() - t0) / 1000;
    const elu = performance.eventLoopUtilization(elu0);
    h.disable();
    const ms = (ns: number) => (ns / 1e6).toFixed(1);
    console.log(`event-loop delay, level 3, ${name.padEnd(40)} p50 ${ms(h.percentile(50))} ms, p99 ${ms(h.percentile(99))} ms, max ${ms(h.max)} ms, main thread busy ${(elu.utilization * 100).toFixed(0)}% (${mb(size, s).toFixed(0)} MB/s, ${out} bytes out)`);
  }
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
