/**
 * HTTP third-party copy, server side (wlcg.md §3): `COPY` with `Source` (pull: we GET the remote and store it
 * here) or `Destination` (push: we PUT our file to the remote). The copy itself is `engine.transfer` of the
 * transfer engine; this module validates headers, authorises the local side, answers 202 and streams
 * performance markers every `markerIntervalMs` (≤ 5 s) until `success: Created` / `failure: <reason>`.
 *
 * Decisions (documented in gateway/storage/README.md):
 * - `Credential: none` is the normal case. `Credential: gridsite` (gfal2 sends it when it has no token for the
 *   passive side) asks for GridSite proxy delegation, which cargoport does not implement: by default it is
 *   treated like `none` (the copy runs with the TransferHeader* credentials given, if any; a passive side that
 *   refuses shows up as `failure: … 401/403`); `tpc.gridsite: 'reject'` answers 400 instead, letting gfal2
 *   fall back to another copy mode. Any other value → 400.
 * - `SciTag` wins over `TransferHeaderSciTag` (the latter is then not forwarded); either is reported.
 * - Remotes are held to the outbound address policy (services/auth/address-policy.ts: no loopback, private,
 *   link-local or own addresses unless allowed; IPv4-mapped IPv6 spellings included) before any 202.
 * - A client that closes the connection aborts the copy; nothing is published.
 */
import { AddressPolicy, checkHost } from '../../services/auth/address-policy.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { StorageError, badPath } from '../../services/storage/storage-errors.js';
import type { TransferRequest, VerifyMode, ChecksumAlg } from '../../services/transfer/types.js';
import { CargoError, isCargoError } from '../../errors/cargo-error.js';
import { suppliedDigests } from './digest-negotiation.js';
import { checksumFromResponseHeaders } from '../../services/checksum/digest-header.js';
import type { ClientPool } from '../../services/transfer/connect/client-pool.js';
import { headRequest } from '../../services/transfer/http/http-requests.js';
import { parseEndpoint } from '../../services/transfer/endpoint.js';
import { overwriteHeader } from './put-handler.js';
import { failureLine, perfMarker, remoteConnection, SUCCESS_LINE } from './perf-marker.js';
import { requestPath, type StorageContext } from './storage-context.js';
import { replyProblem } from '../problem.js';
import { marking } from '../../services/marking/marking-service.js';
import { flowIdOf } from '../../services/marking/flow-id.js';

/** The raw `scitag.flow` query parameter of a request URL (XRootD's CGI, accepted over HTTP too). */
export function queryFlowParam(url: string): string | undefined {
  const q = url.indexOf('?');
  return q < 0 ? undefined : new URLSearchParams(url.slice(q + 1)).get('scitag.flow') ?? undefined;
}

type HeaderMap = Record<string, string | string[] | undefined>;

/** HEAD through the transfer engine's connection pool (same TLS trust, same connections as the copy). */
const probeThrough = (pool: ClientPool) => async (url: string, headers: Record<string, string>): Promise<{ status: number; headers: HeaderMap }> => {
  const ep = parseEndpoint(url, 'source');
  if (ep.kind !== 'http') throw new StorageError('CARGO_ERR_BAD_URL', `${url} is not an http(s) endpoint`, 400, { field: 'Source' });
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new CargoError('CARGO_ERR_TIMEOUT', 'source HEAD timed out after 60 s')), 60_000);
  try {
    const r = await headRequest(pool, ep, 'source', headers, ac.signal);
    return { status: r.status, headers: r.headers as HeaderMap };
  } finally {
    clearTimeout(timer);
  }
};

const badHeader = (field: string, msg: string) => new StorageError('CARGO_ERR_BAD_HEADER', msg, 400, { field });

