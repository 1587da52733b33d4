/**
 * `cargoport serve` runs its transfer pool in a supervised child process (issue 11): the real CLI on its embedded
 * Redis, a throttled HTTP/2 source.
 * - The worker child SIGKILLed mid-job: the gateway answers /healthz, /readyz and the API while it is down, the
 *   child is forked again, the files it held are recorded as crashed and complete with their bytes intact, each
 *   published once.
 * - A source that crashes the child every time (the test-only CARGOPORT_TEST_CRASH_SOURCE trigger, standing for a
 *   bug in the byte-moving code such as undici's assertion): the file ends FAILED with CARGO_ERR_WORKER_CRASHED
 *   after workers.crashLimit crashes, instead of crash-looping the port; the gateway stays up; the next job runs.
 * - An admin drain and start of the port reach the child (over Redis, as any worker process); an admin restart
 *   mid-transfer requeues the in-flight files inside it (no crash recorded) and they complete.
 * - SIGKILL of serve itself leaves neither its redis-server nor its worker children (running and spare) behind.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { findExecutable, isProcessAlive } from '../../bin/embedded-redis.js';
import { makeRandomFiles, sameContent, sleep, tempDir, type FixtureFile } from '../support/fixtures.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { testTls } from '../support/tls.js';

const cli = join(resolve(fileURLToPath(import.meta.url), '../../../..'), 'bin', 'cargoport.js');
const HAVE_REDIS = findExecutable('redis-server') !== undefined;
const MiB = 1024 * 1024;
const CRASH_LIMIT = 3;

interface FileView {
  state: string;
  checksumValue?: string;
  error?: { code: string; message: string };
  attempts: Array<{ outcome?: string; errorCode?: string; errorMessage?: string; worker?: string }>;
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

describe('serve: supervised worker process', { skip: !HAVE_REDIS && 'redis-server not installed', timeout: 300_000 }, () => {
  let dataDir: string;
  let src: H2FileServer;
  let proc: ChildProcess;
  let url: string;
  let agent: Agent;
  let stderr = '';
  let exited: Promise<unknown>;

  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await request(`${url}${path}`, {
      method: method as 'GET', dispatcher: agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const workers = async () => (await api<{ workers: Array<{ pid: number; active: number; alive: boolean; state: string }> }>('GET', '/api/v1/status')).body.workers;
  const waitJob = async (jobId: string) => {
    for (let i = 0; ; i++) {
      const r = await api<Record<string, unknown>>('GET', `/api/v1/jobs/${jobId}`);
      if (r.body['state'] !== 'ACTIVE') return r.body;
      assert.ok(i < 1800, `job ${jobId} still ACTIVE: ${JSON.stringify(r.body['counts'])}`);
      await sleep(100);
    }
  };
  const submit = async (files: FixtureFile[], dst: string) => {
    const r = await api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: src.url(`/${f.name}`), destination: `file://${dst}/${f.name}`, checksum: `adler32:${f.adler32}` })),
      params: { retries: 1, retryDelaySec: 0 },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.jobId;
  };
  const file = async (jobId: string, i: number) => (await api<FileView>('GET', `/api/v1/jobs/${jobId}/files/${i}`)).body;

  before(async () => {
    dataDir = tempDir('serve-sup');
    src = await startH2FileServer({ root: join(dataDir, 'src') });
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_')));
    proc = spawn(process.execPath, [cli, 'serve'], {
      env: {
        ...base,
        CARGOPORT_DATA_DIR: join(dataDir, 'port'),
        CARGOPORT_GATEWAY_PORT: '0',
        CARGOPORT_LOG_LEVEL: 'warn',
        CARGOPORT_TRANSFER_CA_FILE: testTls().certPath,
        CARGOPORT_TRANSFER_CHECKPOINT_INTERVAL_MS: '200',
        CARGOPORT_WORKERS_HEARTBEAT_MS: '200',
        CARGOPORT_WORKERS_CONCURRENCY: '8',
        CARGOPORT_WORKERS_CRASH_LIMIT: String(CRASH_LIMIT),
        CARGOPORT_TEST_CRASH_SOURCE: 'crash-me',
        // no tokens in this test (auth has its own), and the source server is on loopback
        CARGOPORT_AUTH_INSECURE_OPEN: 'true',
        CARGOPORT_AUTH_ALLOW_ADDRESSES: 'loopback',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    exited = new Promise((res) => proc.once('exit', res));
    url = await new Promise<string>((res, rej) => {
      let out = '';
      proc.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /^cargoport serve listening on (https:\/\/\S+)/m.exec(out);
        if (m) res(m[1]!);
      });
      void exited.then(() => rej(new Error(`serve exited before listening:\n${stderr}`)));
    });
    agent = new Agent({ allowH2: true, connect: { ca: readFileSync(join(dataDir, 'port', 'tls', 'cert.pem')) } });
  });

  after(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await exited;
    }
    await agent?.close();
    await src?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a worker child SIGKILLed mid-job: the gateway answers throughout, the job completes with its bytes', async () => {
    const [first] = await workers();
    assert.ok(first, 'a worker process reports itself');
    assert.notEqual(first.pid, proc.pid, 'the pool runs in a child process, not in serve');
    assert.ok(childrenOf(proc.pid!).includes(first.pid));

    src.faults.bytesPerSec = 3 * MiB;
    const files = makeRandomFiles(join(dataDir, 'src'), 6, 2 * MiB, 3 * MiB, 'k');
    const dst = join(dataDir, 'dst-kill');
    const jobId = await submit(files, dst);
    for (let i = 0; ; i++) {
      const st = (await api<{ bytesDone?: number; counts: Record<string, number> }>('GET', `/api/v1/jobs/${jobId}`)).body;
      if ((await workers()).some((w) => w.active > 0) && (st.bytesDone ?? 0) > 0) break;
      assert.ok(i < 600, 'the worker child started moving bytes');
      await sleep(50);
    }
    process.kill(first.pid, 'SIGKILL');
    while (isProcessAlive(first.pid)) await sleep(10);
    // The child is gone: serve and its Redis still answer.
    assert.equal((await api('GET', '/healthz')).status, 200);
    assert.equal((await api('GET', '/readyz')).status, 200);
    assert.equal((await api('GET', `/api/v1/jobs/${jobId}`)).status, 200);

    const job = await waitJob(jobId);
    assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
    let crashed = 0;
    for (let i = 0; i < files.length; i++) {
      const f = await file(jobId, i);
      assert.equal(f.attempts.filter((a) => a.outcome === 'ok').length, 1, `file ${i} published exactly once`);
      assert.equal(f.checksumValue, files[i]!.adler32);
      assert.ok(sameContent(join(src.root, files[i]!.name), join(dst, files[i]!.name)), files[i]!.name);
      crashed += f.attempts.filter((a) => a.outcome === 'crashed' && a.errorCode === 'CARGO_ERR_WORKER_CRASHED').length;
    }
    assert.ok(crashed > 0, 'the files the killed child held are recorded as crashed');
    assert.deepEqual(readdirSync(dst).sort(), files.map((f) => f.name).sort(), 'no part file or stray name left in the destination');
    const now = await workers();
    assert.ok(now.some((w) => w.alive && w.pid !== first.pid && childrenOf(proc.pid!).includes(w.pid)), `a new worker child runs: ${JSON.stringify(now)}`);
    assert.ok(!now.some((w) => w.pid === first.pid), 'the dead child is no longer listed');
  });

  test(`a source that crashes the worker every time is FAILED after ${CRASH_LIMIT} crashes; the gateway stays up`, async () => {
    src.faults.bytesPerSec = undefined;
    const [poison] = makeRandomFiles(join(dataDir, 'src'), 1, 64 * 1024, 64 * 1024, 'crash-me-');
    const dst = join(dataDir, 'dst-crash');
    const jobId = await submit([poison!], dst);
    for (let i = 0; ; i++) {
      assert.equal((await api('GET', '/healthz')).status, 200, 'the gateway answers while its worker crash-loops');
      const r = await api<Record<string, unknown>>('GET', `/api/v1/jobs/${jobId}`);
      if (r.body['state'] !== 'ACTIVE') break;
      assert.ok(i < 1200, `job still ACTIVE: ${JSON.stringify(r.body)}`);
      await sleep(100);
    }
    const f = await file(jobId, 0);
    assert.equal(f.state, 'FAILED');
    assert.equal(f.error?.code, 'CARGO_ERR_WORKER_CRASHED');
    assert.match(f.error!.message, new RegExp(`crashed ${CRASH_LIMIT} times`));
    assert.equal(f.attempts.length, CRASH_LIMIT, JSON.stringify(f.attempts));
    for (const a of f.attempts) {
      assert.equal(a.outcome, 'crashed');
      // the cause the child printed is on the attempt
      assert.match(a.errorMessage ?? '', /test crash trigger/);
    }

    // The port goes on working: a good job after the crash loop completes.
    const good = makeRandomFiles(join(dataDir, 'src'), 3, 100 * 1024, 200 * 1024, 'after-');
    const dst2 = join(dataDir, 'dst-after');
    const job = await waitJob(await submit(good, dst2));
    assert.equal(job['state'], 'FINISHED', JSON.stringify(job));
    for (const g of good) assert.ok(sameContent(join(src.root, g.name), join(dst2, g.name)));
  });

  test('admin drain and start of the port reach the worker child', async () => {
    assert.equal((await api('POST', '/api/v1/admin/drain', { scope: 'port' })).status, 200);
    for (let i = 0; !(await workers()).some((w) => w.state === 'drained'); i++) {
      assert.ok(i < 300, `the child reports drained: ${JSON.stringify(await workers())}`);
      await sleep(100);
    }
    assert.equal((await api('POST', '/api/v1/admin/start', { scope: 'port' })).status, 200);
    for (let i = 0; !(await workers()).some((w) => w.state === 'running'); i++) {
      assert.ok(i < 300, 'the child runs again');
      await sleep(100);
    }
  });

  test('admin restart mid-transfer through the child: in-flight files requeued (not crashed) and completed', async () => {
    src.faults.bytesPerSec = 3 * MiB;
    const files = makeRandomFiles(join(dataDir, 'src'), 4, 2 * MiB, 3 * MiB, 'r');
    const dst = join(dataDir, 'dst-restart');
    const jobId = await submit(files, dst);
    for (let i = 0; !(await workers()).some((w) => w.active > 0); i++) {
      assert.ok(i < 600, 'the worker child started the files');
      await sleep(50);
    }
    const pidsBefore = childrenOf(proc.pid!);
    assert.equal((await api('POST', '/api/v1/admin/restart', { scope: 'port' })).status, 200);
    const job = await waitJob(jobId);
    assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
    let requeued = 0;
    for (let i = 0; i < files.length; i++) {
      const f = await file(jobId, i);
      assert.equal(f.attempts.filter((a) => a.outcome === 'ok').length, 1);
      assert.ok(!f.attempts.some((a) => a.outcome === 'crashed'), 'an admin restart is no crash');
      requeued += f.attempts.filter((a) => a.outcome === 'requeued').length;
      assert.ok(sameContent(join(src.root, files[i]!.name), join(dst, files[i]!.name)));
    }
    assert.ok(requeued > 0, 'the restart requeued in-flight files');
    assert.deepEqual(childrenOf(proc.pid!), pidsBefore, 'the restart is done inside the children, no process died');
    src.faults.bytesPerSec = undefined;
  });

  test('SIGKILL of serve leaves no redis-server and no worker child behind', async () => {
    const kids = childrenOf(proc.pid!);
    const redisPid = kids.find((p) => cmdline(p).includes('redis-server'));
    // the running worker child and its loaded spare (workers.spareProcess)
    const workerPids = kids.filter((p) => cmdline(p).includes('worker-child'));
    assert.ok(redisPid, `embedded redis among ${kids.map(cmdline).join(' | ')}`);
    assert.equal(workerPids.length, 2, 'a worker child and its spare');
    proc.kill('SIGKILL');
    await exited;
    const left = () => [redisPid, ...workerPids].filter(isProcessAlive);
    for (let i = 0; left().length > 0; i++) {
      assert.ok(i < 600, `left behind: ${left().map(cmdline).join(' | ')}`);
      await sleep(50);
    }
  });
});
