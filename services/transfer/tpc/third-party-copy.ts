/**
 * Remote → remote transfers by HTTP third-party copy, as FTS does through gfal2: the port asks one storage to copy
 * directly from or to the other (WebDAV COPY in pull or push mode, tpc-client.ts) and follows its performance
 * markers, so the bytes do not pass through the port. The request's `copyMode`:
 * - `streamed` (default): no third-party copy; the port streams the bytes itself (GET → PUT);
 * - `pull` / `push`: only that mode;
 * - `auto`: pull, then push, then streamed — the next mode is tried only when the active party refuses COPY
 *   (400, 405, 501: gfal2's fallback). A third-party copy that started and failed is a failed attempt (retried).
 * Without a `copyMode` in the request, the destination's endpoint setting applies, then the source's
 * (`transfer.endpointsFile`), else `streamed`.
 * Origins that refused COPY are remembered for 10 minutes, so a job of 10,000 files asks them once.
 * After a third-party copy the port checks the destination itself, as FTS does: its size against the source's, and
 * the checksum (Want-Digest) when verification was asked or a value given.
 */
import type { Attempt } from '../attempt.js';
import type { ClientPool } from '../connect/client-pool.js';
import { header, headRequest, removeUnverifiedUpload, type HttpEndpoint } from '../http/http-requests.js';
import type { StallPolicy } from '../stall-watchdog.js';
import { TPC_UNSUPPORTED, tpcCopy } from './tpc-client.js';
import { createParentCollections } from '../push/parent-collections.js';
import { checksumMismatch, digestFromHeaders, wantDigestValue } from '../transfer-checksum.js';
import { TransferError, TransferErrorCode, redactUrl } from '../transfer-errors.js';
import type { TransferResult } from '../types.js';
import { flowIdOf } from '../../marking/flow-id.js';

export type CopyMode = 'auto' | 'pull' | 'push' | 'streamed';

const REFUSAL_MEMORY_MS = 10 * 60_000;
const refusedCopy = new Map<string, number>(); // `${origin} ${mode}` → until (ms)

function refused(origin: string, mode: 'pull' | 'push'): boolean {
  const until = refusedCopy.get(`${origin} ${mode}`);
  if (until === undefined) return false;
  if (until > Date.now()) return true;
  refusedCopy.delete(`${origin} ${mode}`);
  return false;
}

const endpointModes = new Map<string, CopyMode>();

/** The default copy mode of remote → remote files touching `origin`; undefined removes it. */
export function setEndpointCopyMode(origin: string, mode: CopyMode | undefined): void {
  if (mode) endpointModes.set(origin, mode);
  else endpointModes.delete(origin);
}

/** Forget what was learned about origins (tests, reconfiguration). */
export function forgetCopyRefusals(): void {
  refusedCopy.clear();
}

/**
 * Runs the transfer as a third-party copy when `copyMode` asks for one; resolves null when the caller should stream
 * the bytes itself (mode `streamed`, or `auto` with every active party refusing).
 */
export async function thirdPartyCopy(
  a: Attempt, src: HttpEndpoint, dst: HttpEndpoint, pool: ClientPool, stall: StallPolicy,
): Promise<TransferResult | null> {
  const mode: CopyMode = a.req.copyMode ?? endpointModes.get(dst.origin) ?? endpointModes.get(src.origin) ?? 'streamed';
  if (mode === 'streamed') return null;
  const modes: Array<'pull' | 'push'> = mode === 'auto' ? ['pull', 'push'] : [mode];
  const verifying = a.computeChecksum;
  for (const m of modes) {
    const active = m === 'pull' ? dst : src;
    if (refused(active.origin, m)) {
      if (mode === 'auto') continue;
      throw new TransferError(TPC_UNSUPPORTED, `${active.origin} refused HTTP third-party copy in ${m} mode (within the last 10 minutes)`, {
        httpStatus: 502, field: m === 'pull' ? 'destination' : 'source', retryable: false,
      });
    }
    try {
      // The source writes into the destination: a 409 for a missing parent would never reach us (gfal2 does this too).
      if (m === 'push') await createParentCollections(pool, dst, a.req.destinationHeaders ?? {}, a.signal, false);
      const res = await tpcCopy({
        mode: m,
        source: src.url,
        destination: dst.url,
        headers: { ...(m === 'pull' ? a.req.destinationHeaders : a.req.sourceHeaders) },
        passiveHeaders: { ...(m === 'pull' ? a.req.sourceHeaders : a.req.destinationHeaders) },
        ...(a.req.streams !== undefined ? { streams: a.req.streams } : {}),
        overwrite: a.req.overwrite,
        requireChecksumVerification: verifying,
        ...(a.req.flow ? { scitag: flowIdOf(a.req.flow) } : {}),
      }, {
        signal: a.signal, gate: a.ctl.gate, pool, stall,
        onMarker: (_m, total) => a.ctl.onProgress?.({ bytes: total, ...(a.req.size !== undefined ? { total: a.req.size } : {}) }),
      });
      const checked = await checkDestination(a, src, dst, pool).catch(async (e: unknown) => {
        // The copy stored bytes this transfer cannot vouch for: remove them, as a push does, so nothing unverified
        // stays published and a retry without overwrite does not meet its own leftover (CARGO_ERR_DEST_EXISTS).
        if (!a.signal.aborted) await removeUnverifiedUpload(pool, dst, a.req.destinationHeaders ?? {});
        throw e;
      });
      return {
        bytes: checked.size,
        resumedBytes: 0,
        ...(checked.checksum ? { checksum: { alg: a.alg, value: checked.checksum } } : {}),
        protocol: m === 'pull' ? 'tpc-pull' : 'tpc-push',
        connections: 1,
        streams: Math.max(1, res.remoteConnections.length, a.req.streams ?? 1),
        durationMs: Date.now() - a.startedAt,
      };
    } catch (e) {
      if (!(e instanceof TransferError && e.code === TPC_UNSUPPORTED)) throw e;
      refusedCopy.set(`${active.origin} ${m}`, Date.now() + REFUSAL_MEMORY_MS);
      if (mode !== 'auto') throw e;
    }
  }
  return null;
}

