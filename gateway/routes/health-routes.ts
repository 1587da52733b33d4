/** Liveness and readiness: `/healthz` answers while the process serves; `/readyz` also needs Redis. */
import type { FastifyInstance } from 'fastify';
import { healthSchema, problemSchema } from '../api-schemas.js';
import { POLLING_LOG_LEVEL, type GatewayContext } from '../context.js';
import { replyProblem } from '../problem.js';

export async function healthRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get('/healthz', { logLevel: POLLING_LOG_LEVEL, schema: { summary: 'Liveness', response: { 200: healthSchema } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { logLevel: POLLING_LOG_LEVEL, schema: { summary: 'Readiness (Redis reachable)', response: { 200: healthSchema, 503: problemSchema } } }, async (_req, reply) => {
    try {
      await ctx.redis.ping();
      return { status: 'ready' };
    } catch (e) {
      return replyProblem(reply, { code: 'CARGO_ERR_REDIS_UNAVAILABLE', detail: `Redis is not reachable: ${(e as Error).message}` });
    }
  });
}
