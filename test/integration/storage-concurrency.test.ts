/**
 * 200 concurrent clients, each on its own TLS connection (HTTP/2), downloading from one storage endpoint:
 * every one must get the complete, correct bytes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';

let srv: TestStorageServer;
before(async () => {
  srv = await startStorageServer();
});
after(async () => {
  await srv.close();
});

test('200 concurrent HTTP/2 clients (200 connections) all download the full file', async () => {
  const body = randomBytes(1024 * 1024 + 5);
  const up = h2Connect(srv.origin);
  assert.equal((await h2Request(up, 'PUT', '/data/conc/f.bin', {}, body)).status, 201);
  up.close();
  const want = createHash('sha256').update(body).digest('hex');
  const results = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const s = h2Connect(srv.origin);
      try {
        const r = await h2Request(s, 'GET', '/data/conc/f.bin', i % 2 ? { range: 'bytes=0-' } : {});
        return r.status < 300 && createHash('sha256').update(r.body).digest('hex') === want;
      } catch {
        return false;
      } finally {
        s.close();
      }
    }),
  );
  assert.equal(results.filter(Boolean).length, 200);
});
