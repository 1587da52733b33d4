/**
 * A destination file system that fills up, through the whole port (real Redis, TLS, HTTP/2). The full disk is a
 * 4 MiB tmpfs mounted for the test (needs root, as CI has).
 * - A file larger than the whole file system fails at once with an error that names the cause (ENOSPC,
 *   CARGO_ERR_LOCAL_IO) and why waiting cannot help; nothing partial is published or left behind, the files that fit
 *   are complete, and the worker goes on with the next job.
 * - A job larger than the free space pauses instead of failing: the full destination trips its endpoint's breaker
 *   (status, events), the files wait without spending retries, and once space is freed the job completes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, sameContent, sleep, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';

const MiB = 1024 * 1024;
const mnt = join(tempDir('full-disk'), 'mnt');
const mnt2 = join(tempDir('full-disk-pause'), 'mnt');

function mountSmallTmpfs(at: string): string | false {
  try {
    mkdirSync(at, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', at], { stdio: 'pipe' });
    return false;
  } catch (e) {
    return `cannot mount a small tmpfs (needs root): ${(e as Error).message.split('\n')[0]}`;
  }
}

const skip = mountSmallTmpfs(mnt);
const skip2 = skip || mountSmallTmpfs(mnt2);

describe('port: a destination that runs out of space', { skip }, () => {
  let h: Harness;
  let src: H2FileServer;
  before(async () => {
    // One transfer at a time: the files meet the full disk one after another, in order.
    h = await startHarness({ workers: { concurrency: 1 } });
    src = await startH2FileServer({ root: tempDir('full-disk-src') });
  });
  after(async () => {
    await h.close();
    await src.close();
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  async function runJob(files: Array<{ name: string; adler32: string }>, dstDir: string): Promise<{ jobId: string; state: string }> {
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: src.url(`/${f.name}`), destination: `file://${dstDir}/${f.name}`, checksum: `adler32:${f.adler32}` })),
      params: { retries: 1, retryDelaySec: 0 },
    });
    assert.equal(r.status, 201);
    for (;;) {
      const j = (await h.api<{ state: string }>('GET', `/api/v1/jobs/${r.body.jobId}`)).body;
      if (j.state !== 'ACTIVE') return { jobId: r.body.jobId, state: j.state };
      await sleep(100);
    }
  }

  test('a file larger than the file system fails at once naming ENOSPC, nothing partial stays, the others complete; the next job runs', async () => {
    const [small1] = makeRandomFiles(src.root, 1, 1 * MiB, 1 * MiB, 's1');
    const [big] = makeRandomFiles(src.root, 1, 6 * MiB, 6 * MiB, 'big');
    const [small2] = makeRandomFiles(src.root, 1, 512 * 1024, 512 * 1024, 's2');
    const files = [small1!, big!, small2!];
    const job = await runJob(files, mnt);
    assert.equal(job.state, 'FINISHED_DIRTY');
    const bigView = (await h.api<{ state: string; error?: { code: string; message: string }; attempts: unknown[] }>('GET', `/api/v1/jobs/${job.jobId}/files/1`)).body;
    assert.equal(bigView.state, 'FAILED');
    assert.equal(bigView.error?.code, 'CARGO_ERR_LOCAL_IO', JSON.stringify(bigView));
    assert.match(bigView.error!.message, /ENOSPC/);
    assert.match(bigView.error!.message, /can never fit/);
    assert.equal(bigView.attempts.length, 1, 'waiting for space cannot make it fit: no retry, no hold');
    for (const f of [small1!, small2!]) assert.ok(sameContent(join(src.root, f.name), join(mnt, f.name)), f.name);
    // Nothing partial: no file at the big one's name, and no part file of any attempt left behind.
    assert.deepEqual(readdirSync(mnt).sort(), [small1!.name, small2!.name].sort());

    // The worker is alive and the disk is usable again once space is freed: the next job completes.
    rmSync(join(mnt, small1!.name));
    const [next] = makeRandomFiles(src.root, 1, 2 * MiB, 2 * MiB, 'next');
    const again = await runJob([next!], mnt);
    assert.equal(again.state, 'FINISHED');
    assert.ok(sameContent(join(src.root, next!.name), join(mnt, next!.name)));
  });
});

describe('port: a full destination pauses the job instead of failing its files', { skip: skip2 }, () => {
  let h: Harness;
  let src: H2FileServer;
  before(async () => {
    h = await startHarness({
      workers: { concurrency: 4 },
      scheduler: { endpointBreakerCooldownSec: 1, endpointBreakerMaxCooldownSec: 2 },
    });
    src = await startH2FileServer({ root: tempDir('full-disk-pause-src') });
  });
  after(async () => {
    await h.close();
    await src.close();
    execFileSync('umount', [mnt2]);
    rmSync(mnt2, { recursive: true, force: true });
  });

  test('the job waits while the disk is full, spends no retry, and completes as space is freed', async () => {
    // 12 MiB into 4 MiB: the disk fills about three times over before the job is done.
    const files = makeRandomFiles(src.root, 24, 512 * 1024, 512 * 1024, 'p');
    const events: Array<Record<string, unknown>> = [];
    const sub = h.redis.duplicate();
    sub.on('message', (_ch: string, msg: string) => {
      const e = JSON.parse(msg) as Record<string, unknown>;
      if (e['t'] === 'endpoint') events.push(e);
    });
    await sub.subscribe(`${h.cfg.redis.prefix}:events`);
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: src.url(`/${f.name}`), destination: `file://${mnt2}/${f.name}`, checksum: `adler32:${f.adler32}` })),
      // One retry: a full disk that spent retries would fail files within seconds.
      params: { retries: 1, retryDelaySec: 0 },
    });
    assert.equal(r.status, 201);
    const verified = new Set<string>();
    try {
      for (const deadline = Date.now() + 180_000; ;) {
        assert.ok(Date.now() < deadline, `job still ACTIVE: ${JSON.stringify((await h.api('GET', `/api/v1/jobs/${r.body.jobId}`)).body)}`);
        const job = (await h.api<{ state: string; counts: Record<string, number> }>('GET', `/api/v1/jobs/${r.body.jobId}`)).body;
        if (job.counts['FAILED'] !== 0) {
          const failed = (await h.api('GET', `/api/v1/jobs/${r.body.jobId}/files?state=FAILED`)).body;
          assert.fail(`no file fails for want of space: ${JSON.stringify(failed)}`);
        }
        if (job.state !== 'ACTIVE') break;
        const status = (await h.api<{ unavailableEndpoints: Array<{ endpoint: string; cause: string; detail?: string; state: string }> }>('GET', '/api/v1/status')).body;
        const local = status.unavailableEndpoints.find((e) => e.endpoint === 'local');
        if (local) {
          assert.equal(local.cause, 'full');
          assert.match(local.detail ?? '', /ENOSPC/);
          // The operator frees space while the destination is paused: the finished files are checked and moved away.
          const done = (await h.api<{ files: Array<{ destination: string }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files?state=FINISHED&limit=100`)).body.files;
          for (const f of done) {
            const name = f.destination.slice(f.destination.lastIndexOf('/') + 1);
            if (verified.has(name)) continue;
            assert.ok(sameContent(join(src.root, name), join(mnt2, name)), name);
            rmSync(join(mnt2, name));
            verified.add(name);
          }
        }
        await sleep(100);
      }
    } finally {
      sub.disconnect();
    }
    const job = (await h.api<{ state: string; counts: Record<string, number> }>('GET', `/api/v1/jobs/${r.body.jobId}`)).body;
    assert.equal(job.state, 'FINISHED', JSON.stringify(job.counts));
    for (const f of files) if (!verified.has(f.name)) assert.ok(sameContent(join(src.root, f.name), join(mnt2, f.name)), f.name);
    const pauses = events.filter((e) => e['endpoint'] === 'local' && e['state'] === 'unavailable' && e['cause'] === 'full').length;
    assert.ok(pauses >= 1, `the full disk paused the job: ${JSON.stringify(events)}`);
    let held = 0;
    for (let i = 0; i < files.length; i++) {
      const v = (await h.api<{ attempts: Array<{ outcome: string; errorCode?: string; errorMessage?: string }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files/${i}`)).body;
      assert.equal(v.attempts.filter((a) => a.outcome === 'error').length, 0, `file ${i} spent no try: ${JSON.stringify(v.attempts)}`);
      for (const a of v.attempts.filter((x) => x.outcome === 'held')) {
        held++;
        assert.equal(a.errorCode, 'CARGO_ERR_LOCAL_IO');
        assert.match(a.errorMessage ?? '', /ENOSPC|no space/i);
      }
    }
    assert.ok(held > 0, 'files met the full disk and were held');
    assert.ok(events.some((e) => e['endpoint'] === 'local' && e['state'] === 'available'), 'the breaker closed when space returned');
    console.log(`# full disk: ${pauses} pauses, ${held} attempts held, ${events.length} endpoint events`);
  });
});
