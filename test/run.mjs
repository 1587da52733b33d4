#!/usr/bin/env node
// The project's test command (`npm test`): build, make sure a Redis answers, run every test file with
// Node's built-in runner, one file at a time (integration tests measure pauses and stalls; running them
// side by side on two cores would make those measurements noisy).
//
// Redis: uses CARGOPORT_TEST_REDIS_URL, else 127.0.0.1:6379 if it answers, else launches a private
// redis-server on a free port for the duration of the run (no persistence) and stops it afterwards.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createConnection, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function ping(port) {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
    s.setTimeout(1000, () => { s.destroy(); resolve(false); });
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
    s.on('error', () => resolve(false));
  });
}

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });

let redis;
if (!process.env.CARGOPORT_TEST_REDIS_URL) {
  if (await ping(6379)) {
    process.env.CARGOPORT_TEST_REDIS_URL = 'redis://127.0.0.1:6379';
  } else {
    const port = await freePort();
    try {
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    } catch {
      redis = undefined;
    }
    redis?.on('error', () => {
      console.error('no Redis answers on 127.0.0.1:6379 and redis-server is not installed: apt-get install redis-server (or set CARGOPORT_TEST_REDIS_URL)');
      process.exit(1);
    });
    for (let i = 0; i < 100 && !(await ping(port)); i++) await new Promise((r) => setTimeout(r, 50));
    process.env.CARGOPORT_TEST_REDIS_URL = `redis://127.0.0.1:${port}`;
    console.log(`test Redis: private redis-server on port ${port}`);
  }
}

// Every temporary file of the run (tests, the ports and servers they start) goes under one directory, removed at the
// end whatever the outcome: a full run used to leave ~20 GB in /tmp, and repeated runs filled the disk (ENOSPC).
// Mode 1777 like /tmp itself: servers the interop tests start as other users create their files there too.
// CARGOPORT_KEEP_TEST_TMP=1 keeps it for a post-mortem.
const runTmp = mkdtempSync(join(tmpdir(), 'cpt-'));
chmodSync(runTmp, 0o1777);
process.env.TMPDIR = runTmp;
const removeRunTmp = () => {
  if (process.env.CARGOPORT_KEEP_TEST_TMP) console.log(`test temporary files kept in ${runTmp}`);
  else rmSync(runTmp, { recursive: true, force: true, maxRetries: 3 });
};
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { removeRunTmp(); process.exit(130); });

const args = ['--test', '--test-concurrency=1', ...process.argv.slice(2)];
if (process.argv.length <= 2) args.push(join(root, 'dist', 'test'));
const child = spawn(process.execPath, args, { stdio: 'inherit', env: process.env });
const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
redis?.kill('SIGTERM');
removeRunTmp();
process.exit(code);
