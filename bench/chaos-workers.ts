/**
 * Chaos run of issue 11, worker and Redis faults, through the real `cargoport serve` (CLI, embedded Redis, the
 * transfer pool in its supervised worker child) pulling from an HTTP/2 file server in another process:
 *
 *   kill-transfer  kill -9 of the worker child while 24 × 4 MiB files are mid-transfer (job capped at 24 MiB/s)
 *   kill-publish   kill -9 the moment a destination's final name appears (linked, its part file and END pending),
 *                  in a job of 400 × 32 KiB files
 *   kill-end       kill -9 while the worker's END scripts wait: Redis paused for writes (CLIENT PAUSE WRITE) with
 *                  transfers completing, so their files are published and their END sent but never applied (Redis
 *                  drops a paused command of a client that disconnected)
 *   redis-restart  kill -9 of the embedded redis-server mid-transfer (serve restarts it; the AOF brings it back)
 *   full-disk      a 16 MiB tmpfs destination for 40 × 1 MiB (needs root to mount); grown to 64 MiB once full
 *
 * For each: files lost (not FINISHED or absent), corrupt (bytes differ from the source), duplicated (more than one
 * successful attempt, or a stray name in the destination, e.g. a part file), the time from the fault until a new
 * worker child reports itself and until a file of the job finishes again, the job's duration against the same job
 * without a fault run just before it (the peer), and the serve (gateway) process's RSS before and after.
 *
 *   node dist/bench/chaos-workers.js [scenario …]     (kill-transfer kill-publish kill-end redis-restart full-disk; all by default)
 * workers.lockDurationMs stays at its default (30 s): a crashed child's files must not wait for it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { startChildFileServer } from './lib/child-file-server.js';

const MiB = 1024 * 1024;
const cli = new URL('../../bin/cargoport.js', import.meta.url).pathname;
const root = join(tmpdir(), `cargoport-chaos-${process.pid}`);
const srcDir = join(root, 'src');
const portDir = join(root, 'port');
mkdirSync(srcDir, { recursive: true });

interface Fixture { name: string; sha: string; size: number }
function makeFiles(prefix: string, n: number, size: number): Fixture[] {
  return Array.from({ length: n }, (_, i) => {
    const data = randomBytes(size);
    const name = `${prefix}${String(i).padStart(4, '0')}`;
    writeFileSync(join(srcDir, name), data);
    return { name, size, sha: createHash('sha256').update(data).digest('hex') };
  });
}
const big = makeFiles('big-', 24, 4 * MiB);
const small = makeFiles('small-', 400, 32 * 1024);
const mib1 = makeFiles('mib-', 40, MiB);

const server = await startChildFileServer(srcDir);
const serve: ChildProcess = spawn(process.execPath, [cli, 'serve'], {
  env: {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_'))),
    CARGOPORT_DATA_DIR: portDir,
    CARGOPORT_GATEWAY_PORT: '0',
    CARGOPORT_LOG_LEVEL: process.env['CHAOS_LOG_LEVEL'] ?? 'error',
    CARGOPORT_TRANSFER_CA_FILE: server.certPath,
    CARGOPORT_TRANSFER_CHECKPOINT_INTERVAL_MS: '500',
    CARGOPORT_WORKERS_HEARTBEAT_MS: '250',
    // a full destination is probed again after 1 s (the default 30 s would measure the cool-down, not recovery)
    CARGOPORT_SCHEDULER_ENDPOINT_BREAKER_COOLDOWN_SEC: '1',
    // a bench on one machine: no tokens, the file server is on loopback
    CARGOPORT_AUTH_INSECURE_OPEN: 'true',
    CARGOPORT_AUTH_ALLOW_ADDRESSES: 'loopback',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  serve.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    const m = /listening on (https:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  serve.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
});
const agent = new Agent({ allowH2: true, connect: { ca: readFileSync(join(portDir, 'tls', 'cert.pem')) } });

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await request(`${url}${path}`, {
    method: method as 'GET', dispatcher: agent,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.body.json()) as T;
}
interface JobView { state: string; bytesDone?: number; counts: Record<string, number> }
interface FileView { state: string; attempts: Array<{ outcome?: string; note?: string; errorCode?: string; start?: number; end?: number }> }
const job = (id: string) => api<JobView>('GET', `/api/v1/jobs/${id}`);
const workerPids = async () => (await api<{ workers: Array<{ pid: number; alive: boolean }> }>('GET', '/api/v1/status')).workers.filter((w) => w.alive).map((w) => w.pid);
const closedCount = (j: JobView) => (j.counts['FINISHED'] ?? 0) + (j.counts['FAILED'] ?? 0) + (j.counts['CANCELED'] ?? 0);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}
function childOfServe(match: string): number | undefined {
  const kids = execFileSync('pgrep', ['-P', String(serve.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  return kids.find((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(match); } catch { return false; } });
}

interface Fault {
  /** Runs the fault once the job is submitted; resolves with the time of the fault (ms). */
  inject(jobId: string, dst: string): Promise<number>;
  /** Whether the fault kills the worker child (then "worker back" is measured). */
  killsWorker: boolean;
}

