/**
 * The per-endpoint circuit breaker (scheduler.endpointBreaker*): after `failures` attempts in a row that could not
 * reach an endpoint at all, or at once when a destination takes no more bytes (full disk or quota, read-only, HTTP
 * 507), no new transfer touching it starts for `cooldownMs` (doubling on every re-trip, up to `maxCooldownMs`); its
 * files wait in their lanes without spending retries. Then one transfer at a time probes it, and the first success
 * closes the breaker. State in Redis (the END and FEED scripts), so every worker process and the status see it.
 */
export interface EndpointBreakerSettings {
  failures: number;
  cooldownMs: number;
  maxCooldownMs: number;
  /** From its first trip, how long a breaker holds files back; after that they run and fail by their retries. */
  giveUpMs: number;
}

export const DEFAULT_ENDPOINT_BREAKER: EndpointBreakerSettings = { failures: 5, cooldownMs: 30_000, maxCooldownMs: 900_000, giveUpMs: 3_600_000 };

/**
 * An endpoint whose breaker is tripped: `open` until retryAt, then `half-open` (one probing transfer at a time);
 * `given-up` once it has held files back for the give-up time (they run again and fail by their retries).
 */
export interface UnavailableEndpoint {
  endpoint: string;
  state: 'open' | 'half-open' | 'given-up';
  /**
   * Why: `unreachable` (attempts could not connect at all) or `full` (a destination that took no more bytes:
   * ENOSPC, EDQUOT, EROFS or HTTP 507; `detail` says which and where).
   */
  cause: 'unreachable' | 'full';
  detail?: string;
  retryAt: string;
  holdsFilesUntil: string;
  cooldownMs: number;
  failuresInARow: number;
}
