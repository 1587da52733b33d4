/**
 * Pooled undici Clients, N per origin: one Client is one TCP connection (undici 7 pitfalls, peers.md §3.3).
 * undici 7 gates dispatch on `pipelining` even for HTTP/2, so an h2 Client gets `maxStreamsPerConnection`
 * (shared by every transfer to that origin; one file's parallelism is its own number of range lanes), and a
 * Client that negotiated HTTP/1.1 drops to 1 so requests never queue behind each other on one socket. Windows are set explicitly to the
 * bandwidth-delay product because undici's defaults (256 KiB / 512 KiB) cap a 100 ms path at a few MB/s.
 *
 * Every socket passes through our connector, which records the remote IP and the negotiated protocol (the
 * transfer result reports them) and offers a hook for per-connection socket work (packet marking).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Client, buildConnector } from 'undici';
import { ConnectionPacer, connectRetryDelayMs } from '../../throttle/connection-pacer.js';
import { createHttp1Agent, type Http1Agent } from '../http/http1-upload.js';
import { H2BulkSession } from '../h2-bulk/bulk-session.js';
import { addressOptions } from './address-options.js';
import { flowSocketOpened, openFlowSocket } from './flow-socket.js';
import type { FlowDirection } from '../../marking/marking-service.js';
import { defaultClientOptions, type ConnectionInfo, type OriginOptions, type TransferClientOptions } from './client-options.js';

export { defaultClientOptions, type ConnectionInfo, type OriginOptions, type TransferClientOptions };

/** One pooled connection: the Client plus what its current socket told us. */
export interface PooledClient {
  client: Client;
  info: ConnectionInfo;
  /** Requests whose response body is still open on this connection (maintained by http-requests). */
  inFlight: number;
}

/** An upload connection lent to one PUT at a time; give it back with `release()`. */
export interface LentClient {
  pooled: PooledClient;
  release(): void;
}

interface OriginClients {
  clients: PooledClient[];
  next: number;
}

export class ClientPool {
  private readonly origins = new Map<string, OriginClients>();
  private readonly originOptions = new Map<string, OriginOptions>();
  /**
   * Upload connections, separate from the download ones: undici 7 dispatches a non-idempotent or stream-bodied
   * request only on an otherwise idle connection (client-h2.js `busy`), so a PUT sharing a Client with a GET
   * would wait for it — and deadlock a stream-through whose PUT body is that very GET.
   */
  private readonly uploads = new Map<string, Array<PooledClient & { lent: boolean }>>();
  /** What each origin negotiated on its latest connection (decides the HTTP/1.1 upload path). */
  private readonly negotiated = new Map<string, ConnectionInfo['protocol']>();
  /** Origins whose partial-content answers cannot be parsed: they are read whole, without Range. */
  private readonly noRanges = new Set<string>();
  /** Node http(s) agents for PUTs to HTTP/1.1 origins (http1-upload.ts explains why not undici). */
  private readonly http1Agents = new Map<string, Http1Agent>();
  /** Origins whose first connection is being made; later requests wait for its ALPN answer (protocolKnown). */
  private readonly firstContact = new Map<string, { promise: Promise<void>; settle: () => void }>();
  /** Bulk receive sessions (bulkReceive), keyed by origin and connection slot. */
  private readonly bulkSessions = new Map<string, H2BulkSession>();
  private readonly bulkRoundRobin = new Map<string, number>();
  private opts: TransferClientOptions;
  private pacer: ConnectionPacer;

