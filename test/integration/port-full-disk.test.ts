/**
 * A destination file system that fills up, through the whole port (real Redis, TLS, HTTP/2): the file that does
 * not fit fails with an error that names the cause (ENOSPC, CARGO_ERR_LOCAL_IO) after its retries, nothing
 * partial is published or left behind, the files that fit are complete, and the worker goes on with the next job.
 * The full disk is a 4 MiB tmpfs mounted for the test (needs root, as CI has).
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

function mountSmallTmpfs(): string | false {
  try {
    mkdirSync(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { stdio: 'pipe' });
    return false;
  } catch (e) {
    return `cannot mount a small tmpfs (needs root): ${(e as Error).message.split('\n')[0]}`;
  }
}

const skip = mountSmallTmpfs();

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

  test('the file that does not fit fails naming ENOSPC, nothing partial stays, the others complete; the next job runs', async () => {
    const [small1] = makeRandomFiles(src.root, 1, 1 * MiB, 1 * MiB, 's1');
    const [big] = makeRandomFiles(src.root, 1, 6 * MiB, 6 * MiB, 'big');
    const [small2] = makeRandomFiles(src.root, 1, 512 * 1024, 512 * 1024, 's2');
    const files = [small1!, big!, small2!];
    const job = await runJob(files, mnt);
    assert.equal(job.state, 'FINISHED_DIRTY');
    const bigView = (await h.api<{ state: string; error?: { code: string; message: string }; attempts: unknown[] }>('GET', `/api/v1/jobs/${job.jobId}/files/1`)).body;
    assert.equal(bigView.state, 'FAILED');
    assert.equal(bigView.error?.code, 'CARGO_ERR_LOCAL_IO', JSON.stringify(bigView));
    assert.match(bigView.error!.message, /ENOSPC|no space left/i);
    assert.equal(bigView.attempts.length, 2, 'a full disk may clear up: retried once, then FAILED');
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
