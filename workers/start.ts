/** Entry used by `cargoport serve` and `cargoport worker`: one transfer pool in this process. */
import type { Config } from '../config/schema.js';
import { createTransferEngine, engineSettingsFromConfig, type TransferEngine } from '../services/transfer/engine.js';
import type { TransferFn } from '../services/transfer/types.js';
import { TransferPool } from './transfer-pool.js';
import { configureMarking, markingSettingsOf } from '../services/marking/marking-service.js';
import { createProcessing } from '../services/processing/processing-service.js';

export interface RunningWorkers {
  pool: TransferPool;
  /** The engine the pool's transfers run on (given, or built from the config). */
  engine: TransferEngine;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the worker pool on `ctx.engine` (the process's one transfer engine, built by `serve` and shared with the
 * gateway), or on an engine of its own built from `cfg` — which it then also closes.
 */
export async function startWorkerPool(
  cfg: Config,
  ctx: {
    redisUrl: string; log?: (m: string) => void; engine?: TransferEngine; workerId?: string;
    /** Wraps the engine's transfer (serve's worker children: the test-only crash trigger). */
    wrapTransfer?: (t: TransferFn) => TransferFn;
  },
): Promise<RunningWorkers> {
  // Settings (the endpoints file above all) are validated before anything starts: a bad file stops the start.
  const settings = ctx.engine ? undefined : engineSettingsFromConfig(cfg);
  const marked = await configureMarking(markingSettingsOf(cfg.marking));
  if (marked.warning) ctx.log?.(`marking: ${marked.warning}`);
  // Stages, site hooks and the operator's rules: a bad processing config stops the start too.
  const processing = await createProcessing(cfg);
  const engine = ctx.engine ?? createTransferEngine(settings);
  const closeOwnEngine = async (): Promise<void> => {
    await processing.close();
    if (!ctx.engine) await engine.close();
  };
  const pool = new TransferPool(cfg, {
    redisUrl: ctx.redisUrl, transfer: ctx.wrapTransfer ? ctx.wrapTransfer(engine.transfer) : engine.transfer, log: ctx.log,
    ...(ctx.workerId !== undefined ? { workerId: ctx.workerId } : {}),
    inspectDestination: (q, signal) => engine.inspectDestination(q, signal),
    processing,
  });
  await pool.start();
  return {
    pool,
    engine,
    async drain(timeoutMs) {
      await pool.drain(timeoutMs);
      await closeOwnEngine();
    },
    async close() {
      await pool.close();
      await closeOwnEngine();
    },
  };
}
