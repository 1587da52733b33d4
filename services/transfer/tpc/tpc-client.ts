/**
 * HTTP third-party copy, client side (wlcg.md §3): ask a remote storage (the *active* party) to copy
 * between itself and another endpoint with WebDAV COPY, then follow its performance markers until the
 * terminal `success:` / `failure:` line.
 *   pull mode: COPY <destination>, `Source: <source>`       (the destination GETs from the source)
 *   push mode: COPY <source>,      `Destination: <destination>` (the source PUTs to the destination)
 * Headers for the passive party travel as `TransferHeader<Name>` and are forwarded by the active party.
 * Aborting closes the connection, which dCache and XRootD treat as "cancel the transfer".
 */
import { setMaxListeners } from 'node:events';
import type { Gate } from '../../throttle/pause-gate.js';
import type { ClientPool } from '../connect/client-pool.js';
import { parseEndpoint } from '../endpoint.js';
import { PerfMarkerParser, type PerfMarker } from './perf-marker-parser.js';
import { StallWatchdog, type StallPolicy } from '../stall-watchdog.js';
import { TransferError, abortedError, classifyError, errorForHttpStatus } from '../transfer-errors.js';
import { canonicalHeaders } from '../http/http1-upload.js';

export const TPC_FAILED = 'CARGO_ERR_TPC_FAILED';
export const TPC_UNSUPPORTED = 'CARGO_ERR_TPC_UNSUPPORTED';
/** COPY answers that mean "no third-party copy here", not "this copy failed". */
const TPC_REFUSALS = new Set([400, 405, 501]);

export interface TpcCopyRequest {
  mode: 'pull' | 'push';
  source: string;
  destination: string;
  /** Headers for the active party (its Authorization). */
  headers?: Record<string, string>;
  /** Headers the active party must send to the passive one (e.g. `Authorization`), sent as TransferHeader<Name>. */
  passiveHeaders?: Record<string, string>;
  /** X-Number-Of-Streams for the active party's own transfer. */
  streams?: number;
  overwrite?: boolean;
  requireChecksumVerification?: boolean;
  scitag?: number;
}

export interface TpcControl {
  signal: AbortSignal;
  onMarker?(m: PerfMarker, totalBytes: number): void;
  /** No marker progress for `idleMs` (XRootD's default is 60 s, markers every 5 s) → CARGO_ERR_STALLED. */
  stall?: StallPolicy;
  /** A closed gate suspends the stall clock (the remote transfer itself cannot be paused through COPY). */
  gate?: Gate;
  /** The connections the COPY goes over (the engine's, so TLS trust and endpoint settings apply). */
  pool: ClientPool;
}

export interface TpcResult {
  /** Bytes the active party reported in its last marker (0 when it sent none). */
  bytes: number;
  markers: number;
  remoteConnections: string[];
  status: number;
  message: string;
  durationMs: number;
}

const OPEN_GATE: Gate = { isOpen: true, whenOpen: () => null };

export function tpcRequestHeaders(req: TpcCopyRequest): Record<string, string> {
  const h: Record<string, string> = { ...req.headers };
  if (req.mode === 'pull') h['source'] = req.source;
  else h['destination'] = req.destination;
  for (const [name, value] of Object.entries(req.passiveHeaders ?? {})) h[`transferheader${name.toLowerCase()}`] = value;
  // With a token for the passive side there is nothing to delegate (gfal2 behaviour).
  if (req.passiveHeaders && Object.keys(req.passiveHeaders).some((k) => k.toLowerCase() === 'authorization')) {
    h['credential'] = 'none';
  }
  if (req.streams !== undefined) h['x-number-of-streams'] = String(req.streams);
  if (req.overwrite !== undefined) h['overwrite'] = req.overwrite ? 'T' : 'F';
  if (req.requireChecksumVerification !== undefined) h['requirechecksumverification'] = String(req.requireChecksumVerification);
  // The active party marks its own connections with SciTag; TransferHeaderSciTag asks it to pass the tag on to
  // the passive party (XRootD PR #2359: the passive side then emits the fireflies). SciTag wins where both arrive.
  if (req.scitag !== undefined) {
    for (const k of Object.keys(h)) if (k.toLowerCase() === 'scitag') delete h[k];
    h['scitag'] = h['transferheaderscitag'] = String(req.scitag);
  }
  return h;
}

