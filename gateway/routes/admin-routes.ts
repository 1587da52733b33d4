/** REST: admin operations and port status (`/api/v1/admin/:op`, `/api/v1/status`). */
import type { FastifyInstance } from 'fastify';
import { ADMIN_OPS, ADMIN_SCOPES, type AdminOp, type AdminScope } from '../../services/jobs/admin-state.js';
import { portStatus } from '../../services/jobs/port-status.js';
import { portStatusSchema, scopeRecordSchema } from '../api-schemas.js';
import { POLLING_LOG_LEVEL, type GatewayContext } from '../context.js';
import { RateLimitStore } from '../../services/jobs/rate-limits.js';
import { RATE_LIMIT_SCOPES, type RateLimitScope } from '../../services/throttle/scoped-rate-limits.js';
import { marking } from '../../services/marking/marking-service.js';

export async function adminRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  // Marking is per process: this is the gateway process's (with `cargoport serve`, its workers' too).
  const status = async () => ({ ...(await portStatus(ctx.redis, ctx.queries, ctx.admin, ctx.runQueue, ctx.cfg.workers.heartbeatMs)), marking: marking().status() });

  app.post<{ Params: { op: AdminOp | 'status' }; Body: { scope?: AdminScope; target?: string } | undefined }>('/admin/:op', {
    schema: {
      summary: 'Admin operation on a scope (port, pool, link, endpoint)',
      params: { type: 'object', required: ['op'], properties: { op: { type: 'string', enum: [...ADMIN_OPS, 'status'] } } },
      body: {
        type: ['object', 'null'], additionalProperties: false,
        properties: { scope: { type: 'string', enum: [...ADMIN_SCOPES] }, target: { type: 'string', minLength: 1, maxLength: 300 } },
      },
      response: { 200: { ...scopeRecordSchema, description: 'the scope record (op status: the port status, as GET /status)' } },
    },
  }, async (req) => {
    ctx.auth.requireAdmin(req);
    if (req.params.op === 'status') return status();
    const rec = await ctx.admin.apply(req.params.op, req.body?.scope ?? 'port', req.body?.target);
    // An operator who (re)starts or resumes an endpoint says it is back: its circuit breaker closes now.
    if (rec.scope === 'endpoint' && rec.state === 'running') await ctx.store.closeEndpointBreaker(rec.target);
    return rec;
  });

  const limits = new RateLimitStore(ctx.redis, ctx.cfg.redis.prefix);
  const limitList = { type: 'array', items: { type: 'object', properties: { scope: { type: 'string' }, target: { type: 'string' }, bytesPerSec: { type: 'integer' } } } };
  app.get('/admin/limits', {
    logLevel: POLLING_LOG_LEVEL,
    schema: { summary: 'Live byte-rate caps (port, link, owner, job), port-wide', response: { 200: limitList } },
  }, async (req) => (ctx.auth.requireAdmin(req), limits.list()));
  app.put<{ Body: { scope: RateLimitScope; target?: string; bytesPerSec: number | null } }>('/admin/limits', {
    schema: {
      summary: 'Set (bytesPerSec) or remove (null) a live byte-rate cap; running transfers follow within one control message',
      body: {
        type: 'object', additionalProperties: false, required: ['scope', 'bytesPerSec'],
        properties: {
          scope: { type: 'string', enum: [...RATE_LIMIT_SCOPES] },
          target: { type: 'string', minLength: 1, maxLength: 300 },
          bytesPerSec: { type: ['integer', 'null'], minimum: 1 },
        },
      },
      response: { 200: limitList },
    },
  }, async (req) => (ctx.auth.requireAdmin(req), limits.set(req.body.scope, req.body.target, req.body.bytesPerSec)));

  // Port-wide figures (no user's URLs or jobs): any identified user may read them.
  app.get('/status', { logLevel: POLLING_LOG_LEVEL, schema: { summary: 'Port status: scopes, workers, queues, transfers, throughput', response: { 200: portStatusSchema } } }, async (req) => (ctx.auth.requireIdentity(req), status()));
}
