/**
 * The one place the port opens an outbound socket: the undici pool (client-pool.ts), the HTTP/1.x GET and upload
 * agent (http/http1-upload.ts) and the bulk receive sessions (h2-bulk/bulk-session.ts) all connect through
 * `Connector.open`, so every connection of the engine gets the same
 * - name resolution with happy eyeballs (address-options.ts),
 * - per-host pacing and paced retries of refused connects (throttle/connection-pacer.ts),
 * - TLS options (trust, ciphers, SNI, ALPN, session resumption), connect timeout, TCP_NODELAY and keep-alive,
 * - `socket-opened` / `socket-closed` events carrying the flow's context (job, file, SciTag, direction, both
 *   addresses), which a marking module or per-connection accounting attaches to (connection-events.ts),
 * - and a `createSocket` hook point, where the marking module sets socket options (an IPv6 flow label) before the
 *   connect; the default creates the socket with tls.connect / net.connect.
 */
import { connect as netConnect, isIP, Socket as NetSocket, type LookupFunction, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { ConnectionPacer, connectRetryDelayMs, type ConnectionPacerOptions } from '../../throttle/connection-pacer.js';
import { addressOptions } from './address-options.js';
import { ConnectionEvents, type SocketFlow } from './connection-events.js';

/** What one outbound connection needs (TransferClientOptions' connection part, after endpoint overrides). */
export interface SocketSpec {
  /** `https://host[:port]` or `http://…` — what the socket is for (events, pacing key). */
  origin: string;
  /** ALPN offer (TLS only), e.g. ['h2', 'http/1.1']. */
  alpn: string[];
  ca?: string | Buffer | Array<string | Buffer>;
  rejectUnauthorized?: boolean;
  ciphers?: string;
  lookup?: LookupFunction;
  connectTimeoutMs: number;
  /** The flow the connection is opened for (shown in its events). */
  flow: SocketFlow;
  /** Read into one buffer without a Buffer per read (the bulk receive path). */
  onread?: { buffer: Buffer; callback: (n: number, buf: Buffer) => boolean | void };
}

/** Options given to `createSocket`: what net.connect / tls.connect receive, and whether TLS is wanted. */
export type SocketOpenOptions = (ConnectionOptions & { host: string; port: number }) & { secure: boolean };

/**
 * Creates the (not yet connected) socket. A hook may create it itself — e.g. with a flow label set before the
 * connect — or wrap `defaultCreateSocket`; it must not connect a different address.
 */
export type CreateSocket = (options: SocketOpenOptions, flow: SocketFlow) => Socket;

export const defaultCreateSocket: CreateSocket = (options) => {
  const { secure, ...rest } = options;
  return secure ? tlsConnect(rest) : netConnect(rest as Parameters<typeof netConnect>[0] & object);
};

/**
 * Opens the TCP connection itself for some flows (marking: a socket with the flow's IPv6 label, which must be set
 * before the connect), or answers undefined to let the connector connect as usual. The connector then runs TLS over
 * the socket it was given.
 */
export type RawSocketOpener = (host: string, port: number, spec: SocketSpec) => Promise<Socket | undefined> | undefined;

/**
 * Makes a TLS socket made over an existing socket read into `onread.buffer` and call `onread.callback`, as
 * `tls.connect({ onread })` does for a socket it connects itself. Node refuses `onread` together with `socket`
 * (_tls_wrap.js passes `onread: !socket ? … : null`) although the TLS stream supports it; the symbols a
 * net.Socket keeps the option under are read off a probe socket once. False when they are not found.
 */
const readBufferKeys = (() => {
  const buffer = Buffer.alloc(1);
  const callback = (): boolean => true;
  const probe = new NetSocket({ onread: { buffer, callback } } as ConstructorParameters<typeof NetSocket>[0]);
  const keys = Object.getOwnPropertySymbols(probe);
  const k = {
    buffer: keys.find((x) => (probe as unknown as Record<symbol, unknown>)[x] === buffer),
    callback: keys.find((x) => (probe as unknown as Record<symbol, unknown>)[x] === callback),
    generator: keys.find((x) => x.description === 'kBufferGen'),
  };
  probe.destroy();
  return k;
})();

function adoptReadBuffer(socket: Socket, onread: NonNullable<SocketSpec['onread']>): boolean {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Buffer) => void } })._handle;
  const { buffer: kBuffer, callback: kCallback, generator: kGenerator } = readBufferKeys;
  if (!kBuffer || !kCallback || typeof handle?.useUserBuffer !== 'function') return false;
  const s = socket as unknown as Record<symbol, unknown>;
  s[kBuffer] = onread.buffer;
  s[kCallback] = onread.callback;
  if (kGenerator) s[kGenerator] = null;
  handle.useUserBuffer(onread.buffer);
  return true;
}

/** TLS sessions kept for resumption (a new connection to a known host skips the full handshake), per host:port. */
const MAX_TLS_SESSIONS = 256;

export class Connector {
  readonly events: ConnectionEvents;
  private pacer: ConnectionPacer;
  private createSocket: CreateSocket;
  private rawOpener: RawSocketOpener | undefined;
  private readonly sessions = new Map<string, Buffer>();

