/**
 * Admin state reaches every worker process quickly (pub/sub) and persists in Redis: a worker started
 * later comes up in the stored state. A cancel sent while a worker's control connection was down reaches it
 * when the connection is back.
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { after, before, describe, test } from 'node:test';
import { startH2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, sleep, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';

describe('port: admin state propagation', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({}, { workers: 3 });
  });
  after(async () => {
    await h.close();
  });

  test('pause reaches all three worker pools within 1 s; a worker started later is paused too; resume reopens all', async () => {
    const t0 = Date.now();
    const r = await h.api<Record<string, unknown>>('POST', '/api/v1/admin/pause', { scope: 'port' });
    assert.equal(r.status, 200);
    while (h.workers.some((w) => w.pool.gates.port.isOpen)) {
      assert.ok(Date.now() - t0 < 1000, 'every worker applied the pause within 1 s');
      await sleep(5);
    }
    const late = await h.addWorker();
    assert.equal(late.pool.gates.port.isOpen, false, 'a new worker reads the stored admin state');
    await h.api('POST', '/api/v1/admin/resume', { scope: 'port' });
    const t1 = Date.now();
    while (h.workers.some((w) => !w.pool.gates.port.isOpen)) {
      assert.ok(Date.now() - t1 < 1000, 'every worker applied the resume within 1 s');
      await sleep(5);
    }
    const st = (await h.api<{ scopes: Array<{ scope: string; state: string }> }>('GET', '/api/v1/status')).body;
    assert.equal(st.scopes.find((s) => s.scope === 'port')!.state, 'running');
  });

  test('pool scope affects only the named pool', async () => {
    await h.api('POST', '/api/v1/admin/pause', { scope: 'pool', target: 'other-pool' });
    await sleep(200);
    assert.ok(h.workers.every((w) => w.pool.gates.pool.isOpen), 'workers of pool "default" are untouched');
    await h.api('POST', '/api/v1/admin/pause', { scope: 'pool', target: 'default' });
    await sleep(300);
    assert.ok(h.workers.every((w) => !w.pool.gates.pool.isOpen));
    await h.api('POST', '/api/v1/admin/resume', { scope: 'pool', target: 'default' });
    await sleep(300);
    assert.ok(h.workers.every((w) => w.pool.gates.pool.isOpen));
  });

  test('a cancel published while a worker\'s control connection is down reaches it on reconnection', async () => {
    const src = await startH2FileServer({ root: tempDir('propagation-src') });
    try {
      src.faults.bytesPerSec = 256 * 1024;
      const [f] = makeRandomFiles(src.root, 1, 8 * 1024 * 1024, 8 * 1024 * 1024, 'slow');
      const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
        files: [{ source: src.url(`/${f!.name}`), destination: `file://${tempDir('propagation-dst')}/${f!.name}` }], params: { streams: 1, connections: 1 },
      });
      let holder;
      for (const t0 = Date.now(); !(holder = h.workers.find((w) => w.pool.activeCount > 0));) {
        assert.ok(Date.now() - t0 < 10_000, 'a worker runs the file');
        await sleep(20);
      }
      // The holder's subscriber goes away; the cancel's message is published meanwhile and lost to it.
      const sub = (holder.pool as unknown as { sub: Redis }).sub;
      sub.disconnect();
      const canceled = await h.api<{ state: string }>('DELETE', `/api/v1/jobs/${r.body.jobId}/files/0`);
      assert.equal(canceled.body.state, 'ACTIVE', 'its worker was asked to abort');
      await sleep(500);
      assert.equal(holder.pool.activeCount, 1, 'the message never reached the worker');
      await sub.connect();
      const t1 = Date.now();
      while ((await h.api<{ state: string }>('GET', `/api/v1/jobs/${r.body.jobId}/files/0`)).body.state !== 'CANCELED') {
        assert.ok(Date.now() - t1 < 5000, 'the transfer was aborted once the control connection was back');
        await sleep(50);
      }
      assert.equal(holder.pool.activeCount, 0);
    } finally {
      await src.close();
    }
  });
});