  constructor(opts: Partial<TransferClientOptions> = {}) {
    this.opts = { ...defaultClientOptions, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
    this.pacer = new ConnectionPacer(this.opts.connectionPacing);
  }

  get options(): Readonly<TransferClientOptions> {
    return this.opts;
  }

  /** Effective options for `origin` (engine-wide options with the endpoint's overrides). */
  optionsFor(origin: string): Readonly<TransferClientOptions> {
    const o = this.originOptions.get(origin);
    return o ? { ...this.opts, ...o } : this.opts;
  }

  /**
   * Per-endpoint overrides (`origin` as in `new URL(u).origin`); `undefined` removes them. The origin's pooled
   * connections are closed so the next request uses the new settings.
   */
  async configureOrigin(origin: string, opts: OriginOptions | undefined): Promise<void> {
    if (opts) this.originOptions.set(origin, opts);
    else this.originOptions.delete(origin);
    const entry = this.origins.get(origin);
    const uploads = this.uploads.get(origin) ?? [];
    this.origins.delete(origin);
    this.uploads.delete(origin);
    this.negotiated.delete(origin);
    this.noRanges.delete(origin);
    this.settleFirstContact(origin);
    for (const key of [origin, `${origin} receive`]) {
      this.http1Agents.get(key)?.destroy();
      this.http1Agents.delete(key);
    }
    this.dropBulkSessions(origin, true);
    await Promise.allSettled([...(entry?.clients ?? []), ...uploads].map((c) => c.client.close()));
  }

  /** Changes options for connections opened from now on; existing Clients are closed so they pick them up. */
  async reconfigure(opts: Partial<TransferClientOptions>): Promise<void> {
    // `undefined` means "not specified" (config files leave fields out), never "unset the default".
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
    this.opts = { ...this.opts, ...given };
    this.pacer = new ConnectionPacer(this.opts.connectionPacing);
    await this.close();
  }

  /** The Clients of `origin`, growing the pool to `connections` if needed. */
  clientsFor(origin: string, connections?: number): PooledClient[] {
    const o = this.optionsFor(origin);
    const n = Math.max(1, connections ?? o.connections);
    let entry = this.origins.get(origin);
    if (!entry) {
      entry = { clients: [], next: 0 };
      this.origins.set(origin, entry);
    }
    while (entry.clients.length < n) entry.clients.push(this.newClient(origin, o.maxStreamsPerConnection));
    return entry.clients.slice(0, n);
  }

  /**
   * A connection for one request: round robin over the origin's h2 connections; for an HTTP/1.1 origin an idle
   * connection, opening another (up to the cap) rather than queueing behind a running body.
   */
  pick(origin: string, connections?: number): PooledClient {
    const list = this.clientsFor(origin, connections);
    const entry = this.origins.get(origin)!;
    if (this.protocolOf(origin) === 'http/1.1' || list[0]!.info.protocol === 'http/1.1') {
      const idle = entry.clients.find((c) => c.inFlight === 0);
      if (idle) return idle;
      if (entry.clients.length < this.optionsFor(origin).maxHttp1ConnectionsPerOrigin) {
        const c = this.newClient(origin, 1);
        entry.clients.push(c);
        return c;
      }
      return entry.clients.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    }
    const c = list[entry.next % list.length]!;
    entry.next++;
    return c;
  }

  /** The protocol `origin` negotiated on its latest connection, if any connection was made yet. */
  protocolOf(origin: string): ConnectionInfo['protocol'] | undefined {
    return this.optionsFor(origin).http1Only ? 'http/1.1' : this.negotiated.get(origin);
  }

  /**
   * Undefined when `origin`'s protocol is known (or nobody is finding it out: the caller's request will), else a
   * promise that settles once the first connection has negotiated it. Without this, a burst of transfers to a
   * fresh HTTP/1.1 server (dCache, XRootD, StoRM) would all be dispatched to the connection the first request
   * opens, and run one after another on it, instead of each getting a connection of its own (pick).
   */
  protocolKnown(origin: string): Promise<void> | undefined {
    if (this.protocolOf(origin)) return undefined;
    const pending = this.firstContact.get(origin);
    if (pending) return pending.promise;
    let settle!: () => void;
    const promise = new Promise<void>((resolve) => {
      // Never wait longer than a connection may take: the first request may have been aborted before it connected.
      const timer = setTimeout(() => settle(), this.optionsFor(origin).connectTimeoutMs);
      timer.unref();
      settle = () => {
        clearTimeout(timer);
        if (this.firstContact.get(origin)?.promise === promise) this.firstContact.delete(origin);
        resolve();
      };
    });
    this.firstContact.set(origin, { promise, settle });
    return undefined;
  }

  private settleFirstContact(origin: string): void {
    this.firstContact.get(origin)?.settle();
  }

  /**
   * The bulk receive session for GETs from `origin` on connection slot `lane` (multi-stream lanes keep the slot of
   * the connection they were given, so a split file uses exactly its N connections), or undefined when that
   * origin does not use the bulk path (bulkReceive off, HTTP/1.1 only or negotiated, plain http). A closed or
   * closing session is replaced by a new one.
   */
  bulkSession(origin: string, lane: number): H2BulkSession | undefined {
    const o = this.optionsFor(origin);
    if (!o.bulkReceive || this.protocolOf(origin) === 'http/1.1' || !origin.startsWith('https:')) return undefined;
    const key = `${origin} ${lane}`;
    let session = this.bulkSessions.get(key);
    if (!session || !session.usable) {
      session = new H2BulkSession({
        origin, ca: o.ca, rejectUnauthorized: o.rejectUnauthorized, ciphers: o.ciphers, lookup: o.lookup,
        connectTimeoutMs: o.connectTimeoutMs, headersTimeoutMs: o.headersTimeoutMs, bodyTimeoutMs: o.bodyTimeoutMs,
        initialWindowSize: o.initialWindowSize, connectionWindowSize: o.connectionWindowSize,
        pacer: this.pacer,
        ...(o.flow ? { flowOptions: o } : {}),
        onSocket: (socket, at) => {
          // An h2 answer settles what the undici paths (HEAD, PUT) would otherwise wait to find out.
          this.negotiated.set(origin, 'h2');
          this.settleFirstContact(origin);
          o.onSocket?.(socket, at);
        },
      });
      this.bulkSessions.set(key, session);
    }
    return session;
  }

  /** The connection slot of `via` among `origin`'s pooled connections, or −1 (an upload connection, say). */
  connectionSlot(origin: string, via: PooledClient): number {
    return this.origins.get(origin)?.clients.indexOf(via) ?? -1;
  }

  /** Slot for an unpinned GET: round robin over the origin's connections, as pick() does for undici. */
  nextBulkLane(origin: string): number {
    const n = Math.max(1, this.optionsFor(origin).connections);
    const lane = (this.bulkRoundRobin.get(origin) ?? 0) % n;
    this.bulkRoundRobin.set(origin, lane + 1);
    return lane;
  }

  /** `origin` answered a bulk session without h2: it is an HTTP/1.1 origin for every path from now on. */
  noteNotHttp2(origin: string): void {
    this.negotiated.set(origin, 'http/1.1');
    this.dropBulkSessions(origin);
    this.settleFirstContact(origin);
  }

  private dropBulkSessions(origin: string, close = false): void {
    for (const [key, session] of [...this.bulkSessions]) {
      if (!key.startsWith(`${origin} `)) continue;
      if (close) session.close();
      this.bulkSessions.delete(key);
    }
  }

  /** True once `origin` sent a 206 answer no parser accepts (http-requests.ts `rangedGet`). */
  rangesUnusable(origin: string): boolean {
    return this.noRanges.has(origin);
  }

  markRangesUnusable(origin: string): void {
    this.noRanges.add(origin);
  }

  /**
   * The keep-alive agent carrying HTTP/1.1 PUTs (`send`) or GETs (`receive`) to `origin`: one per direction, so a
   * tagged connection's fireflies name the data's source correctly.
   */
  http1AgentFor(origin: string, direction: FlowDirection = 'send'): Http1Agent {
    const key = direction === 'send' ? origin : `${origin} receive`;
    let agent = this.http1Agents.get(key);
    if (!agent) {
      agent = createHttp1Agent(origin, this.optionsFor(origin), this.pacer, direction);
      this.http1Agents.set(key, agent);
    }
    return agent;
  }

  /** A connection to `origin` that carries nothing else until released (one PUT at a time). */
  lendUploadClient(origin: string): LentClient {
    let list = this.uploads.get(origin);
    if (!list) {
      list = [];
      this.uploads.set(origin, list);
    }
    let c = list.find((x) => !x.lent);
    if (!c) {
      c = Object.assign(this.newClient(origin, 1, 'send'), { lent: false });
      list.push(c);
    }
    const lent = c;
    lent.lent = true;
    return { pooled: lent, release: () => { lent.lent = false; } };
  }

  async close(): Promise<void> {
    const all: PooledClient[] = [...this.origins.values()].flatMap((e) => e.clients);
    for (const list of this.uploads.values()) all.push(...list);
    this.uploads.clear();
    this.origins.clear();
    this.negotiated.clear();
    this.noRanges.clear();
    for (const fc of [...this.firstContact.values()]) fc.settle();
    for (const agent of this.http1Agents.values()) agent.destroy();
    this.http1Agents.clear();
    for (const session of this.bulkSessions.values()) session.close();
    this.bulkSessions.clear();
    await Promise.allSettled(all.map((c) => c.client.close()));
  }

  private newClient(origin: string, streams: number, direction: FlowDirection = 'receive'): PooledClient {
    const o = this.optionsFor(origin);
    const allowH2 = !o.http1Only;
    const info: ConnectionInfo = {};
    const baseConnect = buildConnector({
      allowH2,
      timeout: o.connectTimeoutMs,
      ...addressOptions(o.lookup),
      ...(o.ciphers !== undefined ? { ciphers: o.ciphers } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}),
    } as buildConnector.BuildOptions);
    const onSocket = o.onSocket;
    const pacer = this.pacer;
    const negotiated = this.negotiated;
    const firstContactDone = (): void => this.settleFirstContact(origin);
    const connect: buildConnector.connector = (connectOpts, callback) => {
      let retries = 0;
      // A tagged flow's TCP connection is opened by marking (its flow label is set at connect); TLS then runs
      // over it through undici's own connector (httpSocket), a plain-http one is used as it is.
      let raw: Socket | undefined;
      const connectVia = (cb: (err: Error | null, socket: Socket | null) => void): void => {
        if (!o.flow) {
          baseConnect(connectOpts, cb as Parameters<typeof baseConnect>[1]);
          return;
        }
        openFlowSocket(o, connectOpts.hostname, Number(connectOpts.port) || (connectOpts.protocol === 'https:' ? 443 : 80)).then((s) => {
          raw = s;
          if (!s) baseConnect(connectOpts, cb as Parameters<typeof baseConnect>[1]);
          else if (connectOpts.protocol === 'https:') baseConnect({ ...connectOpts, httpSocket: s } as typeof connectOpts, cb as Parameters<typeof baseConnect>[1]);
          else cb(null, s);
        }, (e: Error) => cb(e, null));
      };
      const attemptConnect = (release: () => void): void => connectVia((err, socket) => {
        release();
        const retryIn = err ? connectRetryDelayMs((err as NodeJS.ErrnoException).code, ++retries) : undefined;
        if (retryIn !== undefined) {
          // Jittered backoff, then queue for another paced turn.
          setTimeout(() => void pacer.turn(connectOpts.hostname).then(attemptConnect), retryIn);
          return;
        }
        if (socket) {
          info.remoteIp = socket.remoteAddress;
          const alpn = (socket as TLSSocket).alpnProtocol;
          info.protocol = alpn === 'h2' ? 'h2' : 'http/1.1';
          negotiated.set(origin, info.protocol);
          // HTTP/1.1 pipelining would queue requests behind each other's bodies: one at a time per socket.
          if (info.protocol === 'http/1.1' && pooled) pooled.client.pipelining = 1;
          // Bulk data: disable Nagle, the h2 framing already coalesces.
          socket.setNoDelay(true);
          onSocket?.(socket as Socket, origin);
          flowSocketOpened(o, socket as Socket, direction, raw);
        }
        // Requests waiting for the first connection's answer go ahead (on failure too: one of them tries next).
        firstContactDone();
        // undici's callback type is a union of (err, null) | (null, socket).
        (callback as (e: Error | null, s: unknown) => void)(err, socket);
      });
      void pacer.turn(connectOpts.hostname).then(attemptConnect);
    };
    let pooled: PooledClient | undefined;
    const client = new Client(origin, {
      allowH2,
      connect,
      pipelining: allowH2 ? streams : 1,
      initialWindowSize: o.initialWindowSize,
      connectionWindowSize: o.connectionWindowSize,
      headersTimeout: o.headersTimeoutMs,
      bodyTimeout: o.bodyTimeoutMs,
      keepAliveTimeout: 30_000,
    });
    // Every range lane on this connection watches 'disconnect' (multi-stream.ts); no leak, just many listeners.
    client.setMaxListeners(0);
    pooled = { client, info, inFlight: 0 };
    return pooled;
  }
}
