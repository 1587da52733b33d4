/**
 * Scale-out and crash safety: two `cargoport worker` processes share one Redis; one is SIGKILLed mid-job.
 * The other finishes every file: none lost, none corrupted (byte-compared), none published twice (exactly
 * one successful attempt per file), and the killed worker's attempts are closed as requeued.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, sameContent, sleep, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.js';

const MiB = 1024 * 1024;
const workerEnv = { CARGOPORT_WORKERS_CONCURRENCY: '6', CARGOPORT_WORKERS_LOCK_DURATION_MS: '3000' };

describe('port: SIGKILL of one of two worker processes', () => {
  let h: Harness;
  let src: H2FileServer;
  const children: WorkerProcess[] = [];
  before(async () => {
    h = await startHarness({ scheduler: { linkMaxActive: 12 } }, { workers: 0 });
    src = await startH2FileServer({ root: tempDir('kill-src') });
    src.faults.bytesPerSec = 4 * MiB;
  });
  after(async () => {
    for (const c of children) await c.kill();
    await h.close();
    await src.close();
  });

  test('the surviving worker finishes every file, none corrupted or duplicated', async () => {
    const prefix = h.cfg.redis.prefix;
    children.push(spawnWorker(prefix, workerEnv), spawnWorker(prefix, workerEnv));
    const workersUp = async () => (await h.api<{ workers: Array<{ alive: boolean }> }>('GET', '/api/v1/status')).body.workers.filter((w) => w.alive).length;
    for (let i = 0; (await workersUp()) < 2; i++) {
      assert.ok(i < 200, 'two worker processes came up');
      await sleep(100);
    }
    const files = makeRandomFiles(src.root, 36, 2 * MiB, 3 * MiB);
    const dst = tempDir('kill-dst');
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: src.url(`/${f.name}`), destination: `file://${dst}/${f.name}`, checksum: `adler32:${f.adler32}` })),
      params: { retries: 2, retryDelaySec: 0 },
    });
    assert.equal(r.status, 201);
    // wait until both processes are moving bytes, then kill one of them
    for (let i = 0; ; i++) {
      const st = (await h.api<{ workers: Array<{ pid: number; active: number }> }>('GET', '/api/v1/status')).body;
      if (st.workers.filter((w) => w.active > 0).length === 2) break;
      assert.ok(i < 300, 'both workers became active');
      await sleep(100);
    }
    await children[0]!.kill();
    const job = await h.waitJob(r.body.jobId, 120_000);
    assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
    assert.equal((job['counts'] as Record<string, number>)['FINISHED'], files.length);
    let lost = 0;
    for (let i = 0; i < files.length; i++) {
      const f = (await h.api<{ state: string; checksumValue: string; attempts: Array<{ outcome: string; errorCode?: string; worker?: string }> }>(
        'GET', `/api/v1/jobs/${r.body.jobId}/files/${i}`)).body;
      assert.equal(f.attempts.filter((a) => a.outcome === 'ok').length, 1, `file ${i} published exactly once`);
      assert.equal(f.checksumValue, files[i]!.adler32);
      lost += f.attempts.filter((a) => a.errorCode === 'CARGO_ERR_WORKER_LOST').length;
      assert.ok(sameContent(join(src.root, files[i]!.name), join(dst, files[i]!.name)), files[i]!.name);
    }
    assert.ok(lost > 0, 'the killed worker held files that were recovered');
  });

  test('small files in bundles: SIGKILL amid group claims, group commits and group ENDs loses, duplicates and publishes nothing partial', async () => {
    const prefix = h.cfg.redis.prefix;
    const pair = [spawnWorker(prefix, workerEnv), spawnWorker(prefix, workerEnv)];
    children.push(...pair);
    const pids = new Set(pair.map((c) => c.child.pid));
    const live = async () => (await h.api<{ workers: Array<{ pid: number; alive: boolean; active: number }> }>('GET', '/api/v1/status')).body.workers
      .filter((w) => w.alive && pids.has(w.pid));
    for (let i = 0; (await live()).length < 2; i++) {
      assert.ok(i < 200, 'two worker processes came up');
      await sleep(100);
    }
    // Each response paced, so every worker has bundles claimed, files in flight, files waiting for their commit and
    // runs waiting for their END when the kill comes.
    src.faults.bytesPerSec = 256 * 1024;
    const files = makeRandomFiles(join(src.root, 'small'), 480, 48 * 1024, 64 * 1024, 's');
    const dst = tempDir('kill-small-dst');
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: src.url(`/small/${f.name}`), destination: `file://${dst}/${f.name}`, size: f.size, checksum: `adler32:${f.adler32}` })),
      params: { retries: 2, retryDelaySec: 0 },
    });
    assert.equal(r.status, 201);
    for (let i = 0; ; i++) {
      const [st, job] = await Promise.all([live(), h.api<{ counts: Record<string, number> }>('GET', `/api/v1/jobs/${r.body.jobId}`)]);
      if (st.filter((w) => w.active > 0).length === 2 && (job.body.counts['FINISHED'] ?? 0) >= 40) break;
      assert.ok(i < 600, 'both workers moved files');
      await sleep(25);
    }
    await pair[0]!.kill();
    const job = await h.waitJob(r.body.jobId, 180_000);
    src.faults.bytesPerSec = undefined;
    assert.equal(job['state'], 'FINISHED', JSON.stringify(job['counts']));
    assert.equal((job['counts'] as Record<string, number>)['FINISHED'], files.length);
    let lost = 0;
    for (let i = 0; i < files.length; i++) {
      const f = (await h.api<{ state: string; checksumValue: string; attempts: Array<{ outcome: string; errorCode?: string }> }>(
        'GET', `/api/v1/jobs/${r.body.jobId}/files/${i}`)).body;
      assert.equal(f.attempts.filter((a) => a.outcome === 'ok').length, 1, `file ${i} finished exactly once`);
      assert.equal(f.checksumValue, files[i]!.adler32);
      lost += f.attempts.filter((a) => a.errorCode === 'CARGO_ERR_WORKER_LOST').length;
      assert.ok(sameContent(join(src.root, 'small', files[i]!.name), join(dst, files[i]!.name)), files[i]!.name);
    }
    assert.ok(lost > 0, 'the killed worker held claimed files that were recovered');
    // Every name at the destination is a whole file of the job; no part file is left.
    assert.deepEqual(readdirSync(dst).sort(), files.map((f) => f.name).sort());
  });
});
