/**
 * Builds the gateway: one Fastify server speaking HTTP/2 and HTTP/1.1 over TLS (ALPN), with the REST API
 * under /api/v1, admin operations, status, SSE events, Prometheus metrics, OpenAPI docs and health checks.
 * Thin by design: routes validate with JSON schemas and call services.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { CargoError } from '../errors/cargo-error.js';
import { AdminStateStore } from '../services/jobs/admin-state.js';
import { JobStore } from '../services/jobs/job-store.js';
import { TRANSFER_QUEUE } from '../services/jobs/queues.js';
import { connectRedis, redisOptionsFromUrl } from '../services/jobs/redis-connection.js';
import { buildGatewayAuth, installAuthHook, redactUrl } from './auth.js';
import { ClientLimits, clientErrorHandler, installRequestLimits } from './client-limits.js';
import type { GatewayContext } from './context.js';
import { createProcessing } from '../services/processing/processing-service.js';
import { SubmissionAuthoriser } from './job-authorisation.js';
import { closeHttp2SessionsOnShutdown } from './http2-session-shutdown.js';
import { clientCertTlsOptions } from '../services/auth/client-certs.js';
import { pathOf, replyProblem, sendProblem } from './problem.js';
import { adminRoutes } from './routes/admin-routes.js';
import { collectOpenApi, docsRoute } from './routes/docs-route.js';
import { eventsRoute } from './routes/events-route.js';
import { healthRoutes } from './routes/health-routes.js';
import { jobsRoutes } from './routes/jobs-routes.js';
import { metricsRoute } from './routes/metrics-route.js';
import { probeRoutes } from './routes/probe-routes.js';
import { shareRoutes } from './share-links.js';
import { SubmissionExchanges } from './token-exchange-submission.js';
import { ShareLinks } from '../services/auth/share-links.js';
import { ShareStore } from '../services/auth/share-store.js';
import { uiRoute } from './routes/ui-route.js';
import { exportsRoutes } from './routes/exports-routes.js';
import { submitJob } from './job-submission.js';
import { manifestFetcher } from './manifest-fetch.js';
import { ExportService } from '../services/exports/export-service.js';
import type { ExportClock } from '../services/exports/export-clock.js';

export interface GatewayDeps {
  redisUrl: string;
  tls: { key: Buffer; cert: Buffer };
  /** Extra plugins mounted on the same server (the storage endpoint, Tape REST). */
  extensions?: Array<(app: FastifyInstance, ctx: GatewayContext) => Promise<void>>;
  /** The clock export schedules run on (tests: a fast clock; default the wall clock). */
  exportClock?: ExportClock;
}

const SESSION_CLOSE_GRACE_MS = 2000;

