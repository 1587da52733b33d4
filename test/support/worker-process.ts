/**
 * `cargoport worker` processes for tests on a shared Redis prefix (scale-out, SIGKILL recovery), and the test's own
 * worker that dies between publishing a file and recording it (publish-then-hang-worker.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_REDIS_URL } from './redis.js';
import { testTls } from './tls.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const CLI = join(here, '..', '..', '..', 'bin', 'cargoport.js');
const HANGING_WORKER = join(here, 'publish-then-hang-worker.js');

export interface WorkerProcess {
  child: ChildProcess;
  /** Lines the process printed on stdout so far. */
  lines: string[];
  /** SIGKILL, resolved once the process is gone; returns the time of the kill (ms). */
  kill(): Promise<number>;
}

/** Spawns a worker process; `env` adds CARGOPORT_* settings. `hang`: the worker that stops after publishing. */
export function spawnWorker(prefix: string, env: Record<string, string> = {}, opts: { hang?: boolean } = {}): WorkerProcess {
  const args = opts.hang ? [HANGING_WORKER, 'run'] : [CLI, 'worker'];
  const child = spawn(process.execPath, args, {
    env: {
      PATH: process.env['PATH'],
      CARGOPORT_REDIS_URL: TEST_REDIS_URL,
      CARGOPORT_REDIS_PREFIX: prefix,
      CARGOPORT_TRANSFER_CA_FILE: testTls().certPath,
      CARGOPORT_WORKERS_HEARTBEAT_MS: '200',
      CARGOPORT_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.on('data', (d) => process.stderr.write(`[worker ${child.pid}] ${d}`));
  return {
    child,
    lines,
    async kill() {
      const at = Date.now();
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((res) => child.once('exit', res));
        child.kill('SIGKILL');
        await gone;
      }
      return at;
    },
  };
}
