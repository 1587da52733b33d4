/**
 * An optional second TLS listener that offers only HTTP/1.1 (ALPN `http/1.1`) and hands every request to the
 * same Fastify router as the main HTTP/2 listener: same routes, same storage, same errors.
 *
 * Why it exists: some peers upload wrongly over HTTP/2 but correctly over HTTP/1.1, and a client's ALPN offer does
 * not say which peer it is. XRootD 5.5.3's TPC push (libcurl 7.88) sends HEADERS with `content-length: N` and
 * then an empty DATA frame with END_STREAM; nghttp2 must reset such a stream (RFC 9113 §8.1.1), so the push
 * fails. Pointed at this listener, the same push succeeds. Plain HTTP/1.1 clients may use it too.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export interface Http1Listener {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startHttp1Listener(
  app: FastifyInstance, opts: { host: string; port: number; key: Buffer; cert: Buffer },
): Promise<Http1Listener> {
  // Fastify's request handler for servers it did not create (documented as `fastify.routing`).
  const route = (app as unknown as { routing: (req: unknown, res: unknown) => void }).routing;
  const server = createServer({ key: opts.key, cert: opts.cert, ALPNProtocols: ['http/1.1'] }, (req, res) => route(req, res));
  // Bulk uploads can pause longer than Node's default 5 s keep-alive between requests of one client.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 0;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      // Requests still running get the same grace as HTTP/2 sessions, then their sockets go.
      const grace = setTimeout(() => { for (const s of sockets) s.destroy(); }, 2000);
      grace.unref();
      await closed;
      clearTimeout(grace);
    },
  };
}
