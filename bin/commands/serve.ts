/**
 * The long-running roles:
 * - `serve`: gateway + worker pool, on the embedded Redis unless `redis.url` is set; the pool runs in
 *   workers.processes supervised child processes (worker-supervisor.ts), or in this process when that is 0;
 * - `gateway` and `worker`: the scale-out roles, which share one Redis and so require `redis.url`.
 *
 * Shutdown (SIGTERM / SIGINT): the workers drain for at most shutdown.drainTimeoutSec (then abort and
 * requeue), the gateway closes, the embedded Redis stops last (everything above still writes to it).
 * A second signal skips the wait; a watchdog forces the exit if a close hangs, so Redis is always stopped.
 *
 * Gateway and workers are loaded with dynamic imports so client commands never pay for Fastify and BullMQ.
 */
import type { Config } from '../../config/schema.js';
import type { RunningGateway } from '../../gateway/start.js';
import type { TransferEngine } from '../../services/transfer/engine.js';
import { loadConfigFor, type Command, type CommandContext, expectPositionals } from '../command.js';
import { consoleLog, type ConsoleLog } from '../console-log.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../embedded-redis.js';
import { ensureTls } from '../self-signed-cert.js';
import { UsageError } from '../usage-error.js';

/** Time granted to gateway.close() and redis stop after the drain, before the watchdog forces the exit. */
const CLOSE_GRACE_MS = 30_000;

/** The worker pool in this process (`worker`, or `serve` with workers.processes 0), or serve's supervised children. */
interface Workers {
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

interface Running {
  gateway?: RunningGateway;
  workers?: Workers;
  /** `serve`'s one transfer engine, shared by its in-process workers and its gateway (the scale-out roles build their own). */
  engine?: TransferEngine;
  redis?: EmbeddedRedis;
}

async function shutdown(cfg: Config, run: Running, log: ConsoleLog, skipDrain: () => boolean): Promise<void> {
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      log.error(`${what} failed: ${(e as Error).message}`);
    }
  };
  if (run.workers) {
    const w = run.workers;
    if (!skipDrain()) {
      log.info(`draining workers (at most ${cfg.shutdown.drainTimeoutSec} s, then the rest is requeued)`);
      await step('worker drain', () => w.drain(cfg.shutdown.drainTimeoutSec * 1000));
    }
    await step('worker close', () => w.close());
  }
  if (run.gateway) await step('gateway close', () => run.gateway!.close());
  if (run.engine) await step('transfer connections close', () => run.engine!.close());
  // Detaches the eBPF marker's tc filter (left attached, it would only be swept at the next start).
  await step('marking close', async () => (await import('../../services/marking/marking-service.js')).marking().close());
  if (run.redis) await step('embedded redis stop', () => run.redis!.stop());
}

/**
 * Catches SIGTERM/SIGINT from the very start (so a signal during start-up still ends in a clean shutdown
 * rather than a dead parent and an orphaned Redis) and counts them: a second one skips the drain wait.
 */
function signalLatch() {
  let count = 0;
  let resolveFirst: (why: string) => void = () => {};
  const first = new Promise<string>((resolve) => (resolveFirst = resolve));
  const listeners: Array<() => void> = [];
  const onSignal = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) resolveFirst(sig);
    else listeners.forEach((fn) => fn());
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { first, count: () => count, onRepeat: (fn: () => void) => listeners.push(fn) };
}

/** Waits for a signal (or a fatal error), then shuts down; resolves with the exit code. */
async function runUntilStopped(cfg: Config, run: Running, log: ConsoleLog, latch: ReturnType<typeof signalLatch>, fatal: Promise<Error>): Promise<number> {
  let exitCode = 0;
  const why = await Promise.race([
    latch.first,
    fatal.then((err) => {
      log.error(err.message);
      exitCode = 1;
      return 'fatal error';
    }),
  ]);
  log.info(`${why}: shutting down`);
  const forced = new Promise<number>((resolve) => {
    const force = (msg: string, code: number) => {
      log.warn(msg);
      void (run.redis?.stop() ?? Promise.resolve()).finally(() => resolve(code));
    };
    latch.onRepeat(() => force('signalled again: not waiting for the drain any longer', 130));
    setTimeout(() => force('shutdown is taking too long; stopping Redis and exiting', 1), cfg.shutdown.drainTimeoutSec * 1000 + CLOSE_GRACE_MS).unref();
  });
  const clean = shutdown(cfg, run, log, () => latch.count() > 1).then(() => {
    log.info('stopped');
    return exitCode;
  });
  return Promise.race([clean, forced]);
}

