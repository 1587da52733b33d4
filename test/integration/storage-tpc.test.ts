/**
 * HTTP-TPC between two real cargoport storage endpoints (HTTP/2 + TLS on loopback), executed by the transfer
 * engine: pull and push, performance markers and terminal lines, TransferHeader* forwarding, header validation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { testTls } from '../support/tls.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { perfMarker } from '../../gateway/storage/perf-marker.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

let a: TestStorageServer;
let b: TestStorageServer;
let sa: ClientHttp2Session;
let sb: ClientHttp2Session;
const scitags: number[] = [];

before(async () => {
  await engine.reconfigure({ ca: testTls().cert });
  const tpc = { engine, allowLocal: true, markerIntervalMs: 50, onTransfer: (i: { scitag?: number }) => { if (i.scitag !== undefined) scitags.push(i.scitag); } };
  // A requires a bearer token for anything under /private.
  a = await startStorageServer({
    tpc,
    authorize: (req, _action, path) => !path.startsWith('/private') || req.headers['authorization'] === 'Bearer passive',
  });
  b = await startStorageServer({ tpc });
  sa = h2Connect(a.origin);
  sb = h2Connect(b.origin);
});
after(async () => {
  sa.close();
  sb.close();
  await engine.close();
  await a.close();
  await b.close();
});

function payload(n: number): Buffer {
  const buf = Buffer.alloc(n);
  for (let i = 0; i < n; i++) buf[i] = (i * 7 + 3) & 0xff;
  return buf;
}

/** Markers must be complete blocks in the exact layout; the last line is the terminal status. */
function checkMarkerStream(text: string): string {
  const lines = text.split('\n').filter((l) => l !== '');
  const last = lines[lines.length - 1];
  const blocks = text.split('Perf Marker\n').slice(1);
  assert.ok(blocks.length >= 1, 'at least one performance marker');
  for (const b of blocks) {
    assert.match(b, /^Timestamp: \d+\nStripe Index: 0\nStripe Bytes Transferred: \d+\nTotal Stripe Count: 1\n(RemoteConnections: [^\n]+\n)?End\n/);
  }
  return last;
}

test('pull: COPY with Source → 202, markers, success: Created; file identical at the destination', async () => {
  const body = payload(5 * 1024 * 1024 + 3);
  assert.equal((await h2Request(sa, 'PUT', '/data/src/pull.bin', {}, body)).status, 201);
  const r = await h2Request(sb, 'COPY', '/data/dst/pull.bin', {
    source: `${a.base}/src/pull.bin`,
    credential: 'none',
    'x-number-of-streams': '2',
    scitag: '1234',
    transferheaderscitag: '999',
  });
  assert.equal(r.status, 202);
  assert.equal(checkMarkerStream(r.body.toString()), 'success: Created');
  const got = await h2Request(sb, 'GET', '/data/dst/pull.bin');
  assert.ok(got.body.equals(body));
  assert.ok(scitags.includes(1234), 'SciTag wins over TransferHeaderSciTag');
  assert.deepEqual(readdirSync(b.storage.buffer.incomingDir), [], 'pull staging area cleaned');
});

test('push: COPY with Destination → success: Created; gridsite credential treated as none', async () => {
  const body = payload(300_000);
  await h2Request(sa, 'PUT', '/data/src/push.bin', {}, body);
  const r = await h2Request(sa, 'COPY', '/data/src/push.bin', { destination: `${b.base}/pushed/push.bin`, credential: 'gridsite' });
  assert.equal(r.status, 202);
  assert.equal(checkMarkerStream(r.body.toString()), 'success: Created');
  assert.ok((await h2Request(sb, 'GET', '/data/pushed/push.bin')).body.equals(body));
});

test('TransferHeaderAuthorization reaches the passive side as Authorization', async () => {
  await h2Request(sa, 'PUT', '/data/private/x.bin', { authorization: 'Bearer passive' }, 'secret bytes');
  const denied = await h2Request(sb, 'COPY', '/data/dst/x.bin', { source: `${a.base}/private/x.bin` });
  assert.equal(denied.status, 403, 'the source HEAD is refused: relayed before any 202');
  assert.equal((await h2Request(sb, 'HEAD', '/data/dst/x.bin')).status, 404, 'nothing published on failure');
  const ok = await h2Request(sb, 'COPY', '/data/dst/x.bin', {
    source: `${a.base}/private/x.bin`,
    transferheaderauthorization: 'Bearer passive',
    credential: 'none',
  });
  assert.equal(checkMarkerStream(ok.body.toString()), 'success: Created');
  assert.equal((await h2Request(sb, 'GET', '/data/dst/x.bin')).body.toString(), 'secret bytes');
});

