/**
 * Hostile input against the storage endpoint: traversal in every encoding, NUL, over-long paths and headers,
 * unknown methods, clients vanishing mid-upload. Nothing outside the root may be touched and no answer may be
 * a 500.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import type { ClientHttp2Session } from 'node:http2';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2AbortedPut, h2Connect, h2Request } from '../support/h2-request.js';
import { testTls } from '../support/tls.js';

let srv: TestStorageServer;
let s: ClientHttp2Session;

before(async () => {
  srv = await startStorageServer();
  s = h2Connect(srv.origin);
  // A file beside the storage root, which traversal would reach.
  writeFileSync(join(srv.dir, 'beside-root.txt'), 'must never be served');
});
after(async () => {
  s.close();
  await srv.close();
});

const traversals = [
  '/data/../beside-root.txt',
  '/data/../../etc/passwd',
  '/data/%2e%2e/beside-root.txt',
  '/data/%2E%2E/beside-root.txt',
  '/data/.%2e/beside-root.txt',
  '/data/%252e%252e/beside-root.txt',
  '/data/%252e%252e%252fbeside-root.txt',
  '/data/a/%2e%2e%2f%2e%2e%2fbeside-root.txt',
  '/data/a%2f..%2f..%2fbeside-root.txt',
  '/data/a/./b',
  '/data/a%5c..%5cb',
  '/data/a%00b',
  '/data/a%c0%ae%c0%ae/b',
  '/data/%',
  '/data/.cargoport-tmp',
];

test('traversal, NUL, bad encodings → 400 for every method, never served, never written', async () => {
  for (const p of traversals) {
    for (const m of ['GET', 'HEAD', 'PUT', 'DELETE', 'MKCOL', 'PROPFIND', 'MOVE']) {
      const r = await h2Request(s, m, p, { depth: '0', destination: '/data/x' }, m === 'PUT' ? 'evil' : undefined);
      assert.ok(r.status === 400 || r.status === 404, `${m} ${p} → ${r.status}`);
      assert.ok(!r.body.toString().includes('must never be served'), `${m} ${p} leaked`);
    }
  }
  assert.deepEqual(readdirSync(srv.dir).sort(), ['beside-root.txt', 'buffer', 'permanent']);
});

test('MOVE with a Destination that traverses or leaves the endpoint is refused', async () => {
  await h2Request(s, 'PUT', '/data/mv/src', {}, 'x');
  for (const d of ['/data/../beside', `${srv.origin}/data/%2e%2e/beside`, `${srv.origin}/other/x`, '/data/mv/%00']) {
    const r = await h2Request(s, 'MOVE', '/data/mv/src', { destination: d });
    assert.equal(r.status, 400, d);
  }
  assert.equal(existsSync(join(srv.dir, 'beside')), false);
});

test('over-long path components and paths → 400; huge headers are refused without a 500', async () => {
  const comp = 'a'.repeat(256);
  assert.equal((await h2Request(s, 'PUT', `/data/${comp}`, {}, 'x')).status, 400);
  const deep = '/data' + '/abcdefgh'.repeat(600);
  assert.equal((await h2Request(s, 'GET', deep)).status, 400);
  // 64 KiB of header: the server must refuse (431 or a reset stream), not crash or 500.
  const status = await new Promise<number>((resolve) => {
    const req = s.request({ ':method': 'GET', ':path': '/data/', 'x-big': 'b'.repeat(64 * 1024) });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', () => resolve(-1));
    req.on('close', () => resolve(-1));
    req.end();
  });
  assert.notEqual(status, 500);
  assert.notEqual(status, 200);
  // The server may tear the whole session down (GOAWAY): carry on with a new one.
  s.destroy();
  s = h2Connect(srv.origin);
  const after = await h2Request(s, 'GET', '/data/');
  assert.equal(after.status, 200, 'server still serving');
});

test('unknown and unsupported methods → 405 (HTTP/2), with Allow', async () => {
  for (const m of ['FOO', 'POST', 'PATCH', 'PROPPATCH', 'LOCK', 'TRACE', 'BREW']) {
    const r = await h2Request(s, m, '/data/anything');
    assert.equal(r.status, 405, m);
    assert.match(String(r.headers['allow']), /PROPFIND/);
  }
});

test('unsupported WebDAV method over HTTP/1.1 → 405 too', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpsRequest(`${srv.origin}/data/x`, { method: 'PROPPATCH', ca: testTls().cert }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 405);
});

test('client disconnecting mid-PUT: nothing published, temp removed', async () => {
  await h2AbortedPut(s, '/data/abort/file.bin', 10 * 1024 * 1024, Buffer.alloc(256 * 1024, 1));
  // The server notices the reset asynchronously.
  for (let i = 0; i < 50 && readdirSync(srv.storage.buffer.incomingDir).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal((await h2Request(s, 'HEAD', '/data/abort/file.bin')).status, 404);
  assert.deepEqual(readdirSync(srv.storage.buffer.incomingDir), []);
  const parentDir = join(srv.permanentDir, 'abort');
  assert.deepEqual(existsSync(parentDir) ? readdirSync(parentDir) : [], []);
});

test('a body shorter than Content-Length (HTTP/1.1 connection dropped) publishes nothing', async () => {
  await new Promise<void>((resolve) => {
    const req = httpsRequest(`${srv.origin}/data/abort/short.bin`, {
      method: 'PUT',
      ca: testTls().cert,
      headers: { 'content-length': '1000000' },
    });
    req.on('error', () => resolve());
    req.write(Buffer.alloc(1000));
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 100);
  });
  for (let i = 0; i < 50 && readdirSync(srv.storage.buffer.incomingDir).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal((await h2Request(s, 'HEAD', '/data/abort/short.bin')).status, 404);
  assert.deepEqual(readdirSync(srv.storage.buffer.incomingDir), []);
});

test('clients abandoning downloads mid-body: no file descriptor leaks, server keeps serving', async () => {
  const { readdirSync: ls } = await import('node:fs');
  const { constants } = await import('node:http2');
  const big = Buffer.alloc(8 * 1024 * 1024, 7);
  assert.equal((await h2Request(s, 'PUT', '/data/dl/big.bin', {}, big)).status, 201);
  const fdsBefore = ls('/proc/self/fd').length;
  for (let i = 0; i < 20; i++) {
    // One session per abandoning client: Node's rapid-reset protection (ENHANCE_YOUR_CALM) would otherwise
    // rightly cut a single session that keeps cancelling streams.
    const c = h2Connect(srv.origin);
    await new Promise<void>((resolve) => {
      const req = c.request({ ':method': 'GET', ':path': '/data/dl/big.bin' });
      req.on('error', () => undefined);
      req.once('data', () => {
        req.close(constants.NGHTTP2_CANCEL);
        resolve();
      });
      req.on('close', () => resolve());
    });
    c.destroy();
  }
  let fdsAfter = ls('/proc/self/fd').length;
  for (let i = 0; i < 100 && fdsAfter > fdsBefore; i++) {
    await new Promise((r) => setTimeout(r, 20));
    fdsAfter = ls('/proc/self/fd').length;
  }
  assert.ok(fdsAfter <= fdsBefore, `fds before ${fdsBefore}, after ${fdsAfter}`);
  s.destroy();
  s = h2Connect(srv.origin);
  const full = await h2Request(s, 'GET', '/data/dl/big.bin');
  assert.ok(full.body.equals(big));
});
