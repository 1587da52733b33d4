/**
 * A TCP fault injector for robustness benchmarks: forwards connections to `upstream` and
 *  - resets a fraction of them (RST, both sides) after a random number of downstream bytes, or
 *  - stalls chosen connections: stops forwarding after some bytes but keeps both sockets open.
 * Counts the bytes it delivered downstream, so a benchmark can report how much moved twice.
 */
import net from 'node:net';

export interface FaultProxyOptions {
  upstreamHost: string;
  upstreamPort: number;
  /** Fraction of connections to reset (0–1). */
  resetFraction?: number;
  /** A reset happens after a uniform random number of downstream bytes in [0, resetWithinBytes). */
  resetWithinBytes?: number;
  /** Connections (by 1-based accept order) to stall after `stallAfterBytes`. */
  stallConnections?: Set<number>;
  stallAfterBytes?: number;
  /** Deterministic randomness for reproducible runs. */
  seed?: number;
}

export interface FaultProxy {
  port: number;
  downstreamBytes: number;
  connections: number;
  resets: number;
  /** performance.now() of each stall's start. */
  stallsStartedAt: number[];
  close(): Promise<void>;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function startFaultProxy(o: FaultProxyOptions): Promise<FaultProxy> {
  const rnd = mulberry32(o.seed ?? 1);
  const sockets = new Set<net.Socket>();
  const state: FaultProxy = {
    port: 0, downstreamBytes: 0, connections: 0, resets: 0, stallsStartedAt: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((client) => {
    const n = ++state.connections;
    const upstream = net.connect(o.upstreamPort, o.upstreamHost);
    sockets.add(client);
    sockets.add(upstream);
    const forget = (): void => { sockets.delete(client); sockets.delete(upstream); };
    client.once('close', forget);
    const resetAt = rnd() < (o.resetFraction ?? 0) ? Math.floor(rnd() * (o.resetWithinBytes ?? 1 << 20)) : Infinity;
    const stallAt = o.stallConnections?.has(n) ? (o.stallAfterBytes ?? 0) : Infinity;
    let delivered = 0;
    let stalled = false;
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      if (stalled) return;
      const room = Math.min(resetAt, stallAt) - delivered;
      if (d.length < room) {
        delivered += d.length;
        state.downstreamBytes += d.length;
        if (!client.write(d)) { upstream.pause(); client.once('drain', () => upstream.resume()); }
        return;
      }
      const head = d.subarray(0, Math.max(0, room));
      if (head.length) { client.write(head); delivered += head.length; state.downstreamBytes += head.length; }
      if (delivered >= resetAt) {
        state.resets++;
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      } else {
        stalled = true;
        state.stallsStartedAt.push(performance.now());
        upstream.pause();
      }
    });
    const end = (): void => { client.destroy(); upstream.destroy(); };
    client.on('error', end);
    upstream.on('error', end);
    client.on('end', () => upstream.end());
    upstream.on('end', () => { if (!stalled) client.end(); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}
