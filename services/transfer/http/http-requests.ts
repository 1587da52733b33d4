/**
 * The few HTTP exchanges the engine needs (HEAD, ranged GET, PUT), on pooled undici Clients, with status
 * classification. Response bodies are returned as streams and never buffered.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ClientPool, ConnectionInfo, PooledClient } from '../connect/client-pool.js';
import { canonicalHeaders, http1Put } from './http1-upload.js';
import { http1Get } from './http1-get.js';
import { BulkTransportError, NotHttp2Error, type BulkResponse } from '../h2-bulk/bulk-session.js';
import type { Endpoint } from '../endpoint.js';
import {
  TransferError, TransferErrorCode, classifyError, errorForHttpStatus, hasCauseCode, isConnectFailure, redactUrl, type TransferSide,
} from '../transfer-errors.js';

export type HttpEndpoint = Extract<Endpoint, { kind: 'http' }>;
type Headers = Record<string, string>;

export interface HttpResponseMeta {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  /** The pooled connection that carried the exchange (remote IP and protocol for the result). */
  via: PooledClient;
}

export interface RangedGetResponse extends HttpResponseMeta {
  body: Readable;
  /** First byte of the representation this body starts at (0 for a full 200). */
  start: number;
  /** Total representation size when the server said (Content-Range total or Content-Length of a 200). */
  size?: number;
}

