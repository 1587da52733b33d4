/**
 * One client cannot hold the buffer (issue 11, item 5): an upload takes quota for the bytes it has sent, not for the
 * size it announces, so a PUT declaring (almost) the whole buffer that sends 3 bytes and then nothing leaves room for
 * everyone else; with storage.uploadIdleTimeoutSec it is then closed (408 CARGO_ERR_UPLOAD_STALLED) and gives back its
 * temp file and quota. The same for one part of a multi-stream (Content-Range) upload naming a huge total, and over
 * the HTTP/1.1-only listener. Before: the declared Content-Length was reserved up front and every upload of 1 MiB or
 * more got 507 for as long as the liar's connection stayed open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { testTls } from '../support/tls.js';

const MiB = 1024 * 1024;
const QUOTA = 8 * MiB;

function incomingFiles(srv: TestStorageServer): string[] {
  return readdirSync(join(srv.dir, 'buffer', 'incoming'));
}

async function until(what: string, cond: () => boolean, detail?: () => string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`never: ${what} (${detail?.() ?? ''})`);
}

/** An HTTP/2 PUT that announces `headers` and sends 3 bytes, then nothing. */
function h2Liar(session: ClientHttp2Session, path: string, headers: Record<string, string>): { req: ClientHttp2Stream; answer: Promise<{ status: number; body: string }> } {
  const req = session.request({ ':method': 'PUT', ':path': path, ...headers }, { endStream: false });
  req.on('error', () => undefined);
  req.write(Buffer.from('abc'));
  const answer = new Promise<{ status: number; body: string }>((resolve) => {
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('close', () => resolve({ status, body }));
  });
  return { req, answer };
}

/** The same over HTTP/1.1: a TLS socket that sends the head and 3 bytes of the body. */
function http1Liar(origin: string, path: string, length: number): Promise<TLSSocket> {
  const u = new URL(origin);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: u.hostname, port: Number(u.port), ca: testTls().cert, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
      s.write(`PUT ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${length}\r\n\r\nabc`);
      resolve(s);
    });
    s.on('error', reject);
  });
}

test('a PUT declaring the whole buffer that sends 3 bytes stays open while 1 MiB+ uploads of others succeed', async () => {
  const srv = await startStorageServer({ bufferQuotaBytes: QUOTA, http1: true });
  const session = h2Connect(srv.origin);
  try {
    // One liar declares (almost) the whole buffer; a declared size must only fit the room obtainable when it starts,
    // so the next liars declare half of it.
    const liars = [h2Liar(session, '/data/liar.bin', { 'content-length': String(QUOTA - 1) })];
    await until('the first liar\'s bytes arrived', () => srv.storage.buffer.usedBytes >= 3);
    liars.push(h2Liar(session, '/data/liar-part.bin', { 'content-range': `bytes 0-${QUOTA / 2 - 1}/${QUOTA / 2}`, 'content-length': String(QUOTA / 2) }));
    const h1 = await http1Liar(srv.http1Origin!, '/data/liar-h1.bin', QUOTA / 2);
    h1.on('error', () => undefined);
    await until('the liars\' bytes arrived', () => incomingFiles(srv).length === 3 && srv.storage.buffer.usedBytes >= 9, () => `${incomingFiles(srv).join()} ${srv.storage.buffer.usedBytes}`);
    // Each liar holds its bytes and at most one growth step ahead (quota / 16), never its declared size.
    assert.ok(srv.storage.buffer.usedBytes <= 3 * (QUOTA / 16 + 3), `held ${srv.storage.buffer.usedBytes}`);
    for (let i = 0; i < 3; i++) {
      const body = randomBytes(MiB + i * 512 * 1024);
      const res = await h2Request(session, 'PUT', `/data/honest-${i}.bin`, { 'content-length': String(body.length) }, body);
      assert.equal(res.status, 201, res.body.toString());
      assert.ok((await h2Request(session, 'GET', `/data/honest-${i}.bin`)).body.equals(body));
    }
    const unknown = await h2Request(session, 'PUT', '/data/honest-unknown.bin', {}, randomBytes(MiB));
    assert.equal(unknown.status, 201, unknown.body.toString());
    // The liars are still open: nothing closed them, they merely hold nothing.
    for (const l of liars) assert.equal(l.req.closed, false);
    assert.equal(h1.destroyed, false);
    for (const l of liars) l.req.close();
    h1.destroy();
    await Promise.all(liars.map((l) => l.answer));
    // The plain liars' quota and temp files go with their streams; the ranged part's assembly keeps its 3 bytes until
    // it completes or expires (storage.rangedUploadIdleMs), as any incomplete multi-stream upload does.
    await until('the plain liars gave everything back', () => incomingFiles(srv).length === 1 && srv.storage.buffer.usedBytes <= QUOTA / 16 + 3);
  } finally {
    session.close();
    await srv.close();
  }
});

test('a stalled upload body is closed after uploadIdleTimeoutMs with 408 CARGO_ERR_UPLOAD_STALLED; temp file and quota given back', { timeout: 60_000 }, async () => {
  const srv = await startStorageServer({ bufferQuotaBytes: QUOTA, http1: true, uploadIdleTimeoutMs: 500, rangedUploadIdleMs: 500 });
  const session = h2Connect(srv.origin);
  try {
    const plain = h2Liar(session, '/data/stalled.bin', { 'content-length': String(QUOTA / 4) });
    const part = h2Liar(session, '/data/stalled-part.bin', { 'content-range': `bytes 0-${QUOTA / 4 - 1}/${QUOTA / 4}`, 'content-length': String(QUOTA / 4) });
    const h1 = await http1Liar(srv.http1Origin!, '/data/stalled-h1.bin', QUOTA / 4);
    let h1Answer = '';
    h1.setEncoding('utf8');
    h1.on('data', (d: string) => (h1Answer += d));
    h1.on('error', () => undefined);
    const h1Closed = new Promise((r) => h1.once('close', r));
    for (const l of [plain, part]) {
      const a = await l.answer; // the server ends the stream: we never do
      assert.equal(a.status, 408, a.body);
      assert.equal(JSON.parse(a.body).code, 'CARGO_ERR_UPLOAD_STALLED');
    }
    await h1Closed; // the server closes the connection
    assert.match(h1Answer, /^HTTP\/1\.1 408 /, h1Answer.slice(0, 200));
    await until('quota and temp files given back', () => srv.storage.buffer.usedBytes === 0 && incomingFiles(srv).length === 0);
    for (const p of ['stalled.bin', 'stalled-part.bin', 'stalled-h1.bin']) assert.equal((await h2Request(session, 'HEAD', `/data/${p}`)).status, 404);
    // Uploads that keep sending are not affected.
    const body = randomBytes(2 * MiB);
    assert.equal((await h2Request(session, 'PUT', '/data/after.bin', {}, body)).status, 201);
  } finally {
    session.close();
    await srv.close();
  }
});
