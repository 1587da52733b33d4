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
import { requestHeaders, type Attempt } from '../attempt.js';
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

/**
 * What one engine knows about copy modes: the operator's default per endpoint (transfer.endpointsFile) and the
 * origins that refused COPY lately. One per engine object, never module state: two engines in one process (tests,
 * a gateway beside a worker pool) do not see each other's settings.
 */
export class CopyModeMemory {
  private readonly refusedCopy = new Map<string, number>(); // `${origin} ${mode}` → until (ms)
  private readonly endpointModes = new Map<string, CopyMode>();

  /** The default copy mode of remote → remote files touching `origin`; undefined removes it. */
  setEndpointMode(origin: string, mode: CopyMode | undefined): void {
    if (mode) this.endpointModes.set(origin, mode);
    else this.endpointModes.delete(origin);
  }

  endpointMode(origin: string): CopyMode | undefined {
    return this.endpointModes.get(origin);
  }

  refused(origin: string, mode: 'pull' | 'push'): boolean {
    const until = this.refusedCopy.get(`${origin} ${mode}`);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.refusedCopy.delete(`${origin} ${mode}`);
    return false;
  }

  noteRefusal(origin: string, mode: 'pull' | 'push'): void {
    this.refusedCopy.set(`${origin} ${mode}`, Date.now() + REFUSAL_MEMORY_MS);
  }

  /** Forget what was learned about origins (reconfiguration). */
  forgetRefusals(): void {
    this.refusedCopy.clear();
  }
}

/**
 * Runs the transfer as a third-party copy when `copyMode` asks for one; resolves null when the caller should stream
 * the bytes itself (mode `streamed`, or `auto` with every active party refusing).
 */
export async function thirdPartyCopy(
  a: Attempt, src: HttpEndpoint, dst: HttpEndpoint, pool: ClientPool, stall: StallPolicy, memory: CopyModeMemory,
): Promise<TransferResult | null> {
  const mode: CopyMode = a.req.copyMode ?? memory.endpointMode(dst.origin) ?? memory.endpointMode(src.origin) ?? 'streamed';
  if (mode === 'streamed') return null;
  const modes: Array<'pull' | 'push'> = mode === 'auto' ? ['pull', 'push'] : [mode];
  const verifying = a.computeChecksum;
  for (const m of modes) {
    const active = m === 'pull' ? dst : src;
    if (memory.refused(active.origin, m)) {
      if (mode === 'auto') continue;
      throw new TransferError(TPC_UNSUPPORTED, `${active.origin} refused HTTP third-party copy in ${m} mode (within the last 10 minutes)`, {
        httpStatus: 502, field: m === 'pull' ? 'destination' : 'source', retryable: false,
      });
    }
    try {
      // The source writes into the destination: a 409 for a missing parent would never reach us (gfal2 does this too).
      const dstHeaders = (method: string): Promise<Record<string, string>> => requestHeaders(a, 'destination', dst.url, method);
      if (m === 'push') await createParentCollections(pool, dst, dstHeaders, a.signal, false);
      const res = await tpcCopy({
        mode: m,
        source: src.url,
        destination: dst.url,
        // The active party's credentials for the COPY; the passive party's for the request the active one makes.
        headers: m === 'pull' ? await requestHeaders(a, 'destination', dst.url, 'COPY') : await requestHeaders(a, 'source', src.url, 'COPY'),
        passiveHeaders: m === 'pull' ? await requestHeaders(a, 'source', src.url, 'GET') : await requestHeaders(a, 'destination', dst.url, 'PUT'),
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
        if (!a.signal.aborted) await removeUnverifiedUpload(pool, dst, await dstHeaders('DELETE').catch(() => ({})));
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
      memory.noteRefusal(active.origin, m);
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
  const head = await headRequest(pool, dst, 'destination', { ...await requestHeaders(a, 'destination', dst.url, 'HEAD'), ...want }, a.signal);
  if (head.status < 200 || head.status >= 300) {
    throw new TransferError(TransferErrorCode.sizeMismatch,
      `third-party copy reported success but the destination answers HTTP ${head.status}: ${redactUrl(dst.url)}`,
      { httpStatus: 502, field: 'destination', retryable: true });
  }
  const size = Number(header(head.headers, 'content-length') ?? NaN);
  let expectedSize = req.size;
  let sourceDigest: string | undefined;
  if (expectedSize === undefined || req.verify === 'source' || req.verify === 'both') {
    const s = await headRequest(pool, src, 'source', { ...await requestHeaders(a, 'source', src.url, 'HEAD'), ...want }, a.signal);
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
