/**
 * HTTP/2 clients keep sessions open, and a server's close() waits for them (Fastify's http2SessionTimeout, 72 s),
 * or forever when a peer leaves a stream half-finished. On close: GOAWAY to every session (in-flight requests
 * finish), and after a grace period the stragglers are destroyed, so close() always settles.
 */
import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export function closeHttp2SessionsOnShutdown(app: FastifyInstance, graceMs = 2000): void {
  const sessions = new Set<Http2Session>();
  // Every TLS connection too: one that negotiated HTTP/1.1 (allowHTTP1), or none, is no session, and a client that
  // keeps it open (keep-alive, or a handshake left idle) would hold server.close() for ever.
  const sockets = new Set<Socket>();
  app.server.on('secureConnection', (sock: Socket) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });
  app.server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  app.addHook('preClose', async () => {
    if (sessions.size === 0 && sockets.size === 0) return;
    // Referenced on purpose: if only a stuck connection is left, the timer is what lets close() finish.
    const grace = setTimeout(() => {
      for (const s of sessions) s.destroy();
      for (const sock of sockets) sock.destroy();
    }, graceMs);
    app.server.once('close', () => clearTimeout(grace));
    for (const s of sessions) s.close();
  });
}
