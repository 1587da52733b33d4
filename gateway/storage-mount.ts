/**
 * Mounts the port's storage on the gateway: the namespace (WebDAV subset + HTTP-TPC) under storage.urlPrefix
 * and the WLCG Tape REST API, over a PortStorage built from the configuration (permanent backend + buffer).
 * HTTP-TPC copies run in the gateway process on the process's transfer engine (built from the same configuration
 * as the workers', endpoint settings included).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { createPortStorage } from '../services/storage/port-storage.js';
import type { TransferEngine } from '../services/transfer/engine.js';
import type { GatewayAuth } from './auth.js';
import { shareRequestHandler } from './share-links.js';
import { registerTapeRest, storagePlugin } from './storage/storage-plugin.js';
import type { Processing } from '../services/processing/processing-service.js';
import { processingReceptionStage } from './storage/processing-reception.js';
import { configureMarking, markingSettingsOf } from '../services/marking/marking-service.js';

/**
 * `engine`: the process's transfer engine; its connections resolve names through the outbound address policy
 * (engineSettingsFromConfig), so HTTP-TPC connects are held to it on the addresses actually connected to.
 */
export async function mountStorage(app: FastifyInstance, cfg: Config, engine: TransferEngine, auth: GatewayAuth, processing?: Processing): Promise<void> {
  const permanentDir = cfg.storage.root || join(cfg.dataDir, 'storage');
  const bufferDir = cfg.storage.bufferRoot || join(cfg.dataDir, 'buffer');
  await mkdir(permanentDir, { recursive: true });
  await mkdir(bufferDir, { recursive: true });
  const storage = await createPortStorage({
    permanentDir,
    bufferDir,
    bufferQuotaBytes: cfg.storage.bufferQuotaBytes,
    nearline: cfg.storage.backend === 'nearline' ? { recallLatencyMs: cfg.storage.nearlineRecallMs } : undefined,
    // The operator's processing rules for the storage endpoint (processing.rules) run on every upload.
    ...(processing?.rules.length ? { receptionStages: [processingReceptionStage(processing, { maxOutputBytes: cfg.storage.bufferQuotaBytes })] } : {}),
  });
  const marked = await configureMarking(markingSettingsOf(cfg.marking));
  if (marked.warning) app.log.warn(`marking: ${marked.warning}`);
  await app.register(storagePlugin, {
    prefix: cfg.storage.urlPrefix,
    storage,
    publicPrefixes: cfg.storage.publicPrefixes,
    authorize: auth.storageAuthorize,
    tpc: { engine, addressPolicy: auth.addressPolicy },
    uploadIdleTimeoutMs: cfg.storage.uploadIdleTimeoutSec * 1000,
    shareRequest: shareRequestHandler(auth),
    downloadLimiter: auth.downloadLimiter,
    ...(cfg.gateway.publicUrl ? { publicUrl: cfg.gateway.publicUrl } : {}),
    packed: { maxMembers: cfg.processing.tarMaxMembers, maxMemberBytes: cfg.processing.tarMaxMemberBytes, maxNameBytes: cfg.processing.tarMaxNameBytes },
  });
  await registerTapeRest(app, {
    storage,
    sitename: cfg.storage.sitename,
    storagePrefix: cfg.storage.urlPrefix,
    authorize: auth.storageAuthorize,
    publicBaseUrl: cfg.gateway.publicUrl ? `${cfg.gateway.publicUrl}/tape/v1` : undefined,
  });
}
