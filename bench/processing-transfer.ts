/**
 * bench/processing-transfer — a transfer with a zstd level-1 emission stage and a decompression reception stage,
 * against the same transfer plain, **through the port** (POST /api/v1/jobs → feeder → worker → engine with
 * TransferControl.stages → atomic publish), alternating in the same run, on compressible data (FITS-header-like
 * 80-byte cards, zstd ratio ≈ 8) and on incompressible data (random bytes). Issue 15's targets: staged ≥ 0.80 of
 * the plain rate on compressible data, ≥ 0.90 on incompressible data (medians).
 *
 * Source: nginx (HTTP/2 + TLS, sendfile off) on loopback, files on /dev/shm; destination /dev/shm. Optional
 * `LIMIT_RATE=100m`: nginx paces each response (a link slower than loopback, where the stages' CPU is not the
 * bottleneck). Peer in the same run: `curl --http2 | zstd -1 -T1 | zstd -d -T1 > FILE`, the shell pipeline doing the
 * same compress + decompress around the same download.
 *
 * Rate = size / (submission → the file's attempt end), from the attempt record. CPU per GiB: this process (gateway,
 * worker, engine) plus the zstd threads, which are this process's threads too.
 *
 * Run: npm run build && node dist/bench/processing-transfer.js [size_mib=256] [runs=5]
 *      env PROC_THREADS=N: processing.threads (default 0 = CPUs − 1)
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { randomFillSync } from 'node:crypto';
import { startHarness, type Harness } from '../test/support/port-harness.js';
import { testTls } from '../test/support/tls.js';
import { startNginx } from './lib/nginx.js';

const SIZE_MIB = Number(process.argv[2] ?? 256);
const RUNS = Number(process.argv[3] ?? 5);
const BYTES = SIZE_MIB * 1024 * 1024;
const GIB = 1024 ** 3;
const PORT = 19500 + (process.pid % 400);
const LIMIT_RATE = process.env['LIMIT_RATE'];
const THREADS = Number(process.env['PROC_THREADS'] ?? 0);
const run = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function corpus(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = 0; at < bytes; i++) {
    const card = `${'KEY' + (i % 211).toString(36).toUpperCase()}`.padEnd(8) + `= ${((i * 7919) % 100003) / 13}`.padEnd(30) + ` / value ${i % 1013}`;
    at += out.write(card.padEnd(80), at);
  }
  return out;
}

const STAGES = { emission: [{ stage: 'zstd', level: 1 }], reception: [{ stage: 'unzstd' }] };

interface Sample { rate: number; cpuPerGiB: number }

async function portRun(h: Harness, url: string, dst: string, staged: boolean): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
    files: [{ source: url, destination: `file://${dst}`, size: BYTES }],
    // One connection, one stream for both: a staged transfer is one stream, and nginx's limit_rate is per response.
    params: { retries: 0, connections: 1, streams: 1, ...(staged ? { processing: STAGES } : {}) },
  });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  let job: Record<string, unknown>;
  for (;;) {
    job = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${r.body.jobId}`)).body;
    if (job['state'] !== 'ACTIVE') break;
    await new Promise((res) => setTimeout(res, 200));
  }
  const cpu = process.cpuUsage(cpu0);
  const file = (await h.api<{ attempts: Array<{ end: number; outcome: string; errorMessage?: string }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body;
  if (job['state'] !== 'FINISHED') throw new Error(`job ended ${String(job['state'])}: ${file.attempts.at(-1)?.errorMessage}`);
  const ok = file.attempts.find((a) => a.outcome === 'ok')!;
  if (statSync(dst).size !== BYTES) throw new Error('short file');
  rmSync(dst);
  return { rate: BYTES / 1e6 / ((ok.end - t0) / 1000), cpuPerGiB: (cpu.user + cpu.system) / 1e6 / (BYTES / GIB) };
}

async function peerRun(url: string, dst: string): Promise<Sample> {
  const tls = testTls();
  const t0 = process.hrtime.bigint();
  // bash's `time` sums the pipeline's CPU (user + sys of every process in it).
  const { stderr } = await run('bash', ['-c', `TIMEFORMAT='%U %S'; time (curl --http2 -s --cacert ${tls.certPath} ${url} | zstd -1 -T1 -q -c | zstd -d -T1 -q -c > ${dst})`]);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const [u, s] = stderr.trim().split(/\s+/).slice(-2).map(Number);
  if (statSync(dst).size !== BYTES) throw new Error('peer: short file');
  rmSync(dst);
  return { rate: BYTES / 1e6 / secs, cpuPerGiB: (u! + s!) / (BYTES / GIB) };
}

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-proctx-${process.pid}`;
  mkdirSync(`${base}/src`, { recursive: true });
  mkdirSync(`${base}/dst`, { recursive: true });
  writeFileSync(`${base}/src/text.bin`, corpus(BYTES));
  const rnd = Buffer.allocUnsafe(BYTES);
  randomFillSync(rnd);
  writeFileSync(`${base}/src/random.bin`, rnd);
  const nginx = await startNginx({ dir: base, root: `${base}/src`, port: PORT, sendfile: false, workerConnections: 1024, ...(LIMIT_RATE ? { limitRate: LIMIT_RATE } : {}) });
  const h = await startHarness({ logLevel: 'error', workers: { concurrency: 4 }, processing: { threads: THREADS } });
  const results: Record<string, { plain: Sample[]; staged: Sample[]; peer: Sample[] }> = {};
  try {
    // Touch the destination's worth of tmpfs pages once (the first writer would otherwise pay for them).
    await run('sh', ['-c', `head -c ${BYTES} /dev/zero > ${base}/warm.bin && rm ${base}/warm.bin`]);
    // DATA=text|random, ONLY=staged: a subset (for profiling).
    for (const data of ['text', 'random'].filter((d) => !process.env['DATA'] || d === process.env['DATA'])) {
      const url = `https://127.0.0.1:${PORT}/${data}.bin`;
      const r = (results[data] = { plain: [] as Sample[], staged: [] as Sample[], peer: [] as Sample[] });
      for (let i = 1; i <= RUNS; i++) {
        // Alternate who goes first.
        const order = process.env['ONLY'] === 'staged' ? [true, true] : i % 2 === 1 ? [false, true] : [true, false];
        for (const staged of order) (staged ? r.staged : r.plain).push(await portRun(h, url, `${base}/dst/${data}-${staged ? 's' : 'p'}.bin`, staged));
        if (process.env['ONLY'] === 'staged') r.plain.push(r.staged.pop()!);
        r.peer.push(await peerRun(url, `${base}/dst/${data}-peer.bin`));
        const f = (s: Sample) => `${s.rate.toFixed(0)} MB/s ${s.cpuPerGiB.toFixed(2)} cpu-s/GiB`;
        console.log(`${data} run ${i}: plain ${f(r.plain.at(-1)!)} | staged ${f(r.staged.at(-1)!)} (${(r.staged.at(-1)!.rate / r.plain.at(-1)!.rate).toFixed(2)}) | curl|zstd|zstd -d ${f(r.peer.at(-1)!)}`);
      }
    }
    console.log(`${SIZE_MIB} MiB, nginx h2+TLS on loopback${LIMIT_RATE ? ` limit_rate ${LIMIT_RATE}` : ''} → /dev/shm through the port; processing.threads ${THREADS || 'default'}; ${RUNS} runs alternating`);
    for (const [data, r] of Object.entries(results)) {
      const p = median(r.plain.map((s) => s.rate));
      const s = median(r.staged.map((x) => x.rate));
      const paired = median(r.staged.map((x, i) => x.rate / r.plain[i]!.rate));
      const peer = median(r.peer.map((x) => x.rate));
      const target = data === 'text' ? 0.8 : 0.9;
      console.log(`${data}: plain ${p.toFixed(0)} MB/s (${median(r.plain.map((x) => x.cpuPerGiB)).toFixed(2)} cpu-s/GiB), staged zstd-1 + unzstd ${s.toFixed(0)} MB/s (${median(r.staged.map((x) => x.cpuPerGiB)).toFixed(2)} cpu-s/GiB), peer curl|zstd -1|zstd -d ${peer.toFixed(0)} MB/s (${median(r.peer.map((x) => x.cpuPerGiB)).toFixed(2)} cpu-s/GiB)`);
      console.log(`RATIO ${data} staged/plain ${(s / p).toFixed(2)} (median of paired ${paired.toFixed(2)}) [target ≥ ${target}]; staged/peer ${(s / peer).toFixed(2)}`);
    }
  } finally {
    await h.close();
    await nginx.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
