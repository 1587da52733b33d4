/**
 * HTTP-TPC client against a real TLS HTTP/2 "active party" that answers COPY with a performance-marker
 * stream: success, remote failure, refusal, abrupt end, caller abort (the server sees the stream closed)
 * and a stalled remote (no markers).
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isCargoError } from '../../errors/cargo-error.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { tpcCopy } from '../../services/transfer/tpc/tpc-client.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

let server: http2.Http2SecureServer;
let origin: string;
const seen: http2.IncomingHttpHeaders[] = [];
let closedStreams = 0;

const marker = (bytes: number) =>
  `Perf Marker\nTimestamp: ${Math.floor(Date.now() / 1000)}\nStripe Index: 0\nStripe Bytes Transferred: ${bytes}\nTotal Stripe Count: 1\nRemoteConnections: tcp:127.0.0.1:9999\nEnd\n`;

before(async () => {
  const tls = testTls();
  server = http2.createSecureServer({ key: tls.key, cert: tls.cert, allowHTTP1: true });
  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    seen.push(req.headers);
    const path = req.url;
    if (req.method !== 'COPY') { res.statusCode = 405; res.end(); return; }
    if (path === '/denied') { res.statusCode = 403; res.end(); return; }
    res.statusCode = 202;
    res.setHeader('content-type', 'text/plain');
    let bytes = 0;
    let n = 0;
    res.on('close', () => { closedStreams++; clearInterval(timer); });
    const timer = setInterval(() => {
      if (path === '/stall') return; // accepted, then silence
      bytes += 1000;
      n++;
      res.write(marker(bytes));
      if (n === 3) {
        if (path === '/ok') { res.end('success: Created\n'); clearInterval(timer); }
        if (path === '/fail') { res.end('failure: source answered 404, local=/x, remote=https://src/x\n'); clearInterval(timer); }
        if (path === '/abrupt') { res.end(); clearInterval(timer); }
      }
    }, 20);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await engine.reconfigure({ ca: tls.cert });
});

after(async () => {
  await engine.close();
  await new Promise<void>((r) => server.close(() => r()));
});

const signal = () => new AbortController().signal;

describe('HTTP-TPC client', () => {
  it('pull mode: sends COPY with Source and TransferHeaders, follows markers to success', async () => {
    const totals: number[] = [];
    const res = await tpcCopy({
      mode: 'pull', source: 'https://src.example/data/x', destination: `${origin}/ok`,
      headers: { authorization: 'Bearer for-active' }, passiveHeaders: { Authorization: 'Bearer for-passive' }, streams: 2,
    }, { pool: engine.pool, signal: signal(), onMarker: (_m, t) => totals.push(t) });
    assert.equal(res.status, 202);
    assert.equal(res.bytes, 3000);
    assert.deepEqual(totals, [1000, 2000, 3000]);
    assert.deepEqual(res.remoteConnections, ['tcp:127.0.0.1:9999']);
    const h = seen.at(-1)!;
    assert.equal(h['source'], 'https://src.example/data/x');
    assert.equal(h['transferheaderauthorization'], 'Bearer for-passive');
    assert.equal(h['authorization'], 'Bearer for-active');
    assert.equal(h['x-number-of-streams'], '2');
  });

  it('push mode sends Destination to the source', async () => {
    await tpcCopy({ mode: 'push', source: `${origin}/ok`, destination: 'https://dst.example/y' }, { pool: engine.pool, signal: signal() });
    assert.equal(seen.at(-1)!['destination'], 'https://dst.example/y');
  });

  it('a failure line is a retryable CARGO_ERR_TPC_FAILED carrying the remote message', async () => {
    await assert.rejects(tpcCopy({ mode: 'pull', source: 'https://s/x', destination: `${origin}/fail` }, { pool: engine.pool, signal: signal() }),
      (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_TPC_FAILED' && e.retryable && /source answered 404/.test(e.message));
  });

  it('an HTTP refusal is classified like any other (403 → CARGO_ERR_AUTH, fatal)', async () => {
    await assert.rejects(tpcCopy({ mode: 'pull', source: 'https://s/x', destination: `${origin}/denied` }, { pool: engine.pool, signal: signal() }),
      (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_AUTH' && !e.retryable && e.field === 'destination');
  });

  it('a stream that ends without a terminal line is a retryable network error', async () => {
    await assert.rejects(tpcCopy({ mode: 'pull', source: 'https://s/x', destination: `${origin}/abrupt` }, { pool: engine.pool, signal: signal() }),
      (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_NETWORK' && e.retryable);
  });

  it('abort closes the COPY stream at the active party', async () => {
    const before = closedStreams;
    const ac = new AbortController();
    const p = tpcCopy({ mode: 'pull', source: 'https://s/x', destination: `${origin}/stall` }, { pool: engine.pool, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(p, (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_ABORTED');
    for (let i = 0; i < 100 && closedStreams === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(closedStreams > before, 'server saw the COPY stream close');
  });

  it('a silent active party is CARGO_ERR_STALLED after the idle timeout', async () => {
    await assert.rejects(tpcCopy({ mode: 'pull', source: 'https://s/x', destination: `${origin}/stall` },
      { pool: engine.pool, signal: signal(), stall: { idleMs: 200, minBytesPerSec: 0, windowMs: 1000 } }),
    (e: unknown) => isCargoError(e) && e.code === 'CARGO_ERR_STALLED' && e.retryable);
  });
});

describe('HTTP-TPC client: an HTTP/1.1 active party that bursts its markers and closes', () => {
  // A raw server: 8 MiB of markers in one write, then `success`, then FIN (close-delimited). The marker stream is
  // read on undici's HTTP/1 client, which dies on a FIN that meets its parser paused (http/http1-get.ts); the marker
  // reader consumes every chunk at once, so the parser is never held when the FIN arrives.
  let raw: import('node:net').Server;
  let rawOrigin: string;
  before(async () => {
    const { createServer } = await import('node:net');
    const burst = Buffer.from(marker(1000).repeat(Math.ceil((8 << 20) / marker(1000).length)));
    raw = createServer((sock) => {
      sock.on('error', () => undefined);
      sock.once('data', () => {
        sock.write('HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n');
        sock.write(burst);
        sock.end('success: Created\n');
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    rawOrigin = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => raw.close(() => r())));

  it('the copy succeeds, every marker read, the process lives', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await tpcCopy({ mode: 'pull', source: 'https://s/x', destination: `${rawOrigin}/burst-${i}` }, { pool: engine.pool, signal: signal() });
      assert.equal(res.message, 'Created');
      assert.ok(res.markers > 1000);
    }
  });
});
