/**
 * Per-client bounds of the gateway (issue 11, item 5 and the 431 of item 9), on a real port (TLS, HTTP/2 and the
 * HTTP/1.1-only listener, Redis):
 * - request headers over gateway.maxHeaderBytes are answered 431 problem+json, on HTTP/1.1 (both listeners, the client
 *   reading the answer after sending all of its 100 KB) and HTTP/2 (before: a 100 KB header reset the connection);
 * - thousands of half-open ClientHellos are closed by the TLS handshake timeout while another client is served, and
 *   the per-client table is empty afterwards;
 * - a client at maxConnectionsPerClient has its next connection closed while another address is served;
 * - a client at maxRequestsPerClient gets 429 CARGO_ERR_CLIENT_BUSY while another address is served, and is served
 *   again once a request of it ends;
 * - idle connections (HTTP/1.1 and HTTP/2) are closed after gateway.idleTimeoutSec.
 * Another address = a client bound to 127.0.0.2 (all of 127/8 is loopback on Linux).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startHarness, type Harness } from '../support/port-harness.js';
import { testTls } from '../support/tls.js';

const OTHER_ADDRESS = '127.0.0.2';

async function withPort(overrides: Record<string, unknown>, fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness(overrides, { workers: 0 });
  try {
    await fn(h);
  } finally {
    await h.close();
    rmSync(h.cfg.dataDir, { recursive: true, force: true });
  }
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** A TLS connection (ALPN http/1.1) that sends `request` whole and resolves with everything the server answered. */
function http1Exchange(port: number, request: string, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: testTls().cert, servername: 'localhost', ALPNProtocols: ['http/1.1'], ...(localAddress ? { localAddress } : {}) }, () => {
      s.write(request);
    });
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', (e) => reject(new Error(`${(e as NodeJS.ErrnoException).code ?? e.message} after reading ${JSON.stringify(out.slice(0, 200))}`)));
    s.on('close', () => resolve(out));
  });
}

function h2Session(url: string, localAddress?: string): ClientHttp2Session {
  const s = h2connect(url, { ca: testTls().cert, ...(localAddress ? { localAddress } : {}) } as never);
  s.on('error', () => undefined);
  return s;
}

function h2Get(s: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':path': path, ...headers });
    let body = '';
    let status = 0;
    let h: Record<string, unknown> = {};
    req.setEncoding('utf8');
    req.on('response', (r) => {
      status = Number(r[':status']);
      h = r;
    });
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve({ status, body, headers: h }));
    req.on('error', reject);
    req.end();
  });
}

/** A TLS connection that completes its handshake; resolves when connected, rejects when closed before. */
function tlsOpen(port: number, localAddress?: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: testTls().cert, servername: 'localhost', ALPNProtocols: ['http/1.1'], ...(localAddress ? { localAddress } : {}) }, () => resolve(s));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the handshake finished')));
  });
}

function closed(s: Socket): Promise<void> {
  return s.destroyed && s.closed ? Promise.resolve() : new Promise((r) => s.once('close', () => r()));
}

