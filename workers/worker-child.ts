/**
 * Entry of a worker child process of `cargoport serve` (forked by bin/worker-supervisor.ts): one transfer pool,
 * started and stopped by its parent over IPC (worker-child-protocol.ts). Everything that moves bytes runs here, so
 * whatever kills this process (a library assertion, an out-of-memory, a kill -9) leaves the gateway and the
 * embedded Redis in the parent running; the parent records the crash on the files this process held and forks a
 * new one.
 *
 * If the parent goes away without a word (it was killed), the IPC channel closes: the pool is closed (in-flight
 * transfers requeued) for at most PARENT_GONE_CLOSE_MS, and the process exits. A worker never outlives its serve.
 *
 * Test-only: CARGOPORT_TEST_CRASH_SOURCE=<text> makes any transfer whose source URL contains <text> crash this
 * process with an uncaught exception, as a bug in the byte-moving code would (the config loader ignores
 * CARGOPORT_TEST_* variables; nothing else reads it).
 */
import type { TransferFn } from '../services/transfer/types.js';
import { startWorkerPool, type RunningWorkers } from './start.js';
import type { FromWorkerChild, ToWorkerChild } from './worker-child-protocol.js';

const PARENT_GONE_CLOSE_MS = 5000;

function send(msg: FromWorkerChild, then?: () => void): void {
  if (process.connected) process.send!(msg, undefined, {}, () => then?.());
  else then?.();
}

function crashTriggered(transfer: TransferFn): TransferFn {
  const marker = process.env['CARGOPORT_TEST_CRASH_SOURCE'];
  if (!marker) return transfer;
  return (req, opts) => {
    if (!req.source.includes(marker)) return transfer(req, opts);
    // Thrown outside any promise chain: an uncaught exception ends the process, as undici's assertion did.
    setImmediate(() => {
      throw new Error(`test crash trigger: source ${req.source} contains CARGOPORT_TEST_CRASH_SOURCE`);
    });
    return new Promise(() => {});
  };
}

let running: RunningWorkers | undefined;
let stopping = false;

async function stop(how: 'drain' | 'close', timeoutMs = 0): Promise<never> {
  stopping = true;
  try {
    if (running) await (how === 'drain' ? running.drain(timeoutMs) : running.close());
  } catch (e) {
    send({ op: 'log', level: 'error', msg: `worker ${how} failed: ${(e as Error).message}` });
  }
  process.exit(0);
}

process.on('message', (raw: ToWorkerChild) => {
  if (raw.op === 'start') {
    if (running || stopping) return;
    const log = (msg: string) => send({ op: 'log', level: 'info', msg });
    // A worker child accepts no connections (the gateway serves the storage endpoint): no eBPF marker of its own.
    const cfg = { ...raw.cfg, marking: { ...raw.cfg.marking, ebpfDevices: [] } };
    startWorkerPool(cfg, { redisUrl: raw.redisUrl, workerId: raw.workerId, log, wrapTransfer: crashTriggered }).then(
      (w) => {
        running = w;
        if (stopping) void w.close().finally(() => process.exit(0));
        else send({ op: 'ready', workerId: raw.workerId, queueWorkerId: w.pool.queueWorkerId });
      },
      (e: Error & { code?: string }) => {
        send({ op: 'failed', code: e.code ?? 'CARGO_ERR_WORKER_START', message: e.message }, () => process.exit(1));
      },
    );
  } else if (raw.op === 'drain') {
    void stop('drain', raw.timeoutMs);
  } else if (raw.op === 'close') {
    void stop('close');
  }
});

process.on('disconnect', () => {
  if (stopping) return;
  setTimeout(() => process.exit(1), PARENT_GONE_CLOSE_MS).unref();
  void stop('close');
});

// A signal to the whole process group (Ctrl-C in a terminal, systemd's stop) is the parent's to handle: it drains
// its children. Without a parent, the default: exit.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (!process.connected) process.exit(1);
  });
}
