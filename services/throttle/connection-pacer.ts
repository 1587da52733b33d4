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

/** Connect failures worth another paced turn: an overflowing accept backlog answers with RST / refusal. */
const RETRYABLE_CONNECT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE']);
const CONNECT_RETRIES = 3;

/**
 * How long to wait before paced connect retry number `retry` (1, 2, 3) after a failure with error `code`, or
 * undefined when the failure is final (another code, or the retries are used up). Jittered exponential backoff:
 * ~100, 200, 400 ms. Every connector of the port (undici's, the bulk receive sessions) follows this one policy.
 */
export function connectRetryDelayMs(code: string | undefined, retry: number): number | undefined {
  if (code === undefined || !RETRYABLE_CONNECT_CODES.has(code) || retry > CONNECT_RETRIES) return undefined;
  return 50 * 2 ** retry * (0.5 + Math.random());
}

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
