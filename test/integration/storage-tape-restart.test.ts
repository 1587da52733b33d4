/**
 * Tape REST state survives a restart of the endpoint: a finished stage request still answers its poll, its staged
 * copy is still on disk (DISK_AND_TAPE), a request cut short by the restart finishes afterwards, and a cancel
 * answered before the restart stays cancelled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { NearlineBackend } from '../../services/storage/nearline-backend.js';

type Call = (m: string, p: string, body?: unknown) => Promise<{ status: number; json: any }>;

async function withServer<T>(dir: string, recallLatencyMs: number, fn: (srv: TestStorageServer, call: Call, put: (p: string, b: Buffer) => Promise<number>) => Promise<T>): Promise<T> {
  const srv = await startStorageServer({ dir, nearline: { recallLatencyMs }, bufferQuotaBytes: 1024 * 1024 });
  const s = h2Connect(srv.origin);
  const call = async (m: string, p: string, body?: unknown) => {
    const r = await h2Request(s, m, p, body === undefined ? {} : { 'content-type': 'application/json' }, body === undefined ? undefined : JSON.stringify(body));
    return { status: r.status, json: r.body.length ? JSON.parse(r.body.toString()) : undefined };
  };
  const put = async (p: string, b: Buffer) => (await h2Request(s, 'PUT', p, {}, b)).status;
  try {
    return await fn(srv, call, put);
  } finally {
    s.close();
    await srv.close();
  }
}

async function pollUntilDone(call: Call, id: string): Promise<any> {
  for (let i = 0; i < 400; i++) {
    const r = await call('GET', `/tape/v1/stage/${id}`);
    assert.equal(r.status, 200);
    if (r.json.completedAt !== undefined) return r.json;
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error('stage request never completed');
}

test('stage requests and staged copies survive a restart; unfinished files finish after it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cargoport-tape-restart-'));
  try {
    let done = '';
    let cut = '';
    let cancelled = '';
    await withServer(dir, 50, async (srv, call, put) => {
      for (const p of ['/a.bin', '/b.bin', '/c.bin']) {
        assert.equal(await put(`/data${p}`, Buffer.alloc(10_000, p)), 201);
        (srv.storage.permanent as NearlineBackend).evict(p);
      }
      const r = await call('POST', '/tape/v1/stage', { files: [{ path: '/data/a.bin' }] });
      assert.equal(r.status, 201);
      done = r.json.requestId;
      const polled = await pollUntilDone(call, done);
      assert.equal(polled.files[0].state, 'COMPLETED');
      const c = await call('POST', '/tape/v1/stage', { files: [{ path: '/data/c.bin' }] });
      cancelled = c.json.requestId;
      assert.equal((await call('POST', `/tape/v1/stage/${cancelled}/cancel`, { paths: ['/data/c.bin'] })).status, 200);
    });
    // A recall slower than the server's life: the restart cuts it short.
    await withServer(dir, 2_000, async (_srv, call) => {
      const r = await call('POST', '/tape/v1/stage', { files: [{ path: '/data/b.bin' }] });
      assert.equal(r.status, 201);
      cut = r.json.requestId;
      const polled = await call('GET', `/tape/v1/stage/${cut}`);
      assert.equal(polled.json.files[0].state, 'STARTED');
    });
    await withServer(dir, 50, async (_srv, call) => {
      const first = await call('GET', `/tape/v1/stage/${done}`);
      assert.equal(first.status, 200, 'the finished request is still known');
      assert.equal(first.json.files[0].state, 'COMPLETED');
      const info = await call('POST', '/tape/v1/archiveinfo', { paths: ['/data/a.bin'] });
      assert.equal(info.json[0].locality, 'DISK_AND_TAPE', 'its staged copy survived');
      const resumed = await pollUntilDone(call, cut);
      assert.equal(resumed.files[0].state, 'COMPLETED', 'the request cut short finished after the restart');
      assert.equal((await call('POST', '/tape/v1/archiveinfo', { paths: ['/data/b.bin'] })).json[0].locality, 'DISK_AND_TAPE');
      const c = await call('GET', `/tape/v1/stage/${cancelled}`);
      assert.equal(c.json.files[0].state, 'CANCELLED');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
