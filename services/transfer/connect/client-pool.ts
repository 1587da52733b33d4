/**
 * Pooled undici Clients, N per origin: one Client is one TCP connection (undici 7 pitfalls, peers.md §3.3).
 * undici 7 gates dispatch on `pipelining` even for HTTP/2, so an h2 Client gets `maxStreamsPerConnection`
 * (shared by every transfer to that origin; one file's parallelism is its own number of range lanes), and a
 * Client that negotiated HTTP/1.1 drops to 1 so requests never queue behind each other on one socket. Windows are set explicitly to the
 * bandwidth-delay product because undici's defaults (256 KiB / 512 KiB) cap a 100 ms path at a few MB/s.
 *
 * Every socket — undici's, the HTTP/1.x agents', the bulk sessions' — is opened by the engine's one Connector
 * (connector.ts: DNS + happy eyeballs, pacing, TLS, socket events with the flow's context, createSocket hook); the
 * pool records the remote IP and negotiated protocol the transfer result reports.
 *
 * Connections are kept per partition: an attempt works on `pool.forFlow(flow)`, a view whose connections are shared
 * only with flows of the same credentials identity and SciTag; what origins told us (protocol, range support, endpoint
 * settings) is shared by all views.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Client } from 'undici';
import { createHttp1Agent, type Http1Agent } from '../http/http1-upload.js';
import { H2BulkSession } from '../h2-bulk/bulk-session.js';
import type { FlowContext } from '../types.js';
import { defaultClientOptions, type ConnectionInfo, type OriginOptions, type TransferClientOptions } from './client-options.js';
import { ConnectionEvents, type SocketFlow } from './connection-events.js';
import { Connector, type CreateSocket } from './connector.js';
import { flowSocketOpened, openFlowSocket } from './flow-socket.js';

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

/** The flow one attempt runs for, and which origins are its source and destination (socket event direction). */
export interface PoolFlow extends SocketFlow {
  sourceOrigin?: string;
  destinationOrigin?: string;
}

/**
 * The connections of one partition: flows with the same credentials identity and SciTag share them, others never
 * do (a packet-marked connection carries one flow's label; a connection authenticated as one identity is not lent
 * to another).
 */
class Partition {
  readonly origins = new Map<string, OriginClients>();
  /**
   * Upload connections, separate from the download ones: undici 7 dispatches a non-idempotent or stream-bodied
   * request only on an otherwise idle connection (client-h2.js `busy`), so a PUT sharing a Client with a GET
   * would wait for it — and deadlock a stream-through whose PUT body is that very GET.
   */
  readonly uploads = new Map<string, Array<PooledClient & { lent: boolean }>>();
  /** Node http(s) agents for HTTP/1.x GETs and PUTs (http1-upload.ts explains why not undici). */
  readonly http1Agents = new Map<string, Http1Agent>();
  /** Bulk receive sessions (bulkReceive), keyed by origin and connection slot. */
  readonly bulkSessions = new Map<string, H2BulkSession>();
  readonly bulkRoundRobin = new Map<string, number>();
  /** Attempts using the partition now; an unused one is closed after PARTITION_IDLE_MS. */
  users = 0;
  idleSince = Date.now();

  all(): PooledClient[] {
    const out: PooledClient[] = [...this.origins.values()].flatMap((e) => e.clients);
    for (const list of this.uploads.values()) out.push(...list);
    return out;
  }


  async close(): Promise<void> {
    const all = this.all();
    this.origins.clear();
    this.uploads.clear();
    for (const agent of this.http1Agents.values()) agent.destroy();
    this.http1Agents.clear();
    for (const session of this.bulkSessions.values()) session.close();
    this.bulkSessions.clear();
    this.bulkRoundRobin.clear();
    await Promise.allSettled(all.map((c) => c.client.close()));
  }

  /** Drops `origin`'s connections (new endpoint settings). */
  dropOrigin(origin: string): PooledClient[] {
    const dropped = [...(this.origins.get(origin)?.clients ?? []), ...(this.uploads.get(origin) ?? [])];
    this.origins.delete(origin);
    this.uploads.delete(origin);
    for (const key of [origin, `${origin} receive`]) {
      this.http1Agents.get(key)?.destroy();
      this.http1Agents.delete(key);
    }
    this.dropBulkSessions(origin, true);
    return dropped;
  }

