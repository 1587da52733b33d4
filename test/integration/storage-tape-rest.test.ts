/**
 * WLCG Tape REST API v1 over the nearline emulator: discovery, stage (201 + Location + requestId), poll states,
 * locality transitions TAPE → DISK_AND_TAPE → TAPE, release and buffer eviction, cancel/delete, RFC 7807 errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session } from 'node:http2';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { NearlineBackend } from '../../services/storage/nearline-backend.js';

let srv: TestStorageServer;
let s: ClientHttp2Session;
const KiB = 1024;

before(async () => {
  srv = await startStorageServer({
    nearline: { recallLatencyMs: 150, failRecall: (p) => p.endsWith('/bad-tape') },
    bufferQuotaBytes: 100 * KiB,
  });
  s = h2Connect(srv.origin);
});
after(async () => {
  s.close();
  await srv.close();
});

const json = (o: unknown) => JSON.stringify(o);
const post = (path: string, body: unknown) => h2Request(s, 'POST', path, { 'content-type': 'application/json' }, json(body));

/** Write a file, then let it "migrate to tape" (drop the disk-cache copy). */
async function onTape(path: string, size: number): Promise<Buffer> {
  const body = Buffer.alloc(size, path.length);
  assert.equal((await h2Request(s, 'PUT', '/data' + path, {}, body)).status, 201);
  (srv.storage.permanent as NearlineBackend).evict(path);
  return body;
}

async function pollUntilDone(id: string): Promise<{ files: Array<{ path: string; state: string; error?: string }>; completedAt?: number }> {
  for (let i = 0; i < 400; i++) {
    const r = await h2Request(s, 'GET', `/tape/v1/stage/${id}`);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body.toString());
    if (body.completedAt !== undefined) return body;
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error('stage request never completed');
}

async function locality(path: string): Promise<{ locality?: string; error?: string }> {
  const r = await post('/tape/v1/archiveinfo', { paths: [path] });
  assert.equal(r.status, 200);
  const [item] = JSON.parse(r.body.toString());
  assert.equal(item.path, path);
  return item;
}

test('discovery document names the site and the v1 endpoint', async () => {
  const r = await h2Request(s, 'GET', '/.well-known/wlcg-tape-rest-api');
  assert.equal(r.status, 200);
  const d = JSON.parse(r.body.toString());
  assert.equal(d.sitename, 'cargoport-test');
  assert.equal(d.endpoints[0].version, 'v1');
  assert.equal(d.endpoints[0].uri, `https://127.0.0.1:${srv.port}/tape/v1`);
});

test('stage: 201 + Location + requestId; file goes TAPE → COMPLETED/DISK_AND_TAPE; readable only once staged', async () => {
  const body = await onTape('/tape/a.bin', 10 * KiB);
  assert.equal((await locality('/data/tape/a.bin')).locality, 'TAPE');
  assert.equal((await h2Request(s, 'GET', '/data/tape/a.bin')).status, 409, 'nearline file is not readable before staging');
  const head = await h2Request(s, 'HEAD', '/data/tape/a.bin');
  assert.equal(head.status, 200, 'HEAD answers from metadata even for a file on tape only');
  assert.equal(head.headers['content-length'], String(10 * KiB));
  const r = await post('/tape/v1/stage', { files: [{ path: '/data/tape/a.bin', diskLifetime: 'PT1H', targetedMetadata: { other: {} } }] });
  assert.equal(r.status, 201);
  const { requestId } = JSON.parse(r.body.toString());
  assert.equal(typeof requestId, 'string');
  assert.equal(r.headers['location'], `https://127.0.0.1:${srv.port}/tape/v1/stage/${requestId}`);
  const first = JSON.parse((await h2Request(s, 'GET', `/tape/v1/stage/${requestId}`)).body.toString());
  assert.ok(['SUBMITTED', 'STARTED'].includes(first.files[0].state), first.files[0].state);
  assert.equal(first.files[0].onDisk, undefined, 'state and onDisk are never both present');
  const done = await pollUntilDone(requestId);
  assert.equal(done.files[0].state, 'COMPLETED');
  assert.equal((await locality('/data/tape/a.bin')).locality, 'DISK_AND_TAPE');
  const get = await h2Request(s, 'GET', '/data/tape/a.bin');
  assert.equal(get.status, 200);
  assert.ok(get.body.equals(body));
});

