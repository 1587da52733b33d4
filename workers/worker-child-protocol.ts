/**
 * Messages between `cargoport serve` (the supervisor) and its worker child processes (worker-child.ts), over the
 * IPC channel of child_process.fork. The configuration travels resolved, so a child runs exactly what its parent
 * loaded (file + environment), whatever its own environment says.
 */
import type { Config } from '../config/schema.js';

export type ToWorkerChild =
  /** Start the transfer pool under this worker id (the supervisor knows it, to find the files a dead child held). */
  | { op: 'start'; cfg: Config; redisUrl: string; workerId: string }
  /** Graceful stop: take nothing new, finish or requeue in-flight transfers within timeoutMs, then exit 0. */
  | { op: 'drain'; timeoutMs: number }
  /** Stop now: abort and requeue in-flight transfers (with their resume offsets), then exit 0. */
  | { op: 'close' };

export type FromWorkerChild =
  /** queueWorkerId: the BullMQ worker's id, whose run-queue entries the supervisor releases if this child dies. */
  | { op: 'ready'; workerId: string; queueWorkerId: string }
  | { op: 'failed'; code: string; message: string }
  | { op: 'log'; level: 'info' | 'warn' | 'error'; msg: string };