function single(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

/** Remote URL of a TPC request: http(s) only; dav/davs are rewritten as davix does. */
export function remoteUrl(value: string, field: string): URL {
  let u: URL;
  try {
    u = new URL(value.trim());
  } catch {
    throw badHeader(field, `${field} is not an absolute URL`);
  }
  if (u.protocol === 'davs:') u = new URL('https:' + u.href.slice('davs:'.length));
  else if (u.protocol === 'dav:') u = new URL('http:' + u.href.slice('dav:'.length));
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw badHeader(field, `${field} must be an http(s) URL`);
  if (!u.hostname) throw badHeader(field, `${field} has no host`);
  return u;
}

/** `Credential` may be repeated or comma-joined (gfal2 can send `none` twice). */
export function credentialMode(request: FastifyRequest, gridsite: 'as-none' | 'reject'): void {
  const raw = single(request, 'credential');
  if (raw === undefined) return;
  for (const v of raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (v === 'none') continue;
    if (v === 'gridsite' && gridsite === 'as-none') continue;
    throw badHeader('Credential', `Credential: ${v} is not supported (cargoport does no proxy delegation; use none with TransferHeaderAuthorization)`);
  }
}

function booleanHeader(request: FastifyRequest, name: string, field: string, dflt: boolean): boolean {
  const v = single(request, name);
  if (v === undefined) return dflt;
  const t = v.trim().toLowerCase();
  if (t === 'true') return true;
  if (t === 'false') return false;
  throw badHeader(field, `${field} must be true or false`);
}

export function streamsHeader(request: FastifyRequest): number | undefined {
  const v = single(request, 'x-number-of-streams');
  if (v === undefined) return undefined;
  const n = Number(v.trim());
  if (!Number.isInteger(n) || n < 0 || n > 100) throw badHeader('X-Number-Of-Streams', 'X-Number-Of-Streams must be 0–100');
  return Math.max(1, n);
}

/** SciTag precedence: `SciTag` first, then `TransferHeaderSciTag`; values outside 65–65535 mean 0 (unmarked). */
export function effectiveSciTag(request: FastifyRequest): number | undefined {
  const v = single(request, 'scitag') ?? single(request, 'transferheaderscitag');
  if (v === undefined) return undefined;
  const n = Number(v.trim());
  return Number.isInteger(n) && n >= 65 && n <= 65535 ? n : 0;
}

/** `TransferHeader<Name>: v` → `<Name>: v` for our requests to the passive party. */
export function forwardedHeaders(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  const hasSciTag = request.headers['scitag'] !== undefined;
  for (const [k, v] of Object.entries(request.headers)) {
    if (!k.startsWith('transferheader') || v === undefined) continue;
    const name = k.slice('transferheader'.length);
    if (!name || (name === 'scitag' && hasSciTag)) continue;
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name) || name === 'host' || name.startsWith(':')) continue;
    out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** A marker lists at most this many connections (a retried transfer may have opened many; the line stays short). */
const MAX_REMOTE_CONNECTIONS = 64;

/** The strict policy (nothing but public addresses) when the mount gives none. */
const STRICT = new AddressPolicy([]);

export async function handleCopy(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const lp = requestPath(ctx, request);
  const tpc = ctx.opts.tpc ?? {};
  const sourceH = single(request, 'source');
  const destH = single(request, 'destination');
  if ((sourceH === undefined) === (destH === undefined)) {
    throw badHeader(sourceH ? 'Destination' : 'Source', 'COPY needs exactly one of Source (pull) or Destination (push)');
  }
  const pull = sourceH !== undefined;
  const remote = remoteUrl((pull ? sourceH : destH)!, pull ? 'Source' : 'Destination');
  credentialMode(request, tpc.gridsite ?? 'as-none');
  const overwrite = overwriteHeader(request);
  const requireChecksum = booleanHeader(request, 'requirechecksumverification', 'RequireChecksumVerification', tpc.requireChecksumByDefault ?? true);
  const streams = streamsHeader(request);
  const scitag = effectiveSciTag(request);
  const passiveHeaders = forwardedHeaders(request);
  const supplied = suppliedDigests(request);
  if (lp.path === '/' || lp.trailingSlash) throw badPath('COPY needs a file path');
  const engine = tpc.engine;
  if (!engine) {
    return void replyProblem(reply, { code: 'CARGO_ERR_TPC_DISABLED', detail: 'third-party copy is not enabled on this endpoint' });
  }
  if (!tpc.allowLocal) await checkHost(tpc.addressPolicy ?? STRICT, remote.hostname, pull ? 'Source' : 'Destination');

  // Local side: authorise and check before answering 202, so early errors are plain HTTP errors.
  let localUrl: string;
  let external: Awaited<ReturnType<typeof ctx.storage.beginExternalUpload>> | undefined;
  if (pull) {
    await ctx.access.check(request, 'create', lp.path);
    const existing = await ctx.storage.stat(lp.path).catch(() => null);
    if (existing) await ctx.access.check(request, 'modify', lp.path);
    external = await ctx.storage.beginExternalUpload(lp.path, { overwrite });
    localUrl = 'file://' + external.file;
  } else {
    await ctx.access.check(request, 'read', lp.path);
    localUrl = 'file://' + (await ctx.storage.resolveForRead(lp.path));
  }
  // Pull: HEAD the source first (as XRootD and dCache do) so a missing or forbidden source is a plain HTTP
  // error rather than a failure marker, and so its Digest becomes the expected checksum (many servers answer
  // Want-Digest on HEAD only, not on GET).
  let sourceDigest: string | undefined;
  if (pull) {
    const probe = tpc.probeSource ?? probeThrough(engine.pool);
    // Capitalised on purpose: XRootD 5.5 over HTTP/1.1 ignores a lower-case `want-digest`.
    const head = await probe(remote.href, { ...passiveHeaders, 'Want-Digest': 'adler32' }).catch((e: unknown) => {
      request.log.warn({ err: e, remote: remote.href }, 'TPC source HEAD failed');
      return undefined;
    });
    if (head && (head.status === 404 || head.status === 401 || head.status === 403)) {
      await external?.abort();
      return void replyProblem(reply, {
        code: 'CARGO_ERR_TPC_SOURCE', status: head.status, detail: `source answered ${head.status} to HEAD`, field: 'Source',
      });
    }
    if (head && head.status < 300) {
      sourceDigest = checksumFromResponseHeaders('adler32', head.headers['digest'], head.headers['repr-digest']);
    }
  }
  let alg: ChecksumAlg | undefined = (Object.keys(supplied) as ChecksumAlg[])[0];
  if (sourceDigest !== undefined && (alg === undefined || alg === 'adler32')) {
    if (supplied.adler32 !== undefined && supplied.adler32 !== sourceDigest) {
      await external?.abort();
      return void replyProblem(reply, {
        code: 'CARGO_ERR_CHECKSUM_MISMATCH', status: 412, detail: `client checksum ${supplied.adler32} differs from the source's ${sourceDigest}`, field: 'Digest',
      });
    }
    alg = 'adler32';
    supplied.adler32 = sourceDigest;
  }
  // With the source's checksum in hand (pull), verifying against it is an expected-value check.
  const verify: VerifyMode = requireChecksum ? (pull ? (sourceDigest !== undefined ? 'none' : 'source') : 'destination') : 'none';
  const req: TransferRequest = {
    source: pull ? remote.href : localUrl,
    destination: pull ? localUrl : remote.href,
    verify,
    overwrite: pull ? true : overwrite, // pull: the overwrite decision is applied when adopting the file
    ...(alg ? { checksum: { alg, value: supplied[alg] } } : requireChecksum ? { checksum: { alg: 'adler32' as const } } : {}),
    ...(streams ? { streams } : {}),
    ...(pull ? { sourceHeaders: passiveHeaders } : { destinationHeaders: passiveHeaders }),
  };
  // The copy's flow (SciTag, else TransferHeaderSciTag, else scitag.flow, else the path defaults): our requests
  // to the passive party carry it as SciTag, and the data connection is labelled and announced (services/marking).
  const flow = marking().resolve({
    sciTagHeader: single(request, 'scitag'), transferHeaderSciTag: single(request, 'transferheaderscitag'),
    queryFlow: queryFlowParam(request.url), paths: [lp.path],
  });
  if (flow) {
    req.flow = { experiment: flow.experiment, activity: flow.activity };
    for (const k of Object.keys(passiveHeaders)) if (k === 'scitag') delete passiveHeaders[k];
    passiveHeaders['SciTag'] = String(flowIdOf(flow));
  }
  tpc.onTransfer?.({ mode: pull ? 'pull' : 'push', path: lp.path, remote: remote.href, scitag });

  // 202 and the marker stream; from here on errors are reported in the body.
  const abort = new AbortController();
  const res = reply.raw;
  reply.hijack();
  res.writeHead(202, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
  let bytes = 0;
  let finished = false;
  // The passive party's connections the engine used, as XRootD lists them (`RemoteConnections`, wlcg.md §3.2).
  // One entry per connection (keyed by our end), so several connections to one server are listed each.
  const remotes = new Map<string, string>();
  const marker = (): string => perfMarker(bytes, Date.now(), remotes.size ? [...remotes.values()].join(',') : undefined);
  const write = (s: string) => {
    if (!res.destroyed && !res.writableEnded) res.write(s);
  };
  res.on('close', () => {
    if (!finished) abort.abort(new CargoError('CARGO_ERR_ABORTED', 'client closed the COPY request', { retryable: false }));
  });
  write(perfMarker(0));
  const timer = setInterval(() => write(marker()), tpc.markerIntervalMs ?? 5000);
  try {
    const result = await engine.transfer(req, {
      signal: abort.signal,
      gate: new PauseGate(),
      onProgress: (p) => {
        bytes = p.bytes;
      },
      onConnection: (c) => {
        if (c.port === undefined || remotes.size >= MAX_REMOTE_CONNECTIONS) return;
        remotes.set(`${c.ip} ${c.port} ${c.localPort ?? ''}`, remoteConnection(c.ip.replace(/^::ffff:(?=\d+\.)/, ''), c.port));
      },
    });
    bytes = result.bytes;
    if (external) {
      const entry = await external.commit();
      if (result.checksum) ctx.checksums.remember(lp.path, entry.etag, result.checksum.alg, result.checksum.value);
    }
    finished = true;
    clearInterval(timer);
    write(marker());
    res.end(SUCCESS_LINE);
  } catch (e) {
    finished = true;
    clearInterval(timer);
    await external?.abort();
    const msg = isCargoError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
    request.log.warn({ err: e, path: lp.path, remote: remote.href }, 'TPC failed');
    if (!res.destroyed) res.end(failureLine(msg));
  }
}
