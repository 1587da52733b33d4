/**
 * GET over HTTP/1.x with Node's own http client, for every source that does not speak HTTP/2 (plain http://,
 * HTTP/1.1-only TLS servers, HTTP/1.0 servers).
 *
 * Why not undici: undici 7's HTTP/1 client asserts `!this.paused` when the server ends the connection while a
 * response body is held back by its reader (its parser is paused under back-pressure): `Parser.finish` throws an
 * AssertionError from the socket's 'end' handler (and from 'close', or an ECONNRESET after a complete body), which
 * no caller can catch and which ends the process. Every server that closes after its answer (HTTP/1.0, `Connection:
 * close`, close-delimited bodies: python http.server, busybox httpd, php -S, Apache with KeepAlive Off, nginx with
 * keepalive_timeout 0) meets a paused body sooner or later, since our file pump pauses for disk, rate limits and the
 * pause gate. Fixed upstream in undici 8 (nodejs/undici#5474), not in any 7.x release; undici 8 needs Node 22.
 * Node's client stops reading the socket instead, and reports an early close, a reset or broken framing as an
 * error of that one response.
 *
 * What the server sends after the body counts too: bytes beyond a Content-Length that turned out to be short, or
 * any other garbage where the next answer would start, mean the server's framing cannot be trusted, and the
 * body fails with CARGO_ERR_SOURCE_FRAMING instead of being stored as if it were complete.
 */
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';
import type { ConnectionInfo } from '../connect/client-options.js';
import { TransferError, TransferErrorCode, classifyError, hasCauseCode, isConnectFailure, redactUrl } from '../transfer-errors.js';
import { canonicalHeaders, type Http1Agent } from './http1-upload.js';

export interface Http1GetResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body; fails (never throws out of band) when the connection or the server's framing breaks. */
  body: IncomingMessage;
  info: ConnectionInfo;
}

export interface Http1GetOptions {
  headers: Record<string, string>;
  signal: AbortSignal;
  /** Time to the response headers. */
  headersTimeoutMs: number;
  /** Longest silence of the socket while the reader wants bytes (a paused reader never times out). */
  bodyTimeoutMs: number;
}

/** Requests that failed before any answer on a kept-alive connection the server had just closed: sent again. */
const MAX_REPLAYS = 3;

const noop = (): void => undefined;

/**
 * One GET; resolves with the response once its headers arrived (any status). Replays a request that failed before
 * its answer for a reason other than an unreachable server or an unparsable answer (a kept-alive socket closed by
 * the server while idle), as the undici path does.
 */
export async function http1Get(agent: Http1Agent, origin: string, path: string, url: string, opts: Http1GetOptions): Promise<Http1GetResponse> {
  for (let replay = 0; ; replay++) {
    try {
      return await getOnce(agent, origin, path, url, opts);
    } catch (e) {
      // An answer no parser accepts (HPE_*) is the server's doing: asking again gets the same answer.
      const replayable = e instanceof TransferError && e.code === TransferErrorCode.network && !isConnectFailure(e) &&
        !hasCauseCode(e, (code) => code.startsWith('HPE_'));
      if (!replayable || replay >= MAX_REPLAYS || opts.signal.aborted) throw e;
    }
  }
}

function getOnce(agent: Http1Agent, origin: string, path: string, url: string, opts: Http1GetOptions): Promise<Http1GetResponse> {
  const u = new URL(origin);
  const secure = u.protocol === 'https:';
  const info: ConnectionInfo = { protocol: 'http/1.1' };
  return new Promise<Http1GetResponse>((resolve, reject) => {
    let res: IncomingMessage | undefined;
    let settled = false;
    let bodyTimer: NodeJS.Timeout | undefined;
    let lastActivity = Date.now();
    const markActivity = (): void => { lastActivity = Date.now(); };
    let socket: Socket | undefined;
    let headersTimer: NodeJS.Timeout | undefined;

    const done = (): void => {
      opts.signal.removeEventListener('abort', onAbort);
      clearTimeout(headersTimer);
      clearTimeout(bodyTimer);
      socket?.off('data', markActivity);
    };
    /** Before the answer: reject. After: fail the body, which its reader sees as the stream's error. */
    const fail = (e: unknown): void => {
      if (res) {
        done();
        if (!res.destroyed) res.destroy(e as Error);
        return;
      }
      if (settled) return;
      settled = true;
      done();
      req.destroy();
      reject(opts.signal.aborted ? (opts.signal.reason ?? e) : classifyError(e, 'source', url));
    };
    const onAbort = (): void => fail(opts.signal.reason);

    const req: ClientRequest = (secure ? httpsRequest : httpRequest)({
      agent, method: 'GET', host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || (secure ? 443 : 80), path,
      // Conventional capitalisation: XRootD 5.5 compares `Range` and `Want-Digest` exactly.
      headers: canonicalHeaders(opts.headers),
    } satisfies RequestOptions);
    headersTimer = setTimeout(() => fail(Object.assign(
      new Error(`no response within ${opts.headersTimeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' })), opts.headersTimeoutMs);
    headersTimer.unref?.();

    req.on('socket', (s: Socket) => {
      socket = s;
      const note = (): void => { info.remoteIp = s.remoteAddress; info.remotePort = s.remotePort; info.localPort = s.localPort; };
      if (s.remoteAddress) note();
      else s.once('connect', note);
    });
    // The request stays listened to for its whole life: Node reports bytes the server sends after the body (a
    // Content-Length shorter than what was sent, garbage) as an 'error' of the request, even after its response.
    req.on('error', (e: Error) => {
      if (res && !res.destroyed) fail(framingError(e, url) ?? classifyError(e, 'source', url));
      else fail(e);
    });
    req.on('response', (r: IncomingMessage) => {
      res = r;
      settled = true;
      clearTimeout(headersTimer);
      // Whoever reads the body adds its own listener; this one only keeps an unread body's failure from being an
      // unhandled 'error' event (a response nobody reads any more, destroyed by an abort or a reset).
      r.on('error', noop);
      r.once('close', done);
      socket?.on('data', markActivity);
      const armBodyTimer = (ms: number): void => {
        bodyTimer = setTimeout(() => {
          // A reader holding the body back (disk, rate limit, pause gate: Node then stops reading the socket) holds
          // the server back on purpose; silence only counts while the socket is read.
          if (socket?.isPaused() || r.isPaused()) lastActivity = Date.now();
          const idle = Date.now() - lastActivity;
          if (idle < opts.bodyTimeoutMs) return armBodyTimer(opts.bodyTimeoutMs - idle);
          fail(classifyError(Object.assign(new Error(`no body bytes for ${opts.bodyTimeoutMs} ms`), { code: 'UND_ERR_BODY_TIMEOUT' }), 'source', url));
        }, ms);
        bodyTimer.unref?.();
      };
      armBodyTimer(opts.bodyTimeoutMs);
      resolve({ status: r.statusCode ?? 0, headers: r.headers, body: r, info });
    });
    if (opts.signal.aborted) return fail(opts.signal.reason);
    opts.signal.addEventListener('abort', onAbort, { once: true });
    req.end();
  });
}

/** The server's framing broke after the answer began (Node's parser: HPE_*). */
function framingError(e: unknown, url: string): TransferError | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !code.startsWith('HPE_')) return undefined;
  return new TransferError(TransferErrorCode.sourceFraming,
    `source ${redactUrl(url)} sent bytes where its body should have ended (a Content-Length shorter than the body, ` +
    `or garbage after it: ${code}); its framing cannot be trusted`,
    { httpStatus: 502, field: 'source', retryable: false, cause: e });
}
