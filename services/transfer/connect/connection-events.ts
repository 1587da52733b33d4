/**
 * `socket-opened` / `socket-closed` for every connection of the port, outbound (the connector) and inbound (the
 * gateway and storage endpoint's listeners), with what is known of the flow it carries. One emitter per transfer
 * engine; a marking module (flow labels, fireflies, TCP_INFO) and per-connection accounting subscribe here once and
 * see both directions.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FlowContext } from '../types.js';
import type { FlowTag } from '../../marking/flow-id.js';

/** The flow a connection carries; `direction` says which end of the transfer the peer is. */
export interface SocketFlow extends FlowContext {
  direction?: 'source' | 'destination';
  /** The scitags flow (experiment / activity) when the transfer has one (services/marking). */
  tag?: FlowTag;
}

export interface SocketEvent {
  /** outbound: the port connected (connector); inbound: the port accepted (gateway, storage endpoint). */
  side: 'outbound' | 'inbound';
  /** The peer's origin for outbound connections (`https://host:port`). */
  origin?: string;
  flow: SocketFlow;
  /** The negotiated application protocol, when TLS said. */
  protocol?: 'h2' | 'http/1.1';
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
}

export interface SocketClosedEvent extends SocketEvent {
  bytesRead: number;
  bytesWritten: number;
  durationMs: number;
}

export interface ConnectionEventMap {
  /** `raw`: the TCP socket under `socket` when it was opened apart (marking's labelled connect). */
  'socket-opened': [event: SocketEvent, socket: Socket, raw: Socket | undefined];
  'socket-closed': [event: SocketClosedEvent];
}

export class ConnectionEvents extends EventEmitter<ConnectionEventMap> {
  constructor() {
    super();
    // Any number of observers (marking, accounting, tests) may subscribe.
    this.setMaxListeners(0);
  }

  /**
   * Announces a connected socket now and its end when it closes. The addresses are read once here (after close Node
   * no longer knows them). `socket` is handed to `socket-opened` listeners for per-connection work (TCP_INFO).
   */
  track(socket: Socket, e: Omit<SocketEvent, 'localAddress' | 'localPort' | 'remoteAddress' | 'remotePort'>, raw?: Socket): void {
    const tcp = raw ?? socket;
    const opened: SocketEvent = {
      ...e,
      localAddress: tcp.localAddress, localPort: tcp.localPort,
      remoteAddress: tcp.remoteAddress, remotePort: tcp.remotePort,
    };
    const at = Date.now();
    this.emit('socket-opened', opened, socket, raw);
    socket.once('close', () => {
      this.emit('socket-closed', { ...opened, bytesRead: socket.bytesRead, bytesWritten: socket.bytesWritten, durationMs: Date.now() - at });
    });
  }

  /**
   * Announces every connection `server` accepts, once its TLS handshake is done (a handshake that fails is no
   * connection of a flow), as `inbound`; what is known then is the addresses and the protocol — the flow's tag, when
   * a request names one, is the request handler's to tell. Returns the function that stops watching.
   */
  watchServer(server: { on(event: 'secureConnection', l: (s: TLSSocket) => void): unknown; off(event: 'secureConnection', l: (s: TLSSocket) => void): unknown }): () => void {
    const onConnection = (socket: TLSSocket): void => {
      this.track(socket, { side: 'inbound', flow: {}, protocol: socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1' });
    };
    server.on('secureConnection', onConnection);
    return () => void server.off('secureConnection', onConnection);
  }
}
