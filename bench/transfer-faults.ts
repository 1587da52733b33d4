/**
 * Fault benchmark: files pulled through a TCP proxy that resets 10 % of connections mid-transfer, and a stalled
 * connection. Every file must complete with a verified adler32 and be resumed, not restarted. Prints the bytes
 * the proxy delivered per byte of file (1.00 = nothing moved twice) for the engine and for
 * `curl --retry … -C -` (resume-capable retries) through an identical proxy in the same run, and the stall
 * detection time against its timeout.
 *
 *   node dist/bench/transfer-faults.js [files=40] [file_mib=16] [reset_fraction=0.1] [stall_timeout_ms=2000]
 * A new connection per file (pool closed between files) so each file meets the reset lottery.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createChecksummer } from '../services/checksum/checksummer.js';
import { isCargoError } from '../errors/cargo-error.js';
import { createTransferEngine } from '../services/transfer/engine.js';
import type { ResumeState, TransferRequest } from '../services/transfer/types.js';
import { PauseGate } from '../services/throttle/pause-gate.js';
import { startChildFileServer } from './lib/child-file-server.js';
import { startFaultProxy } from './lib/fault-proxy.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const MiB = 1024 * 1024;
const args = process.argv.slice(2).map(Number);
const files = args[0] || 40;
const fileMib = args[1] || 16;
const resetFraction = args[2] ?? 0.1;
const stallTimeoutMs = args[3] || 2000;

const root = await mkdtemp('/dev/shm/cargoport-faults-');
const dst = join(root, 'dst');
const sums: string[] = [];
for (let i = 0; i < files; i++) {
  const data = randomBytes(fileMib * MiB);
  const s = createChecksummer('adler32');
  s.update(data);
  sums.push(s.digestHex());
  await writeFile(join(root, `f${i}.bin`), data);
}
const server = await startChildFileServer(root);
await engine.reconfigure({
  ca: server.ca, connections: 1, streams: 4,
  multiStream: { enabled: true, minFileBytes: 8 * MiB, rangeBytes: 4 * MiB },
  stall: { idleMs: stallTimeoutMs, minBytesPerSec: 0, windowMs: 60_000 },
});

/** What the worker does: retry retryable failures, passing the last checkpoint. */
async function withRetries(base: TransferRequest, maxAttempts = 20): Promise<{ attempts: number; resumed: number; errors: string[] }> {
  let resume: ResumeState | undefined;
  const errors: string[] = [];
  let resumed = 0;
  for (let attempt = 1; ; attempt++) {
    await engine.close(); // a fresh connection per attempt: each one meets the proxy's lottery
    try {
      const res = await engine.transfer({ ...base, ...(resume ? { resume } : {}) }, {
        signal: new AbortController().signal, gate: new PauseGate(), onCheckpoint: (s) => { resume = s; },
      });
      resumed += res.resumedBytes;
      return { attempts: attempt, resumed, errors };
    } catch (e) {
      errors.push(isCargoError(e) ? e.code : String(e));
      if (!isCargoError(e) || !e.retryable || attempt >= maxAttempts) throw e;
    }
  }
}

// --- resets -------------------------------------------------------------------------------------------
const proxy = await startFaultProxy({
  upstreamHost: '127.0.0.1', upstreamPort: server.port, resetFraction, resetWithinBytes: fileMib * MiB, seed: 42,
});
let attempts = 0;
let resumedBytes = 0;
const errorCodes = new Map<string, number>();
const t0 = performance.now();
for (let i = 0; i < files; i++) {
  const r = await withRetries({
    source: `https://127.0.0.1:${proxy.port}/f${i}.bin`, destination: pathToFileURL(join(dst, `e${i}.bin`)).href,
    verify: 'both', overwrite: true, checksum: { alg: 'adler32', value: sums[i] },
  });
  attempts += r.attempts;
  resumedBytes += r.resumed;
  for (const c of r.errors) errorCodes.set(c, (errorCodes.get(c) ?? 0) + 1);
}
const engineSec = (performance.now() - t0) / 1000;
const total = files * fileMib * MiB;
const engineWire = proxy.downstreamBytes / total;
console.log(`${files} files × ${fileMib} MiB through a proxy resetting ${resetFraction * 100} % of connections (seed 42)`);
console.log(`engine: all ${files} verified (adler32, source and user value), ${proxy.connections} connections, ` +
  `${proxy.resets} resets, ${attempts - files} extra attempts, resumed ${(resumedBytes / MiB).toFixed(1)} MiB, ` +
  `errors ${JSON.stringify(Object.fromEntries(errorCodes))}, ${(total / engineSec / 1e6).toFixed(0)} MB/s`);
