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
import { clientErrorHandler, type ClientLimits } from './client-limits.js';

export interface Http1Listener {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export interface Http1ListenerOptions {
  host: string;
  port: number;
  key: Buffer;
  cert: Buffer;
  /** The gateway's per-client bounds, shared with the main listener (connections counted, header limit). */
  limits?: ClientLimits;
  /** Extra TLS server options (mutual TLS: requestCert, client CAs; services/auth/client-certs.ts). */
  tls?: { requestCert?: boolean; rejectUnauthorized?: boolean; ca?: string[]; crl?: string[] };
  /** TLS handshake time limit (Node's default: 120 s). */
  handshakeTimeoutMs?: number;
  /** A socket with no traffic for this long is destroyed (0: never). */
  idleTimeoutMs?: number;
}

export async function startHttp1Listener(app: FastifyInstance, opts: Http1ListenerOptions): Promise<Http1Listener> {
  // Fastify's request handler for servers it did not create (documented as `fastify.routing`).
  const route = (app as unknown as { routing: (req: unknown, res: unknown) => void }).routing;
  const server = createServer({
    key: opts.key, cert: opts.cert, ALPNProtocols: ['http/1.1'], ...opts.tls,
    ...(opts.handshakeTimeoutMs ? { handshakeTimeout: opts.handshakeTimeoutMs } : {}),
    ...(opts.limits ? { maxHeaderSize: opts.limits.settings.maxHeaderBytes } : {}),
  }, (req, res) => route(req, res));
  // Bulk uploads can pause longer than Node's default 5 s keep-alive between requests of one client.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 0;
  if (opts.idleTimeoutMs) {
    server.setTimeout(opts.idleTimeoutMs); // Node destroys the socket when nobody listens for 'timeout'
    server.keepAliveTimeout = Math.min(server.keepAliveTimeout, opts.idleTimeoutMs);
  }
  // Our answer to parser errors (431 for an oversized header) instead of Node's, which resets the connection
  // while the client is still sending.
  server.on('clientError', clientErrorHandler(opts.limits));
  opts.limits?.watch(server);
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
