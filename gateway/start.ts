/** Entry used by `cargoport serve` and `cargoport gateway`: build the gateway and listen. */
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { buildGateway, type GatewayDeps } from './server.js';
import { mountStorage } from './storage-mount.js';
import type { ClientLimits } from './client-limits.js';
import { startHttp1Listener, type Http1Listener } from './http1-listener.js';

export interface RunningGateway {
  url: string;
  port: number;
  /** Port of the HTTP/1.1-only listener when `gateway.http1Port` enables it. */
  http1Port?: number;
  /** Per-client bounds and their counters (connections, requests in flight, refusals). */
  limits: ClientLimits;
  close(): Promise<void>;
}

export async function startGateway(cfg: Config, ctx: GatewayDeps): Promise<RunningGateway> {
  const { app, limits, closeConnections } = await buildGateway(cfg, {
    ...ctx,
    extensions: [...(ctx.extensions ?? []), (a, c) => mountStorage(a, cfg, c.auth)],
  });
  await app.listen({ host: cfg.gateway.host, port: cfg.gateway.port });
  let http1: Http1Listener | undefined;
  if (cfg.gateway.http1Port >= 0) {
    try {
      http1 = await startHttp1Listener(app, {
        host: cfg.gateway.host === 'localhost' ? '127.0.0.1' : cfg.gateway.host, port: cfg.gateway.http1Port, key: ctx.tls.key, cert: ctx.tls.cert,
        limits, handshakeTimeoutMs: cfg.gateway.tlsHandshakeTimeoutMs, idleTimeoutMs: cfg.gateway.idleTimeoutSec * 1000,
      });
    } catch (e) {
      await app.close();
      await closeConnections();
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
    },
  };
}
