/**
 * Admin state reaches every worker process quickly (pub/sub) and persists in Redis: a worker started
 * later comes up in the stored state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sleep } from '../support/fixtures.js';
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
});