interface Row {
  name: string; files: number; lost: number; corrupt: number; duplicated: number; crashed: number; recognised: number;
  activeAtFault?: number; stray: string[];
  workerBackMs?: number; progressMs?: number; jobMs: number; baselineMs?: number; rssBefore: number; rssAfter: number;
}

async function runJob(name: string, files: Fixture[], dst: string, params: Record<string, unknown>, fault?: Fault, baselineMs?: number): Promise<Row> {
  mkdirSync(dst, { recursive: true });
  const rssBefore = rssMiB(serve.pid!);
  const before = await workerPids();
  const t0 = Date.now();
  const { jobId } = await api<{ jobId: string }>('POST', '/api/v1/jobs', {
    files: files.map((f) => ({ source: `${server.origin}/${f.name}`, destination: `file://${dst}/${f.name}` })),
    params: { retries: 3, retryDelaySec: 0, ...params },
  });
  let workerBackMs: number | undefined;
  let progressMs: number | undefined;
  let activeAtFault: number | undefined;
  let faultAt: number | undefined;
  if (fault) {
    const at = await fault.inject(jobId, dst);
    faultAt = at;
    const closedAtFault = closedCount(await job(jobId));
    for (;;) {
      const now = Date.now();
      if (workerBackMs === undefined && (!fault.killsWorker || (await workerPids()).some((p) => !before.includes(p)))) workerBackMs = fault.killsWorker ? now - at : -1;
      const j = await job(jobId);
      if (progressMs === undefined && (closedCount(j) > closedAtFault || j.state !== 'ACTIVE')) progressMs = now - at;
      if (workerBackMs !== undefined && progressMs !== undefined) break;
      if (now - at > 300_000) throw new Error(`${name}: no recovery within 300 s`);
      await sleep(20);
    }
  }
  for (;;) {
    const j = await job(jobId);
    if (j.state !== 'ACTIVE') break;
    if (Date.now() - t0 > 600_000) throw new Error(`${name}: job still ACTIVE after 600 s: ${JSON.stringify(j.counts)}`);
    await sleep(50);
  }
  const jobMs = Date.now() - t0;
  let lost = 0;
  let corrupt = 0;
  let duplicated = 0;
  let crashed = 0;
  let recognised = 0;
  for (let i = 0; i < files.length; i++) {
    const f = await api<FileView>('GET', `/api/v1/jobs/${jobId}/files/${i}`);
    if (f.state !== 'FINISHED') lost++;
    if (f.attempts.filter((a) => a.outcome === 'ok').length > 1) duplicated++;
    // attempts that had begun and not ended when the fault struck
    if (faultAt !== undefined) activeAtFault = (activeAtFault ?? 0) + f.attempts.filter((a) => (a.start ?? Infinity) <= faultAt! && (a.end ?? Infinity) >= faultAt!).length;
    crashed += f.attempts.filter((a) => a.outcome === 'crashed' || a.errorCode === 'CARGO_ERR_WORKER_LOST').length;
    if (f.attempts.some((a) => a.outcome === 'ok' && a.note?.startsWith('already at the destination'))) recognised++;
    let data: Buffer | undefined;
    try { data = readFileSync(join(dst, files[i]!.name)); } catch { /* absent */ }
    if (!data) { if (f.state === 'FINISHED') lost++; continue; }
    if (createHash('sha256').update(data).digest('hex') !== files[i]!.sha) corrupt++;
  }
  const expected = new Set(files.map((f) => f.name));
  const stray = readdirSync(dst).filter((n) => !expected.has(n) && n !== 'lost+found');
  duplicated += stray.length;
  const rssAfter = rssMiB(serve.pid!);
  return { name, files: files.length, lost, corrupt, duplicated, crashed, recognised, activeAtFault, stray, workerBackMs, progressMs, jobMs, baselineMs, rssBefore, rssAfter };
}

