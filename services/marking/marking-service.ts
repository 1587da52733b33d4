/**
 * The marking module: one instance per process (configureMarking / marking()), like the transfer engine. It sees
 * every TCP connection of a tagged flow through one small hook per connector (trackSocket, and openLabelledSocket
 * for outbound connections) and drives the backends behind one interface:
 *
 *  - fireflies: UDP datagrams at start, every ongoingIntervalMs (with TCP_INFO under `netlink`) and at the end
 *    (with `usage` and `end-time`), to the remote host and the collectors (firefly-sender.ts);
 *  - socket: the IPv6 flow label set by the outbound connection itself (native-flowlabel.ts); IPv4 and accepted
 *    connections cannot carry one this way;
 *  - ebpf: the tc egress marker for accepted connections (ebpf-marker.ts): loaded at configure time on
 *    `ebpfDevices`, its map keyed by the connection's 5-tuple updated at flow start and end; status says why not;
 *  - flowd-pipe: `start …` / `end …` lines for a flowd / flowd-go daemon (flowd-pipe.ts).
 *
 * A flow is one TCP connection (the 5-tuple the network sees). The data supplier is the flow's source: for a
 * connection that receives (a download, the port pulling) the remote end is src, for one that sends it is dst.
 * Nothing here may fail a transfer: every backend degrades with a reason the status shows.
 */
import { hostname as osHostname } from 'node:os';
import { isIPv6, type Socket } from 'node:net';
import { fireflyDatagram, plainIp, type FireflyFlow, type FlowState } from './firefly.js';
import { FireflySender, parseCollector } from './firefly-sender.js';
import { FlowdPipe } from './flowd-pipe.js';
import { flowEntropy, flowIdOf, flowLabelOf, type FlowTag } from './flow-id.js';
import { parsePathDefaults, resolveFlow, type FlowSources, type PathDefault, type ResolvedFlow } from './flow-resolution.js';
import { EbpfMarker, ebpfUnavailable, flowKey } from './ebpf-marker.js';
import { connectLabelled, flowLabelAddonMissing, tcpInfoOf } from './native-flowlabel.js';
import { bundledRegistry, fetchRegistry, type ScitagsRegistry } from './registry.js';

export interface MarkingSettings {
  enabled: boolean;
  /** `application` in fireflies and their syslog APP-NAME (first word). */
  application: string;
  registryUrl: string;
  fireflies: boolean;
  firefliesToPeer: boolean;
  peerPort: number;
  collectors: readonly string[];
  /** 0: no ongoing fireflies. */
  ongoingIntervalMs: number;
  netlink: boolean;
  flowLabel: boolean;
  flowdPipe: string;
  pathDefaults: readonly string[];
  /** Network devices the eBPF marker attaches to (tc egress); empty: off. */
  ebpfDevices: readonly string[];
}

export const defaultMarkingSettings: MarkingSettings = {
  enabled: true, application: 'cargoport', registryUrl: '', fireflies: true, firefliesToPeer: true, peerPort: 10514,
  collectors: [], ongoingIntervalMs: 60_000, netlink: true, flowLabel: true, flowdPipe: '', pathDefaults: [], ebpfDevices: [],
};

/** Which way the bytes of a connection go, seen from the port. */
export type FlowDirection = 'send' | 'receive';

export interface BackendState {
  name: 'fireflies' | 'socket' | 'ebpf' | 'flowd-pipe';
  on: boolean;
  /** Why it is off or degraded. */
  reason?: string;
}

export interface MarkingStatus {
  enabled: boolean;
  registry: { origin: string; modified?: string; experiments: number };
  activeFlows: number;
  flowsStarted: number;
  flowsLabelled: number;
  firefliesSent: number;
  fireflyErrors: number;
  labelErrors: number;
  pipeLinesWritten: number;
  pipeLinesDropped: number;
  backends: BackendState[];
  flows: Array<{ experiment: number; activity: number; src: string; dst: string; label?: string; startedAt: string }>;
}

interface ActiveFlow {
  socket: Socket;
  ff: FireflyFlow;
  remoteIp: string;
  label?: number;
  /** Its entry in the eBPF marker's map (accepted connections), removed at the end. */
  ebpfKey?: Buffer;
}

/** Sockets opened with a label, to report it when the same socket is tracked. */
const socketLabels = new WeakMap<Socket, number>();

