/** Entry used by `cargoport serve` and `cargoport worker`: one transfer pool in this process. */
import type { Config } from '../config/schema.js';
import { closeTransferClients, configureTransferEndpoint, configureTransferEngine, engineClientPool, transferFile } from '../services/transfer/engine.js';
import { inspectExistingDestination } from '../services/transfer/existing-destination.js';
import { loadEndpointSettings, type EndpointSettings } from '../services/transfer/connect/endpoint-settings.js';
import { setEndpointCopyMode } from '../services/transfer/tpc/third-party-copy.js';
import { readFileSync } from 'node:fs';
import type { TransferFn } from '../services/transfer/types.js';
import { TransferPool } from './transfer-pool.js';
import { configureMarking, markingSettingsOf } from '../services/marking/marking-service.js';
import { AddressPolicy, policyLookup } from '../services/auth/address-policy.js';

export interface RunningWorkers {
  pool: TransferPool;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWorkerPool(cfg: Config, ctx: { redisUrl: string; log?: (m: string) => void; workerId?: string; transfer?: TransferFn }): Promise<RunningWorkers> {
  // Validated before anything is configured: a bad file stops the start with the engine left as it was.
  const endpoints = cfg.transfer.endpointsFile ? loadEndpointSettings(cfg.transfer.endpointsFile) : new Map<string, EndpointSettings>();
  const marked = await configureMarking(markingSettingsOf(cfg.marking));
  if (marked.warning) ctx.log?.(`marking: ${marked.warning}`);
  await configureTransferEngine({
    rejectUnauthorized: !cfg.transfer.insecureTls,
    ca: cfg.transfer.caFile ? readFileSync(cfg.transfer.caFile) : undefined,
    connections: cfg.transfer.connections,
    streams: cfg.transfer.streams,
    stall: { idleMs: cfg.transfer.stallTimeoutSec * 1000 },
    checkpointIntervalMs: cfg.transfer.checkpointIntervalMs,
    // Every name a transfer connects to is resolved through the outbound address policy (DNS rebinding after
    // submission cannot reach a refused address); IP literals were checked at submission.
    lookup: policyLookup(new AddressPolicy(cfg.auth.allowAddresses)),
  });
  for (const [origin, { copyMode, ...opts }] of endpoints) {
    await configureTransferEndpoint(origin, opts);
    setEndpointCopyMode(origin, copyMode);
  }
  const pool = new TransferPool(cfg, {
    redisUrl: ctx.redisUrl, transfer: ctx.transfer ?? transferFile, log: ctx.log,
    ...(ctx.workerId !== undefined ? { workerId: ctx.workerId } : {}),
    inspectDestination: (q, signal) => inspectExistingDestination(engineClientPool(), q, signal),
  });
  await pool.start();
  return {
    pool,
    async drain(timeoutMs) {
      await pool.drain(timeoutMs);
      await closeTransferClients();
    },
    async close() {
      await pool.close();
      await closeTransferClients();
    },
  };
}
