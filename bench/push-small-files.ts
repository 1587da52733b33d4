/**
 * bench/push-small-files — the engine pushing N small files (file:// → https PUT) to a cargoport storage endpoint,
 * 64 in parallel, each push followed by the destination check (a HEAD comparing the stored size), against
 * `curl --http2 --parallel --parallel-max 64` uploading the same files to the same endpoint, same run.
 *
 * Run: npm run build && node dist/bench/push-small-files.js [files] [KiB]
 *
 * The exit code 13 this bench used to end with (2,000 files) is explained and fixed (2026-11-22):
 * - curl 7.88 sends RST_STREAM(STREAM_CLOSED) after many completed uploads; Node 20's nghttp2 counts them as a
 *   "rapid reset" attack and, past its burst of 1,000, ends the session with GOAWAY(INTERNAL_ERROR) and refuses
 *   the streams in flight (seen with tshark + --tls-keylog); Node 20 has no option to raise that limit;
 * - curl then retries those uploads on a new connection with `content-length: N` and an empty body (the libcurl
 *   bug XRootD 5.5 also shows), which HTTP/2 must reset (PROTOCOL_ERROR), and curl exits 92;
 * - on our side, a PUT whose body was already aborted while its handler awaited a stat waited forever for events
 *   that had already fired (write-stream-at.ts now checks), leaking its temp FileHandle (the GC warnings), and
 *   the storage server's close() waited for the dead sessions with nothing left to keep the process alive
 *   (exit 13); sessions are now destroyed after a grace (gateway/http2-session-shutdown.ts).
 * With more than ~1,000 files the curl phase therefore fails (loudly now); use ≤ 1,000 files for a comparison.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { PauseGate } from '../services/throttle/pause-gate.js';
import { createTransferEngine } from '../services/transfer/engine.js';
import { startStorageServer } from '../test/support/storage-server.js';
import { testTls } from '../test/support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const N = Number(process.argv[2] ?? 2000);
const KIB = Number(process.argv[3] ?? 64);
const PARALLEL = 64;
const run = promisify(execFile);

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-push-${process.pid}`;
  mkdirSync(base, { recursive: true });
  const data = randomBytes(KIB * 1024);
  const names: string[] = [];
  for (let i = 0; i < N; i++) {
    data.writeUInt32BE(i, 0);
    names.push(`f${String(i).padStart(5, '0')}`);
    writeFileSync(`${base}/${names[i]}`, data);
  }
  const tls = testTls();
  await engine.reconfigure({ ca: tls.cert });
  const peer = await startStorageServer();
  try {
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      for (let i = next++; i < N; i = next++) {
        await engine.transfer({ source: `file://${base}/${names[i]}`, destination: `${peer.base}/engine/${names[i]}`, verify: 'none', overwrite: true },
          { signal: new AbortController().signal, gate: new PauseGate() });
      }
    }));
    const ours = N / (Number(process.hrtime.bigint() - t0) / 1e9);

    const cfg = names.map((n) => `upload-file = "${base}/${n}"\nurl = "${peer.base}/curl/${n}"\n`).join('');
    writeFileSync(`${base}/curl.cfg`, cfg);
    const t1 = process.hrtime.bigint();
    await run('curl', ['-sS', '--http2', '--cacert', tls.certPath, '--parallel', '--parallel-max', String(PARALLEL), '--create-dirs', '-o', '/dev/null', '-K', `${base}/curl.cfg`], { maxBuffer: 1 << 26 });
    const curl = N / (Number(process.hrtime.bigint() - t1) / 1e9);
    console.log(`push ${N} × ${KIB} KiB to a cargoport storage endpoint, ${PARALLEL} in parallel`);
    console.log(`cargoport engine (PUT + destination size check): ${ours.toFixed(0)} files/s`);
    console.log(`curl --http2 --parallel: ${curl.toFixed(0)} files/s   ratio ${(ours / curl).toFixed(2)}`);
  } finally {
    await engine.close();
    await peer.close();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
