/**
 * A port (gateway with the storage endpoint and its HTTP-TPC, engine built from the configuration) in a child
 * process, so its CPU is its own (bench/lib/proc-cpu). The child is this module, started with
 * CARGOPORT_BENCH_PORT=<JSON overrides>; it answers with its gateway URL and dies with the benchmark.
 */
import { fork, type ChildProcess } from 'node:child_process';

export interface ChildPort {
  url: string;
  child: ChildProcess;
  close(): Promise<void>;
}

if (process.env['CARGOPORT_BENCH_PORT'] && process.send) {
  const { startHarness } = await import('../../test/support/port-harness.js');
  const h = await startHarness({ logLevel: 'error', ...JSON.parse(process.env['CARGOPORT_BENCH_PORT']) }, { workers: 0 });
  process.send({ url: h.gateway.url });
  const stop = async (): Promise<void> => { await h.close(); process.exit(0); };
  process.once('disconnect', () => void stop());
  process.once('SIGTERM', () => void stop());
}

export async function startChildPort(overrides: Record<string, unknown>, execArgv: string[] = []): Promise<ChildPort> {
  const { testTls } = await import('../../test/support/tls.js');
  process.env['CARGOPORT_TEST_TLS_DIR'] = testTls().dir; // the child serves (and trusts) this process's certificate
  const child = fork(new URL(import.meta.url), [], { env: { ...process.env, CARGOPORT_BENCH_PORT: JSON.stringify(overrides) }, execArgv });
  const info = await new Promise<{ url: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string }));
    child.once('exit', (code) => reject(new Error(`port child exited with ${code}`)));
  });
  return {
    url: info.url, child,
    close: () => new Promise((r) => { if (child.exitCode !== null) return r(); child.once('exit', () => r()); child.kill('SIGTERM'); }),
  };
}