export class Marking {
  readonly registry: ScitagsRegistry;
  private readonly pathDefaults: PathDefault[];
  private readonly sender?: FireflySender;
  private readonly pipe?: FlowdPipe;
  private readonly flows = new Set<ActiveFlow>();
  private readonly tracked = new WeakSet<Socket>();
  private readonly host = osHostname();
  private ongoingTimer?: NodeJS.Timeout;
  private flowsStarted = 0;
  private flowsLabelled = 0;
  private labelErrors = 0;
  private lastLabelError?: string;
  /** The attached eBPF marker, or why there is none (set by configureMarking through attachEbpf). */
  private ebpf?: EbpfMarker;
  private ebpfReason: string;

  constructor(readonly settings: MarkingSettings, registry: ScitagsRegistry = bundledRegistry) {
    this.ebpfReason = !settings.enabled ? 'marking.enabled is false'
      : ebpfUnavailable() ?? (settings.ebpfDevices.length === 0 ? 'ebpf: marking.ebpfDevices is empty (accepted connections carry no flow label; fireflies still report them)' : 'ebpf: not attached yet');
    this.registry = registry;
    this.pathDefaults = parsePathDefaults(settings.pathDefaults, registry);
    if (settings.enabled && settings.fireflies) {
      this.sender = new FireflySender(settings.collectors.map((c) => parseCollector(c)), settings.firefliesToPeer ? settings.peerPort : undefined);
    }
    if (settings.enabled && settings.flowdPipe) this.pipe = new FlowdPipe(settings.flowdPipe);
  }

  /** The attached eBPF marker (tests read its filter handle), or undefined. */
  get ebpfMarker(): EbpfMarker | undefined {
    return this.ebpf;
  }

  /** Loads the eBPF marker on the configured devices; a failure leaves it off with the reason in status. */
  async attachEbpf(): Promise<void> {
    if (!this.settings.enabled || this.settings.ebpfDevices.length === 0 || ebpfUnavailable()) return;
    try {
      const r = await EbpfMarker.attach(this.settings.ebpfDevices);
      if (typeof r === 'string') this.ebpfReason = r;
      else this.ebpf = r;
    } catch (e) {
      // Unexpected (an unreadable /proc/mounts or bpffs): the marker stays off; marking never fails the start.
      this.ebpfReason = `ebpf: ${(e as Error).message}`;
    }
  }

  /** The flow of a transfer or request (flow-resolution.ts), or undefined: not tagged, or marking is off. */
  resolve(s: FlowSources): ResolvedFlow | undefined {
    return this.settings.enabled ? resolveFlow(s, this.registry, this.pathDefaults) : undefined;
  }

  /** Whether outbound connections of a tagged flow are opened here (with a label) rather than by Node. */
  get labelsOutbound(): boolean {
    return this.settings.enabled && this.settings.flowLabel && flowLabelAddonMissing === undefined;
  }