export async function buildGateway(cfg: Config, deps: GatewayDeps): Promise<{ app: FastifyInstance; ctx: GatewayContext; limits: ClientLimits; closeConnections(): Promise<void> }> {
  const limits = new ClientLimits({
    maxConnections: cfg.gateway.maxConnectionsPerClient,
    maxRequests: cfg.gateway.maxRequestsPerClient,
    maxHeaderBytes: cfg.gateway.maxHeaderBytes,
  });
  const idleMs = cfg.gateway.idleTimeoutSec * 1000;
  // Before Redis: a configuration error (issuers, local areas, allow-list, client CAs) must stop start-up with
  // nothing open. Before the server: its TLS options carry the client-certificate CAs (mutual TLS).
  const auth = buildGatewayAuth(cfg);
  const app = Fastify({
    http2: true,
    // maxSessionMemory (MB): Node's default of 10 refuses streams (ENHANCE_YOUR_CALM) when many transfers
    // share one HTTP/2 connection with large windows.
    // handshakeTimeout: Node's default (120 s) let 10,000 half-open ClientHellos sit for two minutes each.
    // maxHeaderListSize: advertised so compliant clients refuse locally; a request over it is answered 431.
    https: {
      allowHTTP1: true, key: deps.tls.key, cert: deps.tls.cert, maxSessionMemory: 256,
      handshakeTimeout: cfg.gateway.tlsHandshakeTimeoutMs,
      settings: { maxHeaderListSize: cfg.gateway.maxHeaderBytes },
      ...clientCertTlsOptions(auth.clientCerts),
    },
    // Idle connections: Node destroys an HTTP/2 session or HTTP/1.1 socket with no traffic for connectionTimeout
    // (server.setTimeout); Fastify's http2SessionTimeout closes idle sessions gracefully at the same time.
    connectionTimeout: idleMs,
    http2SessionTimeout: idleMs,
    clientErrorHandler: clientErrorHandler(limits),
    bodyLimit: cfg.gateway.bodyLimitBytes,
    // Request lines without the token of a share link opened as ?authz=… (gateway/auth.ts queryToken).
    logger: cfg.logLevel === 'silent' ? false : {
      level: cfg.logLevel,
      serializers: {
        req: (r: { method: string; url: string; hostname?: string; ip?: string; socket?: { remotePort?: number } }) => ({
          method: r.method, url: redactUrl(r.url), hostname: r.hostname, remoteAddress: r.ip, remotePort: r.socket?.remotePort,
        }),
      },
    },
    return503OnClosing: true,
    // Unknown fields are errors, types are never coerced: a client learns exactly what is wrong.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  }) as unknown as FastifyInstance;

  // Hooks and rules are checked here too: a bad processing config stops start-up (zstd threads start on first use).
  const processing = await createProcessing(cfg);
  const redis: Redis = connectRedis(deps.redisUrl, 'client');
  const subscriber: Redis = connectRedis(deps.redisUrl, 'worker');
  const runQueue = new Queue(TRANSFER_QUEUE, { connection: redisOptionsFromUrl(deps.redisUrl, 'client') as ConnectionOptions, prefix: cfg.redis.prefix });
  const store = new JobStore(redis, cfg.redis.prefix);
  const submissions = new SubmissionAuthoriser(auth);
  const exportsService = new ExportService({
    redis, prefix: cfg.redis.prefix, connection: redisOptionsFromUrl(deps.redisUrl, 'worker') as ConnectionOptions, queries: store.queries,
    // Runs submit as their owner through the same path as POST /api/v1/jobs.
    submit: (principal, raw) => submitJob({ cfg, queries: store.queries, store, submissions, processing }, principal, raw),
    localAreas: auth.localAreas, fetchText: manifestFetcher(cfg, auth.addressPolicy), maxFilesPerJob: cfg.jobs.maxFilesPerJob,
    runWorker: cfg.exports.runTicks, historyRuns: cfg.exports.historyRuns, pollMs: cfg.exports.pollMs,
    ...(deps.exportClock ? { clock: deps.exportClock } : {}),
    onError: (e) => app.log.warn({ err: e }, 'exports scheduler'),
  });
  const ctx: GatewayContext = {
    cfg,
    redis,
    store,
    queries: store.queries,
    admin: new AdminStateStore(redis, cfg.redis.prefix),
    runQueue,
    auth,
    submissions,
    exports: exportsService,
    processing,
  };
  const exchanges = SubmissionExchanges.fromConfig(cfg, redis);
  if (exchanges) {
    ctx.exchanges = exchanges;
    app.addHook('onClose', async () => exchanges.close());
  }

  if (auth.shareKey) auth.shares = new ShareLinks(new ShareStore(redis, cfg.redis.prefix), auth.shareKey, cfg.auth.shareMaxValiditySec);

  closeHttp2SessionsOnShutdown(app, SESSION_CLOSE_GRACE_MS);
  // The HTTP/1.1 fallback of the HTTP/2 server reads its header limit from the server object (Node's default is 16 KiB).
  (app.server as unknown as { maxHeaderSize: number }).maxHeaderSize = cfg.gateway.maxHeaderBytes;
  limits.watch(app.server);
  installRequestLimits(app, limits);

  installAuthHook(app, auth);
  app.setErrorHandler((err, req, reply) => {
    // Fastify's own 413 says only "too large": name the setting and its value.
    if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      err = new CargoError('CARGO_ERR_BODY_TOO_LARGE', `request body larger than gateway.bodyLimitBytes (${cfg.gateway.bodyLimitBytes} bytes)`, {
        field: 'body', limit: { key: 'gateway.bodyLimitBytes', max: cfg.gateway.bodyLimitBytes },
      });
    }
    return sendProblem(reply, req, err);
  });
  app.setNotFoundHandler((req, reply) =>
    replyProblem(reply, { code: 'CARGO_ERR_NO_ROUTE', detail: `no route for ${req.method} ${pathOf(req.url, 200)}` }),
  );
  const doc = collectOpenApi(app);
  await app.register(healthRoutes, { ctx });
  await app.register(metricsRoute, { ctx });
  await app.register(jobsRoutes, { ctx, prefix: '/api/v1' });
  await app.register(adminRoutes, { ctx, prefix: '/api/v1' });
  await app.register(eventsRoute, { ctx, subscriber, prefix: '/api/v1' });
  await app.register(probeRoutes, { ctx });
  await app.register(shareRoutes, { ctx, prefix: '/api/v1' });
  await app.register(exportsRoutes, { ctx, prefix: '/api/v1' });
  for (const ext of deps.extensions ?? []) await ext(app, ctx);
  await app.register(docsRoute, { doc });
  await app.register(uiRoute);

  return {
    app,
    ctx,
    limits,
    async closeConnections() {
      await exportsService.close();
      await runQueue.close();
      subscriber.disconnect();
      redis.disconnect();
      await processing.close();
    },
  };
}
