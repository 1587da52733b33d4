/** Liveness and readiness: `/healthz` answers while the process serves; `/readyz` also needs Redis. */
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../context.js';

export async function healthRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get('/healthz', { schema: { summary: 'Liveness' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { summary: 'Readiness (Redis reachable)' } }, async (_req, reply) => {
    try {
      await ctx.redis.ping();
      return { status: 'ready' };
    } catch (e) {
      return reply.code(503).type('application/problem+json').send({
        type: 'urn:cargoport:error:CARGO_ERR_REDIS_UNAVAILABLE', title: 'Service Unavailable', status: 503,
        detail: `Redis is not reachable: ${(e as Error).message}`, code: 'CARGO_ERR_REDIS_UNAVAILABLE',
      });
    }
  });
}
