/** Entry used by `cargoport serve` and `cargoport gateway`: build the gateway and listen. */
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { buildGateway, type GatewayDeps } from './server.js';
import { mountStorage } from './storage-mount.js';

export interface RunningGateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startGateway(cfg: Config, ctx: GatewayDeps): Promise<RunningGateway> {
  const { app, closeConnections } = await buildGateway(cfg, {
    ...ctx,
    extensions: [...(ctx.extensions ?? []), (a) => mountStorage(a, cfg)],
  });
  await app.listen({ host: cfg.gateway.host, port: cfg.gateway.port });
  const addr = app.server.address() as AddressInfo;
  const host = cfg.gateway.host === '::' || cfg.gateway.host === '0.0.0.0' ? 'localhost' : cfg.gateway.host;
  return {
    url: cfg.gateway.publicUrl || `https://${host.includes(':') ? `[${host}]` : host}:${addr.port}`,
    port: addr.port,
    async close() {
      await app.close();
      await closeConnections();
    },
  };
}
