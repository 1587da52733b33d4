/**
 * `cargoport serve` end to end, as the README tells a user to run it: a fresh data directory, port 0, no Redis
 * configured. The port must come up on the embedded Redis with a generated certificate, answer /healthz over
 * HTTP/2 (checked with the real curl), move a file submitted with the CLI (which trusts the generated
 * certificate without --insecure), and on SIGTERM exit 0 leaving no redis-server behind. After a SIGKILL, the
 * next start reuses the leftover Redis, and its own SIGTERM again leaves nothing.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findExecutable } from '../../bin/embedded-redis.js';

const cli = join(resolve(fileURLToPath(import.meta.url), '../../../..'), 'bin', 'cargoport.js');
const HAVE_REDIS = findExecutable('redis-server') !== undefined;
const HAVE_CURL = findExecutable('curl') !== undefined;

function envFor(dataDir: string): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_')));
  // The data directory is the one local area (file:// jobs), mapped to the namespace root.
  return {
    ...base, CARGOPORT_DATA_DIR: dataDir, CARGOPORT_GATEWAY_PORT: '0', CARGOPORT_LOG_LEVEL: 'warn',
    CARGOPORT_AUTH_LOCAL_AREAS: JSON.stringify([{ dir: dataDir, path: '/' }]),
  };
}

interface Serving {
  proc: ChildProcess;
  url: string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `cargoport serve` and resolves once it prints the URL it listens on. */
async function startServe(dataDir: string): Promise<Serving> {
  const proc = spawn(process.execPath, [cli, 'serve'], { env: envFor(dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  const url = await new Promise<string>((res, rej) => {
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /^cargoport serve listening on (https:\/\/\S+)/m.exec(out);
      if (m) res(m[1]!);
    });
    void exited.then(({ code }) => rej(new Error(`serve exited (${code}) before listening; stderr:\n${err}`)));
  });
  return { proc, url, stderr: () => err, exited };
}

function redisProcessesOn(socket: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `redis-server unixsocket:${socket}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function curlHealthz(url: string): string {
  return execFileSync('curl', ['-k', '--http2', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `${url}/healthz`], { encoding: 'utf8' });
}

function cliRun(dataDir: string, url: string | undefined, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [cli, ...args, ...(url ? ['--url', url] : [])], { env: { ...envFor(dataDir), ...env } }, (err, stdout, stderr) => res({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
}

test('serve: embedded Redis + generated TLS, /healthz over HTTP/2, a CLI job, SIGTERM leaves no redis-server', {
  skip: (!HAVE_REDIS && 'redis-server not installed') || (!HAVE_CURL && 'curl not installed'), timeout: 180_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-serve-'));
  const socket = join(dataDir, 'redis', 'redis.sock');
  const serving = await startServe(dataDir);
  try {
    assert.match(serving.url, /^https:\/\/localhost:\d+$/);
    assert.equal(curlHealthz(serving.url), '200 2');
    assert.equal(redisProcessesOn(socket).length, 1, 'the embedded redis-server is not running on the data directory socket');

    // A real job through the CLI; it trusts <dataDir>/tls/cert.pem, so no --insecure.
    const src = join(dataDir, 'src.bin');
    const dst = join(dataDir, 'dst.bin');
    const payload = randomBytes(256 * 1024);
    writeFileSync(src, payload);
    // Secure by default: without a token nothing is accepted, and a file outside the local area never.
    const anonymous = await cliRun(dataDir, serving.url, ['submit', `file://${src}`, `file://${dst}`]);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /^Unauthorized: /);
    assert.equal((await cliRun(dataDir, serving.url, ['admin', 'pause'])).code, 1);
    // The built-in development issuer (on by default on loopback) signs a token for this user.
    const minted = await cliRun(dataDir, undefined, ['token', '--scope', 'storage.read:/ storage.modify:/', '--admin']);
    assert.equal(minted.code, 0, minted.stderr);
    const auth = { BEARER_TOKEN: minted.stdout.trim() };
    const outside = await cliRun(dataDir, serving.url, ['submit', 'file:///etc/passwd', `file://${dst}`], auth);
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /^Forbidden: .*local area/);
    const submitted = await cliRun(dataDir, serving.url, ['submit', `file://${src}`, `file://${dst}`, '--verify', 'both'], auth);
    assert.equal(submitted.code, 0, submitted.stderr);
    const jobId = submitted.stdout.trim();
    assert.ok(jobId.length > 0);
    const watched = await cliRun(dataDir, serving.url, ['status', jobId, '--watch'], auth);
    assert.equal(watched.code, 0, `job did not finish: ${watched.stdout}${watched.stderr}`);
    assert.match(watched.stdout, /FINISHED .*100\.0%\s+files 1\/1/);
    assert.deepEqual(readFileSync(dst), payload);

    // The other client commands against the real API: the contract between CLI and gateway.
    const listed = await cliRun(dataDir, serving.url, ['jobs'], auth);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${jobId.slice(0, 12)}\\s+FINISHED`, 'm'));
    const port = await cliRun(dataDir, serving.url, ['status'], auth);
    assert.equal(port.code, 0, port.stderr);
    assert.match(port.stdout, /^port\s+-\s+running$/m);
    assert.match(port.stdout, /^no active jobs$/m);
    const paused = await cliRun(dataDir, serving.url, ['admin', 'pause'], auth);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /^port\s+-\s+paused$/m);
    const resumed = await cliRun(dataDir, serving.url, ['admin', 'resume'], auth);
    assert.equal(resumed.code, 0, resumed.stderr);
    const unknown = await cliRun(dataDir, serving.url, ['status', '00000000-0000-0000-0000-000000000000'], auth);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^Not Found: /);

    serving.proc.kill('SIGTERM');
    const { code } = await serving.exited;
    assert.equal(code, 0, serving.stderr());
    assert.deepEqual(redisProcessesOn(socket), [], 'a redis-server was left behind');
  } finally {
    serving.proc.kill('SIGKILL');
    for (const pid of redisProcessesOn(socket)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('serve after a SIGKILL reuses the leftover Redis, and its SIGTERM stops it', {
  skip: (!HAVE_REDIS && 'redis-server not installed') || (!HAVE_CURL && 'curl not installed'), timeout: 180_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-serve-'));
  const socket = join(dataDir, 'redis', 'redis.sock');
  const first = await startServe(dataDir);
  let second: Serving | undefined;
  try {
    const [leftover] = redisProcessesOn(socket);
    assert.ok(leftover, 'no embedded redis-server');
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.deepEqual(redisProcessesOn(socket), [leftover], 'redis-server should survive its parent\'s SIGKILL');

    second = await startServe(dataDir);
    assert.match(second.stderr(), /reusing the embedded redis/);
    assert.deepEqual(redisProcessesOn(socket), [leftover]);
    assert.equal(curlHealthz(second.url), '200 2');

    second.proc.kill('SIGTERM');
    const { code } = await second.exited;
    assert.equal(code, 0, second.stderr());
    assert.deepEqual(redisProcessesOn(socket), []);
  } finally {
    first.proc.kill('SIGKILL');
    second?.proc.kill('SIGKILL');
    for (const pid of redisProcessesOn(socket)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
