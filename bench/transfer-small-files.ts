/**
 * Many small files: N × 64 KiB pulled by the engine with C in flight (each published atomically: part file,
 * fsync, link/rename, directory fsync), against `curl --http2 --parallel --parallel-max C` fetching the same
 * URLs from the same server (test/support/h2-file-server in a child process) in the same run.
 * Prints files/s for both, the ratio, and the engine's CPU milliseconds per file.
 *
 *   node dist/bench/transfer-small-files.js [files=2000] [concurrency=32] [verify=none|source]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createTransferEngine } from '../services/transfer/engine.js';
import type { VerifyMode } from '../services/transfer/types.js';
import { PauseGate } from '../services/throttle/pause-gate.js';
import { startChildFileServer } from './lib/child-file-server.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const n = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 32);
const verify = (process.argv[4] ?? 'none') as VerifyMode;
const root = await mkdtemp('/dev/shm/cargoport-small-');
const buf = randomBytes(64 * 1024);
for (let i = 0; i < n; i++) await writeFile(join(root, `s${i}.bin`), buf);
await mkdir(join(root, 'engine'));
await mkdir(join(root, 'curl'));
const server = await startChildFileServer(root);
await engine.reconfigure({ ca: server.ca });

let next = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < n) {
    const i = next++;
    await engine.transfer({
      source: `${server.origin}/s${i}.bin`, destination: pathToFileURL(join(root, 'engine', `s${i}.bin`)).href,
      verify, overwrite: false,
    }, { signal: new AbortController().signal, gate: new PauseGate() });
  }
}));
const engineSec = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
await engine.close();

// URLs go through a config file (-K): 2 × N arguments would be an unwieldy command line.
const curlConfig = join(root, 'curl.cfg');
let cfg = '';
for (let i = 0; i < n; i++) cfg += `url = "${server.origin}/s${i}.bin"\noutput = "${join(root, 'curl', `s${i}.bin`)}"\n`;
await writeFile(curlConfig, cfg);
const c0 = performance.now();
let curlExit = 0;
try {
  await promisify(execFile)('curl', ['--http2', '-s', '--parallel', '--parallel-max', String(concurrency),
    '--cacert', server.certPath, '-K', curlConfig], { maxBuffer: 1 << 20 });
} catch (e) {
  curlExit = (e as { code?: number }).code ?? -1;
}
const curlSec = (performance.now() - c0) / 1000;
let curlFiles = 0;
for (let i = 0; i < n; i++) {
  if ((await stat(join(root, 'curl', `s${i}.bin`)).catch(() => null))?.size === buf.length) curlFiles++;
}
server.close();
await rm(root, { recursive: true, force: true });

console.log(`${n} × 64 KiB, ${concurrency} in flight, verify=${verify}`);
console.log(`engine: ${(n / engineSec).toFixed(0)} files/s (atomic publish with fsync), ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms CPU per file`);
console.log(`curl --http2 --parallel: ${(n / curlSec).toFixed(0)} files/s (no fsync, no temp name), ${curlFiles}/${n} complete, exit ${curlExit}`);
console.log(`RATIO engine/curl files/s: ${(curlSec / engineSec).toFixed(2)}`);
