/**
 * Firefly datagrams (specs/scitags.md §1): the RFC 5424 header every implementation writes
 * (`<134>1 TIMESTAMP HOSTNAME APP - firefly-json - `) and then the v1 JSON body. Unlike flowd-go, the timestamp is
 * always filled (never an empty field, §7.4) and start/end carry their times, so every datagram validates against
 * the schema and parses with the collector's grok pattern. At most 1 KiB per datagram (XRootD's buffer, §1.4): the
 * optional `netlink` block is shrunk first, then dropped.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const FIREFLY_MAX_BYTES = 1024;

export type FlowState = 'start' | 'ongoing' | 'end';

export interface FireflyFlow {
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
  experiment: number;
  activity: number;
  startTime: Date;
}

export interface FireflyEvent {
  state: FlowState;
  now: Date;
  endTime?: Date;
  usage?: { received: number; sent: number };
  netlink?: Record<string, number | string>;
}

/** `::ffff:10.0.0.1` (a dual-stack socket's view of an IPv4 peer) is IPv4 on the wire. */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

export function syslogHeader(now: Date, hostname: string, app: string): string {
  // RFC 5424 HOSTNAME / APP-NAME: printable US-ASCII without spaces, at most 255 / 48 characters.
  const clean = (s: string, max: number): string => (s.replace(/[^\x21-\x7e]/g, '') || '-').slice(0, max);
  return `<134>1 ${now.toISOString()} ${clean(hostname, 255)} ${clean(app, 48)} - firefly-json - `;
}

export function fireflyBody(flow: FireflyFlow, ev: FireflyEvent, application: string): Record<string, unknown> {
  const src = plainIp(flow.srcIp);
  const dst = plainIp(flow.dstIp);
  const lifecycle: Record<string, string> = { state: ev.state, 'start-time': flow.startTime.toISOString(), 'current-time': ev.now.toISOString() };
  if (ev.state === 'end') lifecycle['end-time'] = (ev.endTime ?? ev.now).toISOString();
  const body: Record<string, unknown> = {
    version: 1,
    'flow-lifecycle': lifecycle,
    'flow-id': {
      afi: isIPv6(src) ? 'ipv6' : 'ipv4', 'src-ip': src, 'dst-ip': dst, protocol: 'tcp', 'src-port': flow.srcPort, 'dst-port': flow.dstPort,
    },
    context: { 'experiment-id': flow.experiment, 'activity-id': flow.activity, application },
  };
  if (ev.usage) body['usage'] = { received: ev.usage.received, sent: ev.usage.sent };
  if (ev.netlink) body['netlink'] = ev.netlink;
  return body;
}

/** The datagram, ≤ FIREFLY_MAX_BYTES. */
export function fireflyDatagram(flow: FireflyFlow, ev: FireflyEvent, host: string, application: string): Buffer {
  const header = syslogHeader(ev.now, host, application.split(/\s/)[0] ?? 'cargoport');
  let body = fireflyBody(flow, ev, application);
  let out = Buffer.from(header + JSON.stringify(body));
  if (out.length > FIREFLY_MAX_BYTES && ev.netlink) {
    body = fireflyBody(flow, { ...ev, netlink: undefined }, application);
    out = Buffer.from(header + JSON.stringify(body));
  }
  if (out.length > FIREFLY_MAX_BYTES) {
    // Only a very long application string can get here: drop it (it is optional).
    (body['context'] as Record<string, unknown>)['application'] = undefined;
    out = Buffer.from(header + JSON.stringify(body));
  }
  return out;
}