type Role = 'serve' | 'gateway' | 'worker';

async function runRole(role: Role, ctx: CommandContext): Promise<number> {
  expectPositionals(ctx, 0, 0, '');
  const cfg = loadConfigFor(ctx);
  const log = consoleLog(cfg.logLevel, `cargoport ${role}`);
  if (role !== 'serve' && !cfg.redis.url) {
    throw new UsageError(`the ${role} role shares one Redis with the other processes: set redis.url (or CARGOPORT_REDIS_URL), e.g. redis://redis.example:6379`, 'redis.url');
  }
  const latch = signalLatch();
  const run: Running = {};
  let reportFatal: (e: Error) => void = () => {};
  const fatal = new Promise<Error>((resolve) => (reportFatal = resolve));
  try {
    const tls = role === 'worker' ? undefined : ensureTls(cfg);
    if (!cfg.redis.url) {
      run.redis = await startEmbeddedRedis({ dataDir: cfg.dataDir, binary: cfg.redis.serverBinary, log, onGiveUp: reportFatal });
    }
    const redisUrl = cfg.redis.url || run.redis!.url;
    if (role === 'serve') {
      // One engine for the whole process: the workers' transfers and the storage endpoint's HTTP-TPC copies share
      // its connections, TLS trust and endpoint settings.
      const { createTransferEngine, engineSettingsFromConfig } = await import('../../services/transfer/engine.js');
      run.engine = createTransferEngine(engineSettingsFromConfig(cfg));
    }
    const engine = run.engine;
    if (role !== 'gateway') {
      if (role === 'serve' && cfg.workers.processes > 0) {
        // The byte-moving code runs in child processes: whatever kills one, the gateway and Redis live on.
        const { startSupervisedWorkers } = await import('../worker-supervisor.js');
        run.workers = await startSupervisedWorkers(cfg, { redisUrl, log });
        // The children mark the transfers' connections; this process marks the storage endpoint's own (tagged GET /
        // PUT), so it needs the marking configuration too (status and /metrics here count this process's flows).
        const { configureMarking, markingSettingsOf } = await import('../../services/marking/marking-service.js');
        const marked = await configureMarking(markingSettingsOf(cfg.marking));
        if (marked.warning) log.warn(`marking: ${marked.warning}`);
      } else {
        const { startWorkerPool } = await import('../../workers/start.js');
        run.workers = await startWorkerPool(cfg, { redisUrl, log: (m) => log.info(m), ...(engine ? { engine } : {}) });
      }
      // Checksums run on every byte a worker moves: say which implementation that is (native costs ~10× less CPU).
      const { nativeSumsStatus } = await import('../../services/checksum/native-sums.js');
      const sums = nativeSumsStatus();
      if (sums.adler32 && sums.crc32c) log.info(`checksums: native (${sums.detail})`);
      else log.warn(`checksums: JS fallback, more CPU per GiB (${sums.detail})`);
    }
    if (tls) {
      const { startGateway } = await import('../../gateway/start.js');
      run.gateway = await startGateway(cfg, { redisUrl, tls: { key: tls.key, cert: tls.cert }, ...(engine ? { engine } : {}) });
      // The one line on stdout: scripts and tests read the URL from it.
      ctx.out.write(`cargoport ${role} listening on ${run.gateway.url} (certificate ${tls.certPath})\n`);
    } else {
      ctx.out.write(`cargoport worker running (pool ${cfg.workers.pool}, redis ${redisUrl})\n`);
    }
  } catch (e) {
    // Whatever did start must not outlive a failed start-up; Redis above all.
    await shutdown(cfg, run, log, () => true);
    throw e;
  }
  return runUntilStopped(cfg, run, log, latch, fatal);
}

function roleCommand(role: Role, summary: string): Command {
  return {
    name: role,
    args: '',
    summary,
    options: {},
    optionHelp: [],
    run: (ctx) => runRole(role, ctx),
  };
}

export const serveCommand = roleCommand('serve', 'run the whole port in one process (gateway + workers; embedded Redis unless redis.url is set)');
export const gatewayCommand = roleCommand('gateway', 'run only the HTTPS gateway (scale-out; needs redis.url)');
export const workerCommand = roleCommand('worker', 'run only a worker process (scale-out; needs redis.url)');
