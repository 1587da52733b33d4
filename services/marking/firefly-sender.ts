/**
 * Sends firefly datagrams over UDP: to the flow's remote host on the peer port (10514, as XRootD always does,
 * specs/scitags.md §1.1) and to each configured collector, IPv4 or IPv6. One unbound socket per family, created on
 * first use and unref'd (a marking port must never keep a process alive); sends are fire-and-forget, failures are
 * counted for the status, never thrown into a transfer.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { CargoError } from '../../errors/cargo-error.js';
import { plainIp } from './firefly.js';

export interface Collector { host: string; port: number }

/** `host:port`, `[v6]:port` or a bare host / address (port 10514). */
export function parseCollector(s: string, defaultPort = 10514): Collector {
  const t = s.trim();
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : defaultPort };
  if (isIPv6(t)) return { host: t, port: defaultPort };
  const m = /^([^:]+)(?::(\d+))?$/.exec(t);
  if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) throw new CargoError('CARGO_ERR_CONFIG', `marking.collectors: ${JSON.stringify(s)} is not host[:port]`, { field: 'marking.collectors' });
  return { host: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
}

export class FireflySender {
  sent = 0;
  errors = 0;
  lastError?: string;
  private v4?: UdpSocket;
  private v6?: UdpSocket;

  constructor(private readonly collectors: readonly Collector[], private readonly peerPort: number | undefined) {}

  /** To the remote peer (unless peer sending is off) and every collector. */
  send(datagram: Buffer, remoteIp: string): void {
    if (this.peerPort !== undefined) this.sendTo(datagram, plainIp(remoteIp), this.peerPort);
    for (const c of this.collectors) this.sendTo(datagram, c.host, c.port);
  }

  private sendTo(datagram: Buffer, host: string, port: number): void {
    const sock = this.socketFor(isIPv6(host) ? 'udp6' : 'udp4');
    sock.send(datagram, port, host, (err) => {
      if (err) {
        this.errors++;
        this.lastError = `${host}:${port}: ${err.message}`;
      } else {
        this.sent++;
      }
    });
  }

  private socketFor(type: 'udp4' | 'udp6'): UdpSocket {
    let s = type === 'udp4' ? this.v4 : this.v6;
    if (!s) {
      s = createSocket({ type });
      s.on('error', (e) => {
        this.errors++;
        this.lastError = e.message;
      });
      s.unref();
      if (type === 'udp4') this.v4 = s;
      else this.v6 = s;
    }
    return s;
  }

  close(): void {
    this.v4?.close();
    this.v6?.close();
    this.v4 = this.v6 = undefined;
  }
}