async function waitFor(what: string, cond: () => Promise<boolean>, stepMs = 20): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > 120_000) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

const killWorker = async (): Promise<number> => {
  const [pid] = await workerPids();
  process.kill(pid!, 'SIGKILL');
  return Date.now();
};
const bigTotal = big.reduce((n, f) => n + f.size, 0);
const capped = { bandwidthBytesPerSec: 24 * MiB };

const rows: Row[] = [];
let peer = 0;
const only = process.argv.slice(2);
const wanted = (n: string) => only.length === 0 || only.includes(n);
const dstOf = (n: string) => join(root, `dst-${n}`);
const done = (n: string) => rmSync(dstOf(n), { recursive: true, force: true });

/** The peer: the same job without a fault, run just before the faulty one (the machine's load drifts). */
async function baseline(label: string, files: Fixture[], params: Record<string, unknown>): Promise<number> {
  const r = await runJob(`no fault: ${label}`, files, dstOf('base'), params);
  done('base');
  rows.push(r);
  return r.jobMs;
}
// a first job warms the port up (connections, JIT) and is not reported
await runJob('warm-up', big, dstOf('base'), capped);
done('base');
const spares = () => execFileSync('pgrep', ['-P', String(serve.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);

if (wanted('kill-transfer')) {
peer = await baseline('24 × 4 MiB', big, capped);
rows.push(await runJob('kill -9 worker mid-transfer', big, dstOf('kt'), capped, {
  killsWorker: true,
  async inject(jobId) {
    await waitFor('30 % of the bytes', async () => ((await job(jobId)).bytesDone ?? 0) > 0.3 * bigTotal);
    return killWorker();
  },
}, peer));
done('kt');
}

if (wanted('kill-publish')) {
peer = await baseline('400 × 32 KiB', small, {});
rows.push(await runJob('kill -9 worker at publish (final name linked, part file and END pending)', small, dstOf('kp'), {}, {
  killsWorker: true,
  async inject(_jobId, dst) {
    const [pid] = await workerPids();
    let seen = 0;
    return new Promise<number>((resolve) => {
      // The final name appears when the worker links the verified part file: kill in the same tick.
      const w = watch(dst, (_ev, name) => {
        if (!name || name.startsWith('.') || ++seen < 60) return;
        process.kill(pid!, 'SIGKILL');
        w.close();
        resolve(Date.now());
      });
    });
  },
}, peer));
done('kp');
}

const redisSocket = join(portDir, 'redis', 'redis.sock');
if (wanted('kill-end')) {
peer = await baseline('400 × 32 KiB', small, {});
rows.push(await runJob('kill -9 worker while its END scripts wait (Redis writes paused)', small, dstOf('ke'), {}, {
  killsWorker: true,
  async inject(jobId) {
    // a moment when the worker has files in flight (between feed rounds it may hold none)
    await waitFor('60 files closed and 4 running', async () => {
      const j = await job(jobId);
      return closedCount(j) >= 60 && (j.counts['ACTIVE'] ?? 0) >= 4;
    }, 5);
    const r = new Redis({ path: redisSocket });
    // Asked before the pause: the status query itself runs a script, which the pause would hold.
    const [pid] = await workerPids();
    try {
      // Scripts wait while writes are paused: transfers in flight publish their files and block in END.
      await r.call('CLIENT', 'PAUSE', '5000', 'WRITE');
      await sleep(400);
      process.kill(pid!, 'SIGKILL');
      const at = Date.now();
      await r.call('CLIENT', 'UNPAUSE');
      return at;
    } finally {
      r.disconnect();
    }
  },
}, peer));
done('ke');
}

if (wanted('redis-restart')) {
peer = await baseline('24 × 4 MiB', big, capped);
rows.push(await runJob('kill -9 redis-server mid-transfer', big, dstOf('kr'), capped, {
  killsWorker: false,
  async inject(jobId) {
    await waitFor('30 % of the bytes', async () => ((await job(jobId)).bytesDone ?? 0) > 0.3 * bigTotal);
    const pid = childOfServe('redis-server');
    process.kill(pid!, 'SIGKILL');
    return Date.now();
  },
}, peer));
done('kr');
}

const mnt = join(root, 'full');
mkdirSync(mnt, { recursive: true });
let mounted = false;
try {
  if (wanted('full-disk')) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt], { stdio: 'pipe' });
    mounted = true;
  }
} catch (e) {
  console.log(`full-disk: skipped, cannot mount a tmpfs (needs root): ${(e as Error).message.split('\n')[0]}`);
}
if (mounted) {
  try {
    peer = await baseline('40 × 1 MiB', mib1, {});
    rows.push(await runJob('full disk (16 MiB for 40 MiB), grown to 64 MiB', mib1, join(mnt, 'dst'), {}, {
      killsWorker: false,
      async inject() {
        await waitFor('the destination full', async () => statfsSync(mnt).bavail * statfsSync(mnt).bsize < MiB, 50);
        await sleep(2000); // files meet the full disk and are held
        execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
        return Date.now();
      },
    }, peer));
  } finally {
    execFileSync('umount', [mnt]);
  }
}