export function header(h: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = h[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * What goes into If-Range to resume or continue a body: the ETag when it is strong, else Last-Modified. Never a
 * weak ETag: it cannot match (RFC 9110 §13.1.5), so the server would always answer with the whole body.
 */
export function ifRangeValidator(etag: string | undefined, lastModified: string | undefined): string | undefined {
  return etag !== undefined && !etag.startsWith('W/') ? etag : lastModified;
}

/**
 * The validator that lets one file be fetched as several ranges (each carrying If-Range), from the headers of a
 * response: a strong ETag, else (no ETag) a Last-Modified at least a second older than the response's Date (a
 * strong date, RFC 9110 §8.8.2.2). `changing` when the source offers only a weak validator on a recent file: one
 * modified within the last second (Apache then sends a weak ETag) may still be being written, and its ranges could
 * not be tied together. Undefined when there is no validator for If-Range but the file may still be split.
 */
export function splitValidator(h: Dispatcher.ResponseData['headers']): string | 'changing' | undefined {
  const etag = header(h, 'etag');
  if (etag !== undefined && !etag.startsWith('W/')) return etag;
  const lastModified = header(h, 'last-modified');
  if (lastModified === undefined) return etag === undefined ? undefined : 'changing';
  const age = Date.parse(header(h, 'date') ?? '') - Date.parse(lastModified);
  if (!Number.isFinite(age)) return 'changing';
  if (etag === undefined) return age >= 1000 ? lastModified : 'changing';
  // A weak ETag on a file untouched for a minute: a server that only makes weak tags (content coding, say). No
  // If-Range then (a client holding an ETag must not send a date, RFC 9110 §13.1.5); every range's validators
  // are compared with the plan's instead (sameRepresentation).
  return age >= STABLE_AFTER_MS ? undefined : 'changing';
}

/** A file whose Last-Modified is this much older than the server's Date is not being written any more. */
const STABLE_AFTER_MS = 60_000;

/**
 * A Content-Length header's value: digits, or the same digits repeated in a list (RFC 9110 §8.6); NaN for
 * anything else (negative, fractional, conflicting), which no body can be measured against.
 */
export function contentLength(v: string): number {
  const parts = v.split(',').map((p) => p.trim());
  if (!parts.every((p) => /^\d{1,16}$/.test(p) && p === parts[0])) return NaN;
  const n = Number(parts[0]);
  return Number.isSafeInteger(n) ? n : NaN;
}

/** Parses `bytes a-b/total` (total may be `*`). */
export function parseContentRange(v: string | undefined): { start: number; end: number; total?: number } | undefined {
  if (!v) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(v);
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

// undici accepts any async iterable as a request body (and writes it with drain back-pressure); its
// typings list only Readable, hence the cast at the call site.
//
// undici 7 can leave a request unsettled when its connection dies early (fixed upstream in 8.10, "every request
// settles"): each exchange is therefore also failed by the Client's 'disconnect', as a retryable network error,
// until its response body is closed.
async function sendOnce(
  via: PooledClient, ep: HttpEndpoint, side: TransferSide, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
): Promise<Dispatcher.ResponseData> {
  const outer = opts.signal as AbortSignal | undefined;
  const ac = new AbortController();
  const onOuter = (): void => ac.abort(outer!.reason);
  if (outer?.aborted) ac.abort(outer.reason);
  else outer?.addEventListener('abort', onOuter, { once: true });
  const onDisconnect = (_origin: unknown, _targets: unknown, err: unknown): void => {
    ac.abort(new TransferError(TransferErrorCode.network,
      `${side} connection dropped: ${String((err as Error | undefined)?.message ?? err)}`,
      { httpStatus: 502, field: side, retryable: true, cause: err }));
  };
  via.client.on('disconnect', onDisconnect);
  const cleanup = (): void => {
    via.client.off('disconnect', onDisconnect);
    outer?.removeEventListener('abort', onOuter);
  };
  via.inFlight++;
  try {
    // HTTP/1.1 peers get conventional header-name capitalisation (http1-upload.ts); HTTP/2 sends names lower-case
    // anyway, so a connection known to be h2 skips the copy.
    const headers = opts.headers && via.info.protocol !== 'h2' ? canonicalHeaders(opts.headers as Headers) : opts.headers;
    const res = await via.client.request({ ...opts, headers, signal: ac.signal, path: ep.path });
    res.body.once('close', () => {
      via.inFlight--;
      cleanup();
    });
    return res;
  } catch (e) {
    via.inFlight--;
    cleanup();
    if (ac.signal.aborted && !outer?.aborted) throw ac.signal.reason ?? e;
    if (outer?.aborted) throw outer.reason ?? e;
    throw classifyError(e, side, ep.url);
  }
}

/** True when `e` or one of its causes (classifyError wraps the transport's error) carries a code `test` accepts. */
/** undici's verdict on a response it could not frame (bad header line, body longer than announced). */
function isUnparsableResponse(e: unknown): boolean {
  return hasCauseCode(e, (code) => code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code.startsWith('HPE_'));
}

/** Replays of an idempotent request whose connection dropped before its response arrived. */
const MAX_REPLAYS = 3;

/**
 * One exchange. A GET or HEAD that fails before its response because the connection went away (a server's
 * graceful GOAWAY — nginx sends one every `http2_max_requests`, and undici 7 fails every request still in
 * flight on that session — or a reset) never reached the application: it is replayed at once on a freshly
 * picked connection instead of failing the whole attempt into a retry backoff.
 */
async function send(
  via: PooledClient, ep: HttpEndpoint, side: TransferSide, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
  repick?: () => PooledClient,
): Promise<Dispatcher.ResponseData> {
  const idempotent = opts.method === 'GET' || opts.method === 'HEAD';
  for (let replay = 0; ; replay++) {
    try {
      return await sendOnce(via, ep, side, opts);
    } catch (e) {
      const outer = opts.signal as AbortSignal | undefined;
      // A response no parser accepts is the server's doing: sending it again gets the same answer.
      const dropped = e instanceof TransferError && e.code === TransferErrorCode.network && !isUnparsableResponse(e) && !isConnectFailure(e);
      if (!idempotent || !dropped || replay >= MAX_REPLAYS || outer?.aborted) throw e;
      if (repick) via = repick();
    }
  }
}

export async function headRequest(
  pool: ClientPool, ep: HttpEndpoint, side: TransferSide, headers: Headers, signal: AbortSignal,
): Promise<HttpResponseMeta> {
  await pool.protocolKnown(ep.origin);
  let via = pool.pick(ep.origin);
  const res = await send(via, ep, side, { method: 'HEAD', headers, signal }, () => (via = pool.pick(ep.origin)));
  res.body.resume();
  return { status: res.statusCode, headers: res.headers, via };
}

/**
 * One GET on the origin's bulk receive session (h2-bulk/bulk-session.ts), or undefined when the ordinary undici
 * path must take it: the origin does not use the bulk path or turned out not to speak HTTP/2.
 * Requests the server provably did not process (GOAWAY, refused stream, connection lost before the answer) are
 * replayed on a fresh session, as send() does for undici.
 */
async function bulkGet(
  pool: ClientPool, ep: HttpEndpoint, headers: Headers, signal: AbortSignal, lane: number,
): Promise<{ res: BulkResponse; via: PooledClient } | undefined> {
  for (let replay = 0; ; replay++) {
    const session = pool.bulkSession(ep.origin, lane);
    if (!session) return undefined;
    try {
      const res = await session.request(ep.path, headers, signal);
      // `via` is the pooled connection of the same slot: multi-stream lanes started from this response (the probe)
      // stay on this session, and the result reports the bulk connection's address and protocol.
      const via = pool.clientsFor(ep.origin, lane + 1)[lane]!;
      via.info.remoteIp = session.remoteIp;
      via.info.remotePort = session.remotePort;
      via.info.localPort = session.localPort;
      via.info.protocol = 'h2';
      return { res, via };
    } catch (e) {
      if (signal.aborted) throw signal.reason ?? e;
      if (e instanceof NotHttp2Error) {
        pool.noteNotHttp2(ep.origin);
        return undefined;
      }
      // The session could not connect (refused, unreachable, TLS): the same classified error undici's path gives,
      // without a second round of connection attempts against an endpoint that is down.
      if (!(e instanceof BulkTransportError)) throw classifyError(e, 'source', ep.url);
      if (!e.unprocessed || replay >= MAX_REPLAYS) throw e;
    }
  }
}

/**
 * GET from `offset` to the end (or [offset, end) when `end` is given). When resuming, `validator` (ETag or
 * Last-Modified) goes into If-Range so a changed source answers 200 with the full body instead of mixing
 * old and new bytes; the caller sees that as `start === 0`.
 */
export async function rangedGet(
  pool: ClientPool, ep: HttpEndpoint, opts: {
    offset: number; end?: number; validator?: string; headers: Headers; signal: AbortSignal; via?: PooledClient;
    /** Return a 416 instead of throwing (probing the first range of a possibly empty file). */
    probe?: boolean;
  },
): Promise<RangedGetResponse> {
  const headers: Headers = { ...opts.headers };
  // Without usable ranges the whole representation comes back (200): callers see `start === 0`.
  const ranged = (opts.offset > 0 || opts.end !== undefined) && !pool.rangesUnusable(ep.origin);
  if (ranged) {
    headers['range'] = `bytes=${opts.offset}-${opts.end !== undefined ? opts.end - 1 : ''}`;
    if (opts.validator) headers['if-range'] = opts.validator;
  }
  // GETs go on the bulk receive path when the origin speaks HTTP/2; a multi-stream lane keeps its connection slot.
  const lane = opts.via ? pool.connectionSlot(ep.origin, opts.via) : pool.nextBulkLane(ep.origin);
  const bulk = lane >= 0 ? await bulkGet(pool, ep, headers, opts.signal, lane) : undefined;
  // HTTP/1.x sources go through Node's agent (http1-get.ts); an origin not contacted yet is asked with a HEAD first.
  const http1 = !bulk && await speaksHttp1(pool, ep, headers, opts.signal);
  if (!opts.via && !bulk && !http1) await pool.protocolKnown(ep.origin);
  let via = bulk ? bulk.via : opts.via ?? pool.pick(ep.origin);
  let res: Pick<Dispatcher.ResponseData, 'statusCode' | 'headers' | 'body'>;
  if (bulk) {
    // Callers use the body as a Readable only (pipe, events, destroy); undici's body mixin is not needed.
    res = bulk.res as unknown as Dispatcher.ResponseData;
  } else {
    try {
      if (http1) {
        // Never undici's HTTP/1 client for a body we may hold back: see http1-get.ts (a closing server kills it).
        const o = pool.optionsFor(ep.origin);
        const got = await http1Get(pool.http1AgentFor(ep.origin, 'receive'), ep.origin, ep.path, ep.url, {
          headers, signal: opts.signal, headersTimeoutMs: o.headersTimeoutMs, bodyTimeoutMs: o.bodyTimeoutMs,
        });
        // As for the bulk path, `via` is the pooled connection of the slot, reporting this exchange's address.
        via.info.remoteIp = got.info.remoteIp ?? via.info.remoteIp;
        via.info.remotePort = got.info.remotePort ?? via.info.remotePort;
        via.info.localPort = got.info.localPort ?? via.info.localPort;
        via.info.protocol = 'http/1.1';
        res = { statusCode: got.status, headers: got.headers, body: got.body as unknown as Dispatcher.ResponseData['body'] };
      } else {
        // A caller that chose the connection (multi-stream ranges) keeps it; undici reconnects it for the replay.
        res = await send(via, ep, 'source', { method: 'GET', headers, signal: opts.signal }, opts.via ? undefined : () => (via = pool.pick(ep.origin)));
      }
    } catch (e) {
      if (!ranged || !isUnparsableResponse(e)) throw e;
      // XRootD 5.5 ends the Content-Range line of a 206 with a bare LF once it holds a checksum of the file, which
      // no strict parser accepts. Such a server is read whole from now on (no multi-stream, no resume offset).
      pool.markRangesUnusable(ep.origin);
      return rangedGet(pool, ep, { ...opts, via: undefined });
    }
  }
  pool.noteRemote(via.info);
  const status = res.statusCode;
  if (status === 200) {
    const len = header(res.headers, 'content-length');
    const size = len !== undefined ? contentLength(len) : undefined;
    if (Number.isNaN(size)) {
      res.body.destroy();
      throw new TransferError(TransferErrorCode.network, `source answered with an invalid Content-Length ${JSON.stringify(len!.slice(0, 60))}`, {
        httpStatus: 502, field: 'source', retryable: true,
      });
    }
    return { status, headers: res.headers, via, body: res.body, start: 0, size };
  }
  if (status === 206) {
    const cr = parseContentRange(header(res.headers, 'content-range'));
    if (cr && cr.total !== undefined && cr.end >= cr.total && cr.start < cr.total && opts.end !== undefined) {
      // A range past the end must be answered up to the last byte (RFC 9110 §14.1.1). XRootD 5.5 echoes the
      // range asked for, announces that many bytes, sends what exists and drops the connection. Ask again for
      // exactly the bytes that exist.
      res.body.destroy();
      return rangedGet(pool, ep, { ...opts, end: cr.total, via: undefined });
    }
    if (!cr || cr.start !== opts.offset) {
      res.body.destroy();
      throw new TransferError(TransferErrorCode.network, `source answered a range we did not ask for (${header(res.headers, 'content-range')})`, {
        httpStatus: 502, field: 'source', retryable: true,
      });
    }
    return { status, headers: res.headers, via, body: res.body, start: cr.start, size: cr.total };
  }
  res.body.resume();
  if (status === 416 && opts.probe) {
    // A probe of bytes=0-… on an empty file: not an error, the caller falls back to a plain GET.
    return { status, headers: res.headers, via, body: res.body, start: 0, size: 0 };
  }
  if (status === 416) {
    throw new TransferError(TransferErrorCode.sourceChanged, 'source is shorter than the resume offset (HTTP 416)', {
      httpStatus: 502, field: 'source', retryable: true,
    });
  }
  throw errorForHttpStatus(status, 'source', ep.url);
}

/**
 * Removes what an attempt stored at a remote destination and then could not verify, so a wrong or unproven file
 * does not stay published (and a retry without overwrite does not meet its own leftover). `uploadHeaders` are
 * the upload's (credentials, SciTag); its conditions and body digest do not apply to a DELETE. Best effort, with
 * its own time limit: the attempt's signal may be the reason it failed.
 */
export async function removeUnverifiedUpload(pool: ClientPool, ep: HttpEndpoint, uploadHeaders: Headers): Promise<void> {
  const { 'if-none-match': _condition, digest: _digest, ...headers } = uploadHeaders;
  try {
    await pool.protocolKnown(ep.origin);
    const res = await sendOnce(pool.pick(ep.origin), ep, 'destination', {
      method: 'DELETE', headers, signal: AbortSignal.timeout(pool.optionsFor(ep.origin).headersTimeoutMs),
    });
    res.body.resume();
  } catch { /* best effort: the attempt's own error is what the caller reports */ }
}

/**
 * One MKCOL of `path` (a collection at the destination's origin) with the upload's credentials; resolves with the
 * status, the answer's body drained. Transport failures are thrown as classified destination errors.
 */
export async function mkcolRequest(pool: ClientPool, ep: HttpEndpoint, path: string, headers: Headers, signal: AbortSignal): Promise<number> {
  await pool.protocolKnown(ep.origin);
  const res = await sendOnce(pool.pick(ep.origin), { ...ep, path, url: `${ep.origin}${path}` }, 'destination', { method: 'MKCOL', headers, signal });
  res.body.resume();
  return res.statusCode;
}

export interface PutResponse {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  /** Remote IP and protocol of the connection that carried the upload. */
  info: ConnectionInfo;
}

/**
 * One PUT. `via` (a ranged part to a cargoport peer) pins the connection; otherwise the upload goes on a lent
 * undici connection for HTTP/2 origins, and through Node's http client for HTTP/1.1 origins (http1-upload.ts:
 * XRootD needs `Content-Length` spelled that way). An origin not contacted yet is probed with a HEAD first.
 */
export async function putRequest(
  pool: ClientPool, ep: HttpEndpoint, opts: {
    body: AsyncIterable<Uint8Array>; size?: number; headers: Headers; signal: AbortSignal; via?: PooledClient;
  },
): Promise<PutResponse> {
  let res: PutResponse;
  if (!opts.via && await originProtocol(pool, ep, 'destination', opts.headers, opts.signal) === 'http/1.1') {
    res = await http1Put(pool.http1AgentFor(ep.origin), ep.origin, ep.path, ep.url, {
      ...opts, headersTimeoutMs: pool.optionsFor(ep.origin).headersTimeoutMs,
    });
  } else {
    const lent = opts.via ? undefined : pool.lendUploadClient(ep.origin);
    const via = opts.via ?? lent!.pooled;
    const headers: Headers = { ...opts.headers };
    if (opts.size !== undefined) headers['content-length'] = String(opts.size);
    try {
      const r = await send(via, ep, 'destination', { method: 'PUT', headers, body: opts.body as unknown as Readable, signal: opts.signal });
      r.body.resume();
      res = { status: r.statusCode, headers: r.headers, info: via.info };
    } finally {
      lent?.release();
    }
  }
  pool.noteRemote(res.info);
  if (res.status === 412 && opts.headers['if-none-match'] === '*') {
    throw new TransferError(TransferErrorCode.destExists, `destination exists and overwrite is false: ${ep.url}`, {
      httpStatus: 409, field: 'destination', retryable: false,
    });
  }
  if (res.status === 409) {
    // WebDAV's answer to a PUT into a collection that does not exist (RFC 4918 §9.7.1): parent-collections.ts
    // creates the parents and tries once more.
    throw new TransferError(TransferErrorCode.destConflict, `destination ${redactUrl(ep.url)} answered HTTP 409 Conflict to the upload (a missing parent collection, in WebDAV)`, {
      httpStatus: 502, field: 'destination', retryable: false,
    });
  }
  if (res.status < 200 || res.status >= 300) throw errorForHttpStatus(res.status, 'destination', ep.url);
  return res;
}

/**
 * The protocol an origin speaks, learning it with a HEAD (same credentials, without the conditions and ranges of
 * the request it is for) when no connection was made yet.
 */
async function originProtocol(
  pool: ClientPool, ep: HttpEndpoint, side: TransferSide, headers: Headers, signal: AbortSignal,
): Promise<ConnectionInfo['protocol']> {
  const known = pool.protocolOf(ep.origin);
  if (known) return known;
  const { 'if-none-match': _inm, digest: _d, range: _r, 'if-range': _ir, ...probeHeaders } = headers;
  const head = await headRequest(pool, ep, side, probeHeaders, signal);
  return head.via.info.protocol;
}

function isPlainHttp(ep: HttpEndpoint): boolean {
  return ep.origin.startsWith('http:');
}

/** A source GET goes over HTTP/1.x: plain http (no h2c), or a TLS server that did not choose h2. */
async function speaksHttp1(pool: ClientPool, ep: HttpEndpoint, headers: Headers, signal: AbortSignal): Promise<boolean> {
  if (isPlainHttp(ep)) return true;
  return await originProtocol(pool, ep, 'source', headers, signal) !== 'h2';
}
