/**
 * Paces new connections per host so a burst of hundreds of transfers starting at once does not overflow the
 * server's accept backlog (SYN drops, resets, TLS handshake storms): at most `maxPending` connection attempts
 * in flight per host, and at most `perSecond` started per second. Connections already open are unaffected.
 */
import { ConcurrencySlots, type ReleaseSlot } from './concurrency-slots.js';
import { TokenBucket } from './token-bucket.js';

export interface ConnectionPacerOptions {
  /** Handshakes in flight per host. */
  maxPending: number;
  /** New connections per second per host (burst of the same size). */
  perSecond: number;
}

export const defaultConnectionPacing: ConnectionPacerOptions = { maxPending: 32, perSecond: 200 };

interface HostPace {
  pending: ConcurrencySlots;
  rate: TokenBucket;
}

export class ConnectionPacer {
  private readonly hosts = new Map<string, HostPace>();

  constructor(private readonly opts: ConnectionPacerOptions = defaultConnectionPacing) {}

  /** Waits for a turn to connect to `host`; call the returned function once the handshake ended (either way). */
  async turn(host: string, signal?: AbortSignal): Promise<ReleaseSlot> {
    let h = this.hosts.get(host);
    if (!h) {
      h = {
        pending: new ConcurrencySlots(this.opts.maxPending),
        // One token = one connection; the bucket is byte-agnostic.
        rate: new TokenBucket({ bytesPerSec: this.opts.perSecond, burstBytes: this.opts.perSecond }),
      };
      this.hosts.set(host, h);
    }
    const release = await h.pending.acquire(signal);
    const wait = h.rate.take(1);
    if (wait) await wait;
    return release;
  }
}