/** What the destination holds after a third-party copy, checked against the source and the user's value. */
async function checkDestination(
  a: Attempt, src: HttpEndpoint, dst: HttpEndpoint, pool: ClientPool,
): Promise<{ size: number; checksum?: string }> {
  const { req } = a;
  const want: Record<string, string> = a.computeChecksum ? { 'want-digest': wantDigestValue(a.alg) } : {};
  const head = await headRequest(pool, dst, 'destination', { ...req.destinationHeaders, ...want }, a.signal);
  if (head.status < 200 || head.status >= 300) {
    throw new TransferError(TransferErrorCode.sizeMismatch,
      `third-party copy reported success but the destination answers HTTP ${head.status}: ${redactUrl(dst.url)}`,
      { httpStatus: 502, field: 'destination', retryable: true });
  }
  const size = Number(header(head.headers, 'content-length') ?? NaN);
  let expectedSize = req.size;
  let sourceDigest: string | undefined;
  if (expectedSize === undefined || req.verify === 'source' || req.verify === 'both') {
    const s = await headRequest(pool, src, 'source', { ...req.sourceHeaders, ...want }, a.signal);
    if (s.status >= 200 && s.status < 300) {
      const len = header(s.headers, 'content-length');
      if (expectedSize === undefined && len !== undefined && /^\d+$/.test(len)) expectedSize = Number(len);
      sourceDigest = digestFromHeaders(s.headers, a.alg);
    }
  }
  if (expectedSize !== undefined && Number.isFinite(size) && size !== expectedSize) {
    throw new TransferError(TransferErrorCode.sizeMismatch,
      `third-party copy: destination holds ${size} bytes, source has ${expectedSize}`,
      { httpStatus: 502, field: 'destination', retryable: true });
  }
  if (!a.computeChecksum) return { size: Number.isFinite(size) ? size : expectedSize ?? 0 };
  const destDigest = digestFromHeaders(head.headers, a.alg);
  if (destDigest === undefined) {
    throw new TransferError(TransferErrorCode.checksumUnavailable,
      `destination did not report a ${a.alg} checksum after the third-party copy (Want-Digest)`,
      { httpStatus: 502, field: 'destination', retryable: false });
  }
  const expected = req.checksum?.value?.toLowerCase();
  if (expected !== undefined && req.checksum!.alg === a.alg && expected !== destDigest) {
    throw checksumMismatch(a.alg, destDigest, expected, 'checksum');
  }
  if (req.verify === 'source' || req.verify === 'both') {
    if (sourceDigest === undefined && expected === undefined) {
      throw new TransferError(TransferErrorCode.checksumUnavailable,
        `source did not report a ${a.alg} checksum (Want-Digest) and none was given`,
        { httpStatus: 502, field: 'source', retryable: false });
    }
    if (sourceDigest !== undefined && sourceDigest !== destDigest) throw checksumMismatch(a.alg, destDigest, sourceDigest, 'source');
  }
  return { size: Number.isFinite(size) ? size : expectedSize ?? 0, checksum: destDigest };
}