  constructor(opts: { pacing: ConnectionPacerOptions; events?: ConnectionEvents; createSocket?: CreateSocket }) {
    this.pacer = new ConnectionPacer(opts.pacing);
    this.events = opts.events ?? new ConnectionEvents();
    this.createSocket = opts.createSocket ?? defaultCreateSocket;
  }

  setPacing(pacing: ConnectionPacerOptions): void {
    this.pacer = new ConnectionPacer(pacing);
  }

  /** Installs the socket creation hook (undefined: back to tls.connect / net.connect) for connections from now on. */
  setCreateSocket(hook: CreateSocket | undefined): void {
    this.createSocket = hook ?? defaultCreateSocket;
  }

  /** Installs the opener of raw TCP connections for some flows (marking's labelled sockets). */
  setRawSocketOpener(opener: RawSocketOpener | undefined): void {
    this.rawOpener = opener;
  }

  /**
   * A connected socket to `spec.origin` (TLS handshake done): paced per host, refused connects retried after a
   * jittered pause (an overflowing accept backlog), with the opened / closed events wired.
   */
  async open(spec: SocketSpec): Promise<Socket> {
    const url = new URL(spec.origin);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const secure = url.protocol === 'https:';
    const port = Number(url.port || (secure ? 443 : 80));
    for (let retry = 1; ; retry++) {
      const release = await this.pacer.turn(host);
      let retryIn: number | undefined;
      try {
        const raw = this.rawOpener ? await this.rawOpener(host, port, spec) : undefined;
        return await this.connectOnce(spec, host, port, secure, raw);
      } catch (e) {
        retryIn = connectRetryDelayMs((e as NodeJS.ErrnoException).code, retry);
        if (retryIn === undefined) throw e;
      } finally {
        release();
      }
      await new Promise((r) => setTimeout(r, retryIn));
    }
  }

  private connectOnce(spec: SocketSpec, host: string, port: number, secure: boolean, raw?: Socket): Promise<Socket> {
    const sessionKey = `${host}:${port}`;
    const options: SocketOpenOptions = {
      secure, host, port,
      ...addressOptions(spec.lookup),
      ...(secure ? {
        // SNI carries host names only (RFC 6066 §3).
        ...(isIP(host) ? {} : { servername: host }),
        ALPNProtocols: spec.alpn,
        ...(spec.ca !== undefined ? { ca: spec.ca } : {}),
        ...(spec.ciphers !== undefined ? { ciphers: spec.ciphers } : {}),
        ...(spec.rejectUnauthorized !== undefined ? { rejectUnauthorized: spec.rejectUnauthorized } : {}),
        ...(this.sessions.has(sessionKey) ? { session: this.sessions.get(sessionKey) } : {}),
      } : {}),
      // Over a socket given by the raw opener, Node ignores `onread` (tls.connect docs): adopted below.
      ...(spec.onread && !raw ? { onread: spec.onread } : {}),
      ...(raw && secure ? { socket: raw } : {}),
    } as SocketOpenOptions;
    return new Promise<Socket>((resolve, reject) => {
      let socket: Socket;
      try {
        // A plain connection the raw opener made is already connected; a TLS one runs its handshake over it.
        socket = raw && !secure ? raw : this.createSocket(options, spec.flow);
      } catch (e) {
        raw?.destroy();
        reject(e);
        return;
      }
      // The TLS socket over a raw one reads into the caller's buffer too, or (if Node's internals moved) feeds the
      // callback from 'data' events, at about 1.4× the CPU per byte.
      if (raw && secure && spec.onread && !adoptReadBuffer(socket, spec.onread)) {
        const cb = spec.onread.callback;
        socket.on('data', (chunk: Buffer) => cb(chunk.length, chunk));
      }
      let settled = false;
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      };
      const timer = setTimeout(() => fail(Object.assign(
        new Error(`connect to ${spec.origin} timed out after ${spec.connectTimeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' },
      )), spec.connectTimeoutMs);
      const onError = (e: Error): void => {
        // A session the server no longer accepts is not worth offering again.
        this.sessions.delete(sessionKey);
        fail(e);
      };
      const onClose = (): void => fail(Object.assign(new Error(`connection to ${spec.origin} closed during the handshake`), { code: 'ECONNRESET' }));
      socket.once('error', onError);
      socket.once('close', onClose);
      if (secure) {
        socket.on('session', (session: Buffer) => {
          if (this.sessions.size >= MAX_TLS_SESSIONS && !this.sessions.has(sessionKey)) this.sessions.delete(this.sessions.keys().next().value!);
          this.sessions.set(sessionKey, session);
        });
      }
      const connected = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeListener('error', onError);
        socket.removeListener('close', onClose);
        // Bulk data: disable Nagle (the h2 framing already coalesces); keep-alive probes find dead peers.
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 60_000);
        const alpn = secure ? (socket as TLSSocket).alpnProtocol : undefined;
        this.events.track(socket, {
          side: 'outbound', origin: spec.origin, flow: spec.flow,
          protocol: alpn === 'h2' ? 'h2' : 'http/1.1',
        }, raw);
        resolve(socket);
      };
      // A plain socket handed over already connected emits no 'connect'.
      if (raw && !secure) queueMicrotask(connected);
      else socket.once(secure ? 'secureConnect' : 'connect', connected);
    });
  }
}