const fmt = (ms?: number) => (ms === undefined || ms < 0 ? '–' : `${(ms / 1000).toFixed(2)} s`);
console.log('\n| scenario | files | lost | corrupt | duplicated | attempts open at the fault | attempts closed by the fault | published before the fault, recognised | worker back | a file finishes again | job time (× no-fault peer) | serve RSS before → after |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const ratio = r.baselineMs ? ` (${(r.jobMs / r.baselineMs).toFixed(2)}×)` : '';
  console.log(`| ${r.name} | ${r.files} | ${r.lost} | ${r.corrupt} | ${r.duplicated} | ${r.activeAtFault ?? '–'} | ${r.crashed} | ${r.recognised} | ${fmt(r.workerBackMs)} | ${fmt(r.progressMs)} | ${fmt(r.jobMs)}${ratio} | ${r.rssBefore.toFixed(0)} → ${r.rssAfter.toFixed(0)} MiB |`);
  if (r.stray.length) console.log(`  stray in the destination: ${r.stray.slice(0, 5).join(', ')}`);
}
const kids = spares().filter((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('worker-child'); } catch { return false; } });
console.log(`worker children now: ${kids.map((p) => `${p} ${rssMiB(p).toFixed(0)} MiB`).join(', ')} (the idle one is the spare)`);

serve.kill('SIGTERM');
await new Promise((r) => serve.once('exit', r));
server.close();
await agent.close();
rmSync(root, { recursive: true, force: true });
