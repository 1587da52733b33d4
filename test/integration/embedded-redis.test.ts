/**
 * The embedded Redis of `cargoport serve`, against the real redis-server binary: start (unix socket only,
 * AOF on), its watchdog stopping it after a SIGKILL of its parent, reuse of a leftover whose watchdog died too, replacement of a foreign server on our socket,
 * restart after a crash, refusal to share a data directory, and stop leaving no redis-server behind.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { findExecutable, isProcessAlive as isAlive, startEmbeddedRedis, type EmbeddedRedisLog } from '../../bin/embedded-redis.js';

const HAVE_REDIS = findExecutable('redis-server') !== undefined;
const quiet: EmbeddedRedisLog = { info() {}, warn() {}, error() {} };
const moduleUrl = new URL('../../bin/embedded-redis.js', import.meta.url).href;

function tempDataDir(): string {
  // Short path: a unix socket path must fit in 107 bytes.
  return mkdtempSync(join(tmpdir(), 'cp-er-'));
}

/** redis-server shows its socket in its process title, so pgrep finds any server left on this socket. */
function redisProcessesOn(socket: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', `redis-server unixsocket:${socket}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

async function withClient<T>(socket: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ path: socket, maxRetriesPerRequest: 1 });
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** Starts the embedded Redis in a separate node process (a stand-in for `cargoport serve`), returns its pids. */
async function startInChild(dataDir: string): Promise<{ parent: ReturnType<typeof spawn>; redisPid: number; url: string }> {
  const script = `
    const { startEmbeddedRedis } = await import(${JSON.stringify(moduleUrl)});
    const quiet = { info() {}, warn() {}, error() {} };
    const r = await startEmbeddedRedis({ dataDir: ${JSON.stringify(dataDir)}, binary: 'redis-server', log: quiet });
    console.log(JSON.stringify({ pid: r.pid(), url: r.url }));
    setInterval(() => {}, 1000);
  `;
  const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: parent.stdout! });
    rl.once('line', resolve);
    parent.once('exit', (code) => reject(new Error(`child exited with ${code} before starting redis`)));
  });
  const { pid, url } = JSON.parse(first) as { pid: number; url: string };
  return { parent, redisPid: pid, url };
}