  dropBulkSessions(origin: string, close = false): void {
    for (const [key, session] of [...this.bulkSessions]) {
      if (!key.startsWith(`${origin} `)) continue;
      if (close) session.close();
      this.bulkSessions.delete(key);
    }
  }
}

/** An unused partition (no attempt holds it) is closed after this long; the default partition never is. */
const PARTITION_IDLE_MS = 60_000;
const PARTITION_SWEEP_MS = 10_000;

/** What every view of one pool shares: options, what origins told us, the connector, the partitions. */
class PoolState {
  opts: TransferClientOptions;
  readonly originOptions = new Map<string, OriginOptions>();
  /** What each origin negotiated on its latest connection (decides the HTTP/1.1 paths). */
  readonly negotiated = new Map<string, ConnectionInfo['protocol']>();
  /** Origins whose partial-content answers cannot be parsed: they are read whole, without Range. */
  readonly noRanges = new Set<string>();
  /** Origins whose first connection is being made; later requests wait for its ALPN answer (protocolKnown). */
  readonly firstContact = new Map<string, { promise: Promise<void>; settle: () => void }>();
  readonly partitions = new Map<string, Partition>();
  readonly connector: Connector;
  lastSweep = Date.now();

  constructor(opts: TransferClientOptions, events?: ConnectionEvents) {
    this.opts = opts;
    this.connector = new Connector({ pacing: opts.connectionPacing, ...(events ? { events } : {}) });
    // Marking: a tagged flow's TCP connection is opened by marking with the flow's IPv6 label, and every connection
    // of a tagged flow is announced to it (fireflies, flowd) — through the connector's two seams.
    this.connector.setRawSocketOpener((host, port, spec) => spec.flow.tag ? openFlowSocket(spec.flow.tag, host, port, spec) : undefined);
    this.connector.events.on('socket-opened', (e, socket, raw) => {
      if (e.side !== 'outbound') return;
      if (e.flow.tag) flowSocketOpened(e.flow.tag, socket, e.flow.direction === 'destination' ? 'send' : 'receive', raw);
      // The older per-socket hook (TransferClientOptions.onSocket) rides on the opened event.
      if (e.origin) this.opts.onSocket?.(socket, e.origin);
    });
  }

  partition(key: string): Partition {
    let p = this.partitions.get(key);
    if (!p) this.partitions.set(key, (p = new Partition()));
    return p;
  }

  /** Closes partitions no attempt used for PARTITION_IDLE_MS (checked at most every PARTITION_SWEEP_MS). */
  sweep(now: number): void {
    if (now - this.lastSweep < PARTITION_SWEEP_MS) return;
    this.lastSweep = now;
    for (const [key, p] of [...this.partitions]) {
      if (key === '' || p.users > 0 || now - p.idleSince < PARTITION_IDLE_MS) continue;
      this.partitions.delete(key);
      void p.close();
    }
  }
}

/** Partition key: everything that must keep two flows off one connection. */
function partitionKey(flow: FlowContext): string {
  if (flow.credentialsId === undefined && flow.scitag === undefined) return '';
  return `${flow.credentialsId ?? ''}\u0000${flow.scitag ?? ''}`;
}

export class ClientPool {
  private readonly s: PoolState;
  private readonly part: Partition;
  private readonly flow: PoolFlow;
  private readonly onRemote: ((info: ConnectionInfo) => void) | undefined;
  private released = false;

