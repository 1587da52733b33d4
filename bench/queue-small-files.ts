/**
 * bench/queue-small-files — issue 3: 10,000 files of 64 KiB through the queue (job → feeder → worker → engine →
 * atomic publish), against `rclone copy` of the same files from the same HTTPS/2 server, same run.
 *
 * Server: nginx (2 workers, HTTP/2 + TLS, autoindex for rclone's http backend) serving a tmpfs directory.
 * cargoport: gateway + one worker pool in this process, concurrency 64, default verification (adler32 computed
 * while streaming). rclone: its defaults (--transfers 4) and a second run with --transfers 64.
 *
 * Run: npm run build && node dist/bench/queue-small-files.js [files] [KiB]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { startHarness } from '../test/support/port-harness.js';
import { testTls } from '../test/support/tls.js';
import { startNginx } from './lib/nginx.js';

const N = Number(process.argv[2] ?? 10_000);
const KIB = Number(process.argv[3] ?? 64);
const PORT = 18000 + (process.pid % 1000);
const run = promisify(execFile);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
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
  const h = await startHarness({ logLevel: 'error', workers: { concurrency: 64 }, scheduler: { linkMaxActive: 256, endpointMaxActive: 256, bundleMaxBytes: Number(process.env['CP_BUNDLE'] ?? 1048576) }, transfer: { connections: Number(process.env['CP_CONN'] ?? 4), streams: Number(process.env['CP_STREAMS'] ?? 4) } });
  try {
    const names = readdirSync(src).sort();
    const rclone = async (transfers: number) => {
      const dst = `${base}/rclone-${transfers}`;
      const secs = await timed(() => run('rclone', ['copy', '--http-url', `https://127.0.0.1:${PORT}/`, ':http:', dst,
        '--ca-cert', tls.certPath, '--transfers', String(transfers), '--retries', '1'], { maxBuffer: 1 << 24 }));
      const got = readdirSync(dst).length;
      if (got !== N) throw new Error(`rclone copied ${got} of ${N}`);
      return N / secs;
    };
    const cargoport = async () => {
      const dst = `${base}/cargoport`;
      const secs = await timed(async () => {
        const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
          files: names.map((n) => ({ source: `https://127.0.0.1:${PORT}/${n}`, destination: `file://${dst}/${n}`, size: KIB * 1024 })),
        });
        if (r.status !== 201) throw new Error(JSON.stringify(r.body));
        const job = await h.waitJob(r.body.jobId, 600_000);
        if (job['state'] !== 'FINISHED') {
          // Name the cause: every failed file with its attempts (error code, message) before giving up.
          const failed = await h.api<{ files: unknown[] }>('GET', `/api/v1/jobs/${r.body.jobId}/files?state=FAILED&limit=20`);
          for (const f of failed.body.files ?? []) console.error(JSON.stringify(f));
          throw new Error(`job ended ${job['state']}: ${JSON.stringify(job['counts'])}`);
        }
      });
      return N / secs;
    };
    const rc4 = await rclone(4);
    const ours = await cargoport();
    const rc64 = await rclone(64);
    console.log(`files: ${N} × ${KIB} KiB from nginx (HTTP/2, TLS) to tmpfs`);
    console.log(`cargoport through the queue: ${ours.toFixed(0)} files/s`);
    console.log(`rclone copy (default --transfers 4): ${rc4.toFixed(0)} files/s   ratio ${(ours / rc4).toFixed(2)}  [target ≥ 3]`);
    console.log(`rclone copy --transfers 64:          ${rc64.toFixed(0)} files/s   ratio ${(ours / rc64).toFixed(2)}`);
  } finally {
    await h.close();
    await nginx.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
