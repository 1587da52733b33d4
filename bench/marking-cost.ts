/**
 * bench/marking-cost — what scitags marking costs a transfer through the port (issue 14: ≤ 2 % of throughput and
 * CPU). One large file, tmpfs → tmpfs, pulled from nginx (HTTP/2, TLS) on IPv6 loopback by jobs submitted to the
 * port (gateway + worker in this process), alternately tagged (`scitag: 144`, ATLAS / Production Output: the
 * connection is opened by native/flowlabel with its flow label, fireflies at start / every second with TCP_INFO /
 * end) and untagged (Node's own connect, no marking), in the same run; the order alternates per pair.
 *
 * Rate = size / (submission → the worker's END of the file); CPU = this process's user + system over the job.
 *
 * Run: npm run build && node dist/bench/marking-cost.js [size_mib=1024] [pairs=5]
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { startHarness } from '../test/support/port-harness.js';
import { startNginx } from './lib/nginx.js';
import { marking } from '../services/marking/marking-service.js';

const SIZE_MIB = Number(process.argv[2] ?? 1024);
const PAIRS = Number(process.argv[3] ?? 5);
const PORT = 21000 + (process.pid % 1000);
const BYTES = SIZE_MIB * 1024 * 1024;
const GIB = 1024 ** 3;
const run = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const base = `/dev/shm/cargoport-markcost-${process.pid}`;
mkdirSync(`${base}/src`, { recursive: true });
await run('sh', ['-c', `head -c ${BYTES} /dev/urandom > ${base}/src/file.bin`]);
const nginx = await startNginx({ dir: base, root: `${base}/src`, port: PORT, sendfile: false, workerConnections: 1024, ipv6: true });
const h = await startHarness({
  logLevel: 'error', workers: { concurrency: 4 }, transfer: { connections: 1, streams: 1 },
  marking: { ongoingIntervalMs: 1000 },
});
const url = `https://[::1]:${PORT}/file.bin`;
const results: Record<'marked' | 'plain', Array<{ rate: number; cpuPerGiB: number }>> = { marked: [], plain: [] };
try {
  await run('sh', ['-c', `head -c ${BYTES} /dev/zero > ${base}/warm.bin && rm ${base}/warm.bin`]);
  const one = async (kind: 'marked' | 'plain'): Promise<void> => {
    rmSync(`${base}/dst`, { recursive: true, force: true });
    mkdirSync(`${base}/dst`);
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: [{ source: url, destination: `file://${base}/dst/f.bin`, size: BYTES, ...(kind === 'marked' ? { scitag: 144 } : {}) }],
    });
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
    let job: Record<string, unknown>;
    for (;;) {
      job = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${r.body.jobId}`)).body;
      if (job['state'] !== 'ACTIVE') break;
      await new Promise((res) => setTimeout(res, 500));
    }
    const cpu = process.cpuUsage(cpu0);
    if (job['state'] !== 'FINISHED') throw new Error(`job ended ${job['state']}`);
    const file = (await h.api<{ attempts: Array<{ end: number; outcome: string }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body;
    const ok = file.attempts.find((a) => a.outcome === 'ok')!;
    if (statSync(`${base}/dst/f.bin`).size !== BYTES) throw new Error('short file');
    results[kind].push({ rate: BYTES / 1e6 / ((ok.end - t0) / 1000), cpuPerGiB: (cpu.user + cpu.system) / 1e6 / (BYTES / GIB) });
  };
  for (let i = 1; i <= PAIRS; i++) {
    if (i % 2 === 1) { await one('plain'); await one('marked'); } else { await one('marked'); await one('plain'); }
    const m = results.marked.at(-1)!;
    const p = results.plain.at(-1)!;
    console.log(`pair ${i}: plain ${p.rate.toFixed(0)} MB/s ${p.cpuPerGiB.toFixed(2)} cpu-s/GiB | marked ${m.rate.toFixed(0)} MB/s ${m.cpuPerGiB.toFixed(2)} cpu-s/GiB`);
  }
  const st = marking().status();
  console.log(`marking: ${st.flowsStarted} flows, ${st.flowsLabelled} labelled, ${st.firefliesSent} fireflies sent; backends ${st.backends.map((b) => `${b.name}=${b.on ? 'on' : 'off'}`).join(' ')}`);
  const mr = median(results.marked.map((x) => x.rate));
  const pr = median(results.plain.map((x) => x.rate));
  const mc = median(results.marked.map((x) => x.cpuPerGiB));
  const pc = median(results.plain.map((x) => x.cpuPerGiB));
  const paired = median(results.marked.map((m, i) => m.rate / results.plain[i]!.rate));
  console.log(`${SIZE_MIB} MiB tmpfs → tmpfs from nginx h2+TLS on [::1], port job 1 connection × 1 stream, ${PAIRS} pairs`);
  console.log(`RATIO marked/plain: rate ${(mr / pr).toFixed(3)} (median of paired ${paired.toFixed(3)}), cpu-s/GiB ${(mc / pc).toFixed(3)} [target: rate ≥ 0.98, cpu ≤ 1.02]`);
} finally {
  await h.close();
  await nginx.stop();
  rmSync(base, { recursive: true, force: true });
}
