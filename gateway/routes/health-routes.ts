/** Liveness and readiness: `/healthz` answers while the process serves; `/readyz` also needs Redis. */
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../context.js';
import { replyProblem } from '../problem.js';

export async function healthRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get('/healthz', { schema: { summary: 'Liveness' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { summary: 'Readiness (Redis reachable)' } }, async (_req, reply) => {
    try {
      await ctx.redis.ping();
      return { status: 'ready' };
    } catch (e) {
      return replyProblem(reply, { code: 'CARGO_ERR_REDIS_UNAVAILABLE', detail: `Redis is not reachable: ${(e as Error).message}` });
    }
  });
}
