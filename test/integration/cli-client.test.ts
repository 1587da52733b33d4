/**
 * The client commands (submit, jobs, status, cancel, admin) as a user runs them — `node bin/cargoport.js …` in a
 * child process — against a scripted REST API on a real TLS + HTTP/2 server. Checks what goes over the wire
 * (method, path, JSON body, bearer token, HTTP/2) and what the user sees (job id, problem+json as
 * `title: detail`, exit codes, the --watch view ending with the job).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { testTls } from '../support/tls.js';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
const cli = join(repoRoot, 'bin', 'cargoport.js');

interface Seen {
  method: string;
  path: string;
  body: unknown;
  authorization?: string;
  httpVersion: string;
}
type Handler = (req: Seen) => { status: number; body?: unknown; problem?: boolean };

let handler: Handler = () => ({ status: 404, body: { title: 'Not Found', status: 404, detail: 'no route', code: 'X' }, problem: true });
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
    const s: Seen = { method: req.method, path: req.url, body: text ? JSON.parse(text) : undefined, authorization: req.headers.authorization, httpVersion: req.httpVersion };
    seen.push(s);
    const out = handler(s);
    res.writeHead(out.status, { 'content-type': out.problem ? 'application/problem+json' : 'application/json' });
    res.end(out.body === undefined ? '' : JSON.stringify(out.body));
  });
});
server.on('session', (s) => sessions.add(s));

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `https://localhost:${(server.address() as AddressInfo).port}`;
  workDir = mkdtempSync(join(tmpdir(), 'cp-cli-'));
  // The CLI trusts gateway.tlsCert when it is configured: point it at the test certificate.
  configFile = join(workDir, 'cargoport.yaml');
  writeFileSync(configFile, `dataDir: ${workDir}\ngateway:\n  tlsCert: ${testTls().certPath}\n  tlsKey: ${testTls().keyPath}\n`);
});
after(async () => {
  for (const s of sessions) s.destroy();
  await new Promise((r) => server.close(r));
  rmSync(workDir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_') && !k.startsWith('BEARER_TOKEN')));
  return new Promise((resolveRun) => {
    execFile(process.execPath, [cli, '--config', configFile, ...args, '--url', baseUrl], { env: { ...cleanEnv, XDG_RUNTIME_DIR: workDir, ...env } }, (err, stdout, stderr) => {
      resolveRun({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function job(state: string, done: number, files = 4) {
  return {
    jobId: 'job-1', owner: 'alice', state, priority: 3, createdAt: new Date().toISOString(), files,
    counts: { SUBMITTED: 0, QUEUED: files - done, STAGING: 0, ACTIVE: 0, VERIFYING: 0, FINISHED: state === 'FAILED' ? 0 : done, FAILED: state === 'FAILED' ? done : 0, CANCELED: 0 },
    bytesTotal: 4000, bytesDone: done * 1000, rateBytesPerSec: 2000, etaSec: (files - done) / 2,
  };
}

test('submit SRC DST pairs with options: one POST over HTTP/2 with the right body; prints the job id', async () => {
  seen.length = 0;
  handler = () => ({ status: 201, body: { jobId: 'job-42', files: 2, state: 'ACTIVE' } });
  const r = await run(['submit', 'https://a.example/x', 'file:///buf/x', 'https://a.example/y', 'file:///buf/y',
    '--priority', '5', '--retries', '2', '--verify', 'both', '--overwrite', '--streams', '8', '--copy-mode', 'auto'], { BEARER_TOKEN: 'tok-123' });
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'job-42\n');
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.method, 'POST');
  assert.equal(seen[0]!.path, '/api/v1/jobs');
  assert.equal(seen[0]!.httpVersion, '2.0');
  assert.equal(seen[0]!.authorization, 'Bearer tok-123');
  assert.deepEqual(seen[0]!.body, {
    files: [{ source: 'https://a.example/x', destination: 'file:///buf/x' }, { source: 'https://a.example/y', destination: 'file:///buf/y' }],
    params: { priority: 5, retries: 2, verifyChecksum: 'both', overwrite: true, streams: 8, copyMode: 'auto' },
  });
});

test('submit --pack: params.processing.pack with the given bounds, and the size of each local source declared', async () => {
  seen.length = 0;
  handler = () => ({ status: 201, body: { jobId: 'job-44', files: 2, state: 'ACTIVE' } });
  const local = join(workDir, 'small.dat');
  writeFileSync(local, Buffer.alloc(1234));
  const r = await run(['submit', `file://${local}`, 'https://b.example/d/small.dat', 'https://a.example/y', 'https://b.example/d/y',
    '--pack', '--pack-members', '500', '--pack-bytes', '1000000']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen[0]!.body, {
    files: [{ source: `file://${local}`, destination: 'https://b.example/d/small.dat', size: 1234 }, { source: 'https://a.example/y', destination: 'https://b.example/d/y' }],
    params: { processing: { pack: { maxMembers: 500, maxBytes: 1000000 } } },
  });
  const bad = await run(['submit', 'https://a.example/x', 'file:///buf/x', '--pack-members', '5']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--pack/);
});

test('submit --checksum on a single file, and the WLCG token file is discovered', async () => {
  seen.length = 0;
  handler = () => ({ status: 201, body: { jobId: 'job-43', files: 1, state: 'ACTIVE' } });
  writeFileSync(join(workDir, `bt_u${process.getuid!()}`), 'tok-from-file\n');
  try {
    const r = await run(['submit', 'https://a.example/x', 'file:///buf/x', '--checksum', 'adler32:0a1b2c3d']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(seen[0]!.body, { files: [{ source: 'https://a.example/x', destination: 'file:///buf/x', checksum: 'adler32:0a1b2c3d' }] });
    assert.equal(seen[0]!.authorization, 'Bearer tok-from-file');
  } finally {
    rmSync(join(workDir, `bt_u${process.getuid!()}`));
  }
});

test('submit processing options: --zstd-level, --unzstd, --emit/--receive stages over a --processing file', async () => {
  handler = () => ({ status: 201, body: { jobId: 'job-45', files: 1, state: 'ACTIVE' } });
  seen.length = 0;
  let r = await run(['submit', 'https://s/a', 'file:///d/a', '--zstd']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen[0]!.body, { files: [{ source: 'https://s/a', destination: 'file:///d/a' }], params: { processing: { emission: [{ stage: 'zstd', level: 1, suffix: true }] } } });
  const file = join(workDir, 'processing.json');
  writeFileSync(file, JSON.stringify({ reception: [{ stage: 'checksum', label: 'final' }], pack: { maxMembers: 10 } }));
  seen.length = 0;
  r = await run(['submit', 'https://s/a', 'file:///d/a', '--processing', file, '--zstd-level', '3', '--unzstd',
    '--emit', '{"stage":"checksum","algs":["sha256"],"label":"raw"}', '--receive', '{"stage":"hook","hook":"fits-verify"}']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((seen[0]!.body as { params: unknown }).params, { processing: {
    emission: [{ stage: 'checksum', algs: ['sha256'], label: 'raw' }, { stage: 'zstd', level: 3, suffix: true }],
    reception: [{ stage: 'unzstd', stripSuffix: true }, { stage: 'hook', hook: 'fits-verify' }, { stage: 'checksum', label: 'final' }],
    pack: { maxMembers: 10 },
  } });
  seen.length = 0;
  r = await run(['submit', 'https://s/a', 'file:///d/a', '--emit', 'zstd']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--emit must be a JSON stage object/);
  r = await run(['submit', 'https://s/a', 'file:///d/a', '--zstd-level', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--zstd-level must be an integer from 1 to 22/);
  assert.equal(seen.length, 0);
});

test('submit --manifest: text lines and JSON, with command-line options over the manifest params', async () => {
  handler = () => ({ status: 201, body: { jobId: 'job-44', files: 3, state: 'ACTIVE' } });
  const text = join(workDir, 'list.txt');
  writeFileSync(text, '# nightly export\nhttps://s/a file:///d/a adler32:00000001\n\n  https://s/b   file:///d/b\n');
  seen.length = 0;
  let r = await run(['submit', '--manifest', text]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen[0]!.body, { files: [{ source: 'https://s/a', destination: 'file:///d/a', checksum: 'adler32:00000001' }, { source: 'https://s/b', destination: 'file:///d/b' }] });

  const json = join(workDir, 'job.json');
  writeFileSync(json, JSON.stringify({ files: [{ source: 'https://s/c', destination: 'file:///d/c', size: 10, metadata: { run: 7 } }], params: { priority: 2, retries: 1 } }));
  seen.length = 0;
  r = await run(['submit', '-m', json, '--priority', '4']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen[0]!.body, { files: [{ source: 'https://s/c', destination: 'file:///d/c', size: 10, metadata: { run: 7 } }], params: { priority: 4, retries: 1 } });

  writeFileSync(text, 'https://s/a file:///d/a\nhttps://s/only-one-column\n');
  seen.length = 0;
  r = await run(['submit', '--manifest', text]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /line 2: expected "SRC DST \[ALG:VALUE\]"/);
  assert.equal(seen.length, 0, 'nothing may be sent for a broken manifest');
});

test('an API problem+json error is printed as "title: detail" with a non-zero exit', async () => {
  handler = () => ({ status: 400, problem: true, body: { type: 'urn:x', title: 'Bad Request', status: 400, detail: 'files[0].source uses the unsupported scheme "ftp"', field: 'files[0].source', code: 'CARGO_ERR_BAD_URL' } });
  const r = await run(['submit', 'ftp://x/y', 'file:///d/y']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'Bad Request: files[0].source uses the unsupported scheme "ftp"\n');
});

test('jobs follows the cursor; cancel and admin send the right requests', async () => {
  seen.length = 0;
  handler = (s) => {
    if (s.path.startsWith('/api/v1/jobs?') && !s.path.includes('cursor')) return { status: 200, body: { jobs: [job('ACTIVE', 1)], nextCursor: 'c2' } };
    if (s.path.startsWith('/api/v1/jobs?')) return { status: 200, body: { jobs: [{ ...job('FINISHED', 4), jobId: 'job-2' }] } };
    if (s.method === 'DELETE') return { status: 200, body: { ...job('CANCELED', 0) } };
    if (s.path === '/api/v1/admin/drain') return { status: 200, body: { scope: 'link', target: 'a:443>b:443', state: 'draining' } };
    return { status: 500, body: {} };
  };
  let r = await run(['jobs']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^job-1\s+ACTIVE .*25\.0%\s+files 1\/4/);
  assert.match(lines[1]!, /^job-2\s+FINISHED .*100\.0%/);
  assert.match(seen[1]!.path, /cursor=c2/);

  seen.length = 0;
  r = await run(['jobs', '--state', 'FINISHED', '--limit', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(seen.length, 1, 'the limit is reached with the first page');
  assert.equal(seen[0]!.path, '/api/v1/jobs?limit=1&state=FINISHED');

  seen.length = 0;
  r = await run(['cancel', 'job-1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'job-1 CANCELED\n');
  r = await run(['cancel', 'job-1', '17']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen.map((s) => `${s.method} ${s.path}`), ['DELETE /api/v1/jobs/job-1', 'DELETE /api/v1/jobs/job-1/files/17']);

  seen.length = 0;
  r = await run(['admin', 'drain', '--scope', 'link', '--target', 'a:443>b:443']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen[0]!.body, { scope: 'link', target: 'a:443>b:443' });
  assert.match(r.stdout, /^link\s+a:443>b:443\s+draining$/m);

  handler = (s) => s.path === '/api/v1/status' ? {
    status: 200, body: {
      scopes: [{ scope: 'port', target: '', state: 'running' }], workers: [], queues: {}, transfers: { active: 0, rateBytesPerSec: 0 },
      unavailableEndpoints: [
        { endpoint: 'se.example.org:443', state: 'open', cause: 'unreachable', retryAt: '2026-12-04T05:00:00.000Z', cooldownMs: 30000, failuresInARow: 5 },
        { endpoint: 'local', state: 'half-open', cause: 'full', detail: 'ENOSPC: local file /data/a: no space left on device', retryAt: '2026-12-04T05:00:00.000Z', cooldownMs: 30000, failuresInARow: 2 },
      ],
    },
  } : { status: 500, body: {} };
  r = await run(['admin', 'status']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^endpoint\s+se\.example\.org:443\s+unavailable \(breaker open, next probe 2026-12-04T05:00:00\.000Z, 5 failed connects in a row\)$/m);
  assert.match(r.stdout, /^endpoint\s+local\s+unavailable \(breaker half-open, destination full: ENOSPC: local file \/data\/a: no space left on device\)$/m);

  seen.length = 0;
  handler = (s) => s.path === '/api/v1/admin/limits'
    ? { status: 200, body: s.method === 'PUT' ? [{ scope: 'owner', target: 'alice', bytesPerSec: 1000000 }] : [] }
    : { status: 500, body: {} };
  r = await run(['admin', 'limit', '--scope', 'owner', '--target', 'alice', '--bytes-per-sec', '1000000']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen.map((s) => [s.method, s.body]), [['PUT', { scope: 'owner', target: 'alice', bytesPerSec: 1000000 }]]);
  assert.match(r.stdout, /^owner\s+alice\s+1000000 B\/s$/m);
  r = await run(['admin', 'limit', '--scope', 'port', '--bytes-per-sec', 'off']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen[1]!.body, { scope: 'port', bytesPerSec: null });
  r = await run(['admin', 'limits']);
  assert.equal(r.stdout, 'no rate limits\n');
  r = await run(['admin', 'limit', '--scope', 'link', '--bytes-per-sec', '5']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--scope link needs --target/);
  r = await run(['admin', 'limit', '--scope', 'port', '--bytes-per-sec', 'fast']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--bytes-per-sec must be a positive integer or off/);
});

test('status --watch (not a terminal) prints changing lines and ends with the job: 0 if FINISHED, 1 if FAILED', async () => {
  let polls = 0;
  handler = () => ({ status: 200, body: ++polls < 3 ? job('ACTIVE', polls) : job('FINISHED', 4) });
  let r = await run(['status', 'job-1', '--watch']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3, r.stdout);
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d job-1 .*ACTIVE .*\[######------------------\]\s+25\.0%.*2\.00 KB\/s ETA 00:02/);
  assert.match(lines[2]!, /FINISHED .*100\.0%/);

  handler = () => ({ status: 200, body: job('FAILED', 4) });
  r = await run(['status', 'job-1', '--watch']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAILED .* 4 failed/);
});

test('status of the port: scopes, active jobs and a total', async () => {
  handler = (s) => s.path === '/api/v1/status'
    ? { status: 200, body: { scopes: [{ scope: 'port', target: '', state: 'running' }, { scope: 'pool', target: 'default', state: 'paused' }], workers: [{}, {}], queues: {}, transfers: { active: 3, rateBytesPerSec: 5e6 } } }
    : { status: 200, body: { jobs: [job('ACTIVE', 1), { ...job('ACTIVE', 3), jobId: 'job-2' }, { ...job('FINISHED', 4), jobId: 'job-3' }] } };
  const r = await run(['status']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^pool\s+default\s+paused$/m);
  assert.match(r.stdout, /transfers active 3\s+5\.00 MB\/s\s+workers 2/);
  assert.doesNotMatch(r.stdout, /job-3/, 'finished jobs are not in the live view');
  assert.ok(seen.some((s) => s.path === '/api/v1/jobs?limit=1000&state=ACTIVE'), 'the port view asks for active jobs only');
  assert.match(r.stdout, /^TOTAL\s+2 job\(s\)\s+\[#+-+\]\s+50\.0%\s+files 4\/8\s+4\.00 KB\/8\.00 KB\s+4\.00 KB\/s ETA 00:01$/m);
});

test('without --url trust, a certificate the CLI does not trust fails with a hint; --insecure gets through', async () => {
  handler = () => ({ status: 200, body: { jobs: [] } });
  const otherConfig = join(workDir, 'untrusting.yaml');
  writeFileSync(otherConfig, `dataDir: ${join(workDir, 'empty')}\n`);
  const exec = (extra: string[]) => new Promise<{ code: number; stderr: string; stdout: string }>((res) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_')));
    execFile(process.execPath, [cli, '--config', otherConfig, 'jobs', '--url', baseUrl, ...extra], { env }, (err, stdout, stderr) => res({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
  let r = await exec([]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /TLS verification of https:\/\/localhost:\d+ failed .*--insecure/);
  r = await exec(['--insecure']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'no jobs\n');
});
