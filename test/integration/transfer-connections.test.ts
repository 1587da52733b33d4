/**
 * The connection seam: every socket the engine opens (undici's HEAD/PUT connections, the bulk receive sessions, the
 * HTTP/1.x agents) and every connection the gateway accepts raises socket-opened and socket-closed with its flow's
 * context; connections are reused only within one flow (same SciTag, same credentials identity); the createSocket
 * hook sees every outbound socket before it connects.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../../config/load.js';
import { startGateway } from '../../gateway/start.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import type { SocketClosedEvent, SocketEvent } from '../../services/transfer/connect/connection-events.js';
import { defaultCreateSocket } from '../../services/transfer/connect/connector.js';
import { createTransferEngine, type TransferEngine } from '../../services/transfer/engine.js';
import type { FlowContext, TransferRequest } from '../../services/transfer/types.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { testTls } from '../support/tls.js';

const ctl = (flow: FlowContext) => ({ signal: new AbortController().signal, gate: new PauseGate(), flow });
const req = (source: string, destination: string, extra: Partial<TransferRequest> = {}): TransferRequest =>
  ({ source, destination, verify: 'none', overwrite: true, connections: 1, streams: 1, ...extra });

/** Records the engine's socket events. */
function recorder(engine: TransferEngine) {
  const opened: SocketEvent[] = [];
  const closed: SocketClosedEvent[] = [];
  engine.connections.on('socket-opened', (e) => opened.push(e));
  engine.connections.on('socket-closed', (e) => closed.push(e));
  return { opened, closed };
}

