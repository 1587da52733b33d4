/**
 * Server-sent events of job, file and endpoint state changes (`GET /api/v1/events[?job=ID]`; endpoint events, the
 * circuit breaker's, carry no job and reach only unfiltered clients). One Redis subscriber
 * per gateway fans out to every client; a client that cannot keep up loses events rather than growing
 * memory (clients re-read state with GET after a gap, as with any SSE stream).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import { ForbiddenError } from '../../services/auth/auth-errors.js';
import type { GatewayContext } from '../context.js';

export async function eventsRoute(app: FastifyInstance, { ctx, subscriber }: { ctx: GatewayContext; subscriber: Redis }): Promise<void> {
  const clients = new Set<{ reply: FastifyReply; job?: string; throughput?: boolean }>();
  let id = 0;
  await subscriber.subscribe(ctx.queries.keys.port('events'));
  subscriber.on('message', (_ch, msg) => {
    if (clients.size === 0) return;
    let job: string | undefined;
    try {
      job = (JSON.parse(msg) as { job?: string }).job;
    } catch {
      return;
    }
    const frame = `id: ${++id}\nevent: state\ndata: ${msg}\n\n`;
    for (const c of clients) {
      if (c.job && c.job !== job) continue;
      // Drop for slow clients instead of buffering without bound.
      if (c.reply.raw.writableLength > 1024 * 1024) continue;
      c.reply.raw.write(frame);
    }
  });
  const keepAlive = setInterval(() => {
    for (const c of clients) c.reply.raw.write(': keep-alive\n\n');
  }, 15_000);
  // `?throughput=1`: once a second, the port's rate and each active link's (the dashboard's plots). Read from the
  // rate windows the workers keep, once per gateway whatever the number of clients, only while one asks.
  let sampling = false;
  const throughput = setInterval(() => {
    const wanted = [...clients].filter((c) => c.throughput && !c.job);
    if (wanted.length === 0 || sampling) return;
    sampling = true;
    void (async () => {
      const slots = await ctx.queries.activeSlots();
      const links = Object.keys(slots.links);
      const [total, ...rates] = await Promise.all([ctx.queries.rate('_all'), ...links.map((l) => ctx.queries.rate(`link:${l}`))]);
      const frame = `event: throughput\ndata: ${JSON.stringify({ t: Date.now(), total: Math.round(total ?? 0), links: Object.fromEntries(links.map((l, i) => [l, Math.round(rates[i] ?? 0)])) })}\n\n`;
      for (const c of wanted) if (c.reply.raw.writableLength <= 1024 * 1024) c.reply.raw.write(frame);
    })().catch(() => undefined).finally(() => (sampling = false));
  }, 1000);
  // preClose: open event streams would otherwise keep the server from closing.
  app.addHook('preClose', async () => {
    clearInterval(keepAlive);
    clearInterval(throughput);
    for (const c of clients) c.reply.raw.end();
  });

  app.get<{ Querystring: { job?: string; throughput?: '1' } }>('/events', {
    schema: {
      summary: 'Server-sent events of job, file and endpoint (circuit breaker) state changes',
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { job: { type: 'string', pattern: '^[0-9a-f-]{36}$' }, throughput: { type: 'string', enum: ['1'], description: 'also a throughput event each second: {t, total, links}' } },
      },
    },
  }, async (req, reply) => {
    // Users watch their own jobs (?job=ID); the unfiltered stream (every job, endpoint events) is for admins.
    const p = ctx.auth.requireIdentity(req);
    if (!p.admin) {
      if (!req.query.job) throw new ForbiddenError('only administrators may watch every job: add ?job=ID of one of your jobs');
      const job = await ctx.queries.getJob(req.query.job);
      if (job.owner !== p.owner) throw new ForbiddenError(`job ${req.query.job} belongs to another user`);
    }
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    reply.raw.write(': cargoport events\n\n');
    const c = { reply, job: req.query.job, throughput: req.query.throughput === '1' };
    clients.add(c);
    req.raw.on('close', () => clients.delete(c));
  });
}