export async function tpcCopy(req: TpcCopyRequest, ctl: TpcControl): Promise<TpcResult> {
  const active = parseEndpoint(req.mode === 'pull' ? req.destination : req.source, req.mode === 'pull' ? 'destination' : 'source');
  const side = req.mode === 'pull' ? 'destination' : 'source';
  parseEndpoint(req.mode === 'pull' ? req.source : req.destination, req.mode === 'pull' ? 'source' : 'destination');
  if (active.kind !== 'http') {
    throw new TransferError('CARGO_ERR_UNSUPPORTED_SCHEME', 'the active party of a third-party copy must be an http(s) URL', {
      httpStatus: 400, field: side, retryable: false,
    });
  }
  const pool = ctl.pool;
  const started = Date.now();
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);
  const forward = (): void => abort.abort(ctl.signal.reason);
  if (ctl.signal.aborted) throw abortedError(ctl.signal.reason);
  ctl.signal.addEventListener('abort', forward, { once: true });
  const watchdog = new StallWatchdog(ctl.stall ?? { idleMs: 0, minBytesPerSec: 0, windowMs: 0 }, ctl.gate ?? OPEN_GATE,
    (err) => abort.abort(err));
  const lent = pool.lendUploadClient(active.origin);
  let lastBytes = 0;
  const parser = new PerfMarkerParser({
    onMarker: (m, total) => {
      // Any marker proves the remote is alive; growth is progress.
      watchdog.bytesMoved(Math.max(1, total - lastBytes));
      lastBytes = total;
      ctl.onMarker?.(m, total);
    },
  });
  watchdog.start();
  try {
    const res = await lent.pooled.client.request({
      method: 'COPY', path: active.path, // Header names as XRootD 5.5 expects them (`Source`, `Credential`, `TransferHeader…`: it compares exactly; a
      // lower-case `source:` is answered 400 "no source or destination specified"). HTTP/2 lower-cases them anyway.
      headers: canonicalHeaders(tpcRequestHeaders(req)), signal: abort.signal,
    });
    if (res.statusCode >= 300) {
      res.body.resume();
      if (TPC_REFUSALS.has(res.statusCode)) {
        // The active party does not do this kind of COPY at all (a plain web server: 405; XRootD without a
        // token for the passive side: 400 on `Credential`): a caller may fall back to another mode.
        throw new TransferError(TPC_UNSUPPORTED, `${active.origin} refused HTTP third-party copy in ${req.mode} mode (HTTP ${res.statusCode})`, {
          httpStatus: 502, field: side, retryable: false,
        });
      }
      throw errorForHttpStatus(res.statusCode, side, active.url);
    }
    res.body.setEncoding('utf8');
    for await (const text of res.body) {
      parser.push(text as string);
      if (parser.terminal) break;
    }
    parser.end();
    const t = parser.terminal;
    if (!t) {
      throw new TransferError('CARGO_ERR_NETWORK', 'third-party copy: connection ended without success or failure line', {
        httpStatus: 502, field: side, retryable: true,
      });
    }
    if (!t.ok) {
      throw new TransferError(TPC_FAILED, `third-party copy failed at ${active.origin}: ${t.message}`, {
        httpStatus: 502, field: side, retryable: true,
      });
    }
    return {
      bytes: parser.totalBytes, markers: parser.markers, remoteConnections: parser.remoteConnections,
      status: res.statusCode, message: t.message, durationMs: Date.now() - started,
    };
  } catch (e) {
    if (abort.signal.aborted) throw abortedError(abort.signal.reason);
    throw classifyError(e, side, active.url);
  } finally {
    watchdog.stop();
    lent.release();
    ctl.signal.removeEventListener('abort', forward);
  }
}

/** Content type dCache uses for marker streams (for servers we talk to that check Accept). */
export const PERF_MARKER_CONTENT_TYPE = 'text/perf-marker-stream';
