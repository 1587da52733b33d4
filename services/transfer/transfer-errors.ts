/**
 * Transfer failures as CargoErrors with stable codes. The worker decides retry vs FAILED from `retryable`
 * alone, so the classification here is the single place that says "a 404 will not get better by trying
 * again, a reset connection might".
 */
import { CargoError, type ErrorCode } from '../../errors/cargo-error.js';

export const TransferErrorCode = {
  auth: 'CARGO_ERR_AUTH',
  sourceNotFound: 'CARGO_ERR_SOURCE_NOT_FOUND',
  http4xx: 'CARGO_ERR_HTTP_4XX',
  http5xx: 'CARGO_ERR_HTTP_5XX',
  network: 'CARGO_ERR_NETWORK',
  peerProtocol: 'CARGO_ERR_PEER_PROTOCOL',
  tls: 'CARGO_ERR_TLS',
  timeout: 'CARGO_ERR_TIMEOUT',
  stalled: 'CARGO_ERR_STALLED',
  aborted: 'CARGO_ERR_ABORTED',
  unsupportedScheme: 'CARGO_ERR_UNSUPPORTED_SCHEME',
  destExists: 'CARGO_ERR_DEST_EXISTS',
  checksumMismatch: 'CARGO_ERR_CHECKSUM_MISMATCH',
  checksumUnavailable: 'CARGO_ERR_CHECKSUM_UNAVAILABLE',
  sizeMismatch: 'CARGO_ERR_SIZE_MISMATCH',
  sourceChanged: 'CARGO_ERR_SOURCE_CHANGED',
  localIo: 'CARGO_ERR_LOCAL_IO',
  stageFailed: 'CARGO_ERR_STAGE_FAILED',
  sourceFraming: 'CARGO_ERR_SOURCE_FRAMING',
  destConflict: 'CARGO_ERR_DEST_CONFLICT',
  contentEncoding: 'CARGO_ERR_CONTENT_ENCODING',
} as const;

export class TransferError extends CargoError {
  /** The HTTP status a remote endpoint answered, when that is what failed (507 from a destination means it is full). */
  readonly remoteStatus?: number;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { httpStatus?: number; field?: string; retryable?: boolean; cause?: unknown; remoteStatus?: number } = {},
  ) {
    super(code, message, opts);
    this.name = 'TransferError';
    if (opts.remoteStatus !== undefined) this.remoteStatus = opts.remoteStatus;
  }
}

/** Which side of the transfer an HTTP status came from; names the offending request field. */
export type TransferSide = 'source' | 'destination';

/** Maps a non-success HTTP status from a remote endpoint to a transfer error. */
export function errorForHttpStatus(status: number, side: TransferSide, url: string): TransferError {
  const where = `${side} ${redactUrl(url)}`;
  if (status === 401 || status === 403) {
    return new TransferError(TransferErrorCode.auth, `${where} refused access (HTTP ${status})`, {
      httpStatus: 502, field: side, retryable: false, remoteStatus: status,
    });
  }
  if (status === 404 && side === 'source') {
    return new TransferError(TransferErrorCode.sourceNotFound, `${where} not found (HTTP 404)`, {
      httpStatus: 404, field: side, retryable: false, remoteStatus: status,
    });
  }
  // 408 Request Timeout and 429 Too Many Requests are the server asking us to come back later.
  if (status === 408 || status === 429) {
    return new TransferError(TransferErrorCode.http4xx, `${where} answered HTTP ${status}`, {
      httpStatus: 502, field: side, retryable: true, remoteStatus: status,
    });
  }
  if (status >= 400 && status < 500) {
    return new TransferError(TransferErrorCode.http4xx, `${where} answered HTTP ${status}`, {
      httpStatus: 502, field: side, retryable: false, remoteStatus: status,
    });
  }
  if (status >= 500) {
    return new TransferError(TransferErrorCode.http5xx, `${where} answered HTTP ${status}`, {
      httpStatus: 502, field: side, retryable: true, remoteStatus: status,
    });
  }
  return new TransferError(TransferErrorCode.http4xx, `${where} answered unexpected HTTP ${status}`, {
    httpStatus: 502, field: side, retryable: false,
  });
}

const TLS_FATAL_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED',
]);

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT',
]);

