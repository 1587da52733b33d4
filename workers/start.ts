/** Entry used by `cargoport serve` and `cargoport worker`: one transfer pool in this process. */
import type { Config } from '../config/schema.js';
import { createTransferEngine, engineSettingsFromConfig, type TransferEngine } from '../services/transfer/engine.js';
import type { TransferFn } from '../services/transfer/types.js';
import { TransferPool } from './transfer-pool.js';
import { CargoError } from '../errors/cargo-error.js';
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
    // A packed archive's PUT to a cargoport collection, on an upload connection of the engine's pool.
    putPacked: async ({ url, body, headers, signal }) => {
      const u = new URL(url);
      const lent = engine.pool.lendUploadClient(u.origin);
      try {
        const r = await lent.pooled.client.request({ origin: u.origin, path: u.pathname, method: 'PUT', headers, body, signal });
        const text = await r.body.text();
        return { status: r.statusCode, body: text, ...lent.pooled.info };
      } finally {
        lent.release();
      }
    },
    // A small remote source of a packed job, into memory, on the engine's pooled (HTTP/2) connections.
    fetchSource: async ({ url, headers, signal, maxBytes }) => {
      const u = new URL(url);
      await engine.pool.protocolKnown(u.origin);
      const r = await engine.pool.pick(u.origin).client.request({ origin: u.origin, path: u.pathname + u.search, method: 'GET', headers, signal });
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of r.body) {
        n += (c as Buffer).length;
        if (n > maxBytes) {
          r.body.destroy();
          throw new CargoError('CARGO_ERR_SOURCE_CHANGED', `source ${u.origin}${u.pathname} sent more than ${maxBytes} bytes`);
        }
        chunks.push(c as Buffer);
      }
      const lm = r.headers['last-modified'];
      return { status: r.statusCode, body: Buffer.concat(chunks, n), ...(typeof lm === 'string' ? { lastModified: lm } : {}) };
    },
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
