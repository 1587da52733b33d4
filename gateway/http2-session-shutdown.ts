/**
 * HTTP/2 clients keep sessions open, and a server's close() waits for them (Fastify's http2SessionTimeout, 72 s),
 * or forever when a peer leaves a stream half-finished. On close: GOAWAY to every session (in-flight requests
 * finish), and after a grace period the stragglers are destroyed, so close() always settles.
 */
import type { Http2Session } from 'node:http2';
import type { FastifyInstance } from 'fastify';

export function closeHttp2SessionsOnShutdown(app: FastifyInstance, graceMs = 2000): void {
  const sessions = new Set<Http2Session>();
  app.server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  app.addHook('preClose', async () => {
    if (sessions.size === 0) return;
    // Referenced on purpose: if only a stuck session is left, the timer is what lets close() finish.
    const grace = setTimeout(() => {
      for (const s of sessions) s.destroy();
    }, graceMs);
    for (const s of sessions) {
      s.once('close', () => {
        if (sessions.size === 0) clearTimeout(grace);
      });
      s.close();
    }
  });
}
