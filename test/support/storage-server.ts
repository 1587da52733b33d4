/**
 * A real storage endpoint for tests: Fastify 5 over HTTP/2 + TLS (HTTP/1.1 allowed), as the lead's gateway
 * builds it, with the storage plugin under a prefix and the Tape REST API, on 127.0.0.1:0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { testTls } from './tls.js';
import { createPortStorage, type PortStorage } from '../../services/storage/port-storage.js';
import { storagePlugin, registerTapeRest } from '../../gateway/storage/storage-plugin.js';
import type { StorageEndpointOptions } from '../../gateway/storage/storage-options.js';
import { allowAll } from '../../gateway/storage/access-decision.js';
import type { ReceptionStage } from '../../services/storage/reception-stage.js';
import { startHttp1Listener, type Http1Listener } from '../../gateway/http1-listener.js';
import { closeHttp2SessionsOnShutdown } from '../../gateway/http2-session-shutdown.js';

export interface TestStorageServer {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  app: FastifyInstance<any, any, any, any, any>;
  /** https://127.0.0.1:<port> */
  origin: string;
  /** origin + prefix */
  base: string;
  port: number;
  /** https://127.0.0.1:<port> of the HTTP/1.1-only listener, when asked for (`http1: true`). */
  http1Origin?: string;
  storage: PortStorage;
  dir: string;
  permanentDir: string;
  close(): Promise<void>;
}

export interface TestStorageServerOptions extends Partial<Omit<StorageEndpointOptions, 'storage'>> {
  prefix?: string;
  nearline?: { recallLatencyMs: number; failRecall?: (path: string) => boolean };
  bufferQuotaBytes?: number;
  sitename?: string;
  host?: string;
  /** Also start the HTTP/1.1-only listener (gateway.http1Port). */
  http1?: boolean;
  receptionStages?: ReceptionStage[];
  /** Use (and keep on close) this directory instead of a fresh one: a restart of the same storage. */
  dir?: string;
}

export async function startStorageServer(o: TestStorageServerOptions = {}): Promise<TestStorageServer> {
  const tls = testTls();
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'cargoport-storage-'));
  const permanentDir = join(dir, 'permanent');
  const storage = await createPortStorage({
    permanentDir,
    bufferDir: join(dir, 'buffer'),
    bufferQuotaBytes: o.bufferQuotaBytes ?? 8 * 1024 ** 3,
    nearline: o.nearline,
    receptionStages: o.receptionStages,
  });
  const app = Fastify({
    http2: true,
    https: { allowHTTP1: true, key: tls.key, cert: tls.cert, maxSessionMemory: 256 },
    logger: process.env.CARGOPORT_TEST_LOG ? { level: process.env.CARGOPORT_TEST_LOG } : false,
  });
  closeHttp2SessionsOnShutdown(app as unknown as FastifyInstance);
  const prefix = o.prefix ?? '/data';
  const { prefix: _p, nearline: _n, bufferQuotaBytes: _b, sitename, host, http1: wantHttp1, dir: _d, receptionStages: _r, ...rest } = o;
  // Tests of the storage endpoint itself run without authorisation unless they pass an `authorize` (the plugin's
  // own default denies everything beyond public reads).
  const authorize = rest.authorize ?? allowAll;
  await app.register(storagePlugin, { prefix, storage, ...rest, authorize });
  await registerTapeRest(app, { storage, sitename: sitename ?? 'cargoport-test', storagePrefix: prefix, authorize });
  await app.listen({ host: host ?? '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const origin = `https://${host === '::1' ? '[::1]' : '127.0.0.1'}:${port}`;
  let http1: Http1Listener | undefined;
  if (wantHttp1) http1 = await startHttp1Listener(app as unknown as FastifyInstance, { host: host ?? '127.0.0.1', port: 0, key: tls.key, cert: tls.cert });
  return {
    app,
    origin,
    base: origin + prefix,
    port,
    ...(http1 ? { http1Origin: `https://${host === '::1' ? '[::1]' : '127.0.0.1'}:${http1.port}` } : {}),
    storage,
    dir,
    permanentDir,
    async close() {
      await http1?.close();
      await app.close();
      if (!o.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
