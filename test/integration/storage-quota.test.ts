/**
 * Uploads whose size is not announced (HTTP/2 without Content-Length, chunked HTTP/1.1) are held to the buffer
 * quota as their bytes arrive: a body larger than the room left stops with 507 CARGO_ERR_NO_SPACE, nothing is
 * published, no temp file or quota stays behind, and evictable staged copies make room first.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';

const QUOTA = 1024 * 1024;
let srv: TestStorageServer;
let session: ClientHttp2Session;

before(async () => {
  srv = await startStorageServer({ bufferQuotaBytes: QUOTA, nearline: { recallLatencyMs: 1 } });
  session = h2Connect(srv.origin);
});
after(async () => {
  session.close();
  await srv.close();
});

const incomingFiles = () => readdirSync(join(srv.dir, 'buffer', 'incoming'));

test('an upload of unknown size larger than the buffer stops with 507; nothing published, nothing held', async () => {
  const res = await h2Request(session, 'PUT', '/data/too-big.bin', {}, randomBytes(3 * QUOTA));
  assert.equal(res.status, 507, res.body.toString());
  const problem = JSON.parse(res.body.toString());
  assert.equal(problem.code, 'CARGO_ERR_NO_SPACE');
  assert.match(JSON.stringify(problem), /unknown size/, JSON.stringify(problem));
  assert.equal((await h2Request(session, 'HEAD', '/data/too-big.bin')).status, 404);
  assert.deepEqual(incomingFiles(), []);
  assert.equal(srv.storage.buffer.usedBytes, 0, 'the reservation was given back');
});

test('an upload of unknown size that fits is stored whole and gives its quota back', async () => {
  const body = randomBytes(QUOTA - 1000);
  const res = await h2Request(session, 'PUT', '/data/fits.bin', {}, body);
  assert.equal(res.status, 201, res.body.toString());
  const got = await h2Request(session, 'GET', '/data/fits.bin');
  assert.ok(got.body.equals(body));
  assert.equal(srv.storage.buffer.usedBytes, 0);
});

test('released staged copies are evicted to make room for an upload of unknown size', async () => {
  writeFileSync(join(srv.permanentDir, 'staged.bin'), randomBytes(QUOTA / 2));
  await srv.storage.stage('/staged.bin');
  assert.equal(srv.storage.buffer.usedBytes, QUOTA / 2);
  // Pinned: the room is not there.
  assert.equal((await h2Request(session, 'PUT', '/data/second.bin', {}, randomBytes(QUOTA - 1000))).status, 507);
  srv.storage.release('/staged.bin');
  const res = await h2Request(session, 'PUT', '/data/second.bin', {}, randomBytes(QUOTA - 1000));
  assert.equal(res.status, 201, res.body.toString());
  assert.equal(srv.storage.buffer.get('/staged.bin'), undefined, 'the released copy was evicted');
});
