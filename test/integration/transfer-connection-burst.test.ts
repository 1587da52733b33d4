/**
 * A burst of hundreds of transfers starting at once against one server: each needs its own connection (an
 * HTTP/1.1-only endpoint), the server's accept backlog is tiny, and every transfer must still complete — the
 * per-host connection pacer keeps the handshakes in flight at its limit instead of flooding the server.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const TRANSFERS = 300;
const MAX_PENDING = 12;

interface BurstServer {
  server: Server;
  origin: string;
  /** Client ports seen, requests in flight at most, TLS handshakes in flight at the server at most. */
  peers: Set<number>;
  maxInFlight: number;
  maxHandshaking: number;
}

async function startBurstServer(body: Buffer): Promise<BurstServer> {
  let inFlight = 0;
  let handshaking = 0;
  const s: BurstServer = { server: undefined as unknown as Server, origin: '', peers: new Set(), maxInFlight: 0, maxHandshaking: 0 };
  // HTTP/1.1 only, as most WLCG storages (dCache, XRootD, StoRM) answer ALPN.
  s.server = createServer({ key: testTls().key, cert: testTls().cert, ALPNProtocols: ['http/1.1'] }, (req, res) => {
    s.peers.add(req.socket.remotePort!);
    s.maxInFlight = Math.max(s.maxInFlight, ++inFlight);
    // Hold every response a little, so the transfers overlap and each needs a connection of its own.
    setTimeout(() => {
      inFlight--;
      res.writeHead(200, { 'Content-Length': String(body.length) }).end(body);
    }, 150);
  });
  s.server.on('connection', () => { s.maxHandshaking = Math.max(s.maxHandshaking, ++handshaking); });
  s.server.on('secureConnection', () => { handshaking--; });
  s.server.on('tlsClientError', () => { handshaking--; });
  // A tiny accept backlog: an unpaced burst of hundreds of SYNs would overflow it.
  await new Promise<void>((r) => s.server.listen({ port: 0, host: '127.0.0.1', backlog: 4 }, r));
  s.origin = `https://127.0.0.1:${(s.server.address() as { port: number }).port}`;
  return s;
}

describe('transfer engine: a burst of connections to one server', () => {
  const srcDir = tempDir('burst-src');
  const files = makeRandomFiles(srcDir, 1, 48 * 1024, 48 * 1024, 'b');
  const body = readFileSync(join(srcDir, files[0]!.name));
  const servers: BurstServer[] = [];

  before(async () => {
    await engine.reconfigure({ ca: testTls().cert, connectionPacing: { maxPending: MAX_PENDING, perSecond: 10_000 } });
  });
  after(async () => {
    for (const s of servers) await engine.configureEndpoint(s.origin, undefined);
    await engine.reconfigure({ connectionPacing: { maxPending: 32, perSecond: 200 } });
    await engine.close();
    for (const s of servers) {
      s.server.closeAllConnections();
      await new Promise((r) => s.server.close(r));
    }
  });

  const cases = [
    { name: 'an endpoint configured HTTP/1.1-only', http1Only: true },
    { name: 'a server that answers ALPN with http/1.1 (nothing configured)', http1Only: false },
  ];
  for (const c of cases) {
    test(`${TRANSFERS} pulls started at once from ${c.name} all complete, each on its own connection, handshakes paced`, async () => {
      const s = await startBurstServer(body);
      servers.push(s);
      await engine.configureEndpoint(s.origin, { maxHttp1ConnectionsPerOrigin: TRANSFERS, ...(c.http1Only ? { http1Only: true } : {}) });
      const dst = tempDir('burst-dst');
      const results = await Promise.allSettled(Array.from({ length: TRANSFERS }, (_, i) => engine.transfer(
        {
          source: `${s.origin}/${files[0]!.name}`, destination: `file://${dst}/f${i}`, size: body.length,
          verify: 'none', overwrite: false, checksum: { alg: 'adler32', value: files[0]!.adler32 },
        },
        { signal: new AbortController().signal, gate: new PauseGate() },
      )));
      const failed = results.filter((r) => r.status === 'rejected');
      assert.equal(failed.length, 0, `every transfer completes (first failure: ${String((failed[0] as PromiseRejectedResult | undefined)?.reason)})`);
      for (let i = 0; i < TRANSFERS; i += 37) assert.ok(readFileSync(join(dst, `f${i}`)).equals(body));
      // The burst was real and spread: transfers ran side by side, on connections of their own, not queued
      // one after another on the connection the first request opened.
      assert.ok(s.peers.size >= TRANSFERS / 2, `connections opened: ${s.peers.size}`);
      assert.ok(s.maxInFlight > MAX_PENDING, `requests in flight at once: ${s.maxInFlight}`);
      assert.ok(s.maxHandshaking <= MAX_PENDING, `TLS handshakes in flight at the server: ${s.maxHandshaking} (pacer limit ${MAX_PENDING})`);
    });
  }
});
