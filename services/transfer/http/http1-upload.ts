/**
 * PUT over HTTP/1.1 with Node's own http client, used when the destination negotiated HTTP/1.1.
 *
 * Why not undici: undici 7 always writes its framing header as `content-length` in lower case. Header names are
 * case-insensitive (RFC 9110 §5.1), but XRootD's XrdHttp (5.5, the version WLCG sites run) matches
 * `Content-Length` case-sensitively: it then reads no body, stores an empty file and answers 201. Node's http
 * client writes header names exactly as given, so the upload carries `Content-Length` like curl and davix do.
 *
 * The connections come from a keep-alive Agent per origin whose sockets the engine's connector opens (the same
 * pacing, TLS settings, socket events and createSocket hook as every other connection), and report their remote IP.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';
import type { ConnectionInfo, TransferClientOptions } from '../connect/client-options.js';
import { classifyError } from '../transfer-errors.js';

export interface Http1PutResult {
  status: number;
  headers: IncomingHttpHeaders;
  info: ConnectionInfo;
}

export type Http1Agent = HttpAgent;

/**
 * A keep-alive agent for `origin` whose new sockets come from `open` (the engine's connector: paced, hooked and
 * announced like every other connection).
 */
export function createHttp1Agent(
  origin: string, o: Pick<TransferClientOptions, 'maxHttp1ConnectionsPerOrigin'>, open: () => Promise<Socket>,
): Http1Agent {
  const secure = origin.startsWith('https:');
  const AgentClass = secure ? HttpsAgent : HttpAgent;
  const agent = new AgentClass({ keepAlive: true, keepAliveMsecs: 30_000, maxSockets: o.maxHttp1ConnectionsPerOrigin });
  // Node's Agent accepts an asynchronous createConnection: return nothing and call back with the socket.
  (agent as unknown as { createConnection: unknown }).createConnection = (
    _opts: unknown, done: (err: Error | null, s?: Socket) => void,
  ): undefined => {
    open().then((socket) => done(null, socket), (e: Error) => done(e));
    return undefined;
  };
  return agent;
}

/**
 * Streams `body` to `origin + path` with `Content-Length: size` (chunked when the size is unknown), honouring
 * back-pressure; resolves with the status and headers once the response arrives, its body drained.
 */
export function http1Put(
  agent: Http1Agent, origin: string, path: string, url: string, opts: {
    body: AsyncIterable<Uint8Array>; size?: number; headers: Record<string, string>; signal: AbortSignal;
    headersTimeoutMs: number;
  },
): Promise<Http1PutResult> {
  const u = new URL(origin);
  const secure = u.protocol === 'https:';
  // Conventional capitalisation for every header we send (some HTTP/1.1 servers compare names exactly).
  const headers = canonicalHeaders(opts.headers);
  if (opts.size !== undefined) headers['Content-Length'] = String(opts.size);
  const info: ConnectionInfo = { protocol: 'http/1.1' };
  return new Promise<Http1PutResult>((resolve, reject) => {
    let finished = false;
    const fail = (e: unknown): void => {
      if (finished) return;
      finished = true;
      opts.signal.removeEventListener('abort', onAbort);
      req.destroy();
      reject(opts.signal.aborted ? (opts.signal.reason ?? e) : classifyError(e, 'destination', url));
    };
    const onAbort = (): void => fail(opts.signal.reason);
    const req = (secure ? httpsRequest : httpRequest)({
      agent, method: 'PUT', host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || (secure ? 443 : 80), path,
      headers,
    } satisfies RequestOptions);
    req.on('socket', (s: Socket) => {
      const note = (): void => { info.remoteIp = s.remoteAddress; info.remotePort = s.remotePort; info.localPort = s.localPort; };
      if (s.remoteAddress) note();
      else s.once('connect', note);
    });
    req.setTimeout(opts.headersTimeoutMs, () => fail(Object.assign(new Error(`no response within ${opts.headersTimeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' })));
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      // The body of a PUT response is a short status text: drain it so the connection can be reused.
      res.resume();
      res.on('error', fail);
      res.on('end', () => {
        if (finished) return;
        finished = true;
        opts.signal.removeEventListener('abort', onAbort);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, info });
      });
    });
    if (opts.signal.aborted) return fail(opts.signal.reason);
    opts.signal.addEventListener('abort', onAbort, { once: true });
    void (async () => {
      try {
        for await (const chunk of opts.body) {
          if (finished) return;
          if (!req.write(chunk)) {
            await new Promise<void>((r) => {
              const go = (): void => { req.off('close', go); req.off('drain', go); r(); };
              req.once('drain', go);
              req.once('close', go);
            });
          }
        }
        req.end();
      } catch (e) {
        fail(e);
      }
    })();
  });
}

/**
 * Header names as HTTP/1.1 peers conventionally spell them (`Want-Digest`, `Range`). Names are case-insensitive
 * (RFC 9110 §5.1) but XRootD 5.5 compares them exactly: to it a lower-case `want-digest` or `range` is not there.
 */
export function canonicalHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in h) out[canonicalHeaderName(k)] = h[k]!;
  return out;
}

/** Names whose conventional spelling is not "capitalise each dash-separated word" (XRootD 5.5 matches them exactly). */
const SPELLED: Record<string, string> = { scitag: 'SciTag', requirechecksumverification: 'RequireChecksumVerification' };

/**
 * `content-length` → `Content-Length`, `want-digest` → `Want-Digest`, `scitag` → `SciTag` (XRootD's
 * `http.header2cgi SciTag scitag.flow` sees nothing else), `transferheaderauthorization` →
 * `TransferHeaderAuthorization` (XRootD's TPC handler looks for the `TransferHeader` prefix).
 */
export function canonicalHeaderName(name: string): string {
  const l = name.toLowerCase();
  if (l.startsWith('transferheader') && l.length > 14) return `TransferHeader${canonicalHeaderName(l.slice(14))}`;
  return SPELLED[l] ?? l.replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());
}

