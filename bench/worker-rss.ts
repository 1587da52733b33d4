/**
 * bench/worker-rss — issue 3's memory target as stated: the RSS of a **worker process** (`cargoport worker`, the
 * CLI role) running 64 concurrent transfers, not of the engine inside a bench. One job of `files` × `mib` MiB pulled
 * from nginx (HTTP/2, TLS, 2 workers, sendfile off) into tmpfs; the gateway runs in this process, the worker in
 * its own. The worker's RSS is sampled every 20 ms from /proc (and its VmHWM read at the end); how many transfers
 * really overlapped is computed from the files' attempt records (start, end). For scale, `curl --http2 --parallel
 * --parallel-max 64` fetches the same files from the same nginx in the same run (its peak RSS from /usr/bin/time).
 *
 * Run: npm run build && node dist/bench/worker-rss.js [files=64] [mib=64] [connections=1] [streams=4]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { startHarness } from '../test/support/port-harness.js';
import { testTls } from '../test/support/tls.js';
import { startNginx } from './lib/nginx.js';
import { timedChild } from './lib/timed-child.js';
import { startWorkerProcesses, stopWorkerProcesses } from './lib/worker-processes.js';

const [FILES = 64, MIB = 64, CONNECTIONS = 1, STREAMS = 4] = process.argv.slice(2).map(Number);
const PORT = 20000 + (process.pid % 1000);
const BUDGET_MB = 300;

/** Resident set size (kB) of `pid`: `VmRSS`, or `VmHWM` (its peak since start). */
function memKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Most attempts running at one instant, from [start, end] intervals. */
function peakOverlap(intervals: Array<[number, number]>): number {
  const events = intervals.flatMap(([s, e]) => [[s, 1], [e, -1]] as Array<[number, number]>).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let peak = 0;
  for (const [, d] of events) peak = Math.max(peak, (cur += d));
  return peak;
}

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-wrss-${process.pid}`;
  mkdirSync(`${base}/src`, { recursive: true });
  const chunk = randomBytes(1024 * 1024);
  for (let i = 0; i < FILES; i++) {
    chunk.writeUInt32BE(i, 0);
    writeFileSync(`${base}/src/f${i}.bin`, Buffer.concat(Array.from({ length: MIB }, () => chunk)));
  }
  const tls = testTls();
  const nginx = await startNginx({ dir: base, root: `${base}/src`, port: PORT, sendfile: false, workerConnections: 1024 });
  const h = await startHarness({
    logLevel: 'error',
    workers: { concurrency: FILES },
    scheduler: { linkMaxActive: FILES, endpointMaxActive: FILES },
    transfer: { connections: CONNECTIONS, streams: STREAMS },
  }, { workers: 0 });
  const [worker] = await startWorkerProcesses(h.cfg, 1, base);
  const pid = worker!.pid!;
  const origin = `https://127.0.0.1:${PORT}`;
  const bytes = FILES * MIB * 1024 * 1024;
  try {
    const idleMb = memKb(pid, 'VmRSS') / 1024;
    let peakKb = 0;
    const sampler = setInterval(() => { peakKb = Math.max(peakKb, memKb(pid, 'VmRSS')); }, 20);
    const t0 = performance.now();
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: Array.from({ length: FILES }, (_, i) => ({ source: `${origin}/f${i}.bin`, destination: `file://${base}/port/f${i}.bin` })),
    });
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
    const job = await h.waitJob(r.body.jobId, 600_000);
    const secs = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    if (job['state'] !== 'FINISHED') throw new Error(`job ended ${job['state']}: ${JSON.stringify(job['counts'])}`);
    const hwmMb = memKb(pid, 'VmHWM') / 1024;
    const list = await h.api<{ files: Array<{ attempts: Array<{ start: number; end: number }> }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files?limit=10000`);
    const overlap = peakOverlap(list.body.files.flatMap((f) => f.attempts.map((a) => [a.start, a.end] as [number, number])));

    const curlDst = `${base}/curl`;
    mkdirSync(curlDst);
    const { secs: curlSecs, peakRssKb: curlKb } = await timedChild('curl', ['-sS', '--http2', '--cacert', tls.certPath, '--parallel', '--parallel-max', String(FILES),
      ...Array.from({ length: FILES }, (_, i) => [`${origin}/f${i}.bin`, '-o', `${curlDst}/f${i}.bin`]).flat()]);
    if (readdirSync(curlDst).length !== FILES) throw new Error('curl did not fetch every file');

    console.log(`${FILES} × ${MIB} MiB from nginx (HTTP/2, TLS) to tmpfs, ${CONNECTIONS} connection(s) × ${STREAMS} stream(s) per file`);
    console.log(`cargoport worker process: peak RSS ${(peakKb / 1024).toFixed(0)} MB sampled, VmHWM ${hwmMb.toFixed(0)} MB (idle ${idleMb.toFixed(0)} MB), ` +
      `${overlap} transfers at once at the peak, ${(bytes / 1e6 / secs).toFixed(0)} MB/s through the queue`);
    console.log(`curl --http2 --parallel --parallel-max ${FILES}: peak RSS ${(curlKb / 1024).toFixed(0)} MB, ${(bytes / 1e6 / curlSecs).toFixed(0)} MB/s`);
    console.log(`RATIO worker VmHWM / budget: ${(hwmMb / BUDGET_MB).toFixed(2)} [target ≤ 1.0 with ${FILES} concurrent transfers]`);
  } finally {
    await stopWorkerProcesses([worker!]);
    await h.close();
    await nginx.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
