/**
 * Scitags marking of accepted connections: the storage endpoint on ::1 announces a tagged GET (SciTag header:
 * we supply the data, so we are src) and a PUT tagged by a path default (the client supplies it, so it is src)
 * as flows with schema-valid fireflies; an untagged request announces nothing; status says why the eBPF marker for
 * accepted connections is off (not built, or marking.ebpfDevices empty; marking-ebpf.test.ts runs it).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { after, before, test } from 'node:test';
import { configureMarking, marking } from '../../services/marking/marking-service.js';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { startFireflyCollector, validateFirefly, type FireflyCollector } from '../support/firefly-collector.js';
import { sleep } from '../support/fixtures.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { testTls } from '../support/tls.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

let srv: TestStorageServer;
let peer: FireflyCollector;
let remote: H2FileServer;
let remoteRoot: string;
const auth = { authorization: 'Bearer ok' };

before(async () => {
  peer = await startFireflyCollector('udp6', '::1');
  await configureMarking({ peerPort: peer.port, ongoingIntervalMs: 0, pathDefaults: ['/cms/=cms:Analysis Input'] });
  await engine.reconfigure({ ca: testTls().cert, connections: 1, streams: 1 });
  srv = await startStorageServer({
    host: '::1', authorize: (req) => req.headers['authorization'] === 'Bearer ok',
    tpc: { engine, allowLocal: true, markerIntervalMs: 50 },
  });
  remoteRoot = await mkdtemp(join(tmpdir(), 'cargoport-mark-remote-'));
  remote = await startH2FileServer({ root: remoteRoot, host: '::1' });
});

after(async () => {
  await engine.close();
  await remote.close();
  await rm(remoteRoot, { recursive: true, force: true });
  await srv.close();
  await configureMarking({});
  await peer.close();
});

async function session<T>(fn: (s: ClientHttp2Session) => Promise<T>): Promise<T> {
  const s = h2Connect(srv.origin);
  try {
    return await fn(s);
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
}

async function waitFor(cond: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !cond(); await sleep(20)) if (Date.now() - t0 > 10_000) assert.fail('timed out');
}

test('a tagged PUT and GET on accepted connections are announced; an untagged one is not', async () => {
  const body = randomBytes(2 * 1024 * 1024);
  const port = Number(new URL(srv.origin).port);
  await session(async (s) => assert.equal((await h2Request(s, 'PUT', '/data/cms/f.bin', auth, body)).status, 201));
  await waitFor(() => peer.received.some((f) => f.body['flow-lifecycle'].state === 'end'));
  await session(async (s) => {
    const r = await h2Request(s, 'GET', '/data/cms/f.bin', { ...auth, scitag: '144' });
    assert.equal(r.status, 200);
    // A second request on the same connection is the same flow.
    assert.equal((await h2Request(s, 'GET', '/data/cms/f.bin', { ...auth, scitag: '144' })).status, 200);
  });
  await waitFor(() => peer.received.filter((f) => f.body['flow-lifecycle'].state === 'end').length >= 2);
  const started = marking().status().flowsStarted;
  await session(async (s) => assert.equal((await h2Request(s, 'GET', '/data/other.bin', auth)).status, 404));
  await sleep(100);
  assert.equal(marking().status().flowsStarted, started, 'untagged: no flow');

  assert.equal(peer.received.length, 4, peer.received.map((f) => f.body['flow-lifecycle'].state).join(','));
  for (const f of peer.received) assert.ok(validateFirefly(f.body), JSON.stringify(f.body));
  const [putStart, putEnd, getStart, getEnd] = peer.received.map((f) => f.body);
  assert.deepEqual([putStart!['flow-lifecycle'].state, putEnd!['flow-lifecycle'].state], ['start', 'end']);
  assert.deepEqual(putEnd!['context'], { 'experiment-id': 3, 'activity-id': 14, application: 'cargoport' });
  assert.equal(putEnd!['flow-id']['dst-port'], port, 'PUT: the client supplies the data');
  assert.ok(putEnd!['usage'].received >= body.length);
  assert.deepEqual([getStart!['flow-lifecycle'].state, getEnd!['flow-lifecycle'].state], ['start', 'end']);
  assert.deepEqual(getEnd!['context'], { 'experiment-id': 2, 'activity-id': 16, application: 'cargoport' });
  assert.equal(getEnd!['flow-id']['src-port'], port, 'GET: the port supplies the data');
  assert.ok(getEnd!['usage'].sent >= 2 * body.length);

  const ebpf = marking().status().backends.find((b) => b.name === 'ebpf')!;
  assert.equal(ebpf.on, false);
  assert.match(ebpf.reason!, /^ebpf: (not built|marking\.ebpfDevices is empty)/, 'off by default, saying why');
});

test('a COPY with SciTag: 144 (curl -X COPY, gfal-copy --scitag) marks the data connection it opens as ATLAS / Production Output', async () => {
  await writeFile(join(remoteRoot, 'tpc.bin'), randomBytes(3 * 1024 * 1024));
  const remotePort = remote.port;
  const n = peer.received.length;
  await session(async (s) => {
    const r = await h2Request(s, 'COPY', '/data/tpc/copied.bin', { ...auth, source: `https://[::1]:${remotePort}/tpc.bin`, scitag: '144' });
    assert.equal(r.status, 202);
    assert.match(r.body.toString(), /success/);
  });
  const get = remote.requests.find((q) => q.method === 'GET' && q.path === '/tpc.bin');
  assert.equal(get?.headers['scitag'], '144', 'the pull carries the SciTag');
  await engine.close();
  await waitFor(() => peer.received.slice(n).some((f) => f.body['flow-lifecycle'].state === 'end' && f.body['flow-id']['src-port'] === remotePort));
  const flows = peer.received.slice(n).filter((f) => f.body['flow-id']['src-port'] === remotePort);
  assert.ok(flows.length >= 2);
  for (const f of flows) {
    assert.ok(validateFirefly(f.body));
    assert.deepEqual(f.body['context'], { 'experiment-id': 2, 'activity-id': 16, application: 'cargoport' });
  }
  assert.ok(marking().status().flowsLabelled >= 1 || marking().status().backends.find((b) => b.name === 'socket')!.on === false,
    'the data connection was opened with its label (when the socket backend runs)');
});
