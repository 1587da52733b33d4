/**
 * `cargoport probe` and the /probe endpoint (issue 17) between two real ports (gateways on TLS + HTTP/2, Redis):
 * - the CLI (a child process, as an operator runs it) probes the peer with an administrator's token and prints the
 *   JSON report: handshakes (TCP, full and resumed TLS, ALPN h2), round trip, download and upload with the asked
 *   connections × streams and exactly the asked bytes; the table names every measurement;
 * - rights: no token 401 (with a Bearer challenge, and the CLI says why in one line), a valid non-admin token 403,
 *   on both routes; a port with probe.access = authenticated lets that token probe;
 * - bounds: a size or a body over probe.maxBytes is 413 CARGO_ERR_PROBE_TOO_LARGE naming the setting, whether the
 *   body announces its length or not; probe requests count in gateway.maxRequestsPerClient (429 while the client
 *   holds its quota in unread probe downloads); probe.maxBytes 0 leaves no /probe route.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startHarness, type Harness } from '../support/port-harness.js';
import { startTestIssuer, type TestIssuer } from '../support/test-issuer.js';
import { testTls } from '../support/tls.js';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
const cli = join(repoRoot, 'bin', 'cargoport.js');
const AUD = 'https://probe-peer.test';
const MAX = 8 * 1024 * 1024;
const MAX_REQUESTS = 6;

let iss: TestIssuer;
let peer: Harness;
let open: Harness;
let workDir = '';
let configFile = '';
let admin = '';
let user = '';

function portConfig(access: 'admin' | 'authenticated', maxRequests: number) {
  return {
    auth: {
      insecureOpen: false, allowAddresses: [], issuerCaFile: testTls().certPath, audiences: [AUD],
      issuers: [{ issuer: iss.issuer, name: 'test', basePath: '/', groups: [{ group: '/wlcg', path: '/', rights: ['read'] }], adminGroups: ['/wlcg/ops'] }],
    },
    gateway: { maxRequestsPerClient: maxRequests },
    probe: { access, maxBytes: MAX },
  };
}

before(async () => {
  iss = await startTestIssuer(AUD);
  admin = iss.mint({ 'wlcg.groups': ['/wlcg', '/wlcg/ops'] });
  user = iss.mint({ 'wlcg.groups': ['/wlcg'] });
  // The peer: tokens required, probes for administrators, small bounds. The other port: probes for any identity.
  peer = await startHarness(portConfig('admin', MAX_REQUESTS), { workers: 0 });
  open = await startHarness(portConfig('authenticated', 2048), { workers: 0 });
  workDir = mkdtempSync(join(tmpdir(), 'cp-probe-'));
  configFile = join(workDir, 'cargoport.yaml');
  // The prober's own configuration: its data directory and the CA the peers' certificate comes from.
  writeFileSync(configFile, `dataDir: ${workDir}\ntransfer:\n  caFile: ${testTls().certPath}\n`);
});
after(async () => {
  await peer?.close();
  await open?.close();
  await iss?.close();
  rmSync(workDir, { recursive: true, force: true });
});

function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [cli, '--config', configFile, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: workDir, XDG_RUNTIME_DIR: workDir, ...env }, timeout: 120_000,
    }, (err, stdout, stderr) => res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), 'condition not reached');
}

test('cargoport probe --json: handshakes, round trip and both directions with N connections × M streams', async () => {
  const bytes = 6 * 1024 * 1024;
  const r = await runCli(['probe', peer.gateway.url, '--json', '--connections', '2', '--streams', '3', '--bytes', String(bytes),
    '--request-bytes', '1MiB', '--handshakes', '4', '--requests', '10'], { BEARER_TOKEN: admin });
  assert.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  assert.equal(rep.peer, new URL(peer.gateway.url).origin);
  assert.ok(!Number.isNaN(Date.parse(rep.startedAt)));
  const dist = (d: Record<string, number>, n: number) => {
    assert.equal(d['count'], n);
    assert.ok(d['min']! > 0 && d['min']! <= d['median']! && d['median']! <= d['p90']! && d['p90']! <= d['max']!, JSON.stringify(d));
  };
  const h = rep.handshakes;
  assert.equal(h.count, 4);
  assert.equal(h.protocol, 'h2');
  assert.equal(h.tlsVersion, 'TLSv1.3');
  assert.equal(h.remoteIp, '127.0.0.1');
  assert.ok(h.cipher.length > 0);
  dist(h.tcpConnectMs, 4);
  dist(h.tlsDoneMs, 4);
  dist(h.resumedTlsDoneMs, 4);
  assert.ok(h.resumed >= 1 && h.resumed <= 4, 'the port\'s TLS tickets are offered and accepted');
  // TLS done includes the TCP connect of the same connection.
  assert.ok(h.tlsDoneMs.min >= h.tcpConnectMs.min);
  assert.equal(rep.roundTrip.requests, 10);
  assert.equal(rep.roundTrip.protocol, 'h2');
  dist(rep.roundTrip.rttMs, 10);
  assert.deepEqual(rep.throughput.map((t: { direction: string }) => t.direction), ['download', 'upload']);
  const [down, up] = rep.throughput;
  // A request cut by a reset is asked again (as a transfer's range is) and counted: its bytes moved twice.
  const fixed = (t: Record<string, unknown>) => ({ ...t, seconds: 0, bytesPerSec: 0, bytes: 0, retries: 0 });
  assert.deepEqual(fixed(down), { direction: 'download', bytes: 0, seconds: 0, bytesPerSec: 0, connections: 2, streamsPerConnection: 3, requests: 6, retries: 0, protocol: 'h2' });
  // Uploads: one connection per lane (undici sends a stream-bodied request only on an idle connection).
  assert.deepEqual(fixed(up), { direction: 'upload', bytes: 0, seconds: 0, bytesPerSec: 0, connections: 6, streamsPerConnection: 1, requests: 6, retries: 0, protocol: 'h2' });
  for (const t of rep.throughput) {
    assert.ok(t.seconds > 0 && Math.abs(t.bytesPerSec - t.bytes / t.seconds) < 1);
    assert.ok(Number.isInteger(t.retries) && (t.retries === 0 ? t.bytes === bytes : t.bytes > bytes), JSON.stringify(t));
  }
});

test('cargoport probe: the table names each measurement; one direction, no handshakes', async () => {
  const r = await runCli(['probe', open.gateway.url, '--connections', '2', '--streams', '2', '--direction', 'upload', '--bytes', '2MiB', '--handshakes', '0', '--requests', '3'], { BEARER_TOKEN: user });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^probe of ${new URL(open.gateway.url).origin}, `));
  assert.match(r.stdout, /HTTP\/2 request round trip, ms \(3 on one connection\) +[0-9.]+ \/ [0-9.]+ \/ [0-9.]+ \/ [0-9.]+/);
  assert.match(r.stdout, /upload to peer \(4 conn × 1 streams, 2\.10 MB\) +[0-9.]+ [KMG]?B\/s/);
  assert.doesNotMatch(r.stdout, /download from|TLS done/);
});

test('rights: anonymous 401 with a challenge, a non-admin 403, on both routes; the CLI says why in one line', async () => {
  for (const [method, path] of [['GET', '/probe/bytes?size=10'], ['PUT', '/probe/sink']] as const) {
    const body = method === 'PUT' ? 'abc' : undefined;
    const anon = await peer.api<{ code: string }>(method, path, body);
    assert.equal(anon.status, 401);
    assert.equal(anon.body.code, 'CARGO_ERR_UNAUTHENTICATED');
    assert.equal(anon.headers['www-authenticate'], 'Bearer');
    const notAdmin = await peer.api<{ code: string }>(method, path, body, bearer(user));
    assert.equal(notAdmin.status, 403);
    assert.equal(notAdmin.body.code, 'CARGO_ERR_FORBIDDEN');
    const ok = await peer.api<unknown>(method, path, body, bearer(admin));
    assert.equal(ok.status, 200);
    // probe.access = authenticated: any valid token, never an anonymous caller.
    assert.equal((await open.api(method, path, body, bearer(user))).status, 200);
    assert.equal((await open.api(method, path, body)).status, 401);
  }
  assert.equal((await peer.api('PUT', '/probe/sink', 'abcd', bearer(admin))).headers['cargo-probe-bytes'], '4');
  const r = await runCli(['probe', peer.gateway.url, '--bytes', '1M', '--handshakes', '1'], { BEARER_TOKEN: user });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^cargoport probe: probe request: the peer refused \/probe \(HTTP 403\): pass a token it accepts/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  const anon = await runCli(['probe', peer.gateway.url, '--bytes', '1M', '--handshakes', '1']);
  assert.match(anon.stderr, /\(HTTP 401\)/);
});

test('bounds: probe.maxBytes per request (asked, announced or sent), 413 naming the setting', async () => {
  const asked = await peer.api<{ code: string; limit: string; max: number }>('GET', `/probe/bytes?size=${MAX + 1}`, undefined, bearer(admin));
  assert.equal(asked.status, 413);
  assert.deepEqual([asked.body.code, asked.body.limit, asked.body.max], ['CARGO_ERR_PROBE_TOO_LARGE', 'probe.maxBytes', MAX]);
  const exact = await peer.api<string>('GET', `/probe/bytes?size=${MAX}`, undefined, bearer(admin));
  assert.equal(exact.status, 200);
  assert.equal(Buffer.byteLength(exact.body as string, 'latin1') > 0, true);
  assert.equal((await peer.api('GET', '/probe/bytes?size=-1', undefined, bearer(admin))).status, 400);
  const released = (what: string) => waitFor(() => peer.gateway.limits.counts('127.0.0.1').requests === 0).catch(() => assert.fail(`${what}: the request stays counted`));
  await released('asked');
  const announced = await peer.api<{ code: string }>('PUT', '/probe/sink', Buffer.alloc(MAX + 1), bearer(admin));
  assert.equal(announced.status, 413);
  assert.equal(announced.body.code, 'CARGO_ERR_PROBE_TOO_LARGE');
  await released('announced');
  // HTTP/2 without content-length: the sink counts what arrives and stops at the bound.
  const s = h2connect(peer.gateway.url, { ca: testTls().cert });
  try {
    const req = s.request({ ':method': 'PUT', ':path': '/probe/sink', ...bearer(admin) });
    const status = new Promise<{ status: number; body: string }>((res, rej) => {
      let body = '';
      let st = 0;
      req.on('response', (h) => { st = Number(h[':status']); });
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('close', () => res({ status: st, body }));
      req.on('error', rej);
    });
    const chunk = Buffer.alloc(1024 * 1024);
    let sent = 0;
    const pump = () => {
      while (sent <= MAX && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!req.destroyed) req.end();
    };
    pump();
    const got = await status;
    assert.equal(got.status, 413);
    assert.equal(JSON.parse(got.body).code, 'CARGO_ERR_PROBE_TOO_LARGE');
    await released('sent');
  } finally {
    s.destroy();
  }
});

test('bounds: probe requests count in gateway.maxRequestsPerClient', async () => {
  const s: ClientHttp2Session = h2connect(peer.gateway.url, { ca: testTls().cert });
  s.on('error', () => undefined);
  const held: ClientHttp2Stream[] = [];
  assert.equal(peer.gateway.limits.counts('127.0.0.1').requests, 0, 'no probe request of the tests before is still counted');
  try {
    // Downloads not read: each holds its stream (and the client's request count) until it is closed.
    for (let i = 0; i < MAX_REQUESTS; i++) {
      const req = s.request({ ':path': `/probe/bytes?size=${MAX}`, ...bearer(admin) });
      req.on('error', () => undefined);
      await new Promise((r) => req.once('response', r));
      req.pause();
      held.push(req);
    }
    const over = await peer.api<{ code: string }>('GET', '/probe/bytes?size=1', undefined, bearer(admin));
    assert.equal(over.status, 429);
    assert.equal(over.body.code, 'CARGO_ERR_CLIENT_BUSY');
    // CANCEL, as curl and undici reset a download they give up (Node keeps a server stream whose writes are pending
    // open after an RST_STREAM with NO_ERROR).
    for (const r of held) r.close(constants.NGHTTP2_CANCEL);
    await waitFor(() => peer.gateway.limits.counts('127.0.0.1').requests === 0);
    assert.equal((await peer.api('GET', '/probe/bytes?size=1', undefined, bearer(admin))).status, 200);
  } finally {
    s.destroy();
  }
  // More lanes than the peer lets one address have in flight: the CLI names the bound.
  const r = await runCli(['probe', peer.gateway.url, '--direction', 'download', '--connections', '1', '--streams', String(MAX_REQUESTS + 2),
    '--bytes', String(MAX), '--request-bytes', '1MiB', '--handshakes', '0', '--requests', '0'], { BEARER_TOKEN: admin });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 429\): its gateway\.maxRequestsPerClient is below --connections × --streams/);
});

test('probe.maxBytes 0: no /probe endpoint', async () => {
  const off = await startHarness({ probe: { maxBytes: 0 } }, { workers: 0 });
  try {
    assert.equal((await off.api('GET', '/probe/bytes?size=1')).status, 404);
    const r = await runCli(['probe', off.gateway.url, '--handshakes', '0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the peer has no \/probe endpoint/);
  } finally {
    await off.close();
  }
});
