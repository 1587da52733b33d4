/**
 * Runs test/support/h2-file-server in a child process (so its CPU and memory are not the benchmarked
 * process's) and returns its origin and certificate. The child is this same module, started with
 * CARGOPORT_BENCH_SERVE=<root>.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ChildFileServer {
  origin: string;
  port: number;
  certPath: string;
  ca: Buffer;
  child: ChildProcess;
  close(): void;
}

if (process.env['CARGOPORT_BENCH_SERVE'] && process.send) {
  const { startH2FileServer } = await import('../../test/support/h2-file-server.js');
  const { testTls } = await import('../../test/support/tls.js');
  const srv = await startH2FileServer({ root: process.env['CARGOPORT_BENCH_SERVE'] });
  process.send({ origin: srv.origin, port: srv.port, certPath: testTls().certPath });
  // Die with the benchmark: a crashed parent must not leave a server behind.
  process.once('disconnect', () => process.exit(0));
}

export async function startChildFileServer(root: string): Promise<ChildFileServer> {
  const child = fork(new URL(import.meta.url), [], { env: { ...process.env, CARGOPORT_BENCH_SERVE: root } });
  const info = await new Promise<{ origin: string; port: number; certPath: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { origin: string; port: number; certPath: string }));
    child.once('exit', (code) => reject(new Error(`file server exited with ${code}`)));
  });
  return { ...info, ca: readFileSync(info.certPath), child, close: () => child.kill() };
}
