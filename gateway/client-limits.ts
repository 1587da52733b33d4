/**
 * Per-client bounds of the gateway, shared by its listeners (the HTTP/2 + HTTP/1.1 one and the HTTP/1.1-only one):
 * - connections per client address: one over `maxConnections` is closed as it arrives, before its TLS handshake
 *   costs anything (a client that opens thousands cannot take the file descriptors and memory of everyone else);
 * - requests in flight per client address (HTTP/2 streams and HTTP/1.1 requests alike): one over `maxRequests`
 *   is answered 429 CARGO_ERR_CLIENT_BUSY with Retry-After;
 * - request header size: the HTTP/1.1 parsers stop at `maxHeaderBytes` (answered 431 by `clientErrorHandler`),
 *   HTTP/2 advertises it as SETTINGS_MAX_HEADER_LIST_SIZE and a request over it is answered 431 too, counted as
 *   RFC 9113 §6.5.2 does (name + value + 32 per field).
 * An address whose counts fall to zero is forgotten, so the table holds only clients that hold something.
 *
 * Client address = the TCP peer's address: behind a load balancer that is the balancer, so set the caps for it
 * (or to 0) there.
 */
import type { Server as NetServer, Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { CargoError } from '../errors/cargo-error.js';

export interface ClientLimitSettings {
  /** Connections one address may hold open; 0: no cap. */
  maxConnections: number;
  /** Requests one address may have in flight; 0: no cap. */
  maxRequests: number;
  /** Largest request header (HTTP/1.1 header section; HTTP/2 header list size). */
  maxHeaderBytes: number;
}

interface ClientCounts {
  connections: number;
  requests: number;
}

/** A request body or header section the HTTP/1.1 parser rejected is answered, then read and dropped for this long. */
const LINGER_MS = 2000;

export class ClientLimits {
  private readonly clients = new Map<string, ClientCounts>();
  /** Connections closed at once because their address held maxConnections already. */
  refusedConnections = 0;
  /** Requests answered 429 because their address had maxRequests in flight. */
  refusedRequests = 0;
  /** Requests answered 431. */
  oversizedHeaders = 0;

  constructor(readonly settings: ClientLimitSettings) {}

  /** Addresses holding a connection or a request now. */
  get trackedClients(): number {
    return this.clients.size;
  }

  counts(address: string): ClientCounts {
    return { ...(this.clients.get(address) ?? { connections: 0, requests: 0 }) };
  }

  private entry(address: string): ClientCounts {
    let c = this.clients.get(address);
    if (!c) this.clients.set(address, (c = { connections: 0, requests: 0 }));
    return c;
  }

  private forgetIfIdle(address: string, c: ClientCounts): void {
    if (c.connections <= 0 && c.requests <= 0) this.clients.delete(address);
  }

  /**
   * Counts the TCP connections of `server` (a TLS server: its 'connection' event carries the raw socket before the
   * handshake) and closes those over the cap at once.
   */
  watch(server: NetServer): void {
    server.on('connection', (socket: Socket) => {
      const address = socket.remoteAddress;
      if (address === undefined) return; // already gone
      const c = this.entry(address);
      if (this.settings.maxConnections > 0 && c.connections >= this.settings.maxConnections) {
        this.refusedConnections++;
        this.forgetIfIdle(address, c);
        socket.destroy();
        return;
      }
      c.connections++;
      socket.once('close', () => {
        c.connections--;
        this.forgetIfIdle(address, c);
      });
    });
  }

  /** Admits one request of `address`; returns a release function, or null when the address is at its cap. */
  admitRequest(address: string): (() => void) | null {
    const c = this.entry(address);
    if (this.settings.maxRequests > 0 && c.requests >= this.settings.maxRequests) {
      this.refusedRequests++;
      this.forgetIfIdle(address, c);
      return null;
    }
    c.requests++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      c.requests--;
      this.forgetIfIdle(address, c);
    };
  }
}

/** Header list size as RFC 9113 §6.5.2 counts it (raw headers: name, value, name, value …). */
export function headerListSize(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) n += rawHeaders[i]!.length + rawHeaders[i + 1]!.length + 32;
  return n;
}

/**
 * The HTTP/1.1 parsers' errors (both listeners): 431 for a header section over the limit, 408 for a request that
 * took too long, 400 otherwise, as problem+json with `Connection: close`. The socket is then half-closed and read
 * for a short while before it goes: closing a socket with unread bytes sends a TCP reset, and a client still
 * sending its 100 KB header would lose the answer to it (which is what happened before).
 */
export function clientErrorHandler(limits: ClientLimits | undefined) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let status = 400;
    let code = 'CARGO_ERR_BAD_REQUEST';
    let detail = 'the request could not be parsed as HTTP/1.1';
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      code = 'CARGO_ERR_HEADERS_TOO_LARGE';
      detail = `request header section larger than gateway.maxHeaderBytes (${limits?.settings.maxHeaderBytes ?? 'the limit'} bytes)`;
      if (limits) limits.oversizedHeaders++;
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      code = 'CARGO_ERR_REQUEST_TIMEOUT';
      detail = 'the request headers did not arrive in time';
    }
    const body = JSON.stringify({
      type: `urn:cargoport:error:${code}`, title: STATUS_CODES[status], status, code, detail,
      ...(status === 431 ? { limit: 'gateway.maxHeaderBytes', max: limits?.settings.maxHeaderBytes } : {}),
    });
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    lingeringClose(socket);
  };
}

/** Half-close, read and drop whatever the client still sends for LINGER_MS, then close (as nginx's lingering_close). */
export function lingeringClose(socket: Socket): void {
  socket.removeAllListeners('data');
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  socket.once('end', () => socket.destroy());
  socket.end();
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/**
 * Installs the request bounds on a Fastify instance (before its routes are registered, so every route has them):
 * 431 for an HTTP/2 header list over the limit, 429 for an address with maxRequests in flight. The count is given
 * back when the response closes (finished, reset or aborted).
 */
export function installRequestLimits(app: FastifyInstance, limits: ClientLimits): void {
  app.addHook('onRequest', async (req, reply) => {
    const raw = req.raw;
    if (raw.httpVersionMajor === 2 && headerListSize(raw.rawHeaders) > limits.settings.maxHeaderBytes) {
      limits.oversizedHeaders++;
      throw new CargoError('CARGO_ERR_HEADERS_TOO_LARGE', `request header list larger than gateway.maxHeaderBytes (${limits.settings.maxHeaderBytes} bytes, counted as RFC 9113 §6.5.2)`);
    }
    const address = raw.socket?.remoteAddress ?? 'unknown';
    const release = limits.admitRequest(address);
    if (!release) {
      reply.header('retry-after', '1');
      throw new CargoError('CARGO_ERR_CLIENT_BUSY', `this client address has gateway.maxRequestsPerClient (${limits.settings.maxRequests}) requests in flight; retry when one has finished`);
    }
    reply.raw.once('close', release);
  });
}
