/**
 * bench/queue-small-files — issue 3: 10,000 files of 64 KiB through the queue (job → feeder → worker → engine →
 * atomic publish), against `rclone copy` of the same files from the same HTTPS/2 server, same run.
 *
 * Server: nginx (2 workers, HTTP/2 + TLS, autoindex for rclone's http backend) serving a tmpfs directory.
 * cargoport: gateway + one worker pool in this process, concurrency 64, default verification (adler32 computed
 * while streaming). rclone: its defaults (--transfers 4) and a second run with --transfers 64.
 * For scale, the same files fetched by a bare node:http2 client (Node's own floor: no undici, checksum, fsync,
 * temp name or queue) and by h2load (C, bodies discarded: what nginx and 2 cores allow at all). Every phase
 * prints the CPU its client, nginx's workers and redis-server spent per file, from /proc.
 *
 * Run: npm run build && node dist/bench/queue-small-files.js [files] [KiB]
 * Knobs for experiments (environment): CP_CONN, CP_STREAMS (per origin), CP_BUNDLE (bytes), CP_CONCURRENCY (worker
 * slots), CP_LINK_MAX / CP_EP_MAX (active-transfer slots), CP_WORKER_PROCS=N (gateway here, N `cargoport worker`
 * processes), CP_ONLY=1 (the port's phase alone, with the worker's mean number of transfers in flight), CP_PAIRS=n
 * (n alternating pairs against rclone --transfers 16, nothing else), CP_DEFAULTS=1 (config/default.yaml's settings,
 * no overrides), CP_DST_DIR (where every client writes; default tmpfs).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { startHarness } from '../test/support/port-harness.js';
import { testTls } from '../test/support/tls.js';
import { startNginx } from './lib/nginx.js';
import { childPids, cpuSecondsOf } from './lib/proc-cpu.js';
import { timedChild } from './lib/timed-child.js';
import { startWorkerProcesses, stopWorkerProcesses } from './lib/worker-processes.js';

const N = Number(process.argv[2] ?? 10_000);
const KIB = Number(process.argv[3] ?? 64);
const PORT = 18000 + (process.pid % 1000);
const run = promisify(execFile);

interface Phase {
  name: string;
  filesPerSec: number;
  /** CPU milliseconds per file: the client, the server's workers, redis-server (cargoport only). */
  clientMs: number;
  nginxMs: number;
  redisMs?: number;
  note?: string;
}

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-smallq-${process.pid}`;
  const src = `${base}/src`;
  mkdirSync(src, { recursive: true });
  const data = randomBytes(KIB * 1024);
  for (let i = 0; i < N; i++) {
    data.writeUInt32BE(i, 0); // distinct contents
    writeFileSync(`${src}/f${String(i).padStart(5, '0')}`, data);
  }
  const tls = testTls();
  const nginx = await startNginx({ dir: base, root: src, port: PORT, autoindex: true });
  // CP_WORKER_PROCS=N: the scale-out deployment instead of one process: this process is the gateway, N
  // `cargoport worker` processes (the CLI role, same Redis and prefix) move the files.
  const workerProcs = Number(process.env['CP_WORKER_PROCS'] ?? 0);
  // CP_DEFAULTS=1: the port's default settings (config/default.yaml, as `cargoport serve` runs), no overrides.
  const overrides = process.env['CP_DEFAULTS'] ? { logLevel: 'error' } : { logLevel: 'error', workers: { concurrency: Number(process.env['CP_CONCURRENCY'] ?? 64) }, scheduler: { linkMaxActive: Number(process.env['CP_LINK_MAX'] ?? 256), endpointMaxActive: Number(process.env['CP_EP_MAX'] ?? 256), bundleMaxBytes: Number(process.env['CP_BUNDLE'] ?? 1048576) }, transfer: { connections: Number(process.env['CP_CONN'] ?? 4), streams: Number(process.env['CP_STREAMS'] ?? 4) } };
  const h = await startHarness(overrides as Parameters<typeof startHarness>[0], { workers: workerProcs > 0 ? 0 : 1 });
  // CP_DST_DIR: where every client writes (default: tmpfs beside the source); a disk directory makes fsync real.
  const dstRoot = process.env['CP_DST_DIR'] ? `${process.env['CP_DST_DIR']}/cargoport-smallq-${process.pid}` : `${base}/dst`;
  mkdirSync(dstRoot, { recursive: true });
  const workerChildren = await startWorkerProcesses(h.cfg, workerProcs, base);
  const nginxPids = childPids(Number(readFileSync(`${base}/nginx.pid`, 'utf8').trim()));
  const redisPid = Number(/process_id:(\d+)/.exec(await h.redis.info('server'))?.[1]);
  const origin = `https://127.0.0.1:${PORT}`;
  const phases: Phase[] = [];
  /** Measures one phase: `fn` returns its wall seconds and its client's CPU seconds (undefined: this process). */
  const phase = async (name: string, fn: () => Promise<{ secs: number; cpu?: number; note?: string }>, withRedis = false) => {
    const n0 = cpuSecondsOf(nginxPids);
    const r0 = cpuSecondsOf([redisPid]);
    const c0 = process.cpuUsage();
    const w0 = cpuSecondsOf(workerChildren.map((c) => c.pid!));
    process.stderr.write(`${name} …\n`);
    const r = await fn();
    const own = process.cpuUsage(c0);
    const childCpu = cpuSecondsOf(workerChildren.map((c) => c.pid!)) - w0;
    const ms = (s: number) => (s * 1000) / N;
    phases.push({
      name, filesPerSec: N / r.secs, clientMs: ms(r.cpu ?? (own.user + own.system) / 1e6 + childCpu), nginxMs: ms(cpuSecondsOf(nginxPids) - n0),
      ...(withRedis ? { redisMs: ms(cpuSecondsOf([redisPid]) - r0) } : {}), ...(r.note ? { note: r.note } : {}),
    });
  };
  try {
    const names = readdirSync(src).sort();
    const counted = (dst: string, who: string) => {
      const got = readdirSync(dst).filter((n) => !n.startsWith('.')).length;
      if (got !== N) throw new Error(`${who} wrote ${got} of ${N} files`);
    };
    const rclone = (transfers: number) => phase(`rclone copy --transfers ${transfers}`, async () => {
      const dst = `${dstRoot}/rclone-${transfers}-${phases.length}`;
      const r = await timedChild('rclone', ['copy', '--http-url', `${origin}/`, ':http:', dst,
        '--ca-cert', tls.certPath, '--transfers', String(transfers), '--retries', '1']);
      counted(dst, 'rclone');
      return r;
    });
    const cargoport = () => phase('cargoport through the queue', async () => {
      const dst = `${dstRoot}/cargoport-${phases.length}`;
      const t = process.hrtime.bigint();
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: names.map((n) => ({ source: `${origin}/${n}`, destination: `file://${dst}/${n}`, size: KIB * 1024 })),
      });
      if (r.status !== 201) throw new Error(JSON.stringify(r.body));
      const job = await h.waitJob(r.body.jobId, 600_000);
      if (job['state'] !== 'FINISHED') {
        // Name the cause: every failed file with its attempts (error code, message) before giving up.
        const failed = await h.api<{ files: unknown[] }>('GET', `/api/v1/jobs/${r.body.jobId}/files?state=FAILED&limit=20`);
        for (const f of failed.body.files ?? []) console.error(JSON.stringify(f));
        throw new Error(`job ended ${job['state']}: ${JSON.stringify(job['counts'])}`);
      }
      counted(dst, 'cargoport');
      return { secs: Number(process.hrtime.bigint() - t) / 1e9 };
    }, true);
    const floor = (dst: string) => phase(`bare node:http2 client, ${dst === 'discard' ? 'bodies discarded' : 'fs.writeFile, no fsync'}`, async () => {
      if (dst !== 'discard') mkdirSync(dst);
      const r = await timedChild(process.execPath, [new URL('./lib/node-h2-floor.js', import.meta.url).pathname,
        origin, tls.certPath, dst, '4', '64'], names.join('\n'));
      if (dst !== 'discard') counted(dst, 'node:http2 floor');
      const j = JSON.parse(r.stdout) as { secs: number; cpuSecs: number; retries: number };
      return { secs: j.secs, cpu: j.cpuSecs, note: `${j.retries} refused streams asked again` };
    });
    // The machine's ceiling: h2load (C, nghttp2) discarding bodies, 8 connections × 1,000 requests (nginx ends
    // an HTTP/2 connection after 1,000 requests and h2load does not reconnect).
    const h2loadCeiling = () => phase('h2load, bodies discarded (machine ceiling)', async () => {
      const conns = Math.max(1, Math.ceil(N / 1000));
      const uris = `${base}/h2load-uris.txt`;
      writeFileSync(uris, names.map((n) => `${origin}/${n}`).join('\n') + '\n');
      const r = await timedChild('h2load', ['-n', String(N), '-c', String(conns), '-m', '8', '-i', uris]);
      const m = /finished in ([\d.]+)(ms|s),/.exec(r.stdout);
      const ok = /(\d+) succeeded/.exec(r.stdout);
      if (!m || Number(ok?.[1]) !== N) throw new Error(`h2load: ${r.stdout.slice(-800)}`);
      return { secs: Number(m[1]) / (m[2] === 'ms' ? 1000 : 1), cpu: r.cpu };
    });

    if (process.env['CP_ONLY']) {
      // Experiments (profiling the port's phase alone): no peers, no ratio.
      // How many files are really in flight in the worker (sampled every 5 ms).
      const samples: number[] = [];
      const sampler = setInterval(() => { samples.push(h.workers[0]?.pool.active.size ?? NaN); }, 5);
      await cargoport();
      clearInterval(sampler);
      const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
      console.log(JSON.stringify({ ...phases[0], meanActive: Number(mean.toFixed(1)) }));
      return;
    }
    const pairs = Number(process.env['CP_PAIRS'] ?? 0);
    if (pairs > 0) {
      // Alternating pairs against rclone --transfers 16 (the loaded machine drifts: pairs, not one run each).
      for (let i = 0; i < pairs; i++) {
        if (i % 2 === 0) { await rclone(16); await cargoport(); } else { await cargoport(); await rclone(16); }
        const last = phases.slice(-2);
        const rcl = last.find((p) => p.name.startsWith('rclone'))!;
        const cp = last.find((p) => p.name.startsWith('cargoport'))!;
        console.log(`pair ${i + 1}: rclone --transfers 16 ${rcl.filesPerSec.toFixed(0)} files/s (${rcl.clientMs.toFixed(3)} ms CPU/file), cargoport ${cp.filesPerSec.toFixed(0)} files/s (${cp.clientMs.toFixed(3)} ms CPU/file, redis ${cp.redisMs?.toFixed(3)}), ratio ${(cp.filesPerSec / rcl.filesPerSec).toFixed(2)}`);
        rmSync(dstRoot, { recursive: true, force: true });
        mkdirSync(dstRoot, { recursive: true });
      }
      return;
    }
    await rclone(4);
    await cargoport();
    await rclone(64);
    await floor(`${base}/node-floor`);
    await floor('discard');
    if (await hasCommand('h2load')) await h2loadCeiling();

    const rc = phases.filter((p) => p.name.startsWith('rclone'));
    const ours = phases.find((p) => p.name.startsWith('cargoport'))!;
    console.log(`files: ${N} × ${KIB} KiB from nginx (HTTP/2, TLS, 2 workers) to tmpfs; CPU in ms per file`);
    console.log('| client | files/s | client CPU | nginx CPU | redis CPU | vs rclone --transfers 4 |');
    console.log('|---|---|---|---|---|---|');
    for (const p of phases) {
      console.log(`| ${p.name}${p.note ? ` (${p.note})` : ''} | ${p.filesPerSec.toFixed(0)} | ${p.clientMs.toFixed(3)} | ${p.nginxMs.toFixed(3)} | ${p.redisMs?.toFixed(3) ?? '—'} | ${(p.filesPerSec / rc[0]!.filesPerSec).toFixed(2)} |`);
    }
    console.log(`RATIO cargoport/rclone: ${rc.map((p) => `${(ours.filesPerSec / p.filesPerSec).toFixed(2)} (${p.name.replace('rclone copy ', '')})`).join(', ')}  [target ≥ 3]`);
  } finally {
    await stopWorkerProcesses(workerChildren);
    await h.close();
    await nginx.stop();
    rmSync(base, { recursive: true, force: true });
    rmSync(dstRoot, { recursive: true, force: true });
  }
}

async function hasCommand(cmd: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);
}

await main();
