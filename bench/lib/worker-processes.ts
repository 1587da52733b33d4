/**
 * The scale-out deployment for benchmarks: `cargoport worker` processes (the CLI role) started on a harness's
 * configuration (same Redis, same prefix), so a bench can run the gateway in its own process and the transfers
 * elsewhere, and account for their CPU separately (bench/lib/proc-cpu).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';

/** Starts `n` `cargoport worker` processes on the harness's configuration; resolves once each says it runs. */
export async function startWorkerProcesses(cfg: object, n: number, dir: string): Promise<ChildProcess[]> {
  if (n === 0) return [];
  const file = `${dir}/worker-config.json`; // JSON is YAML: the CLI's --config reads it
  writeFileSync(file, JSON.stringify(cfg));
  const cli = new URL('../../../bin/cargoport.js', import.meta.url).pathname; // the package's bin (dist/bench/lib → repo root)
  return Promise.all(Array.from({ length: n }, () => new Promise<ChildProcess>((resolve, reject) => {
    const c = spawn(process.execPath, [cli, 'worker', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('worker running')) resolve(c); });
    c.once('exit', (code) => reject(new Error(`cargoport worker exited with ${code}`)));
  })));
}

/** SIGINT (drain, close) and wait for every worker process to exit. */
export async function stopWorkerProcesses(children: readonly ChildProcess[]): Promise<void> {
  for (const c of children) c.kill('SIGINT');
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
}
