/**
 * Graceful shutdown (what SIGTERM does): a worker drains for its timeout, then aborts and requeues what is
 * still in flight with resume offsets; a worker started afterwards completes every file, resumed.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, sameContent, sleep, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';

const MiB = 1024 * 1024;

describe('port: graceful shutdown', () => {
  let h: Harness;
  let src: H2FileServer;
  before(async () => {
    h = await startHarness({ workers: { concurrency: 4 } });
    src = await startH2FileServer({ root: tempDir('shutdown-src') });
    src.faults.bytesPerSec = 1 * MiB;
  });
  after(async () => {
    await h.close();
    await src.close();
  });

  test('drain timeout requeues in-flight transfers; the next worker resumes and completes them', async () => {
    const files = makeRandomFiles(src.root, 3, 8 * MiB, 8 * MiB);
    const dst = tempDir('shutdown-dst');
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: src.url(`/${f.name}`), destination: `file://${dst}/${f.name}`, checksum: `adler32:${f.adler32}` })),
    });
    const w = h.workers[0]!;
    for (let i = 0; w.pool.activeCount < 3 || [...w.pool.active.values()].some((t) => t.bytes < MiB); i++) {
      assert.ok(i < 300, 'transfers started');
      await sleep(50);
    }
    await w.drain(300);
    const mid = (await h.api<{ counts: Record<string, number> }>('GET', `/api/v1/jobs/${r.body.jobId}`)).body;
    assert.equal(mid.counts['ACTIVE'], 0);
    assert.equal(mid.counts['QUEUED'], 3, 'requeued, none lost');
    src.faults.bytesPerSec = undefined;
    await h.addWorker();
    const job = await h.waitJob(r.body.jobId);
    assert.equal(job['state'], 'FINISHED');
    for (const f of files) assert.ok(sameContent(join(src.root, f.name), join(dst, f.name)));
    const f0 = (await h.api<{ attempts: Array<{ outcome: string; errorMessage?: string; resumedBytes?: number }> }>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body;
    assert.equal(f0.attempts[0]!.outcome, 'requeued');
    assert.match(f0.attempts[0]!.errorMessage ?? '', /shutting down/);
    assert.ok((f0.attempts.at(-1)!.resumedBytes ?? 0) >= MiB, 'resumed from the offset reached before shutdown');
  });
});
