/**
 * One attempt of one file transfer: the request, the caller's control, and the attempt's own abort signal
 * (fed by the caller's signal and the stall watchdog). Shared by the single-stream and multi-stream paths.
 */
import type { CargoError } from '../../errors/cargo-error.js';
import type { Endpoint } from './endpoint.js';
import type { ClientPool } from './connect/client-pool.js';
import type { StallWatchdog } from './stall-watchdog.js';
import { checksumMismatch } from './transfer-checksum.js';
import { TransferError, TransferErrorCode, abortedError, classifyError } from './transfer-errors.js';
import type { ChecksumAlg, TransferControl, TransferRequest } from './types.js';

export interface Attempt {
  req: TransferRequest;
  ctl: TransferControl;
  signal: AbortSignal;
  watchdog: StallWatchdog;
  alg: ChecksumAlg;
  /** Compute a checksum at all (verification asked, or a value to compare with). */
  computeChecksum: boolean;
  startedAt: number;
  /** The connections this attempt uses: the engine's pool, or its tagged flow's (engine.ts poolFor). */
  pool: ClientPool;
}

/**
 * The headers of one request to `role`: the request's fixed headers, then what the credential provider answers for
 * this very request (asked every time: ranges, retries, continuations).
 */
export async function requestHeaders(a: Attempt, role: 'source' | 'destination', url: string, method: string): Promise<Record<string, string>> {
  const fixed = role === 'source' ? a.req.sourceHeaders : a.req.destinationHeaders;
  const provider = a.ctl.credentials;
  if (!provider) return { ...fixed };
  return { ...fixed, ...await provider({ url, role, method }) };
}

/** The attempt's abort reason wins over whatever error the abort caused downstream (undici, streams). */
export function asAttemptError(e: unknown, attempt: Attempt, source: Endpoint): CargoError {
  if (attempt.signal.aborted) return abortedError(attempt.signal.reason);
  return classifyError(e, source.kind === 'file' ? 'local' : 'source', source.url);
}

/**
 * Compares what we computed with the user's expected value (always, when given) and with the source's
 * announced digest (verify = source | both). A remote source that announces nothing, with no user value
 * either, leaves nothing to verify against: that is an error, not a silent pass.
 */
export function verifyChecksum(a: Attempt, computed: string | undefined, sourceDigest: string | undefined): void {
  if (computed === undefined) return;
  const expected = a.req.checksum?.value?.toLowerCase();
  if (expected !== undefined && a.req.checksum!.alg === a.alg && expected !== computed) {
    throw checksumMismatch(a.alg, computed, expected, 'checksum');
  }
  if (a.req.verify === 'source' || a.req.verify === 'both') {
    if (sourceDigest !== undefined && sourceDigest !== computed) throw checksumMismatch(a.alg, computed, sourceDigest, 'source');
    refuseWithoutSourceDigest(a, sourceDigest);
  }
}

/** verify = source | both with nothing else to compare against: no user value, and a remote source. */
export function sourceDigestRequired(a: Attempt): boolean {
  return a.computeChecksum && (a.req.verify === 'source' || a.req.verify === 'both') &&
    a.req.checksum?.value === undefined && !a.req.source.startsWith('file:');
}

/**
 * The error verifyChecksum raises for a remote source that announced no checksum when one is required — known as
 * soon as the response headers arrive, so pulls, pushes and stream-throughs call it then and move no byte.
 */
export function refuseWithoutSourceDigest(a: Attempt, sourceDigest: string | undefined): void {
  if (sourceDigest !== undefined || !sourceDigestRequired(a)) return;
  throw new TransferError(TransferErrorCode.checksumUnavailable,
    `source did not report a ${a.alg} checksum (Want-Digest) and none was given`,
    { httpStatus: 502, field: 'source', retryable: false });
}
