/**
 * bench/packed-small-files — issue 15: N files of K KiB (default 10,000 × 64 KiB, tmpfs) through the queue, from a
 * port's local area to a cargoport storage endpoint, three ways in the same run:
 *   1. packed (`params.processing.pack`: tar archives of up to PACK members, services/jobs/packed-runner.ts),
 *   2. the same job file by file (a second port with the default bundle settings, so it is not slowed by large
 *      bundles; same destination kind: its own storage endpoint),
 *   3. `rclone copy --transfers 16` of the same files to the first port's storage endpoint (WebDAV).
 * Every destination is a port's storage endpoint (HTTP/2 + TLS, durable publish: fsync + link per file).
 *
 * Run: npm run build && node dist/bench/packed-small-files.js [files] [KiB] [rounds]
 * Knobs (environment): PACK (members per archive, default 250), CP_CONCURRENCY (worker slots, 64), CP_LINK_MAX (the
 * packed port's active-file slots per link and endpoint, 8192: slots count files, and an archive holds PACK of them),
 * PHASES=packed,file,rclone (a subset, for experiments: no ratio then).
 * Targets: packed ≥ 5× file by file, ≥ 2× rclone --transfers 16.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../test/support/port-harness.js';
import { testTls } from '../test/support/tls.js';
import { timedChild } from './lib/timed-child.js';

const N = Number(process.argv[2] ?? 10_000);
const KIB = Number(process.argv[3] ?? 64);
const ROUNDS = Number(process.argv[4] ?? 1);
const PACK = Number(process.env['PACK'] ?? 250);
const CONCURRENCY = Number(process.env['CP_CONCURRENCY'] ?? 64);

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-packed-${process.pid}`;
  const src = `${base}/src`;
  mkdirSync(src, { recursive: true });
  const data = randomBytes(KIB * 1024);
  const names: string[] = [];
  for (let i = 0; i < N; i++) {
    data.writeUInt32BE(i, 0);
    names.push(`f${String(i).padStart(5, '0')}`);
    writeFileSync(`${src}/${names[i]}`, data);
  }
  const tls = testTls();
  const common = { logLevel: 'error', dataDir: `${base}/port-a`, workers: { concurrency: CONCURRENCY }, scheduler: { linkMaxActive: 256, endpointMaxActive: 256 } };
  mkdirSync(`${base}/port-a`);
  mkdirSync(`${base}/port-b`);
  // Port A runs packed jobs (bundles as large as an archive); port B the same job file by file (default bundles).
  // Active-file slots are counted per file: a packed port needs room for every member of the archives in flight.
  const slots = Number(process.env['CP_LINK_MAX'] ?? 8192);
  const a = await startHarness({ ...common, scheduler: { linkMaxActive: slots, endpointMaxActive: slots, bundleFiles: Math.min(1000, PACK), bundleMaxBytes: 1048576 } });
  const b = await startHarness({ ...common, dataDir: `${base}/port-b` });
  const results: Record<string, number[]> = { packed: [], 'file by file': [], 'rclone copy --transfers 16': [] };
  const storageDir = (h: Harness) => join(h.cfg.dataDir, 'storage');
  const counted = (dir: string, who: string) => {
    const got = readdirSync(dir).filter((n) => !n.startsWith('.')).length;
    if (got !== N) throw new Error(`${who} wrote ${got} of ${N} files`);
  };
  const job = async (h: Harness, dir: string, pack: boolean) => {
    const t = process.hrtime.bigint();
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: names.map((n) => ({ source: `file://${src}/${n}`, destination: `${h.gateway.url}/data/${dir}/${n}`, size: KIB * 1024 })),
      params: { existing: 'overwrite', ...(pack ? { processing: { pack: { maxMembers: PACK } } } : {}) },
    });
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
    const j = await h.waitJob(r.body.jobId, 900_000);
    if (j['state'] !== 'FINISHED') throw new Error(`job ended ${j['state']}: ${JSON.stringify(j['counts'])}`);
    const secs = Number(process.hrtime.bigint() - t) / 1e9;
    counted(join(storageDir(h), dir), dir);
    return N / secs;
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Alternating order between rounds (the machine is shared).
      const phases: Array<[string, () => Promise<number>]> = [
        ['packed', () => job(a, `packed-${round}`, true)],
        ['file by file', () => job(b, `plain-${round}`, false)],
        ['rclone copy --transfers 16', async () => {
          const r = await timedChild('rclone', ['copy', src, `:webdav:/rclone-${round}`, '--webdav-url', `${a.gateway.url}/data`,
            '--ca-cert', tls.certPath, '--transfers', '16', '--retries', '1', '--no-check-dest', '--webdav-vendor', 'other']);
          counted(join(storageDir(a), `rclone-${round}`), 'rclone');
          return N / r.secs;
        }],
      ];
      if (round % 2 === 1) phases.reverse();
      const only = process.env['PHASES']?.split(',');
      for (const [name, fn] of phases) {
        if (only && !only.some((o) => name.startsWith(o))) continue;
        process.stderr.write(`round ${round + 1}: ${name} …\n`);
        const rate = await fn();
        results[name]!.push(rate);
        process.stderr.write(`round ${round + 1}: ${name}: ${rate.toFixed(0)} files/s\n`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    console.log(`files: ${N} × ${KIB} KiB, tmpfs → a port's storage endpoint (HTTP/2, TLS, durable publish); ${ROUNDS} round(s), alternating; archives of ${PACK} members`);
    console.log('| way | files/s (each round) | median |');
    console.log('|---|---|---|');
    for (const [name, xs] of Object.entries(results)) if (xs.length) console.log(`| ${name} | ${xs.map((x) => x.toFixed(0)).join(', ')} | ${median(xs).toFixed(0)} |`);
    const p = median(results['packed']!);
    console.log(`RATIO packed/file-by-file: ${(p / median(results['file by file']!)).toFixed(2)} [target ≥ 5]; packed/rclone --transfers 16: ${(p / median(results['rclone copy --transfers 16']!)).toFixed(2)} [target ≥ 2]`);
  } finally {
    await a.close();
    await b.close();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