  /**
   * The engine's pool (the default partition, no flow). `events`: where its sockets are announced (one per engine;
   * the gateway's accepted connections are announced on the same emitter).
   */
  constructor(opts: Partial<TransferClientOptions> = {}, events?: ConnectionEvents, view?: { s: PoolState; part: Partition; flow: PoolFlow; onRemote?: (info: ConnectionInfo) => void }) {
    if (view) {
      this.s = view.s;
      this.part = view.part;
      this.flow = view.flow;
      this.onRemote = view.onRemote;
      return;
    }
    this.onRemote = undefined;
    this.s = new PoolState({ ...defaultClientOptions, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) }, events);
    this.part = this.s.partition('');
    this.flow = {};
  }

  /**
   * A view of this pool for one attempt's flow: connections of the flow's partition (credentials identity + SciTag),
   * sockets announced with its context. Call `release()` when the attempt ends. `onRemote` hears the connection
   * (address, port) of every answer a request of the view got (repeats included).
   */
  forFlow(flow: PoolFlow, onRemote?: (info: ConnectionInfo) => void): ClientPool {
    const now = Date.now();
    this.s.sweep(now);
    const part = this.s.partition(partitionKey(flow));
    part.users++;
    return new ClientPool({}, undefined, { s: this.s, part, flow, onRemote });
  }

  /** A request of this view was answered over the connection `info` describes (http-requests.ts). */
  noteRemote(info: ConnectionInfo): void {
    if (this.onRemote && info.remoteIp) this.onRemote(info);
  }

  /** Ends a view's use of its partition (idempotent). */
  release(): void {
    if (this.released || this.part.users === 0) return;
    this.released = true;
    this.part.users--;
    if (this.part.users === 0) this.part.idleSince = Date.now();
  }

  /** Socket events of every connection this pool opens. */
  get events(): ConnectionEvents {
    return this.s.connector.events;
  }

  /** Installs the socket creation hook (marking: flow label before connect) for connections opened from now on. */
  setCreateSocket(hook: CreateSocket | undefined): void {
    this.s.connector.setCreateSocket(hook);
  }

  /** A stable object per pool (all views alike), for what is learned per engine (parent-collections.ts). */
  get identity(): object {
    return this.s;
  }

  get options(): Readonly<TransferClientOptions> {
    return this.s.opts;
  }

  /** Effective options for `origin` (engine-wide options with the endpoint's overrides). */
  optionsFor(origin: string): Readonly<TransferClientOptions> {
    const o = this.s.originOptions.get(origin);
    return o ? { ...this.s.opts, ...o } : this.s.opts;
  }

  /** Per-endpoint overrides before any connection exists (the engine's start-up settings). */
  setOriginOptions(origin: string, opts: OriginOptions): void {
    this.s.originOptions.set(origin, opts);
  }

  /**
   * Per-endpoint overrides (`origin` as in `new URL(u).origin`); `undefined` removes them. The origin's pooled
   * connections are closed so the next request uses the new settings.
   */
  async configureOrigin(origin: string, opts: OriginOptions | undefined): Promise<void> {
    if (opts) this.s.originOptions.set(origin, opts);
    else this.s.originOptions.delete(origin);
    const dropped: PooledClient[] = [];
    for (const p of this.s.partitions.values()) dropped.push(...p.dropOrigin(origin));
    this.s.negotiated.delete(origin);
    this.s.noRanges.delete(origin);
    this.settleFirstContact(origin);
    await Promise.allSettled(dropped.map((c) => c.client.close()));
  }

  /** Changes options for connections opened from now on; existing Clients are closed so they pick them up. */
  async reconfigure(opts: Partial<TransferClientOptions>): Promise<void> {
    // `undefined` means "not specified" (config files leave fields out), never "unset the default".
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
    this.s.opts = { ...this.s.opts, ...given };
    this.s.connector.setPacing(this.s.opts.connectionPacing);
    await this.close();
  }

  /** The Clients of `origin`, growing the pool to `connections` if needed. */
  clientsFor(origin: string, connections?: number): PooledClient[] {
    const o = this.optionsFor(origin);
    const n = Math.max(1, connections ?? o.connections);
    let entry = this.part.origins.get(origin);
    if (!entry) {
      entry = { clients: [], next: 0 };
      this.part.origins.set(origin, entry);
    }
    while (entry.clients.length < n) entry.clients.push(this.newClient(origin, o.maxStreamsPerConnection, 'source'));
    return entry.clients.slice(0, n);
  }

  /**
   * A connection for one request: round robin over the origin's h2 connections; for an HTTP/1.1 origin an idle
   * connection, opening another (up to the cap) rather than queueing behind a running body.
   */
  pick(origin: string, connections?: number): PooledClient {
    const list = this.clientsFor(origin, connections);
    const entry = this.part.origins.get(origin)!;
    if (this.protocolOf(origin) === 'http/1.1' || list[0]!.info.protocol === 'http/1.1') {
      const idle = entry.clients.find((c) => c.inFlight === 0);
      if (idle) return idle;
      if (entry.clients.length < this.optionsFor(origin).maxHttp1ConnectionsPerOrigin) {
        const c = this.newClient(origin, 1, 'source');
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
    return this.optionsFor(origin).http1Only ? 'http/1.1' : this.s.negotiated.get(origin);
  }

  /**
   * Undefined when `origin`'s protocol is known (or nobody is finding it out: the caller's request will), else a
   * promise that settles once the first connection has negotiated it. Without this, a burst of transfers to a
   * fresh HTTP/1.1 server (dCache, XRootD, StoRM) would all be dispatched to the connection the first request
   * opens, and run one after another on it, instead of each getting a connection of its own (pick).
   */
  protocolKnown(origin: string): Promise<void> | undefined {
    if (this.protocolOf(origin)) return undefined;
    const pending = this.s.firstContact.get(origin);
    if (pending) return pending.promise;
    let settle!: () => void;
    const firstContact = this.s.firstContact;
    const promise = new Promise<void>((resolve) => {
      // Never wait longer than a connection may take: the first request may have been aborted before it connected.
      const timer = setTimeout(() => settle(), this.optionsFor(origin).connectTimeoutMs);
      timer.unref();
      settle = () => {
        clearTimeout(timer);
        if (firstContact.get(origin)?.promise === promise) firstContact.delete(origin);
        resolve();
      };
    });
    firstContact.set(origin, { promise, settle });
    return undefined;
  }

  private settleFirstContact(origin: string): void {
    this.s.firstContact.get(origin)?.settle();
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
    let session = this.part.bulkSessions.get(key);
    if (!session || !session.usable) {
      const flow = this.socketFlow(origin, 'source');
      session = new H2BulkSession({
        origin, headersTimeoutMs: o.headersTimeoutMs, bodyTimeoutMs: o.bodyTimeoutMs,
        initialWindowSize: o.initialWindowSize, connectionWindowSize: o.connectionWindowSize,
        open: async (onread) => {
          const socket = await this.s.connector.open({
            origin, alpn: ['h2', 'http/1.1'], ...connectOptions(o), flow, onread,
          });
          // An h2 answer settles what the undici paths (HEAD, PUT) would otherwise wait to find out.
          if ((socket as TLSSocket).alpnProtocol === 'h2') {
            this.s.negotiated.set(origin, 'h2');
            this.settleFirstContact(origin);
          }
          return socket;
        },
      });
      this.part.bulkSessions.set(key, session);
    }
    return session;
  }

  /** The connection slot of `via` among `origin`'s pooled connections, or −1 (an upload connection, say). */
  connectionSlot(origin: string, via: PooledClient): number {
    return this.part.origins.get(origin)?.clients.indexOf(via) ?? -1;
  }

  /** Slot for an unpinned GET: round robin over the origin's connections, as pick() does for undici. */
  nextBulkLane(origin: string): number {
    const n = Math.max(1, this.optionsFor(origin).connections);
    const lane = (this.part.bulkRoundRobin.get(origin) ?? 0) % n;
    this.part.bulkRoundRobin.set(origin, lane + 1);
    return lane;
  }

  /** `origin` answered a bulk session without h2: it is an HTTP/1.1 origin for every path from now on. */
  noteNotHttp2(origin: string): void {
    this.s.negotiated.set(origin, 'http/1.1');
    for (const p of this.s.partitions.values()) p.dropBulkSessions(origin);
    this.settleFirstContact(origin);
  }

  /** True once `origin` sent a 206 answer no parser accepts (http-requests.ts `rangedGet`). */
  rangesUnusable(origin: string): boolean {
    return this.s.noRanges.has(origin);
  }

  markRangesUnusable(origin: string): void {
    this.s.noRanges.add(origin);
  }

  /**
   * The keep-alive agent carrying HTTP/1.x PUTs (`send`) or GETs (`receive`) to `origin`: one per direction, so a
   * connection's events (and a tagged connection's fireflies) name the data's direction correctly.
   */
  http1AgentFor(origin: string, direction: 'send' | 'receive' = 'send'): Http1Agent {
    const key = direction === 'send' ? origin : `${origin} receive`;
    let agent = this.part.http1Agents.get(key);
    if (!agent) {
      const o = this.optionsFor(origin);
      const flow: SocketFlow = { ...this.socketFlow(origin, 'source'), direction: direction === 'send' ? 'destination' : 'source' };
      agent = createHttp1Agent(origin, o, () => this.s.connector.open({
        origin, alpn: ['http/1.1'], ...connectOptions(o), flow,
      }));
      this.part.http1Agents.set(key, agent);
    }
    return agent;
  }

  /** A connection to `origin` that carries nothing else until released (one PUT at a time). */
  lendUploadClient(origin: string): LentClient {
    let list = this.part.uploads.get(origin);
    if (!list) {
      list = [];
      this.part.uploads.set(origin, list);
    }
    let c = list.find((x) => !x.lent);
    if (!c) {
      c = Object.assign(this.newClient(origin, 1, 'destination'), { lent: false });
      list.push(c);
    }
    const lent = c;
    lent.lent = true;
    return { pooled: lent, release: () => { lent.lent = false; } };
  }

  /**
   * The flow context a new connection to `origin` is announced with: the attempt's, and which end of the transfer
   * the origin is (`hint` when it is both or neither: the path's own role).
   */
  private socketFlow(origin: string, hint: 'source' | 'destination'): SocketFlow {
    const { sourceOrigin, destinationOrigin, ...flow } = this.flow;
    const direction = sourceOrigin === origin && destinationOrigin !== origin ? 'source'
      : destinationOrigin === origin && sourceOrigin !== origin ? 'destination' : hint;
    return { ...flow, direction };
  }

  /** Closes every connection of every partition (graceful: in-flight requests finish first). */
  async close(): Promise<void> {
    this.s.negotiated.clear();
    this.s.noRanges.clear();
    for (const fc of [...this.s.firstContact.values()]) fc.settle();
    await Promise.allSettled([...this.s.partitions.values()].map((p) => p.close()));
  }

  private newClient(origin: string, streams: number, hint: 'source' | 'destination'): PooledClient {
    const o = this.optionsFor(origin);
    const allowH2 = !o.http1Only;
    const info: ConnectionInfo = {};
    const negotiated = this.s.negotiated;
    const connector = this.s.connector;
    const flow = this.socketFlow(origin, hint);
    const firstContactDone = (): void => this.settleFirstContact(origin);
    const connect = (_opts: unknown, callback: (err: Error | null, socket: Socket | null) => void): void => {
      connector.open({ origin, alpn: allowH2 ? ['h2', 'http/1.1'] : ['http/1.1'], ...connectOptions(o), flow }).then((socket) => {
        info.remoteIp = socket.remoteAddress;
        info.remotePort = socket.remotePort;
        info.localPort = socket.localPort;
        const alpn = (socket as TLSSocket).alpnProtocol;
        info.protocol = alpn === 'h2' ? 'h2' : 'http/1.1';
        negotiated.set(origin, info.protocol);
        // HTTP/1.1 pipelining would queue requests behind each other's bodies: one at a time per socket.
        if (info.protocol === 'http/1.1' && pooled) pooled.client.pipelining = 1;
        // Requests waiting for the first connection's answer go ahead.
        firstContactDone();
        callback(null, socket);
      }, (err: Error) => {
        // On failure too: one of the waiting requests tries next.
        firstContactDone();
        callback(err, null);
      });
    };
    let pooled: PooledClient | undefined;
    const client = new Client(origin, {
      allowH2,
      connect: connect as unknown as Client.Options['connect'],
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

/** The connection options of the connector, from an origin's effective options. */
function connectOptions(o: Readonly<TransferClientOptions>) {
  return {
    connectTimeoutMs: o.connectTimeoutMs,
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    ...(o.ciphers !== undefined ? { ciphers: o.ciphers } : {}),
    ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}),
    ...(o.lookup !== undefined ? { lookup: o.lookup } : {}),
  };
}