test('request headers over gateway.maxHeaderBytes: 431 problem+json on HTTP/1.1 (both listeners) and HTTP/2', async () => {
  await withPort({ gateway: { http1Port: 0, maxHeaderBytes: 8192 } }, async (h) => {
    const big = 'a'.repeat(100_000);
    for (const port of [h.gateway.port, h.gateway.http1Port!]) {
      const answer = await http1Exchange(port, `GET /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nX-Big: ${big}\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 431 /, `port ${port}: ${answer.slice(0, 200)}`);
      const problem = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      assert.equal(problem.code, 'CARGO_ERR_HEADERS_TOO_LARGE');
      assert.equal(problem.limit, 'gateway.maxHeaderBytes');
      assert.equal(problem.max, 8192);
      // A header under the limit is fine.
      const ok = await http1Exchange(port, `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Small: ${'a'.repeat(4000)}\r\nConnection: close\r\n\r\n`);
      assert.match(ok, /^HTTP\/1\.1 200 /, ok.slice(0, 200));
    }
    const s = h2Session(h.gateway.url);
    try {
      const r = await h2Get(s, '/api/v1/jobs', { 'x-big': 'a'.repeat(20_000) });
      assert.equal(r.status, 431, r.body);
      assert.equal(JSON.parse(r.body).code, 'CARGO_ERR_HEADERS_TOO_LARGE');
      // The same session goes on serving.
      assert.equal((await h2Get(s, '/healthz', { 'x-small': 'a'.repeat(4000) })).status, 200);
      assert.equal(h.gateway.limits.oversizedHeaders, 3);
    } finally {
      s.close();
    }
  });
});

// The timeout is a guard: without a handshake timeout the sockets stay open for Node's 120 s and this fails.
test('thousands of half-open ClientHellos are closed by the TLS handshake timeout while another client is served', { timeout: 90_000 }, async () => {
  await withPort({ gateway: { tlsHandshakeTimeoutMs: 1000, maxConnectionsPerClient: 0 } }, async (h) => {
    const port = h.gateway.port;
    const N = 2000;
    const sockets: Socket[] = [];
    const opened: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      const s = netConnect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      // The first 3 bytes of a TLS record header of a ClientHello, and then nothing.
      opened.push(new Promise((r) => s.once('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01]), () => r()))));
      sockets.push(s);
    }
    await Promise.all(opened);
    // Another client is served meanwhile, over a fresh connection.
    const other = h2Session(h.gateway.url, OTHER_ADDRESS);
    try {
      assert.equal((await h2Get(other, '/healthz')).status, 200);
    } finally {
      other.close();
    }
    // Every half-open connection is closed by the server (none is closed by us).
    await Promise.all(sockets.map(closed));
    // And nothing of them stays in the per-client table once the last socket is gone on the server side too.
    for (let i = 0; i < 200 && h.gateway.limits.counts('127.0.0.1').connections > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.gateway.limits.counts('127.0.0.1').connections, 0);
  });
});

test('a client at gateway.maxConnectionsPerClient has its next connection closed; another address is served', async () => {
  await withPort({ gateway: { maxConnectionsPerClient: 20, http1Port: 0 } }, async (h) => {
    const held: TLSSocket[] = [];
    try {
      for (let i = 0; i < 20; i++) held.push(await tlsOpen(h.gateway.port));
      // The cap counts both listeners together.
      await assert.rejects(tlsOpen(h.gateway.port));
      await assert.rejects(tlsOpen(h.gateway.http1Port!));
      assert.ok(h.gateway.limits.refusedConnections >= 2);
      const other = h2Session(h.gateway.url, OTHER_ADDRESS);
      try {
        assert.equal((await h2Get(other, '/healthz')).status, 200);
      } finally {
        other.close();
      }
      // One connection of the capped client goes: it may connect again.
      const one = held.pop()!;
      one.destroy();
      for (let i = 0; i < 200 && h.gateway.limits.counts('127.0.0.1').connections >= 20; i++) await new Promise((r) => setTimeout(r, 20));
      held.push(await tlsOpen(h.gateway.port));
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

test('a client at gateway.maxRequestsPerClient gets 429 CARGO_ERR_CLIENT_BUSY; another address is served', async () => {
  await withPort({ gateway: { maxRequestsPerClient: 3 } }, async (h) => {
    const s = h2Session(h.gateway.url);
    const streams: Array<ReturnType<ClientHttp2Session['request']>> = [];
    try {
      // Three event streams stay open: three requests in flight.
      for (let i = 0; i < 3; i++) {
        const req = s.request({ ':path': '/api/v1/events' });
        req.on('error', () => undefined);
        req.resume(); // a paused client stream never emits 'close'
        await new Promise((r) => req.once('response', r));
        streams.push(req);
      }
      const busy = await h2Get(s, '/healthz');
      assert.equal(busy.status, 429, busy.body);
      assert.equal(JSON.parse(busy.body).code, 'CARGO_ERR_CLIENT_BUSY');
      assert.equal(busy.headers['retry-after'], '1');
      const other = h2Session(h.gateway.url, OTHER_ADDRESS);
      try {
        assert.equal((await h2Get(other, '/healthz')).status, 200);
      } finally {
        other.close();
      }
      const first = streams.shift()!;
      const gone = new Promise((r) => first.once('close', r));
      first.close();
      await gone;
      for (let i = 0; i < 200 && h.gateway.limits.counts('127.0.0.1').requests >= 3; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await h2Get(s, '/healthz')).status, 200);
    } finally {
      for (const r of streams) r.close();
      s.close();
    }
  });
});

test('idle connections are closed after gateway.idleTimeoutSec (HTTP/1.1 and HTTP/2, both listeners)', { timeout: 60_000 }, async () => {
  await withPort({ gateway: { idleTimeoutSec: 1, http1Port: 0 } }, async (h) => {
    for (const port of [h.gateway.port, h.gateway.http1Port!]) {
      const s = await tlsOpen(port).catch((e) => assert.fail(e));
      s.on('error', () => undefined);
      await closed(s); // sends nothing: the server closes it
    }
    const s = h2Session(h.gateway.url);
    assert.equal((await h2Get(s, '/healthz')).status, 200);
    await new Promise((r) => s.once('close', r));
    for (let i = 0; i < 200 && h.gateway.limits.trackedClients > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.gateway.limits.trackedClients, 0);
  });
});