  /**
   * An outbound TCP connection for a flow tagged `tag`, carrying its IPv6 flow label; undefined when this cannot
   * apply (marking or the socket backend off, an IPv4 peer): the caller then connects as usual. A failure to set
   * the label (ERANGE, quota) is counted and the caller connects without one; a failure to connect is thrown.
   */
  async openLabelledSocket(ip: string, port: number, tag: FlowTag, timeoutMs: number): Promise<Socket | undefined> {
    if (!this.labelsOutbound || !isIPv6(ip) || ip.startsWith('::ffff:') || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
    const label = flowLabelOf(tag, flowEntropy());
    try {
      const socket = await connectLabelled(ip, port, label, timeoutMs);
      socketLabels.set(socket, label);
      this.flowsLabelled++;
      return socket;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Errors of the label manager: connect without a label. Anything else is the connection's own failure.
      if (code === 'ERANGE' || code === 'ENOBUFS' || code === 'EPERM' || code === 'EEXIST' || code === 'EINVAL' || code === 'ENOPROTOOPT') {
        this.labelErrors++;
        this.lastLabelError = `${code} setting flow label 0x${label.toString(16)}`;
        return undefined;
      }
      throw e;
    }
  }

  /**
   * Starts a flow on a connected socket (client or accepted side): start firefly and pipe line now, ongoing
   * fireflies while it lives, end on close. A socket is tracked once (an HTTP/2 connection carrying several
   * requests is one flow, tagged by the first).
   */
  trackSocket(socket: Socket, tag: FlowTag, direction: FlowDirection, raw?: Socket, accepted = false): void {
    if (!this.settings.enabled || this.tracked.has(socket) || socket.destroyed) return;
    const local = raw ?? socket;
    const remoteIp = local.remoteAddress;
    const localIp = local.localAddress;
    if (!remoteIp || !localIp || !local.remotePort || !local.localPort) return;
    this.tracked.add(socket);
    const receive = direction === 'receive';
    const flow: ActiveFlow = {
      socket,
      remoteIp,
      label: socketLabels.get(local),
      ff: {
        srcIp: plainIp(receive ? remoteIp : localIp), srcPort: receive ? local.remotePort : local.localPort,
        dstIp: plainIp(receive ? localIp : remoteIp), dstPort: receive ? local.localPort : local.remotePort,
        experiment: tag.experiment, activity: tag.activity, startTime: new Date(),
      },
    };
    if (accepted && this.ebpf && flow.label === undefined) {
      // Before the response's first byte: the caller (the request hook) has written nothing yet.
      const key = flowKey(localIp, local.localPort, remoteIp, local.remotePort);
      const label = flowLabelOf(tag, flowEntropy());
      if (key && this.ebpf.mark(key, label)) {
        flow.ebpfKey = key;
        flow.label = label;
        this.flowsLabelled++;
      }
    }
    this.flows.add(flow);
    this.flowsStarted++;
    this.emit(flow, 'start');
    this.pipe?.write('start', flow.ff.srcIp, flow.ff.srcPort, flow.ff.dstIp, flow.ff.dstPort, tag.experiment, tag.activity);
    if (this.settings.ongoingIntervalMs > 0 && !this.ongoingTimer && this.sender) {
      this.ongoingTimer = setInterval(() => this.ongoing(), this.settings.ongoingIntervalMs);
      this.ongoingTimer.unref();
    }
    socket.once('close', () => {
      if (!this.flows.delete(flow)) return;
      if (flow.ebpfKey) this.ebpf?.unmark(flow.ebpfKey);
      this.emit(flow, 'end');
      this.pipe?.write('end', flow.ff.srcIp, flow.ff.srcPort, flow.ff.dstIp, flow.ff.dstPort, tag.experiment, tag.activity);
      if (this.flows.size === 0 && this.ongoingTimer) {
        clearInterval(this.ongoingTimer);
        this.ongoingTimer = undefined;
      }
    });
  }

  private ongoing(): void {
    for (const f of this.flows) this.emit(f, 'ongoing');
  }

  /** Never throws: it runs in socket 'close' listeners and timers, where an exception would end the process. */
  private emit(f: ActiveFlow, state: FlowState): void {
    try {
      this.emitUnguarded(f, state);
    } catch (e) {
      if (this.sender) {
        this.sender.errors++;
        this.sender.lastError = `firefly not built: ${(e as Error).message}`;
      }
    }
  }

  private emitUnguarded(f: ActiveFlow, state: FlowState): void {
    if (!this.sender) return;
    const now = new Date();
    const s = f.socket;
    const usage = state === 'start' ? undefined : { received: s.bytesRead, sent: s.bytesWritten };
    const netlink = state === 'ongoing' && this.settings.netlink ? tcpInfoOf(s) : undefined;
    const dgram = fireflyDatagram(f.ff, { state, now, endTime: state === 'end' ? now : undefined, usage, netlink }, this.host, this.settings.application);
    this.sender.send(dgram, f.remoteIp);
  }

  status(): MarkingStatus {
    const s = this.settings;
    const off = (why: string): string | undefined => (s.enabled ? why : 'marking.enabled is false');
    const socketReason = !s.enabled ? 'marking.enabled is false' : !s.flowLabel ? 'marking.flowLabel is false' : flowLabelAddonMissing;
    const backends: BackendState[] = [
      { name: 'fireflies', on: this.sender !== undefined, ...(this.sender ? (this.sender.lastError ? { reason: `last send error: ${this.sender.lastError}` } : {}) : { reason: off('marking.fireflies is false') }) },
      {
        name: 'socket', on: socketReason === undefined,
        ...(socketReason ? { reason: socketReason } : this.lastLabelError ? { reason: `last label error: ${this.lastLabelError}` } : { reason: 'outbound IPv6 connections only' }),
      },
      this.ebpf
        ? { name: 'ebpf', on: true, reason: this.ebpf.lastError ? `last error: ${this.ebpf.lastError}` : `accepted IPv6 connections, tc egress on ${this.ebpf.devices.join(', ')}` }
        : { name: 'ebpf', on: false, reason: this.ebpfReason },
      this.pipe ? { name: 'flowd-pipe', on: this.pipe.reason === undefined, ...(this.pipe.reason ? { reason: this.pipe.reason } : {}) } : { name: 'flowd-pipe', on: false, reason: off('marking.flowdPipe is empty') },
    ];
    return {
      enabled: s.enabled,
      registry: { origin: this.registry.origin, ...(this.registry.modified ? { modified: this.registry.modified } : {}), experiments: this.registry.experiments().length },
      activeFlows: this.flows.size,
      flowsStarted: this.flowsStarted,
      flowsLabelled: this.flowsLabelled,
      firefliesSent: this.sender?.sent ?? 0,
      fireflyErrors: this.sender?.errors ?? 0,
      labelErrors: this.labelErrors,
      pipeLinesWritten: this.pipe?.written ?? 0,
      pipeLinesDropped: this.pipe?.dropped ?? 0,
      backends,
      flows: [...this.flows].slice(0, 100).map((f) => ({
        experiment: f.ff.experiment, activity: f.ff.activity,
        src: `${f.ff.srcIp} ${f.ff.srcPort}`, dst: `${f.ff.dstIp} ${f.ff.dstPort}`,
        ...(f.label !== undefined ? { label: `0x${f.label.toString(16).padStart(5, '0')}` } : {}),
        startedAt: f.ff.startTime.toISOString(),
      })),
    };
  }

  /**
   * Ends nothing in flight (their sockets still close later); stops timers, closes the UDP sockets and pipe and
   * detaches the eBPF marker.
   */
  async close(): Promise<void> {
    const ebpf = this.ebpf;
    this.ebpf = undefined;
    this.ebpfReason = 'ebpf: detached (marking reconfigured or closed)';
    await ebpf?.detach();
    if (this.ongoingTimer) clearInterval(this.ongoingTimer);
    this.ongoingTimer = undefined;
    this.sender?.close();
    this.pipe?.close();
  }
}

let current = new Marking(defaultMarkingSettings);

/** The process's marking module. */
export function marking(): Marking {
  return current;
}

/**
 * Replaces the process's marking module (the worker and gateway call it at start with the config). With a
 * registryUrl the registry is fetched first; a failed fetch keeps the bundled copy and is returned as a warning.
 */
export async function configureMarking(settings: Partial<MarkingSettings>): Promise<{ warning?: string }> {
  const s = { ...defaultMarkingSettings, ...Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)) } as MarkingSettings;
  let registry = bundledRegistry;
  let warning: string | undefined;
  if (s.enabled && s.registryUrl) {
    try {
      registry = await fetchRegistry(s.registryUrl);
    } catch (e) {
      warning = `${(e as Error).message}; using the bundled registry`;
    }
  }
  // The old module detaches its eBPF marker first: the new one attaches its own.
  await current.close();
  const next = new Marking(s, registry);
  await next.attachEbpf();
  current = next;
  return warning ? { warning } : {};
}

export { flowIdOf };

/** The `marking` config section as settings. */
export function markingSettingsOf(c: {
  enabled: boolean; application: string; registryUrl: string; pathDefaults: readonly string[]; fireflies: boolean;
  firefliesToPeer: boolean; firefliesPeerPort: number; collectors: readonly string[]; ongoingIntervalMs: number;
  netlink: boolean; flowLabel: boolean; flowdPipe: string; ebpfDevices: readonly string[];
}): MarkingSettings {
  return {
    enabled: c.enabled, application: c.application, registryUrl: c.registryUrl, pathDefaults: c.pathDefaults,
    fireflies: c.fireflies, firefliesToPeer: c.firefliesToPeer, peerPort: c.firefliesPeerPort, collectors: c.collectors,
    ongoingIntervalMs: c.ongoingIntervalMs, netlink: c.netlink, flowLabel: c.flowLabel, flowdPipe: c.flowdPipe,
    ebpfDevices: c.ebpfDevices,
  };
}
