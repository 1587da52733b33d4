/**
 * Measurement instrument for bench/h2-receive-cpu: one GET of `path` from `origin` over one HTTP/2 receive path,
 * written to `out` by the port's own download hot path (FilePump: 1 MiB writev batches through the thread pool,
 * adler32 on the fly), with the engine's windows (32 MiB per stream, 128 MiB per connection). So the paths differ
 * only in how the bytes arrive:
 *   bulk     the port's receive path (services/transfer/h2-bulk/bulk-session.ts), chunks handed back after each
 *            write as the engine does
 *   node-h2  node:http2 (nghttp2 in C++): a ClientHttp2Stream, one Buffer per DATA frame
 * BULK_SESSION_MODULE=/abs/path/to/bulk-session.js measures another build of the bulk path (a worktree of an older
 * commit, to price a change). Prints one JSON line: bytes, adler32, and the CPU seconds from just before the
 * connection to the last byte written (module loading excluded).
 *
 *   node dist/bench/lib/h2-receive-pull.js <bulk|node-h2> <origin> <ca.pem> <path> <out>
 */
import http2 from 'node:http2';
import { open } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { createChecksummer } from '../../services/checksum/checksummer.js';
import { ConnectionPacer, defaultConnectionPacing } from '../../services/throttle/connection-pacer.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { FilePump } from '../../services/transfer/pull/file-pump.js';
import { ProgressMeter } from '../../services/transfer/push/byte-pump.js';
import { standaloneBulkOpen, type H2BulkSession } from '../../services/transfer/h2-bulk/bulk-session.js';

const [mode, origin, caPath, path, out] = process.argv.slice(2) as [string, string, string, string, string];
const ca = readFileSync(caPath);
const STREAM_WINDOW = 32 * 1024 * 1024;
const CONNECTION_WINDOW = 128 * 1024 * 1024;

async function bulkBody(): Promise<{ body: Readable; close(): void }> {
  const mod = process.env['BULK_SESSION_MODULE']
    ? await import(pathToFileURL(process.env['BULK_SESSION_MODULE']).href)
    : await import('../../services/transfer/h2-bulk/bulk-session.js');
  const session: H2BulkSession = new mod.H2BulkSession({
    origin, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000,
    initialWindowSize: STREAM_WINDOW, connectionWindowSize: CONNECTION_WINDOW,
    // `open` for this tree's session; the connection fields for an older module given by BULK_SESSION_MODULE.
    open: standaloneBulkOpen({ origin, ca, connectTimeoutMs: 10_000 }),
    ca, connectTimeoutMs: 10_000, pacer: new ConnectionPacer(defaultConnectionPacing),
  } as ConstructorParameters<typeof H2BulkSession>[0]);
  const res = await session.request(path, {}, new AbortController().signal);
  if (res.statusCode !== 200) throw new Error(`bulk: HTTP ${res.statusCode}`);
  return { body: res.body, close: () => session.close() };
}

async function nodeH2Body(): Promise<{ body: Readable; close(): void }> {
  const session = http2.connect(origin, { ca, settings: { initialWindowSize: STREAM_WINDOW } });
  session.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  session.setLocalWindowSize(CONNECTION_WINDOW);
  const req = session.request({ ':path': path });
  const status = await new Promise<number>((resolve, reject) => {
    req.once('response', (h) => resolve(Number(h[':status'])));
    req.once('error', reject);
  });
  if (status !== 200) throw new Error(`node-h2: HTTP ${status}`);
  return { body: req, close: () => session.close() };
}

const cpu0 = process.cpuUsage();
const { body, close } = mode === 'bulk' ? await bulkBody() : mode === 'node-h2' ? await nodeH2Body() : (() => { throw new Error(`mode ${mode}?`); })();
const handle = await open(out, 'w');
const sum = createChecksummer('adler32');
const pump = new FilePump({
  source: body,
  writev: async (bufs, position) => {
    for (let i = 0; i < bufs.length; i += 512) {
      const batch = bufs.slice(i, i + 512);
      const { bytesWritten } = await handle.writev(batch, position);
      let total = 0;
      for (const b of batch) total += b.byteLength;
      if (bytesWritten !== total) throw new Error('short write');
      position += total;
    }
  },
  position: 0,
  signal: new AbortController().signal,
  gate: new PauseGate(),
  checksum: sum,
  progress: new ProgressMeter(0, undefined, undefined),
});
const bytes = await pump.run();
await handle.close();
const cpu = process.cpuUsage(cpu0);
close();
console.log(JSON.stringify({ mode, bytes, adler32: sum.digestHex(), transferCpuSecs: (cpu.user + cpu.system) / 1e6 }));
process.exit(0);
