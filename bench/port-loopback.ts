/**
 * bench/port-loopback — issue 3's loopback target measured as the issue states it: one large file, tmpfs → tmpfs,
 * pulled **through the port** (POST /api/v1/jobs → feeder → BullMQ → worker → engine → atomic publish), against
 * `curl --http2` downloading the same file from the same nginx (HTTP/2, TLS, 2 workers, sendfile off), alternating
 * in the same run (the order alternates, and the destination's pages are touched once before the first run);
 * iperf3's single-stream loopback TCP rate is printed for scale.
 *
 * Rates: curl = size / its wall time; cargoport = size / (submission → the worker's END of the file), from the
 * file's attempt record (start, end), and also size / (submission → job seen FINISHED by polling, 500 ms steps).
 * CPU per GiB: curl = its user + system time; cargoport = this process's user + system time over the job
 * (gateway + worker + engine all run here; the bench itself only polls). redis-server is not counted.
 *
 * Run: npm run build && node dist/bench/port-loopback.js [size_mib=2048] [runs=3] [connections=1] [streams=1]
 * Emulated WAN (issue 3's second target) through the same path: WAN_RTT=110ms WAN_RATE=125 put
 * the wanproxy delay line (../shared/tools/wanproxy beside the repository, built into bench/out/wanproxy by bench/transfer-wan.sh, or set WANPROXY) between
 * the clients and nginx; its single-TCP-stream capacity is measured with iperf3 through a second proxy instance.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { startHarness } from '../test/support/port-harness.js';
import { testTls } from '../test/support/tls.js';
import { startNginx } from './lib/nginx.js';
import { cpuSecondsOf } from './lib/proc-cpu.js';
import { timedChild } from './lib/timed-child.js';
import { startWorkerProcesses, stopWorkerProcesses } from './lib/worker-processes.js';

const SIZE_MIB = Number(process.argv[2] ?? 2048);
const RUNS = Number(process.argv[3] ?? 3);
const CONNECTIONS = Number(process.argv[4] ?? 1);
const STREAMS = Number(process.argv[5] ?? 1);
const PORT = 19000 + (process.pid % 1000);
const run = promisify(execFile);
const BYTES = SIZE_MIB * 1024 * 1024;
const GIB = 1024 ** 3;
const WAN_RTT = process.env['WAN_RTT'];
const WAN_RATE = process.env['WAN_RATE'] ?? '125';
const WANPROXY = process.env['WANPROXY'] ?? new URL('../../bench/out/wanproxy', import.meta.url).pathname;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A wanproxy in front of 127.0.0.1:`upstream`, listening on `listen`; killed by the returned function. */
async function startWanproxy(listen: number, upstream: number): Promise<() => void> {
  const p = spawn(WANPROXY, ['-listen', `127.0.0.1:${listen}`, '-upstream', `127.0.0.1:${upstream}`, '-rtt', WAN_RTT!, '-rate', WAN_RATE], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  return () => p.kill();
}

/** iperf3's single-stream rate on loopback, or through a wanproxy when WAN_RTT is set. */
async function iperf3(): Promise<number> {
  const server = spawn('iperf3', ['-s', '-1', '-p', String(PORT + 1)], { stdio: 'ignore' });
  const stopProxy = WAN_RTT ? await startWanproxy(PORT + 3, PORT + 1) : () => undefined;
  await new Promise((r) => setTimeout(r, 300));
  try {
    const { stdout } = await run('iperf3', ['-c', '127.0.0.1', '-p', String(WAN_RTT ? PORT + 3 : PORT + 1), '-t', WAN_RTT ? '15' : '5', '-J']);
    return JSON.parse(stdout).end.sum_received.bits_per_second / 8 / 1e6;
  } finally {
    stopProxy();
    server.kill();
  }
}

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-portloop-${process.pid}`;
  mkdirSync(`${base}/src`, { recursive: true });
  await run('sh', ['-c', `head -c ${BYTES} /dev/urandom > ${base}/src/file.bin`]);
  const tls = testTls();
  const nginx = await startNginx({ dir: base, root: `${base}/src`, port: PORT, sendfile: false, workerConnections: 1024 });
  // PORT_WORKER_PROC=1: the transfer runs in a separate `cargoport worker` process (scale-out roles); the CPU
  // counted is then this process's (gateway) plus the worker's.
  const workerProcs = Number(process.env['PORT_WORKER_PROC'] ?? 0);
  const h = await startHarness({ logLevel: 'error', workers: { concurrency: 8 }, transfer: { connections: CONNECTIONS, streams: STREAMS } }, { workers: workerProcs > 0 ? 0 : 1 });
  const workerChildren = await startWorkerProcesses(h.cfg, workerProcs, base);
  const workerCpu = () => cpuSecondsOf(workerChildren.map((c) => c.pid!));
  const stopProxy = WAN_RTT ? await startWanproxy(PORT + 2, PORT) : () => undefined;
  const url = `https://127.0.0.1:${WAN_RTT ? PORT + 2 : PORT}/file.bin`;
  try {
    const iperfMBs = await iperf3();
    const curl: Array<{ rate: number; cpuPerGiB: number }> = [];
    const port: Array<{ rate: number; polledRate: number; cpuPerGiB: number }> = [];
    // Writing into tmpfs pages the VM has never backed costs several times the copy (measured in session 5): the
    // first client to write 2 GiB would pay for it. Touch the destination's worth of pages once, then free them.
    await run('sh', ['-c', `head -c ${BYTES} /dev/zero > ${base}/warm.bin && rm ${base}/warm.bin`]);
    const runCurl = async (): Promise<void> => {
      const c = await timedChild('curl', ['--http2', '-s', '--cacert', tls.certPath, '-o', `${base}/dst/curl.bin`, url]);
      if (statSync(`${base}/dst/curl.bin`).size !== BYTES) throw new Error('curl: short file');
      curl.push({ rate: BYTES / 1e6 / c.secs, cpuPerGiB: c.cpu / (BYTES / GIB) });
      rmSync(`${base}/dst/curl.bin`);
    };
    const runPort = async (): Promise<void> => {
      const cpu0 = process.cpuUsage();
      const wcpu0 = workerCpu();
      const t0 = Date.now();
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: [{ source: url, destination: `file://${base}/dst/port.bin`, size: BYTES }],
        params: { connections: CONNECTIONS, streams: STREAMS },
      });
      if (r.status !== 201) throw new Error(JSON.stringify(r.body));
      let job: Record<string, unknown>;
      for (;;) {
        job = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${r.body.jobId}`)).body;
        if (job['state'] !== 'ACTIVE') break;
        // Coarse on purpose: the rate comes from the attempt record, and polling costs this process CPU.
        await new Promise((res) => setTimeout(res, 500));
      }
      const polledSecs = (Date.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      if (job['state'] !== 'FINISHED') throw new Error(`job ended ${job['state']}`);
      const file = (await h.api<{ attempts: Array<{ end: number; outcome: string }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body;
      const ok = file.attempts.find((a) => a.outcome === 'ok')!;
      const secs = (ok.end - t0) / 1000;
      if (statSync(`${base}/dst/port.bin`).size !== BYTES) throw new Error('port: short file');
      port.push({ rate: BYTES / 1e6 / secs, polledRate: BYTES / 1e6 / polledSecs, cpuPerGiB: ((cpu.user + cpu.system) / 1e6 + workerCpu() - wcpu0) / (BYTES / GIB) });
      rmSync(`${base}/dst/port.bin`);
    };
    for (let i = 1; i <= RUNS; i++) {
      rmSync(`${base}/dst`, { recursive: true, force: true });
      mkdirSync(`${base}/dst`);
      // Alternate who goes first, so neither always inherits the other's freshly freed pages and caches.
      if (i % 2 === 1) { await runCurl(); await runPort(); } else { await runPort(); await runCurl(); }
      console.log(`run ${i} (${i % 2 === 1 ? 'curl first' : 'port first'}): curl ${curl.at(-1)!.rate.toFixed(0)} MB/s ${curl.at(-1)!.cpuPerGiB.toFixed(2)} cpu-s/GiB | port ${port.at(-1)!.rate.toFixed(0)} MB/s (polled ${port.at(-1)!.polledRate.toFixed(0)}) ${port.at(-1)!.cpuPerGiB.toFixed(2)} cpu-s/GiB`);
    }
    const cr = median(curl.map((x) => x.rate));
    const cc = median(curl.map((x) => x.cpuPerGiB));
    const pr = median(port.map((x) => x.rate));
    const pc = median(port.map((x) => x.cpuPerGiB));
    const paired = median(port.map((p, i) => p.rate / curl[i]!.rate));
    console.log(`${SIZE_MIB} MiB tmpfs → tmpfs, nginx h2+TLS 2 workers, port job with ${CONNECTIONS} connection(s) × ${STREAMS} stream(s)${WAN_RTT ? `, through wanproxy -rtt ${WAN_RTT} -rate ${WAN_RATE}` : ''}`);
    console.log(`iperf3 single-stream TCP ${WAN_RTT ? 'through the proxy' : 'loopback'}: ${iperfMBs.toFixed(0)} MB/s`);
    if (WAN_RTT) console.log(`WAN: port/proxy capacity ${(pr / iperfMBs).toFixed(2)} measured, ${(pr / Number(WAN_RATE)).toFixed(2)} nominal [target ≥ 0.80]; curl ${(cr / iperfMBs).toFixed(2)} measured, ${(cr / Number(WAN_RATE)).toFixed(2)} nominal`);
    console.log(`curl --http2: median ${cr.toFixed(0)} MB/s, ${cc.toFixed(2)} cpu-s/GiB`);
    console.log(`through the port: median ${pr.toFixed(0)} MB/s, ${pc.toFixed(2)} cpu-s/GiB`);
    console.log(`RATIO port/curl: rate ${(pr / cr).toFixed(2)} (median of paired ${paired.toFixed(2)}) [target ≥ 1.0, aim 1.2]; cpu-s/GiB ${(pc / cc).toFixed(2)} [target ≤ 1.0]; port/iperf3 ${(pr / iperfMBs).toFixed(2)}, curl/iperf3 ${(cr / iperfMBs).toFixed(2)}`);
  } finally {
    stopProxy();
    await stopWorkerProcesses(workerChildren);
    await h.close();
    await nginx.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