test('per-file failures: missing file, failed recall, bad path → FAILED with error; others still complete', async () => {
  await onTape('/tape/bad-tape', KiB);
  await onTape('/tape/ok.bin', KiB);
  const r = await post('/tape/v1/stage', {
    files: [{ path: '/data/tape/missing' }, { path: '/data/tape/bad-tape' }, { path: '/data/tape/ok.bin' }, { path: '/data/../etc/passwd' }],
  });
  assert.equal(r.status, 201);
  const done = await pollUntilDone(JSON.parse(r.body.toString()).requestId);
  const by = Object.fromEntries(done.files.map((f) => [f.path, f]));
  assert.equal(by['/data/tape/missing'].state, 'FAILED');
  assert.ok(by['/data/tape/missing'].error);
  assert.equal(by['/data/tape/bad-tape'].state, 'FAILED');
  assert.equal(by['/data/tape/ok.bin'].state, 'COMPLETED');
  assert.equal(by['/data/../etc/passwd'].state, 'FAILED');
});

test('release makes staged copies evictable: the buffer quota then evicts them (back to TAPE)', async () => {
  await onTape('/tape/big1', 60 * KiB);
  await onTape('/tape/big2', 60 * KiB);
  const r1 = JSON.parse((await post('/tape/v1/stage', { files: [{ path: '/data/tape/big1' }] })).body.toString());
  assert.equal((await pollUntilDone(r1.requestId)).files[0].state, 'COMPLETED');
  // big1 is pinned: big2 cannot fit beside it in a 100 KiB buffer.
  const r2 = JSON.parse((await post('/tape/v1/stage', { files: [{ path: '/data/tape/big2' }] })).body.toString());
  const d2 = await pollUntilDone(r2.requestId);
  assert.equal(d2.files[0].state, 'FAILED');
  assert.match(String(d2.files[0].error), /buffer/);
  assert.equal((await post(`/tape/v1/release/${r1.requestId}`, { paths: ['/data/tape/big1'] })).status, 200);
  const r3 = JSON.parse((await post('/tape/v1/stage', { files: [{ path: '/data/tape/big2' }] })).body.toString());
  assert.equal((await pollUntilDone(r3.requestId)).files[0].state, 'COMPLETED');
  assert.equal((await locality('/data/tape/big1')).locality, 'TAPE');
  assert.equal((await locality('/data/tape/big2')).locality, 'DISK_AND_TAPE');
  // gfal2's placeholder id is accepted too.
  assert.equal((await post('/tape/v1/release/gfal2-placeholder-id', { paths: ['/data/tape/big2'] })).status, 200);
});

test('cancel: unknown path → 400 "File missing from stage request"; cancel → CANCELLED; DELETE → later 404', async () => {
  await onTape('/tape/c.bin', KiB);
  const { requestId } = JSON.parse((await post('/tape/v1/stage', { files: [{ path: '/data/tape/c.bin' }] })).body.toString());
  const bad = await post(`/tape/v1/stage/${requestId}/cancel`, { paths: ['/data/tape/other'] });
  assert.equal(bad.status, 400);
  assert.match(String(bad.headers['content-type']), /^application\/problem\+json/);
  assert.equal(JSON.parse(bad.body.toString()).title, 'File missing from stage request');
  assert.equal((await post(`/tape/v1/stage/${requestId}/cancel`, { paths: ['/data/tape/c.bin'] })).status, 200);
  const after = await pollUntilDone(requestId);
  assert.equal(after.files[0].state, 'CANCELLED');
  assert.equal((await h2Request(s, 'DELETE', `/tape/v1/stage/${requestId}`)).status, 200);
  assert.equal((await h2Request(s, 'GET', `/tape/v1/stage/${requestId}`)).status, 404);
});

test('RFC 7807 errors: invalid JSON, missing files, unknown request', async () => {
  const bad = await h2Request(s, 'POST', '/tape/v1/stage', { 'content-type': 'application/json' }, '{nope');
  assert.equal(bad.status, 400);
  const p = JSON.parse(bad.body.toString());
  assert.equal(p.status, 400);
  assert.equal(p.title, 'JSON Validation error');
  assert.equal((await post('/tape/v1/stage', { files: [] })).status, 400);
  assert.equal((await post('/tape/v1/archiveinfo', { paths: 'x' })).status, 400);
  const nf = await h2Request(s, 'GET', '/tape/v1/stage/nope');
  assert.equal(nf.status, 404);
  assert.equal(JSON.parse(nf.body.toString()).status, 404);
});

test('archiveinfo: missing file gives a per-file error, the request still answers 200', async () => {
  const item = await locality('/data/tape/never-written');
  assert.ok(item.error);
  assert.equal(item.locality, undefined);
});
