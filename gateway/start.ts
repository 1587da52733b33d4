/** Entry used by `cargoport serve` and `cargoport gateway`: build the gateway and listen. */
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { buildGateway, type GatewayDeps } from './server.js';
import { mountStorage } from './storage-mount.js';
import type { ClientLimits } from './client-limits.js';
import { startHttp1Listener, type Http1Listener } from './http1-listener.js';
import { clientCertTlsOptions } from '../services/auth/client-certs.js';
import { createTransferEngine, engineSettingsFromConfig, type TransferEngine } from '../services/transfer/engine.js';

export interface RunningGateway {
  url: string;
  port: number;
  /** Port of the HTTP/1.1-only listener when `gateway.http1Port` enables it. */
  http1Port?: number;
  /** Per-client bounds and their counters (connections, requests in flight, refusals). */
  limits: ClientLimits;
  close(): Promise<void>;
}

/**
 * `engine`: the process's transfer engine (serve shares its workers' one); a gateway-only process builds its own from
 * `cfg`, endpoint settings included, and closes it with the gateway.
 */
export async function startGateway(cfg: Config, ctx: GatewayDeps & { engine?: TransferEngine }): Promise<RunningGateway> {
  const { engine: given, ...deps } = ctx;
  const engine = given ?? createTransferEngine(engineSettingsFromConfig(cfg));
  const closeOwnEngine = async (): Promise<void> => {
    if (!given) await engine.close();
  };
  let built: Awaited<ReturnType<typeof buildGateway>>;
  try {
    built = await buildGateway(cfg, {
      ...deps,
      extensions: [...(deps.extensions ?? []), (a, c) => mountStorage(a, cfg, engine, c.auth, c.processing)],
    });
  } catch (e) {
    await closeOwnEngine();
    throw e;
  }
  const { app, limits, closeConnections } = built;
  // Accepted connections are announced on the engine's connection events, beside the ones it opens (marking and
  // per-connection accounting subscribe there once for both directions).
  const unwatch = [engine.connections.watchServer(app.server as unknown as Parameters<typeof engine.connections.watchServer>[0])];
  await app.listen({ host: cfg.gateway.host, port: cfg.gateway.port });
  let http1: Http1Listener | undefined;
  if (cfg.gateway.http1Port >= 0) {
    try {
      http1 = await startHttp1Listener(app, {
        host: cfg.gateway.host === 'localhost' ? '127.0.0.1' : cfg.gateway.host, port: cfg.gateway.http1Port, key: ctx.tls.key, cert: ctx.tls.cert,
        tls: clientCertTlsOptions(built.ctx.auth.clientCerts), limits, handshakeTimeoutMs: cfg.gateway.tlsHandshakeTimeoutMs, idleTimeoutMs: cfg.gateway.idleTimeoutSec * 1000,
      });
      unwatch.push(engine.connections.watchServer(http1.server));
    } catch (e) {
      await app.close();
      await closeConnections();
      await closeOwnEngine();
      throw e;
    }
  }
  const addr = app.server.address() as AddressInfo;
  const host = cfg.gateway.host === '::' || cfg.gateway.host === '0.0.0.0' ? 'localhost' : cfg.gateway.host;
  return {
    url: cfg.gateway.publicUrl || `https://${host.includes(':') ? `[${host}]` : host}:${addr.port}`,
    port: addr.port,
    ...(http1 ? { http1Port: http1.port } : {}),
    limits,
    async close() {
      await http1?.close();
      await app.close();
      await closeConnections();
      for (const stop of unwatch) stop();
      await closeOwnEngine();
    },
  };
}