/**
 * Wraps whatever a socket, undici or the file system threw into a TransferError. CargoErrors pass
 * through unchanged so a classification made deeper down is never overwritten.
 */
export function classifyError(err: unknown, side: TransferSide | 'local', url: string): CargoError {
  if (err instanceof CargoError) return err;
  const e = err as { code?: string; name?: string; message?: string };
  const code = e?.code ?? '';
  const where = side === 'local' ? `local file ${url}` : `${side} ${redactUrl(url)}`;
  if (TLS_FATAL_CODES.has(code)) {
    return new TransferError(TransferErrorCode.tls, `${where}: TLS verification failed (${code})`, {
      httpStatus: 502, field: side === 'local' ? undefined : side, retryable: false, cause: err,
    });
  }
  if (TIMEOUT_CODES.has(code)) {
    return new TransferError(TransferErrorCode.timeout, `${where}: ${code}`, {
      httpStatus: 504, field: side === 'local' ? undefined : side, retryable: true, cause: err,
    });
  }
  if (side === 'local') {
    // ENOSPC / EDQUOT / EIO may clear up (space freed, quota raised, disk remounted); ENOENT/EACCES on our own area will not.
    const retryable = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EMFILE' || code === 'ENFILE';
    return new TransferError(TransferErrorCode.localIo, `${where}: ${e?.message ?? String(err)}`, {
      httpStatus: 500, retryable, cause: err,
    });
  }
  return new TransferError(TransferErrorCode.network, `${where}: ${code || e?.name || 'error'}: ${e?.message ?? ''}`, {
    httpStatus: 502, field: side, retryable: true, cause: err,
  });
}

export function abortedError(reason?: unknown): TransferError {
  if (reason instanceof CargoError) return reason as TransferError;
  return new TransferError(TransferErrorCode.aborted, 'transfer aborted', {
    httpStatus: 499, retryable: false, cause: reason,
  });
}

/** Never leak credentials embedded in URLs (user:pass@, or query-string tokens) into messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    const who = u.username || u.password ? '***@' : '';
    return `${u.protocol}//${who}${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return url.slice(0, 200);
  }
}

/**
 * Whether `e` or an error down its cause chain carries a code that passes `test`. undici and the bulk session
 * wrap the socket's own error; happy eyeballs reports every address it tried in an AggregateError.
 */
export function hasCauseCode(e: unknown, test: (code: string) => boolean): boolean {
  for (let c = e as { code?: unknown; errors?: unknown; cause?: unknown } | undefined, i = 0; c && i < 6; c = c.cause as typeof c, i++) {
    if (typeof c.code === 'string' && test(c.code)) return true;
    if (Array.isArray(c.errors) && c.errors.some((a) => typeof (a as { code?: unknown })?.code === 'string' && test((a as { code: string }).code))) return true;
  }
  return false;
}

/**
 * Socket errors that mean "nobody answered at that address": the connection itself failed, before any request.
 * A reset or a timeout in the middle of a body is not here: the endpoint answered, and resuming fixes it.
 */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Failures before any byte reached a server: the unreachable ones, and a name the DNS says does not exist
 * (ENOTFOUND). The connector already retried what is worth retrying (client-pool.ts), so replaying the request
 * would only repeat those attempts and hold a worker slot four times as long against an endpoint that is down.
 */
const CONNECT_FAILURE_CODES = new Set([...UNREACHABLE_CODES, 'ENOTFOUND']);

export function isConnectFailure(e: unknown): boolean {
  return hasCauseCode(e, (code) => CONNECT_FAILURE_CODES.has(code));
}

/**
 * Which side of a transfer could not be reached at all (connection refused, unroutable, connect timeout), or
 * undefined when the failure says nothing about reachability. The scheduler's per-endpoint circuit breaker counts
 * these: files waiting for an endpoint that is down then wait in their lanes instead of spending their retries
 * against it. Not ENOTFOUND: the DNS said the name does not exist, and a typo waits for nothing.
 */
export function unreachableSide(err: unknown): TransferSide | undefined {
  if (!(err instanceof CargoError)) return undefined;
  if (err.code !== TransferErrorCode.network && err.code !== TransferErrorCode.timeout) return undefined;
  if (err.field !== 'source' && err.field !== 'destination') return undefined;
  return hasCauseCode(err, (code) => UNREACHABLE_CODES.has(code)) ? err.field : undefined;
}
