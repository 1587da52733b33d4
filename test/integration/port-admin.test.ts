/**
 * Admin operations against a running port (real Redis, TLS, HTTP/2), with transfers slowed at the source so
 * they are caught mid-flight: pause holds every byte and resume completes; drain finishes in-flight only and
 * reports drained; stop aborts and requeues with resume offsets, start completes; cancel stops the bytes.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, sameContent, sleep, tempDir, type FixtureFile } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';

const MiB = 1024 * 1024;

describe('port: admin operations mid-transfer', () => {
  let h: Harness;
  let src: H2FileServer;
  before(async () => {
    h = await startHarness({ workers: { concurrency: 4 }, scheduler: { linkMaxActive: 4 } });
    src = await startH2FileServer({ root: tempDir('admin-src') });
    src.faults.bytesPerSec = 2 * MiB; // per response: a 6 MiB file takes ~3 s
  });
  after(async () => {
    await h.close();
    await src.close();
  });

  /** Bytes the engine has moved in every running transfer of every worker of the harness. */
  const inFlightBytes = () => h.workers.reduce((a, w) => a + [...w.pool.active.values()].reduce((b, t) => b + t.bytes, 0), 0);
  const activeCount = () => h.workers.reduce((a, w) => a + w.pool.activeCount, 0);
  const admin = (op: string, body: Record<string, unknown> = {}) => h.api<Record<string, unknown>>('POST', `/api/v1/admin/${op}`, body);
  const status = async () => (await h.api<{ scopes: Array<{ scope: string; target: string; state: string; effectiveState: string }> }>('GET', '/api/v1/status')).body;
  const portState = async () => (await status()).scopes.find((s) => s.scope === 'port')!.effectiveState;

  async function submit(tag: string, files: FixtureFile[], dstDir: string): Promise<string> {
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: files.map((f) => ({ source: src.url(`/${tag}/${f.name}`), destination: `file://${dstDir}/${f.name}`, checksum: `adler32:${f.adler32}` })),
      params: { retries: 3, retryDelaySec: 0 },
    });
    assert.equal(r.status, 201);
    return r.body.jobId;
  }
  async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await pred())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }
  function assertTreeEqual(tag: string, files: FixtureFile[], dstDir: string) {
    for (const f of files) assert.ok(sameContent(join(src.root, tag, f.name), join(dstDir, f.name)), f.name);
  }

  test('pause holds bytes in flight (measured), resume completes from the same offsets', async () => {
    const files = makeRandomFiles(join(src.root, 'p'), 4, 6 * MiB, 6 * MiB);
    const dst = tempDir('pause-dst');
    const jobId = await submit('p', files, dst);
    await until(() => activeCount() === 4 && inFlightBytes() > MiB, 'transfers to be moving');
    assert.equal((await admin('pause')).body['state'], 'paused');
    await sleep(300); // a chunk being written when the gate closed may still land
    const held = inFlightBytes();
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      await sleep(200);
      samples.push(inFlightBytes());
    }
    assert.deepEqual(samples, new Array(10).fill(held), 'no byte moved during 2 s of pause');
    assert.equal(activeCount(), 4, 'transfers are held, not aborted');
    assert.equal(await portState(), 'paused');
    const job = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${jobId}`)).body;
    assert.equal((job['counts'] as Record<string, number>)['ACTIVE'], 4);
    assert.equal((await admin('resume')).body['state'], 'running');
    const done = await h.waitJob(jobId);
    assert.equal(done['state'], 'FINISHED');
    assertTreeEqual('p', files, dst);
    // resumed in place: one attempt each, nothing re-sent
    const f0 = (await h.api<{ attempts: unknown[] }>('GET', `/api/v1/jobs/${jobId}/files/0`)).body;
    assert.equal(f0.attempts.length, 1);
  });

  test('drain: in-flight transfers finish, nothing new starts, status says drained; start completes the rest', async () => {
    const files = makeRandomFiles(join(src.root, 'd'), 10, 3 * MiB, 3 * MiB);
    const dst = tempDir('drain-dst');
    const jobId = await submit('d', files, dst);
    await until(() => activeCount() === 4, 'four transfers to be active');
    const ids = new Set(h.workers.flatMap((w) => [...w.pool.active.values()].map((t) => t.idx)));
    assert.equal((await admin('drain')).body['state'], 'draining');
    assert.equal(await portState(), 'draining');
    await until(async () => (await portState()) === 'drained', 'drained');
    const page = (await h.api<{ files: Array<{ fileId: number }> }>('GET', `/api/v1/jobs/${jobId}/files?state=FINISHED`)).body;
    assert.deepEqual(new Set(page.files.map((f) => f.fileId)), ids, 'exactly the in-flight files finished');
    await sleep(1000);
    assert.equal(activeCount(), 0, 'nothing new started while drained');
    const mid = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${jobId}`)).body;
    assert.equal((mid['counts'] as Record<string, number>)['FINISHED'], 4);
    await admin('start');
    const done = await h.waitJob(jobId);
    assert.equal(done['state'], 'FINISHED');
    assertTreeEqual('d', files, dst);
  });

  test('stop aborts in-flight and requeues them with resume offsets; start completes them, resumed not restarted', async () => {
    const files = makeRandomFiles(join(src.root, 's'), 4, 6 * MiB, 6 * MiB);
    const dst = tempDir('stop-dst');
    const jobId = await submit('s', files, dst);
    await until(() => activeCount() === 4 && inFlightBytes() > 2 * MiB, 'transfers to be moving');
    assert.equal((await admin('stop')).body['state'], 'stopped');
    await until(() => activeCount() === 0, 'in-flight transfers to be aborted', 5000);
    const mid = (await h.api<Record<string, unknown>>('GET', `/api/v1/jobs/${jobId}`)).body;
    const counts = mid['counts'] as Record<string, number>;
    assert.equal(counts['ACTIVE'], 0);
    assert.equal(counts['QUEUED'], 4, 'requeued, not failed or lost');
    assert.equal(await portState(), 'stopped');
    await sleep(700);
    assert.equal(activeCount(), 0, 'stopped workers start nothing');
    await admin('start');
    const done = await h.waitJob(jobId);
    assert.equal(done['state'], 'FINISHED');
    assertTreeEqual('s', files, dst);
    let resumed = 0;
    for (let i = 0; i < 4; i++) {
      const f = (await h.api<{ attempts: Array<{ outcome: string; resumedBytes?: number; errorCode?: string }> }>('GET', `/api/v1/jobs/${jobId}/files/${i}`)).body;
      assert.equal(f.attempts[0]!.outcome, 'requeued');
      assert.equal(f.attempts[0]!.errorCode, 'CARGO_ERR_ABORTED');
      assert.equal(f.attempts.at(-1)!.outcome, 'ok');
      resumed += f.attempts.at(-1)!.resumedBytes ?? 0;
    }
    assert.ok(resumed > 0, 'at least some bytes were not sent again');
  });

  test('restart: in-flight transfers are requeued and completed, none lost or duplicated', async () => {
    const files = makeRandomFiles(join(src.root, 'r'), 6, 4 * MiB, 4 * MiB);
    const dst = tempDir('restart-dst');
    const jobId = await submit('r', files, dst);
    await until(() => activeCount() > 0 && inFlightBytes() > MiB, 'transfers to be moving');
    assert.equal((await admin('restart')).body['state'], 'running');
    const done = await h.waitJob(jobId);
    assert.equal(done['state'], 'FINISHED');
    assert.equal((done['counts'] as Record<string, number>)['FINISHED'], 6);
    assertTreeEqual('r', files, dst);
  });

  test('cancel: bytes stop moving within 2 s, nothing partial published, job CANCELED', async () => {
    const files = makeRandomFiles(join(src.root, 'c'), 6, 6 * MiB, 6 * MiB);
    const dst = tempDir('cancel-dst');
    const jobId = await submit('c', files, dst);
    await until(() => activeCount() === 4 && inFlightBytes() > MiB, 'transfers to be moving');
    const t0 = Date.now();
    const r = await h.api<Record<string, unknown>>('DELETE', `/api/v1/jobs/${jobId}`);
    assert.equal(r.status, 200);
    await until(() => activeCount() === 0, 'transfers to stop', 5000);
    const stoppedAfter = Date.now() - t0;
    assert.ok(stoppedAfter <= 2000, `bytes stopped after ${stoppedAfter} ms`);
    const job = await h.waitJob(jobId, 5000);
    assert.equal(job['state'], 'CANCELED');
    assert.equal((job['counts'] as Record<string, number>)['CANCELED'], 6);
    await sleep(300);
    assert.deepEqual(readdirSync(dst), [], 'no final and no temp file left');
    for (const f of files) assert.ok(!existsSync(join(dst, f.name)));
  });

  test('link and endpoint scopes: pause a link holds its bytes, other links are untouched', async () => {
    const other = await startH2FileServer({ root: tempDir('admin-src2') });
    other.faults.bytesPerSec = 2 * MiB;
    try {
      const a = makeRandomFiles(join(src.root, 'la'), 2, 6 * MiB, 6 * MiB);
      const b = makeRandomFiles(join(other.root, 'lb'), 2, 4 * MiB, 4 * MiB);
      const dst = tempDir('link-dst');
      const jobA = await submit('la', a, dst);
      const rb = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: b.map((f) => ({ source: other.url(`/lb/${f.name}`), destination: `file://${dst}/b-${f.name}` })),
      });
      await until(() => activeCount() === 4 && inFlightBytes() > MiB, 'both links moving');
      const link = `127.0.0.1:${src.port}>local`;
      const r = await admin('pause', { scope: 'link', target: link });
      assert.equal(r.body['state'], 'paused', JSON.stringify(r.body));
      await sleep(300);
      const bytesOf = (port: number) => h.workers.reduce((x, w) => x + [...w.pool.active.values()].filter((t) => t.link.startsWith(`127.0.0.1:${port}>`)).reduce((y, t) => y + t.bytes, 0), 0);
      const heldA = bytesOf(src.port);
      const otherBefore = bytesOf(other.port);
      await sleep(1500);
      assert.equal(bytesOf(src.port), heldA, 'paused link moved no byte');
      const doneB = await h.waitJob(rb.body.jobId);
      assert.equal(doneB['state'], 'FINISHED', 'the other link completed while this one was paused');
      assert.ok(otherBefore >= 0);
      await admin('resume', { scope: 'link', target: link });
      assert.equal((await h.waitJob(jobA))['state'], 'FINISHED');
      const bad = await admin('pause', { scope: 'link', target: 'no-arrow' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body['field'], 'target');
    } finally {
      await other.close();
    }
  });
});
