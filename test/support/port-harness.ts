/**
 * Runs a real port for integration tests: the gateway on an ephemeral TLS port and worker pools, all on the
 * shared test Redis under a unique {prefix}; plus an HTTP/2 API client that trusts the test certificate.
 * Authorisation is open (`auth.insecureOpen`) and loopback peers allowed unless the overrides say otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { startGateway, type RunningGateway } from '../../gateway/start.js';
import { startWorkerPool, type RunningWorkers } from '../../workers/start.js';
import { testTls } from './tls.js';
import type { ExportClock } from '../../services/exports/export-clock.js';
import { dropPrefix, TEST_REDIS_URL, uniquePrefix } from './redis.js';

export interface Harness {
  cfg: Config;
  gateway: RunningGateway;
  workers: RunningWorkers[];
  redis: Redis;
  api<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Record<string, unknown> }>;
  addWorker(overrides?: Record<string, unknown>): Promise<RunningWorkers>;
  waitJob(jobId: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startHarness(overrides: Record<string, unknown> = {}, opts: { workers?: number; exportClock?: ExportClock } = {}): Promise<Harness> {
  const prefix = uniquePrefix();
  const tls = testTls();
  const dataDir = mkdtempSync(join(tmpdir(), 'cargoport-port-'));
  const merge = (o: Record<string, unknown>) => {
    const base: Record<string, unknown> = {
      logLevel: 'warn',
      dataDir: dataDir,
      gateway: { host: '127.0.0.1', port: 0 },
      redis: { url: TEST_REDIS_URL, prefix },
      transfer: { caFile: tls.certPath },
      workers: { heartbeatMs: 200, lockDurationMs: 4000 },
      // The port's own tests are about transfers, not authorisation: anyone may do anything (explicitly), and the
      // loopback peers the tests start are allowed. test/integration/auth-*.test.ts run with this off.
      auth: { insecureOpen: true, allowAddresses: ['loopback'] },
    };
    for (const [k, v] of Object.entries(o)) base[k] = typeof v === 'object' && v && !Array.isArray(v) ? { ...(base[k] as object), ...v } : v;
    return base;
  };
  const cfg = loadConfig({ env: {}, overrides: merge(overrides) });
  const gateway = await startGateway(cfg, { redisUrl: TEST_REDIS_URL, tls, ...(opts.exportClock ? { exportClock: opts.exportClock } : {}) });
  const workers: RunningWorkers[] = [];
  const addWorker = async (o: Record<string, unknown> = {}) => {
    const wcfg = loadConfig({ env: {}, overrides: merge({ ...overrides, ...o }) });
    const w = await startWorkerPool(wcfg, { redisUrl: TEST_REDIS_URL });
    workers.push(w);
    return w;
  };
  for (let i = 0; i < (opts.workers ?? 1); i++) await addWorker();
  const agent = new Agent({ allowH2: true, connect: { ca: tls.cert } });
  const redis = new Redis(TEST_REDIS_URL);
  const api: Harness['api'] = async (method, path, body, headers = {}) => {
    const res = await request(`${gateway.url}${path}`, {
      method: method as 'GET', dispatcher: agent,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.statusCode, body: parsed as never, headers: res.headers };
  };
  return {
    cfg, gateway, workers, redis, api, addWorker,
    async waitJob(jobId, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await api<Record<string, unknown>>('GET', `/api/v1/jobs/${jobId}`);
        if (r.body['state'] !== 'ACTIVE') return r.body;
        if (Date.now() > deadline) throw new Error(`job ${jobId} still ACTIVE after ${timeoutMs} ms: ${JSON.stringify(r.body['counts'])}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    },
    async close() {
      await Promise.allSettled(workers.map((w) => w.close()));
      await gateway.close();
      await agent.close();
      await dropPrefix(redis, prefix);
      redis.disconnect();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