await proxy.close();

// Peer: curl with resume-capable retries through an identical proxy.
const proxy2 = await startFaultProxy({
  upstreamHost: '127.0.0.1', upstreamPort: server.port, resetFraction, resetWithinBytes: fileMib * MiB, seed: 42,
});
let curlOk = 0;
for (let i = 0; i < files; i++) {
  const out = join(dst, `c${i}.bin`);
  try {
    await promisify(execFile)('curl', ['--http2', '-s', '--cacert', server.certPath, '--retry', '20', '--retry-all-errors',
      '--retry-delay', '0', '-C', '-', '-o', out, `https://127.0.0.1:${proxy2.port}/f${i}.bin`]);
  } catch { /* counted below */ }
  try {
    const got = createHash('sha256').update(await readFile(out)).digest('hex');
    const want = createHash('sha256').update(await readFile(join(root, `f${i}.bin`))).digest('hex');
    if (got === want) curlOk++;
  } catch { /* missing file */ }
}
const curlWire = proxy2.downstreamBytes / total;
console.log(`curl --retry 20 --retry-all-errors -C -: ${curlOk}/${files} files intact, ${proxy2.connections} connections, ${proxy2.resets} resets`);
console.log(`bytes delivered per file byte: engine ${engineWire.toFixed(3)}, curl ${curlWire.toFixed(3)}; ` +
  `RATIO engine/curl re-sent overhead: ${((engineWire - 1) / Math.max(1e-9, curlWire - 1)).toFixed(2)}`);
await proxy2.close();

// --- stall --------------------------------------------------------------------------------------------
const stallProxy = await startFaultProxy({
  upstreamHost: '127.0.0.1', upstreamPort: server.port, stallConnections: new Set([1]), stallAfterBytes: 3 * MiB,
});
await engine.close();
let detectedAfter = NaN;
let checkpoint: ResumeState | undefined;
try {
  await engine.transfer({
    source: `https://127.0.0.1:${stallProxy.port}/f0.bin`, destination: pathToFileURL(join(dst, 'stall.bin')).href,
    verify: 'both', overwrite: true, checksum: { alg: 'adler32', value: sums[0] },
  }, { signal: new AbortController().signal, gate: new PauseGate(), onCheckpoint: (s) => { checkpoint = s; } });
  console.log('stall: transfer finished without stalling?');
} catch (e) {
  detectedAfter = performance.now() - stallProxy.stallsStartedAt[0]!;
  console.log(`stall: ${isCargoError(e) ? e.code : String(e)} ${detectedAfter.toFixed(0)} ms after the proxy went silent ` +
    `(timeout ${stallTimeoutMs} ms → ${(detectedAfter / stallTimeoutMs).toFixed(2)}×; bar ≤ 1.10×)`);
}
await engine.close();
const after = await engine.transfer({
  source: `https://127.0.0.1:${stallProxy.port}/f0.bin`, destination: pathToFileURL(join(dst, 'stall.bin')).href,
  verify: 'both', overwrite: true, checksum: { alg: 'adler32', value: sums[0] }, ...(checkpoint ? { resume: checkpoint } : {}),
}, { signal: new AbortController().signal, gate: new PauseGate() });
console.log(`stall retry: verified ${after.checksum?.value === sums[0]}, resumed ${(after.resumedBytes / MiB).toFixed(1)} MiB of ${fileMib} MiB`);
await stallProxy.close();
await engine.close();
server.close();
await rm(root, { recursive: true, force: true });