test('starts a private redis-server on a unix socket with AOF, and stop leaves nothing behind', { skip: !HAVE_REDIS && 'redis-server not installed' }, async () => {
  const dataDir = tempDataDir();
  const redis = await startEmbeddedRedis({ dataDir, binary: 'redis-server', log: quiet });
  try {
    const socket = join(dataDir, 'redis', 'redis.sock');
    assert.equal(redis.url, `unix://${socket}`);
    await withClient(socket, async (r) => {
      assert.equal(await r.ping(), 'PONG');
      assert.deepEqual(await r.config('GET', 'appendonly'), ['appendonly', 'yes']);
      assert.deepEqual(await r.config('GET', 'appendfsync'), ['appendfsync', 'everysec']);
      assert.deepEqual(await r.config('GET', 'maxmemory-policy'), ['maxmemory-policy', 'noeviction']);
      assert.deepEqual(await r.config('GET', 'port'), ['port', '0']);
    });
    assert.equal(redisProcessesOn(socket).length, 1);
    const pid = redis.pid();
    await redis.stop();
    assert.equal(isAlive(pid), false, 'redis-server still running after stop');
    assert.deepEqual(redisProcessesOn(socket), []);
    assert.equal(existsSync(socket), false, 'socket left behind');
    assert.ok(existsSync(join(dataDir, 'redis', 'appendonlydir')), 'no AOF directory in dataDir/redis');
  } finally {
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** The parent's children other than redis-server: its watchdog (sh). */
function watchdogOf(parentPid: number, redisPid: number): number {
  const kids = execFileSync('pgrep', ['-P', String(parentPid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  const w = kids.find((p) => p !== redisPid && readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('/bin/sh'));
  assert.ok(w, 'the embedded redis watchdog runs');
  return w;
}

test('after SIGKILL of the parent, its watchdog stops the server and the next start has its data', { skip: !HAVE_REDIS && 'redis-server not installed' }, async () => {
  const dataDir = tempDataDir();
  const socket = join(dataDir, 'redis', 'redis.sock');
  const { parent, redisPid } = await startInChild(dataDir);
  try {
    await withClient(socket, (r) => r.set('cargoport-test-key', 'kept'));
    // While its parent lives, nobody else may take the data directory over.
    await assert.rejects(startEmbeddedRedis({ dataDir, binary: 'redis-server', log: quiet }), { code: 'CARGO_ERR_DATADIR_IN_USE' });

    parent.kill('SIGKILL');
    await new Promise((resolve) => parent.once('exit', resolve));
    for (let i = 0; isAlive(redisPid); i++) {
      assert.ok(i < 400, 'redis-server outlived its SIGKILLed parent');
      await sleep(50);
    }

    const redis = await startEmbeddedRedis({ dataDir, binary: 'redis-server', log: quiet });
    try {
      assert.notEqual(redis.pid(), redisPid);
      // SIGTERM made the server fsync its AOF: the write is there.
      assert.equal(await withClient(socket, (r) => r.get('cargoport-test-key')), 'kept');
    } finally {
      await redis.stop();
    }
    assert.deepEqual(redisProcessesOn(socket), []);
  } finally {
    parent.kill('SIGKILL');
    if (isAlive(redisPid)) process.kill(redisPid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a leftover server whose parent and watchdog were both SIGKILLed is reused with its data', { skip: !HAVE_REDIS && 'redis-server not installed' }, async () => {
  const dataDir = tempDataDir();
  const socket = join(dataDir, 'redis', 'redis.sock');
  const { parent, redisPid } = await startInChild(dataDir);
  try {
    await withClient(socket, (r) => r.set('cargoport-test-key', 'kept'));
    const watchdog = watchdogOf(parent.pid!, redisPid);
    process.kill(watchdog, 'SIGKILL');
    parent.kill('SIGKILL');
    await new Promise((resolve) => parent.once('exit', resolve));
    assert.ok(isAlive(redisPid), 'without its watchdog, redis-server outlives a SIGKILLed parent');

    const redis = await startEmbeddedRedis({ dataDir, binary: 'redis-server', log: quiet });
    try {
      assert.equal(redis.pid(), redisPid, 'the leftover server was not reused');
      assert.equal(await withClient(socket, (r) => r.get('cargoport-test-key')), 'kept');
    } finally {
      await redis.stop();
    }
    assert.equal(isAlive(redisPid), false);
    assert.deepEqual(redisProcessesOn(socket), []);
  } finally {
    parent.kill('SIGKILL');
    if (isAlive(redisPid)) process.kill(redisPid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a server on our socket whose dir is not ours is stopped and replaced', { skip: !HAVE_REDIS && 'redis-server not installed' }, async () => {
  const dataDir = tempDataDir();
  const foreignDir = tempDataDir();
  const redisDir = join(dataDir, 'redis');
  mkdirSync(redisDir, { recursive: true });
  const socket = join(redisDir, 'redis.sock');
  execFileSync('redis-server', ['--port', '0', '--unixsocket', socket, '--dir', foreignDir, '--pidfile', join(redisDir, 'redis.pid'),
    '--daemonize', 'yes', '--save', '', '--appendonly', 'no']);
  let foreignPid = 0;
  for (let i = 0; i < 200 && !foreignPid; i++) {
    foreignPid = Number(redisProcessesOn(socket)[0] ?? 0);
    if (!foreignPid) await sleep(25);
  }
  assert.ok(foreignPid > 0, 'foreign redis-server did not start');
  const redis = await startEmbeddedRedis({ dataDir, binary: 'redis-server', log: quiet });
  try {
    assert.notEqual(redis.pid(), foreignPid);
    assert.equal(isAlive(foreignPid), false, 'the foreign server was not stopped');
    const dir = await withClient(socket, (r) => r.config('GET', 'dir'));
    assert.deepEqual(dir, ['dir', redisDir]);
  } finally {
    await redis.stop();
    if (isAlive(foreignPid)) process.kill(foreignPid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(foreignDir, { recursive: true, force: true });
  }
});

test('a redis-server that dies is restarted and its data comes back from the AOF', { skip: !HAVE_REDIS && 'redis-server not installed' }, async () => {
  const dataDir = tempDataDir();
  const socket = join(dataDir, 'redis', 'redis.sock');
  const redis = await startEmbeddedRedis({ dataDir, binary: 'redis-server', log: quiet });
  try {
    await withClient(socket, (r) => r.set('survives', 'yes'));
    const first = redis.pid();
    process.kill(first, 'SIGKILL');
    let restarted = false;
    for (let i = 0; i < 400 && !restarted; i++) {
      await sleep(25);
      restarted = redis.pid() !== first && redisProcessesOn(socket).length === 1;
    }
    assert.ok(restarted, 'redis-server was not restarted');
    assert.equal(await withClient(socket, (r) => r.get('survives')), 'yes');
  } finally {
    await redis.stop();
    assert.deepEqual(redisProcessesOn(socket), []);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a redis-server that keeps dying makes supervision give up loudly instead of spinning', { skip: !HAVE_REDIS && 'redis-server not installed', timeout: 60_000 }, async () => {
  const dataDir = tempDataDir();
  const socket = join(dataDir, 'redis', 'redis.sock');
  let gaveUp: (Error & { code?: string }) | undefined;
  const redis = await startEmbeddedRedis({ dataDir, binary: 'redis-server', log: quiet, onGiveUp: (e) => (gaveUp = e) });
  try {
    // Six deaths within a minute: five restarts are allowed, the sixth death is one too many.
    for (let death = 1; death <= 6; death++) {
      const pid = redis.pid();
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 800 && (death < 6 ? redis.pid() === pid : !gaveUp); i++) await sleep(25);
      if (death < 6) assert.notEqual(redis.pid(), pid, `not restarted after death ${death}`);
    }
    assert.equal(gaveUp?.code, 'CARGO_ERR_REDIS_CRASHING');
    assert.match(gaveUp!.message, /died 6 times within 60 s; giving up/);
    await sleep(500);
    assert.deepEqual(redisProcessesOn(socket), [], 'no restart after giving up');
  } finally {
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a missing redis-server binary is one line that says how to fix it', async () => {
  const dataDir = tempDataDir();
  try {
    await assert.rejects(startEmbeddedRedis({ dataDir, binary: 'no-such-redis-server-binary', log: quiet }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CARGO_ERR_REDIS_BINARY_MISSING');
      assert.match(e.message, /apt-get install redis-server/);
      assert.match(e.message, /redis\.url/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a data directory too deep for a unix socket path is refused with a clear message', { skip: !HAVE_REDIS && 'redis-server not installed' }, async () => {
  const dataDir = join(tmpdir(), 'x'.repeat(120));
  await assert.rejects(startEmbeddedRedis({ dataDir, binary: 'redis-server', log: quiet }), /longer than 107 bytes/);
});
