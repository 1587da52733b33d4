/**
 * The connector's one seam to services/marking, two small functions: before connecting, a connection of a tagged
 * flow asks marking for a TCP connection that carries the flow's IPv6 label (the label must be given at connect,
 * specs/scitags.md §6.1); after connecting, the connection is announced as a flow (fireflies, flowd pipe).
 * Connections of untagged transfers never get here. Wired by the client pool (client-pool.ts PoolState).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { marking, type FlowDirection } from '../../marking/marking-service.js';
import type { FlowTag } from '../../marking/flow-id.js';

function lookupAll(host: string, lookup: LookupFunction): Promise<string[]> {
  return new Promise((resolve, reject) => {
    lookup(host, { all: true }, (err, addrs) => {
      if (err) reject(err);
      else resolve((Array.isArray(addrs) ? addrs : [{ address: addrs as unknown as string }]).map((a) => a.address));
    });
  });
}

/**
 * A connected, labelled TCP socket to host:port for a tagged flow, or undefined: marking or its socket backend off,
 * or the host's preferred address is IPv4 (no flow label there) — then the connector connects as it always does.
 * Connection failures are thrown with Node's error codes.
 */
export async function openFlowSocket(
  tag: FlowTag, host: string, port: number, o: { lookup?: LookupFunction; connectTimeoutMs: number },
): Promise<Socket | undefined> {
  const m = marking();
  if (!m.labelsOutbound) return undefined;
  const h = host.replace(/^\[|\]$/g, '');
  let ip: string | undefined = h;
  let others = 0;
  if (!isIP(h)) {
    const all = o.lookup ? await lookupAll(h, o.lookup) : (await dnsLookup(h, { all: true })).map((a) => a.address);
    ip = all[0];
    others = all.length - 1;
  }
  if (!ip || isIP(ip) !== 6) return undefined;
  // Node's http agents pass the port as the URL gave it (a string).
  if (others === 0) return m.openLabelledSocket(ip, Number(port), tag, o.connectTimeoutMs);
  // A name with more addresses: a dead IPv6 path must not cost the transfer, so after a bounded attempt the usual
  // connector tries them all (happy eyeballs), unlabelled.
  return m.openLabelledSocket(ip, Number(port), tag, Math.min(o.connectTimeoutMs, LABELLED_ATTEMPT_MS)).catch(() => undefined);
}

/** How long a labelled connect to the first of several addresses may take before the others are tried. */
const LABELLED_ATTEMPT_MS = 3000;

/** Announces a connection of a tagged flow once it is up (TLS done); `raw` is the TCP socket under a TLS one. */
export function flowSocketOpened(tag: FlowTag, socket: Socket, direction: FlowDirection, raw?: Socket): void {
  marking().trackSocket(socket, tag, direction, raw);
}