/** Waits (bounded by the test runner's timeout) until `cond` holds; socket close events follow close() by a tick. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

describe('transfer engine: connections', () => {
  const work = tempDir('connections');
  let h2: H2FileServer;
  let h1: H2FileServer;
  before(async () => {
    mkdirSync(join(work, 'h2'));
    mkdirSync(join(work, 'h1'));
    mkdirSync(join(work, 'local'));
    h2 = await startH2FileServer({ root: join(work, 'h2') });
    h1 = await startH2FileServer({ root: join(work, 'h1'), http1Only: true });
  });
  after(async () => {
    await h2.close();
    await h1.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('two flows with different SciTags to one origin never share a connection; one flow reuses its own', async () => {
    const engine = createTransferEngine({ ca: testTls().cert });
    const { opened } = recorder(engine);
    try {
      const [f] = makeRandomFiles(h2.root, 1, 200_000, 200_000, 'tag');
      const pull = (tag: number, name: string) => engine.transfer(req(h2.url(`/${f!.name}`), pathToFileURL(join(work, 'local', name)).href), ctl({ jobId: 'j', fileId: name, scitag: tag }));
      await pull(100, 'a1');
      await pull(200, 'b1');
      await pull(100, 'a2');
      await pull(200, 'b2');
      const toOrigin = opened.filter((e) => e.side === 'outbound' && e.origin === h2.origin);
      const byTag = new Map<number | undefined, Set<number | undefined>>();
      for (const e of toOrigin) {
        if (!byTag.has(e.flow.scitag)) byTag.set(e.flow.scitag, new Set());
        byTag.get(e.flow.scitag)!.add(e.localPort);
      }
      assert.deepEqual([...byTag.keys()].sort(), [100, 200], 'connections were opened for each tag, and only for them');
      assert.equal(byTag.get(100)!.size, 1, 'the second file of tag 100 reused its flow\'s connection');
      assert.equal(byTag.get(200)!.size, 1, 'the second file of tag 200 reused its flow\'s connection');
      const [p100] = byTag.get(100)!;
      const [p200] = byTag.get(200)!;
      assert.notEqual(p100, p200, 'different tags, different connections');
      // The server saw each file's requests on its flow's connection (by the client's port).
      assert.equal(toOrigin.length, 2, `one connection per tag (${toOrigin.map((e) => `${e.flow.scitag}:${e.localPort}`).join(' ')})`);
    } finally {
      await engine.close();
    }
  });

  test('different credentials identities to one origin never share a connection', async () => {
    const engine = createTransferEngine({ ca: testTls().cert });
    const { opened } = recorder(engine);
    try {
      const [f] = makeRandomFiles(h2.root, 1, 100_000, 100_000, 'who');
      for (const who of ['alice', 'bob', 'alice']) {
        await engine.transfer(req(h2.url(`/${f!.name}`), pathToFileURL(join(work, 'local', `who-${who}-${opened.length}`)).href), ctl({ credentialsId: who }));
      }
      const ports = new Map<string | undefined, Set<number | undefined>>();
      for (const e of opened.filter((x) => x.origin === h2.origin)) {
        if (!ports.has(e.flow.credentialsId)) ports.set(e.flow.credentialsId, new Set());
        ports.get(e.flow.credentialsId)!.add(e.localPort);
      }
      assert.equal(ports.get('alice')?.size, 1);
      assert.equal(ports.get('bob')?.size, 1);
      assert.notEqual([...ports.get('alice')!][0], [...ports.get('bob')!][0]);
    } finally {
      await engine.close();
    }
  });

  test('every socket the engine opens raises opened and closed with its flow context, and passes the createSocket hook', async () => {
    const engine = createTransferEngine({ ca: testTls().cert });
    const { opened, closed } = recorder(engine);
    const hooked: Array<{ host: string; port: number; scitag?: number }> = [];
    engine.setCreateSocket((options, flow) => {
      hooked.push({ host: options.host, port: options.port, ...(flow.scitag !== undefined ? { scitag: flow.scitag } : {}) });
      return defaultCreateSocket(options, flow);
    });
    const flow = { jobId: 'job-7', fileId: '3', scitag: 321 };
    const [f] = makeRandomFiles(h2.root, 1, 300_000, 300_000, 'ev');
    writeFileSync(join(h1.root, f!.name), readFileSync(join(h2.root, f!.name)));
    const local = join(work, 'local', 'ev.bin');
    // Pull over the bulk receive path (h2), over the HTTP/1.x agent (h1); push over undici (h2: HEAD + PUT) and
    // over the HTTP/1.x agent (h1: PUT).
    // Connections are closed after each transfer, so each path opens its own (a flow's next transfer would reuse them).
    await engine.transfer(req(h2.url(`/${f!.name}`), pathToFileURL(local).href), ctl(flow));
    await engine.close();
    await engine.transfer(req(h1.url(`/${f!.name}`), pathToFileURL(`${local}.h1`).href), ctl(flow));
    await engine.close();
    await engine.transfer(req(pathToFileURL(local).href, h2.url('/pushed/ev.bin'), { overwrite: false }), ctl(flow));
    await engine.close();
    await engine.transfer(req(pathToFileURL(local).href, h1.url('/pushed/ev.bin')), ctl(flow));
    await engine.close();
    await until(() => closed.length >= opened.length);

    assert.ok(opened.length >= 3, `sockets to both servers, both ways (${opened.length})`);
    assert.equal(hooked.length, opened.length, 'every socket was created through the createSocket hook');
    for (const e of opened) {
      assert.equal(e.side, 'outbound');
      assert.deepEqual({ jobId: e.flow.jobId, fileId: e.flow.fileId, scitag: e.flow.scitag }, flow, `flow context on ${e.origin}`);
      assert.ok(e.localPort! > 0 && e.remotePort! > 0 && e.localAddress && e.remoteAddress, 'addresses and ports');
      const end = closed.find((c) => c.localPort === e.localPort && c.origin === e.origin);
      assert.ok(end, `closed event for ${e.origin} :${e.localPort}`);
      assert.deepEqual(end.flow, e.flow);
      // A probe that only learns the server speaks no h2 closes after the handshake: counts may be 0 there.
      assert.ok(Number.isSafeInteger(end.bytesRead) && Number.isSafeInteger(end.bytesWritten), 'byte counts of the connection');
    }
    for (const origin of [h2.origin, h1.origin]) {
      assert.ok(closed.filter((c) => c.origin === origin).reduce((n, c) => n + c.bytesRead, 0) > 300_000, `bytes read from ${origin} counted`);
    }
    const directions = new Set(opened.map((e) => `${e.origin === h2.origin ? 'h2' : 'h1'} ${e.flow.direction} ${e.protocol}`));
    for (const want of ['h2 source h2', 'h1 source http/1.1', 'h2 destination h2', 'h1 destination http/1.1']) {
      assert.ok(directions.has(want), `a ${want} connection (${[...directions].join(', ')})`);
    }
  });

  test('connections the gateway accepts raise opened and closed on the engine\'s events', async () => {
    const prefix = uniquePrefix();
    const cfg = loadConfig({
      env: {},
      overrides: {
        logLevel: 'warn', dataDir: join(work, 'gw'),
        gateway: { host: '127.0.0.1', port: 0, http1Port: 0 },
        redis: { url: TEST_REDIS_URL, prefix },
        transfer: { caFile: testTls().certPath },
      },
    });
    const engine = createTransferEngine({ ca: testTls().cert });
    const { opened, closed } = recorder(engine);
    const gateway = await startGateway(cfg, { redisUrl: TEST_REDIS_URL, tls: testTls(), engine });
    try {
      const s = h2Connect(gateway.url);
      const r = await h2Request(s, 'GET', '/api/v1/health');
      assert.ok(r.status > 0);
      await new Promise<void>((resolve) => s.close(() => resolve()));
      const h1res = await fetchHttp1(`https://127.0.0.1:${gateway.http1Port}/api/v1/health`);
      assert.ok(h1res > 0);
      await until(() => closed.filter((e) => e.side === 'inbound').length >= 2);
      const inbound = opened.filter((e) => e.side === 'inbound');
      assert.deepEqual(inbound.map((e) => e.protocol).sort(), ['h2', 'http/1.1']);
      for (const e of inbound) {
        assert.ok(e.localPort! > 0 && e.remotePort! > 0 && e.remoteAddress, 'addresses of the accepted connection');
        assert.ok(closed.some((c) => c.side === 'inbound' && c.remotePort === e.remotePort && c.bytesRead > 0), 'its closed event');
      }
    } finally {
      await gateway.close();
      await engine.close();
      const redis = new Redis(TEST_REDIS_URL);
      await dropPrefix(redis, prefix);
      redis.disconnect();
    }
  });
});

/** One HTTP/1.1 request on a connection of its own, closed after the answer. */
async function fetchHttp1(url: string): Promise<number> {
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    const r = https.request(url, { ca: testTls().cert, agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end();
  });
}