test('failures: missing source → 404 before 202 (source HEAD); checksum disagreeing with the source → 412', async () => {
  const r = await h2Request(sb, 'COPY', '/data/dst/none.bin', { source: `${a.base}/src/does-not-exist` });
  assert.equal(r.status, 404);
  assert.equal((await h2Request(sb, 'HEAD', '/data/dst/none.bin')).status, 404);
  await h2Request(sa, 'PUT', '/data/src/sum.bin', {}, 'sum me');
  const bad = await h2Request(sb, 'COPY', '/data/dst/sum.bin', { source: `${a.base}/src/sum.bin`, digest: 'adler32=00000001' });
  assert.equal(bad.status, 412);
  assert.equal((await h2Request(sb, 'HEAD', '/data/dst/sum.bin')).status, 404);
  assert.deepEqual(readdirSync(b.storage.buffer.incomingDir), []);
});

test('failure after 202: source vanishing mid-way is reported as a failure line, nothing published', async () => {
  // A probe that lies (the source "exists"), so the copy starts and the GET then fails.
  const c = await startStorageServer({
    tpc: { engine, allowLocal: true, probeSource: async () => ({ status: 200, headers: {} }) },
  });
  try {
    const s = h2Connect(c.origin);
    const r = await h2Request(s, 'COPY', '/data/dst/gone.bin', { source: `${a.base}/src/never-there`, requirechecksumverification: 'false' });
    assert.equal(r.status, 202);
    assert.match(checkMarkerStream(r.body.toString()), /^failure: .*(404|not found)/i);
    assert.equal((await h2Request(s, 'HEAD', '/data/dst/gone.bin')).status, 404);
    s.close();
  } finally {
    await c.close();
  }
});

test('push of a missing local file → 404 before any 202', async () => {
  const r = await h2Request(sa, 'COPY', '/data/src/absent', { destination: `${b.base}/x` });
  assert.equal(r.status, 404);
});

test('header validation → 400; Overwrite: F onto an existing file → 412', async () => {
  const src = `${a.base}/src/pull.bin`;
  const cases: Array<Record<string, string>> = [
    {},
    { source: src, destination: `${b.base}/y` },
    { source: 'ftp://example.org/x' },
    { source: 'not a url' },
    { source: src, credential: 'oidc' },
    { source: src, 'x-number-of-streams': '101' },
    { source: src, 'x-number-of-streams': 'two' },
    { source: src, overwrite: 'maybe' },
    { source: src, requirechecksumverification: 'yes' },
  ];
  for (const h of cases) {
    const r = await h2Request(sb, 'COPY', '/data/dst/v.bin', h);
    assert.equal(r.status, 400, JSON.stringify(h));
  }
  const r = await h2Request(sb, 'COPY', '/data/dst/pull.bin', { source: src, overwrite: 'F' });
  assert.equal(r.status, 412);
});

test('perf marker layout is exactly what davix parses', () => {
  assert.equal(
    perfMarker(1234, 1_700_000_000_999),
    'Perf Marker\nTimestamp: 1700000000\nStripe Index: 0\nStripe Bytes Transferred: 1234\nTotal Stripe Count: 1\nEnd\n',
  );
});

