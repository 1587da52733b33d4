/**
 * The CLI as an rclone/FTS user meets it (issue 17): `files` with failure reasons, `retry` of the failed files,
 * `status` saying why a job is stuck and that a drain is done, trust of the system CA bundle, one line instead
 * of a stack for a closed pipe and a port in use, and a `status --watch` against an absent gateway that stays
 * small. `node bin/cargoport.js` in a child process against a scripted REST API on real TLS + HTTP/2.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/free-port.js';
import { TEST_REDIS_URL, uniquePrefix } from '../support/redis.js';
import { testTls } from '../support/tls.js';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
const cli = join(repoRoot, 'bin', 'cargoport.js');

interface Seen { method: string; path: string; body: unknown }
type Handler = (req: Seen) => { status: number; body?: unknown };

let handler: Handler = () => ({ status: 404, body: {} });
const seen: Seen[] = [];
let baseUrl = '';
let workDir = '';
let configFile = '';
const sessions = new Set<ServerHttp2Session>();
const server = createSecureServer({ key: testTls().key, cert: testTls().cert, allowHTTP1: true }, (req: Http2ServerRequest, res: Http2ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString();
    const s: Seen = { method: req.method, path: req.url, body: text ? JSON.parse(text) : undefined };
    seen.push(s);
    const out = handler(s);
    res.writeHead(out.status, { 'content-type': out.status >= 400 ? 'application/problem+json' : 'application/json' });
    res.end(out.body === undefined ? '' : JSON.stringify(out.body));
  });
});
server.on('session', (s) => sessions.add(s));

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `https://localhost:${(server.address() as AddressInfo).port}`;
  workDir = mkdtempSync(join(tmpdir(), 'cp-cli-op-'));
  configFile = join(workDir, 'cargoport.yaml');
  writeFileSync(configFile, `dataDir: ${workDir}\ngateway:\n  tlsCert: ${testTls().certPath}\n  tlsKey: ${testTls().keyPath}\n`);
});
after(async () => {
  for (const s of sessions) s.destroy();
  await new Promise((r) => server.close(r));
  rmSync(workDir, { recursive: true, force: true });
});

function cleanEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_') && !k.startsWith('BEARER_TOKEN') && k !== 'SSL_CERT_FILE')) as Record<string, string>;
}

function run(args: string[], opts: { config?: string; env?: Record<string, string>; url?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [cli, '--config', opts.config ?? configFile, ...args, ...(opts.url === '' ? [] : ['--url', opts.url ?? baseUrl])],
      { env: { ...cleanEnv(), XDG_RUNTIME_DIR: workDir, ...opts.env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

const counts = (o: Record<string, number>) => ({ SUBMITTED: 0, QUEUED: 0, STAGING: 0, ACTIVE: 0, VERIFYING: 0, FINISHED: 0, FAILED: 0, CANCELED: 0, ...o });
const JOB_ID = '0b5c2f6e-3f1e-4a8e-9d7a-2c1d8e6f0a11';
function job(state: string, c: Record<string, number>, extra: Record<string, unknown> = {}) {
  return {
    jobId: JOB_ID, owner: 'alice', state, priority: 3, createdAt: new Date().toISOString(), files: 3, counts: counts(c),
    bytesDone: 3000, rateBytesPerSec: 0, params: { priority: 4, retries: 2, retryDelaySec: 1, verifyChecksum: 'both', overwrite: false, existing: 'fail', processing: [], owner: 'alice', streams: 4 },
    ...extra,
  };
}
function file(fileId: number, state: string, extra: Record<string, unknown> = {}) {
  return {
    fileId, jobId: JOB_ID, state, source: `https://src.example:8443/d/f${fileId}`, destination: `https://dst.example:443/d/f${fileId}`,
    bytes: 1000, size: 1000, attempts: [{ start: 1 }], ...extra,
  };
}

test('files --state failed lists each failed file with its reason; retry submits exactly those with the job\'s parameters', async () => {
  const failed = [
    file(2, 'FAILED', { error: { code: 'CARGO_ERR_SOURCE_NOT_FOUND', message: 'GET https://src.example:8443/d/f2: 404' }, attempts: [{ start: 1 }, { start: 2 }, { start: 3 }], checksum: { alg: 'adler32', value: '03da0195' } }),
    file(3, 'FAILED', { error: { code: 'CARGO_ERR_DEST_FULL', message: 'ENOSPC on the destination' }, size: undefined, bytes: 10, scitag: 66 }),
  ];
  seen.length = 0;
  handler = (s) => {
    if (s.path.startsWith(`/api/v1/jobs/${JOB_ID}/files?`) && s.path.includes('state=FAILED')) {
      // Two pages: the CLI must follow the cursor.
      return s.path.includes('cursor=') ? { status: 200, body: { files: [failed[1]] } } : { status: 200, body: { files: [failed[0]], nextCursor: 2 } };
    }
    if (s.path === `/api/v1/jobs/${JOB_ID}`) return { status: 200, body: job('FINISHED_DIRTY', { FINISHED: 1, FAILED: 2 }) };
    if (s.method === 'POST' && s.path === '/api/v1/jobs') return { status: 201, body: { jobId: 'new-job', files: 2, state: 'ACTIVE' } };
    return { status: 404, body: { title: 'Not Found', status: 404 } };
  };
  let r = await run(['files', JOB_ID, '--state', 'failed']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 2, r.stdout);
  assert.match(lines[0]!, /^\s+2 FAILED .*https:\/\/src\.example:8443\/d\/f2 -> https:\/\/dst\.example:443\/d\/f2\s+CARGO_ERR_SOURCE_NOT_FOUND: GET .*404 \(3 attempts\)$/);
  assert.match(lines[1]!, /^\s+3 FAILED .*CARGO_ERR_DEST_FULL: ENOSPC on the destination$/);

  r = await run(['files', JOB_ID, '--state', 'broken']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--state must be one of SUBMITTED, .*FAILED/);

  seen.length = 0;
  r = await run(['retry', JOB_ID]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'new-job\n');
  const post = seen.find((s) => s.method === 'POST');
  assert.deepEqual(post?.body, {
    files: [
      { source: 'https://src.example:8443/d/f2', destination: 'https://dst.example:443/d/f2', size: 1000, checksum: 'adler32:03da0195' },
      { source: 'https://src.example:8443/d/f3', destination: 'https://dst.example:443/d/f3', scitag: 66 },
    ],
    // The job's parameters as a submission takes them: no owner (the gateway decides), `existing` over `overwrite`, no
    // `processing: []` (what jobs stored before processing stages carry; not a submittable value).
    params: { priority: 4, retries: 2, retryDelaySec: 1, verifyChecksum: 'both', existing: 'fail', streams: 4 },
  });
});

test('retry of a job without failed files submits nothing and says so', async () => {
  seen.length = 0;
  handler = (s) => s.path.includes('/files') ? { status: 200, body: { files: [] } } : { status: 200, body: job('FINISHED', { FINISHED: 3 }) };
  const r = await run(['retry', JOB_ID]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /has no failed files \(FINISHED\)/);
  assert.ok(!seen.some((s) => s.method === 'POST'));
});

const fullBreaker = { endpoint: 'dst.example:443', state: 'open', cause: 'full', detail: 'HTTP 507 Insufficient Storage', retryAt: '2026-12-07T22:00:00.000Z', holdsFilesUntil: '', cooldownMs: 1000, failuresInARow: 1 };
const otherBreaker = { ...fullBreaker, endpoint: 'elsewhere.example:443', cause: 'unreachable', failuresInARow: 5 };

test('status JOB of an active job that moves nothing says why: a paused link, a full destination; not what concerns other endpoints', async () => {
  handler = (s) => {
    if (s.path === `/api/v1/jobs/${JOB_ID}`) return { status: 200, body: job('ACTIVE', { FINISHED: 1, SUBMITTED: 2 }) };
    if (s.path.startsWith(`/api/v1/jobs/${JOB_ID}/files?`)) return { status: 200, body: { files: [file(2, 'SUBMITTED'), file(3, 'SUBMITTED')] } };
    if (s.path === '/api/v1/status') {
      return { status: 200, body: {
        scopes: [
          { scope: 'port', target: '', state: 'running', effectiveState: 'running' },
          { scope: 'link', target: 'src.example:8443>dst.example:443', state: 'paused', effectiveState: 'paused' },
          { scope: 'link', target: 'a:1>b:2', state: 'paused', effectiveState: 'paused' },
        ],
        workers: [{ alive: true }], queues: {}, transfers: { active: 0, rateBytesPerSec: 0 }, unavailableEndpoints: [fullBreaker, otherBreaker],
      } };
    }
    return { status: 404, body: {} };
  };
  const r = await run(['status', JOB_ID]);
  assert.equal(r.code, 0, r.stderr);
  const [line, stuck] = r.stdout.trim().split('\n');
  assert.match(line!, /ACTIVE .*files 1\/3/);
  assert.equal(stuck, '  stuck: link src.example:8443>dst.example:443 paused; destination dst.example:443 full (HTTP 507 Insufficient Storage), next probe 2026-12-07T22:00:00.000Z');
  const j = await run(['status', JOB_ID, '--json']);
  assert.deepEqual((JSON.parse(j.stdout) as { stuck: string[] }).stuck.length, 2);
});

test('status of the port shows a finished drain as drained, the breakers, and why active jobs stand still', async () => {
  handler = (s) => s.path === '/api/v1/status'
    ? { status: 200, body: {
      scopes: [{ scope: 'port', target: '', state: 'draining', effectiveState: 'drained' }, { scope: 'pool', target: 'default', state: 'running', effectiveState: 'running' }],
      workers: [{ alive: true }], queues: {}, transfers: { active: 0, rateBytesPerSec: 0 }, unavailableEndpoints: [fullBreaker],
    } }
    : { status: 200, body: { jobs: [job('ACTIVE', { SUBMITTED: 3 })] } };
  const r = await run(['status']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^port\s+-\s+drained$/m);
  assert.match(r.stdout, /^endpoint\s+dst\.example:443\s+unavailable \(breaker open, next probe .*destination full: HTTP 507/m);
  assert.match(r.stdout, /^ {2}stuck: port drained; destination dst\.example:443 full/m);
});

test('a job without sizes gets an estimated ETA from the mean size of the files done', async () => {
  handler = () => ({ status: 200, body: job('ACTIVE', { FINISHED: 1, ACTIVE: 2 }, { files: 3, bytesDone: 1000, rateBytesPerSec: 100 }) });
  const r = await run(['status', JOB_ID]);
  assert.equal(r.code, 0, r.stderr);
  // 2 files left × 1000 B mean / 100 B/s = 20 s.
  assert.match(r.stdout, /ETA ~00:20$/m);
});

test('the CLI trusts the system CA bundle (SSL_CERT_FILE) besides the configured certificate', async () => {
  const bare = join(workDir, 'bare.yaml');
  writeFileSync(bare, `dataDir: ${join(workDir, 'no-cert-here')}\n`);
  handler = () => ({ status: 200, body: { jobs: [] } });
  let r = await run(['jobs'], { config: bare });
  assert.equal(r.code, 1, 'the test certificate is in no store yet');
  assert.match(r.stderr, /TLS verification/);
  r = await run(['jobs'], { config: bare, env: { SSL_CERT_FILE: testTls().certPath } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'no jobs\n');
  // Both at once: a system bundle without the port's certificate, and the configured certificate.
  const other = join(workDir, 'other-ca.pem');
  writeFileSync(other, '');
  r = await run(['jobs'], { env: { SSL_CERT_FILE: other } });
  assert.equal(r.code, 0, r.stderr);
});

test('a reader that closes the pipe early (cargoport jobs | head -1) ends the CLI quietly with status 0', async () => {
  const many = Array.from({ length: 3000 }, (_, i) => ({ ...job('ACTIVE', { SUBMITTED: 3 }), jobId: `job-${i}` }));
  handler = () => ({ status: 200, body: { jobs: many } });
  const child = spawn(process.execPath, [cli, '--config', configFile, 'jobs', '--limit', '3000', '--url', baseUrl], { env: { ...cleanEnv(), XDG_RUNTIME_DIR: workDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // Like head: read the first chunk, then close the read end.
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});

test('a gateway port in use is one line naming the address, no stack', async () => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as AddressInfo).port;
  const cfg = join(workDir, 'busy.yaml');
  writeFileSync(cfg, `dataDir: ${workDir}\nlogLevel: silent\ngateway:\n  host: 127.0.0.1\n  port: ${port}\n  tlsCert: ${testTls().certPath}\n  tlsKey: ${testTls().keyPath}\nredis:\n  url: ${TEST_REDIS_URL}\n  prefix: '${uniquePrefix()}'\n`);
  try {
    const r = await run(['gateway'], { config: cfg, url: '' });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^cargoport gateway: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use`));
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  } finally {
    await new Promise((r) => busy.close(r));
  }
});

test('status --watch against an absent gateway stays small: one TLS context however often it reconnects', async () => {
  // The watch loop's cost per retry, without its 500 ms pause: the API client against a refused port, N times.
  // Before the fix each connection parsed the system roots into a new native context (~0.5 MB, outside the JS
  // heap), which is how a watch grew to 941 MB; count the contexts and the RSS growth over many iterations.
  const port = await freePort();
  const script = `
    import tls from 'node:tls';
    import { syncBuiltinESMExports } from 'node:module';
    let contexts = 0;
    const real = tls.createSecureContext;
    tls.createSecureContext = (o) => { contexts++; return real(o); };
    // The client's named import, and tls.connect's own call when given no context, both see the counting one.
    syncBuiltinESMExports();
    const { createApiClient } = await import(${JSON.stringify(join(repoRoot, 'dist/bin/api-client.js'))});
    const api = createApiClient({ url: 'https://localhost:${port}', caFile: ${JSON.stringify(testTls().certPath)} });
    const rss = [];
    for (let i = 0; i < 600; i++) {
      await api.get('/status').then(() => { throw new Error('unexpected answer'); }, (e) => { if (e.code !== 'CARGO_ERR_CONNECT') throw e; });
      if (i === 99 || i === 599) { globalThis.gc(); rss.push(process.memoryUsage().rss); }
    }
    await api.close();
    console.log(JSON.stringify({ contexts, growth: rss[1] - rss[0] }));
  `;
  const out = await new Promise<string>((done, fail) => {
    execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { env: cleanEnv() }, (err, stdout, stderr) => (err ? fail(new Error(stderr)) : done(stdout)));
  });
  const { contexts, growth } = JSON.parse(out) as { contexts: number; growth: number };
  assert.equal(contexts, 1, 'one secure context for every connection');
  // 500 reconnects cost ~250 MB before; a bounded client stays far below.
  assert.ok(growth < 64 * 1024 * 1024, `RSS grew by ${(growth / 1e6).toFixed(1)} MB over 500 failed reconnects`);
});
