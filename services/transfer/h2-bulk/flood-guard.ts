/**
 * The budget of frames a server may send that cost us work and move no response forward: PING and SETTINGS (each
 * asks for an ACK), RST_STREAM or HEADERS for streams already closed, empty DATA frames, PRIORITY, WINDOW_UPDATE
 * (we send no DATA), unknown extension frames, informational responses. A well-behaved server sends a handful per
 * connection; a flood of them (CVE-2019-9512 ping flood, -9515 settings flood, -9518 empty frames) is a CPU sink
 * and, against a client that answers every PING while the server does not read, a memory sink.
 *
 * A token bucket, as nghttp2's "glitch" rate limit: BURST at once, refilled at RATE per second. When it runs dry the
 * connection is closed with GOAWAY ENHANCE_YOUR_CALM, naming what flooded it.
 */
export const FLOOD_BURST = 1000;
export const FLOOD_RATE_PER_SEC = 100;

export class FloodGuard {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst = FLOOD_BURST,
    private readonly perSecond = FLOOD_RATE_PER_SEC,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Counts one such frame; false when the budget is spent (the caller closes the connection). */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.perSecond) / 1000);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Why the connection closes: `flood of PING frames (…)`. */
  describe(kind: string): string {
    return `flood of ${kind} (more than ${this.burst} at once or ${this.perSecond}/s sustained; ENHANCE_YOUR_CALM)`;
  }
}