test('markers repeat while the copy runs (bytes never decrease); a client that goes away aborts the copy', async () => {
  const { constants } = await import('node:http2');
  let sawAbort = false;
  const c = await startStorageServer({
    tpc: {
      allowLocal: true,
      markerIntervalMs: 20,
      probeSource: async () => ({ status: 200, headers: {} }),
      // A stand-in engine: reports progress in steps, or waits for the abort signal.
      engine: { pool: engine.pool, transfer: async (req, ctl) => {
        if (req.source.endsWith('/hang')) {
          await new Promise<void>((resolve) => ctl.signal.addEventListener('abort', () => resolve(), { once: true }));
          sawAbort = true;
          throw new Error('aborted');
        }
        for (let i = 1; i <= 10; i++) {
          await new Promise((r) => setTimeout(r, 60));
          ctl.onProgress?.({ bytes: i * 1000, total: 10_000 });
        }
        const { writeFileSync } = await import('node:fs');
        writeFileSync(new URL(req.destination), 'x');
        return { bytes: 10_000, resumedBytes: 0, protocol: 'h2', connections: 1, streams: 1, durationMs: 600 };
      } },
    },
  });
  try {
    const s = h2Connect(c.origin);
    const r = await h2Request(s, 'COPY', '/data/m/file', { source: 'https://example.org/slow', requirechecksumverification: 'false' });
    const text = r.body.toString();
    assert.equal(checkMarkerStream(text), 'success: Created');
    const bytes = [...text.matchAll(/Stripe Bytes Transferred: (\d+)/g)].map((m) => Number(m[1]));
    assert.ok(bytes.length >= 3, `markers: ${bytes.length}`);
    for (let i = 1; i < bytes.length; i++) assert.ok(bytes[i] >= bytes[i - 1]);
    assert.equal(bytes[bytes.length - 1], 10_000);
    await new Promise<void>((resolve) => {
      const req = s.request({ ':method': 'COPY', ':path': '/data/m/hung', source: 'https://example.org/hang', requirechecksumverification: 'false' });
      req.on('error', () => undefined);
      req.once('data', () => {
        req.close(constants.NGHTTP2_CANCEL);
        resolve();
      });
    });
    for (let i = 0; i < 100 && !sawAbort; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(sawAbort, true, 'the engine was told to abort');
    assert.equal((await h2Request(s, 'HEAD', '/data/m/hung')).status, 404);
    s.close();
  } finally {
    await c.close();
  }
});

test('loopback remotes are refused unless allowLocal (403 before any 202)', async () => {
  const c = await startStorageServer({ tpc: { engine } });
  try {
    const s = h2Connect(c.origin);
    for (const src of [`${a.base}/src/pull.bin`, 'https://localhost:1/x', 'https://[::1]:1/x']) {
      const r = await h2Request(s, 'COPY', '/data/x', { source: src });
      assert.equal(r.status, 403, src);
    }
    s.close();
  } finally {
    await c.close();
  }
});

test('pull and push run as ranged multi-connection transfers under the endpoint settings; markers list RemoteConnections per connection', async () => {
  // Its own engine: small ranges so a few MiB are split, and endpoint settings for A (3 connections × 2 streams).
  const ranged = createTransferEngine({ ca: testTls().cert, multiStream: { minFileBytes: 1024 * 1024, rangeBytes: 512 * 1024 } });
  await ranged.configureEndpoint(a.origin, { connections: 3, streams: 2, rangedUpload: true });
  const c = await startStorageServer({ tpc: { engine: ranged, allowLocal: true, markerIntervalMs: 20 } });
  const s = h2Connect(c.origin);
  const remotes = (text: string): string[] => {
    const lines = [...text.matchAll(/^RemoteConnections: (.+)$/gm)];
    assert.ok(lines.length >= 1, 'a marker lists RemoteConnections');
    return lines.at(-1)![1]!.split(',');
  };
  try {
    const body = payload(6 * 1024 * 1024 + 5);
    assert.equal((await h2Request(sa, 'PUT', '/data/src/multi.bin', {}, body)).status, 201);
    const pull = await h2Request(s, 'COPY', '/data/dst/multi.bin', { source: `${a.base}/src/multi.bin`, credential: 'none' });
    const text = pull.body.toString();
    assert.equal(checkMarkerStream(text), 'success: Created', text);
    const list = remotes(text);
    assert.equal(list.length, 3, `one entry per connection of the endpoint's settings: ${list.join(',')}`);
    for (const r of list) assert.equal(r, `tcp:127.0.0.1:${a.port}`);
    assert.ok((await h2Request(s, 'GET', '/data/dst/multi.bin')).body.equals(body));
    // Push: C PUTs its file to A in ranged parts (A is a cargoport peer: rangedUpload), over A's 3 connections.
    const push = await h2Request(s, 'COPY', '/data/dst/multi.bin', { destination: `${a.base}/back/multi.bin`, credential: 'none' });
    const ptext = push.body.toString();
    assert.equal(checkMarkerStream(ptext), 'success: Created', ptext);
    assert.ok(remotes(ptext).length >= 1);
    for (const r of remotes(ptext)) assert.equal(r, `tcp:127.0.0.1:${a.port}`);
    assert.ok((await h2Request(sa, 'GET', '/data/back/multi.bin')).body.equals(body));
  } finally {
    s.close();
    await c.close();
    await ranged.close();
  }
});
