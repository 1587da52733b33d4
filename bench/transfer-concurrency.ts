/**
 * Memory under concurrency: N simultaneous pulls (default 64 × 32 MiB) from a local TLS HTTP/2 file server
 * (test/support/h2-file-server in a child process via bench/lib/child-file-server, so its memory is not counted)
 * into tmpfs, sampling this process's RSS. Prints the peak RSS against the 300 MB budget and the aggregate rate against
 * `curl --http2 --parallel` fetching the same files from the same server in the same run.
 *
 *   node dist/bench/transfer-concurrency.js [transfers=64] [file_mib=32] [connections=1] [streams=4]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createTransferEngine } from '../services/transfer/engine.js';
import { PauseGate } from '../services/throttle/pause-gate.js';
import { startChildFileServer } from './lib/child-file-server.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const MiB = 1024 * 1024;
const [transfers = 64, fileMib = 32, connections = 1, streams = 4] = process.argv.slice(2).map(Number);

const root = await mkdtemp('/dev/shm/cargoport-conc-');
const dst = join(root, 'dst');
const chunk = randomBytes(MiB);
for (let i = 0; i < transfers; i++) {
  await writeFile(join(root, `f${i}.bin`), Buffer.concat(Array.from({ length: fileMib }, () => chunk)));
}
const server = await startChildFileServer(root);
const { origin, certPath } = server;
await engine.reconfigure({ ca: server.ca, connections, streams });

let peak = process.memoryUsage().rss;
const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
const t0 = performance.now();
await Promise.all(Array.from({ length: transfers }, (_, i) => engine.transfer({
  source: `${origin}/f${i}.bin`, destination: pathToFileURL(join(dst, `f${i}.bin`)).href,
  verify: 'none', overwrite: true,
}, { signal: new AbortController().signal, gate: new PauseGate() })));
const engineSec = (performance.now() - t0) / 1000;
clearInterval(sampler);
await engine.close();

const totalBytes = transfers * fileMib * MiB;
const args = ['--http2', '-s', '--parallel', '--parallel-max', String(transfers), '--cacert', certPath];
for (let i = 0; i < transfers; i++) args.push('-o', join(dst, `c${i}.bin`), `${origin}/f${i}.bin`);
const c0 = performance.now();
let curlSec = NaN;
try {
  await promisify(execFile)('curl', args, { maxBuffer: 1 << 20 });
  curlSec = (performance.now() - c0) / 1000;
} catch (e) {
  console.error('curl failed:', (e as Error).message.slice(0, 200));
}
server.close();
await rm(root, { recursive: true, force: true });
const rate = (s: number) => totalBytes / s / 1e6;
console.log(`${transfers} concurrent × ${fileMib} MiB, ${connections} connection(s) × ${streams} streams per origin`);
console.log(`engine: ${rate(engineSec).toFixed(0)} MB/s aggregate, peak RSS ${(peak / 1e6).toFixed(0)} MB (budget 300 MB: ${(peak / 300e6).toFixed(2)})`);
console.log(`curl --http2 --parallel: ${rate(curlSec).toFixed(0)} MB/s aggregate`);
console.log(`RATIO engine/curl aggregate rate: ${(rate(engineSec) / rate(curlSec)).toFixed(2)}`);
