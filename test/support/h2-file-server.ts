/**
 * A real HTTPS file server for tests: node:http2 secure server with allowHTTP1 (so h2 and HTTP/1.1 clients
 * both work) and the self-signed test certificate. Serves a directory:
 *   GET  with Range (single range), If-Range (ETag or date), ETag, Last-Modified, Accept-Ranges
 *   HEAD with the same headers, plus `Digest: adler32=…` (and crc32c/md5/sha256) when asked with Want-Digest
 *   PUT  writes the body (to a temp name, then rename), honours If-None-Match: *, answers Digest when asked
 * Faults for robustness tests: fail the next N requests with a status, reset or stall a response after some
 * bytes. Records requests and each HTTP/2 session's SETTINGS as received from the client.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat, truncate, unlink } from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join, normalize } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createChecksummer } from '../../services/checksum/checksummer.js';
import type { ChecksumAlg } from '../../services/transfer/types.js';
import { testTls } from './tls.js';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http2.IncomingHttpHeaders;
  httpVersion: string;
  /** Remote port of the client's TCP connection (distinct ports = distinct connections). */
  remotePort?: number;
}

export interface ServerFaults {
  /** Answer the next `count` requests (matching `method` if given) with `status` and no body. */
  failNext?: { count: number; status: number; method?: string };
  /** Reset (RST_STREAM / socket destroy) the next `count` GET responses after `afterBytes` body bytes
   *  (after letting `skip` responses through untouched). */
  resetAfter?: { count: number; afterBytes: number; skip?: number };
  /** Send the whole body of the next `count` GET responses, let it reach the client, then reset the stream
   *  instead of ending it (the end of the stream lost with its connection). HTTP/2 only. */
  resetAtEnd?: { count: number };
  /** Stop sending the next `count` GET responses after `afterBytes` bytes, holding the stream open. */
  stallAfter?: { count: number; afterBytes: number };
  /** Send GOAWAY on the session of the next `count` GET responses after `afterBytes` bytes (HTTP/2 only). */
  goawayAfter?: { count: number; afterBytes: number };
  /** Accept the next `count` requests and never answer (first-byte timeout tests). */
  holdNext?: { count: number };
  /** Slow every GET body to roughly this many bytes/s (chunked writes with pauses). */
  bytesPerSec?: number;
  /** Omit the Digest header even when asked. */
  noDigest?: boolean;
  /** Serve a wrong Digest value (checksum mismatch tests). */
  wrongDigest?: boolean;
  /** Answer PUTs with 201 but store an empty file (as XRootD 5.5 does with a lower-case content-length). */
  dropPutBody?: boolean;
  /** Answer every range request that carries If-Range with the whole body, even when the validator matches. */
  ignoreIfRange?: boolean;
}

export interface H2FileServer {
  origin: string;
  port: number;
  root: string;
  url(path: string): string;
  requests: RecordedRequest[];
  /** SETTINGS frames received from clients, one entry per session in arrival order. */
  clientSettings: http2.Settings[];
  /** Live HTTP/2 sessions (for window-size checks via session.state). */
  sessions: Set<http2.ServerHttp2Session>;
  faults: ServerFaults;
  close(): Promise<void>;
}

export interface H2FileServerOptions {
  root: string;
  host?: string;
  /** Server SETTINGS (e.g. a large initialWindowSize for fast PUT tests). */
  settings?: http2.Settings;
  /** Refuse h2 in ALPN (HTTP/1.1 only endpoint). */
  http1Only?: boolean;
  /** Listen on this port (an endpoint that comes back where it was); 0 or absent: any free port. */
  port?: number;
  /** Checks every request's headers (a bearer token): false answers 401 and serves nothing. */
  authorize?: (method: string, path: string, headers: http2.IncomingHttpHeaders) => boolean;
}

function etagOf(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

const DIGEST_NAMES: Record<string, ChecksumAlg> = { adler32: 'adler32', crc32c: 'crc32c', md5: 'md5', 'sha-256': 'sha256' };

function digestToken(alg: ChecksumAlg, hex: string): string {
  if (alg === 'adler32' || alg === 'crc32c') return `${alg}=${hex}`;
  return `${alg === 'sha256' ? 'sha-256' : alg}=${Buffer.from(hex, 'hex').toString('base64')}`;
}

function wantedAlgs(want: string | string[] | undefined): ChecksumAlg[] {
  if (!want) return [];
  const raw = Array.isArray(want) ? want.join(',') : want;
  const out: ChecksumAlg[] = [];
  for (const part of raw.split(',')) {
    const name = part.split(';')[0]!.trim().toLowerCase();
    const alg = DIGEST_NAMES[name];
    if (alg && !out.includes(alg)) out.push(alg);
  }
  return out;
}

async function fileDigest(path: string, alg: ChecksumAlg): Promise<string> {
  const sum = createChecksummer(alg);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) sum.update(chunk as Buffer);
  return sum.digestHex();
}

export async function startH2FileServer(opts: H2FileServerOptions): Promise<H2FileServer> {
  const tls = testTls();
  const host = opts.host ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  const clientSettings: http2.Settings[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  const faults: ServerFaults = {};
  const digestCache = new Map<string, string>();

  // node:http2 always offers h2 in ALPN, so an HTTP/1.1-only endpoint is a plain https server; the
  // compatibility API makes the request handler below work unchanged on both.
  const server = opts.http1Only
    ? (https.createServer({ key: tls.key, cert: tls.cert }) as unknown as http2.Http2SecureServer)
    : http2.createSecureServer({
      key: tls.key, cert: tls.cert, allowHTTP1: true,
      ...(opts.settings ? { settings: opts.settings } : {}),
    });
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.once('remoteSettings', (settings) => clientSettings.push(settings));
    s.once('close', () => sessions.delete(s));
  });

  const resolvePath = (urlPath: string): string | null => {
    const p = decodeURIComponent(new URL(urlPath, 'https://x').pathname);
    const full = normalize(join(opts.root, p));
    return full.startsWith(normalize(opts.root)) ? full : null;
  };

  const digestHeader = async (path: string, etag: string, want: string | string[] | undefined): Promise<string | undefined> => {
    const algs = wantedAlgs(want);
    if (algs.length === 0 || faults.noDigest) return undefined;
    const parts: string[] = [];
    for (const alg of algs) {
      const key = `${path}|${etag}|${alg}`;
      let hex = digestCache.get(key);
      if (!hex) { hex = await fileDigest(path, alg); digestCache.set(key, hex); }
      if (faults.wrongDigest) hex = hex.split('').reverse().join('');
      parts.push(digestToken(alg, hex));
    }
    return parts.join(',');
  };

  type CountedFault = { count: number; afterBytes: number; skip?: number };
  const consumeFault = (k: 'resetAfter' | 'stallAfter' | 'goawayAfter'): CountedFault | undefined => {
    const f = faults[k] as CountedFault | undefined;
    if (!f || f.count <= 0) return undefined;
    if (f.skip) {
      f.skip--;
      return undefined;
    }
    f.count--;
    return { ...f };
  };

  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const method = req.method;
    requests.push({
      method, path: req.url, headers: req.headers, httpVersion: req.httpVersion,
      remotePort: req.socket?.remotePort,
    });
    if (opts.authorize && !opts.authorize(method, req.url, req.headers)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end();
      return;
    }
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) { res.statusCode = 500; res.end(String(e)); } else res.destroy();
    });
  });

  async function handle(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): Promise<void> {
    const f = faults.failNext;
    if (f && f.count > 0 && (!f.method || f.method === req.method)) {
      f.count--;
      req.resume();
      res.statusCode = f.status;
      res.end();
      return;
    }
    if (faults.holdNext && faults.holdNext.count > 0) {
      faults.holdNext.count--;
      return; // never answered; the client's timeout must fire
    }
    const path = resolvePath(req.url);
    if (!path) { res.statusCode = 400; res.end(); return; }
    if (req.method === 'PUT') return handlePut(req, res, path);
    if (req.method === 'DELETE') {
      res.statusCode = await unlink(path).then(() => 204, () => 404);
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.statusCode = 405; res.end(); return; }

    let st;
    try { st = await stat(path); } catch { res.statusCode = 404; res.end(); return; }
    if (!st.isFile()) { res.statusCode = 404; res.end(); return; }
    const etag = etagOf(st.size, st.mtimeMs);
    const lastModified = st.mtime.toUTCString();
    res.setHeader('etag', etag);
    res.setHeader('last-modified', lastModified);
    res.setHeader('accept-ranges', 'bytes');
    const digest = await digestHeader(path, etag, req.headers['want-digest']);
    if (digest) res.setHeader('digest', digest);

    let start = 0;
    let end = st.size; // exclusive
    const range = req.headers['range'];
    const ifRange = req.headers['if-range'];
    const rangeApplies = range !== undefined && (ifRange === undefined || (!faults.ignoreIfRange && (ifRange === etag || ifRange === lastModified)));
    if (rangeApplies) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(String(range));
      if (!m || (m[1] === '' && m[2] === '')) { res.statusCode = 416; res.end(); return; }
      if (m[1] === '') { start = Math.max(0, st.size - Number(m[2])); }
      else { start = Number(m[1]); if (m[2] !== '') end = Math.min(st.size, Number(m[2]) + 1); }
      if (start >= st.size || start >= end) {
        res.statusCode = 416; res.setHeader('content-range', `bytes */${st.size}`); res.end(); return;
      }
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${start}-${end - 1}/${st.size}`);
    } else {
      res.statusCode = 200;
    }
    res.setHeader('content-length', String(end - start));
    if (req.method === 'HEAD' || end === start) { res.end(); return; }
    await sendBody(req, res, path, start, end);
  }

  async function sendBody(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, path: string, start: number, end: number): Promise<void> {
    if (faults.resetAtEnd && faults.resetAtEnd.count > 0 && req.stream) {
      faults.resetAtEnd.count--;
      const body = await readFile(path);
      // Headers and every DATA frame are flushed before the reset, so the client holds the whole body.
      await new Promise<void>((resolve) => res.write(body.subarray(start, end), () => resolve()));
      await new Promise((r) => setTimeout(r, 50));
      req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const reset = consumeFault('resetAfter');
    const stall = consumeFault('stallAfter');
    let goaway = req.stream ? consumeFault('goawayAfter') : undefined;
    const rate = faults.bytesPerSec;
    if (!reset && !stall && !rate && goaway === undefined) {
      await pipeline(createReadStream(path, { start, end: end - 1, highWaterMark: 256 * 1024 }), res as unknown as NodeJS.WritableStream)
        .catch(() => undefined);
      return;
    }
    let sent = 0;
    const stream = createReadStream(path, { start, end: end - 1, highWaterMark: 16 * 1024 });
    res.on('close', () => stream.destroy());
    for await (const c of stream) {
      let chunk = c as Buffer;
      if (goaway && sent >= goaway.afterBytes) {
        // Graceful GOAWAY (once): no new streams on this session; in-flight ones may finish.
        req.stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR);
        goaway = undefined;
      }
      const limit = reset?.afterBytes ?? stall?.afterBytes;
      if (limit !== undefined && sent + chunk.length >= limit) {
        chunk = chunk.subarray(0, limit - sent);
        if (chunk.length) await writeChunk(res, chunk);
        sent += chunk.length;
        if (reset) {
          if (req.stream) req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          else req.socket.destroy();
        }
        // Stall: keep the response open and silent until the client gives up.
        stream.destroy();
        return;
      }
      await writeChunk(res, chunk);
      sent += chunk.length;
      if (rate) await new Promise((r) => setTimeout(r, (chunk.length / rate) * 1000));
    }
    res.end();
  }

  function writeChunk(res: http2.Http2ServerResponse, chunk: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (res.write(chunk)) { resolve(); return; }
      const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
      res.on('drain', done);
      res.on('close', done);
    });
  }

  /** Ranged uploads (cargoport protocol): parts with Content-Range + Cargo-Upload-Id, assembled in a temp file. */
  const assemblies = new Map<string, { tmp: string; done: Array<[number, number]>; total: number; ready: Promise<void> }>();

  async function handleRangedPut(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, path: string): Promise<void> {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['content-range']));
    if (!m) { req.resume(); res.statusCode = 400; res.end(); return; }
    const [start, end, total] = [Number(m[1]), Number(m[2]) + 1, Number(m[3])];
    const key = `${path}|${String(req.headers['cargo-upload-id'] ?? '')}|${total}`;
    let a = assemblies.get(key);
    if (!a) {
      // Registered before any await: parts arriving together must share one assembly, not race to create two.
      const tmp = `${path}.ranged-${Math.random().toString(16).slice(2)}`;
      const ready = (async () => {
        await mkdir(dirname(path), { recursive: true });
        const h = await open(tmp, 'w');
        await h.truncate(total);
        await h.close();
      })();
      a = { tmp, done: [], total, ready };
      assemblies.set(key, a);
    }
    await a.ready;
    try {
      await pipeline(req as unknown as NodeJS.ReadableStream, createWriteStream(a.tmp, { flags: 'r+', start }));
    } catch {
      res.destroy();
      return;
    }
    a.done.push([start, end]);
    a.done.sort((x, y) => x[0] - y[0]);
    let covered = 0;
    let pos = 0;
    for (const [s0, e0] of a.done) { if (s0 > pos) break; pos = Math.max(pos, e0); }
    covered = pos;
    if (covered < total || !assemblies.has(key)) {
      res.statusCode = 202;
      res.setHeader('cargo-upload-received', String(covered));
      res.end();
      return;
    }
    assemblies.delete(key);
    if (faults.dropPutBody) await truncate(a.tmp, 0);
    await rename(a.tmp, path);
    const algs = wantedAlgs(req.headers['want-digest']);
    if (algs.length && !faults.noDigest) {
      const parts: string[] = [];
      for (const alg of algs) parts.push(digestToken(alg, await fileDigest(path, alg)));
      res.setHeader('digest', parts.join(','));
    }
    res.statusCode = 201;
    res.end();
  }

  async function handlePut(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, path: string): Promise<void> {
    if (req.headers['content-range'] !== undefined) return handleRangedPut(req, res, path);
    if (req.headers['if-none-match'] === '*') {
      try { await stat(path); req.resume(); res.statusCode = 412; res.end(); return; } catch { /* absent: go on */ }
    }
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.upload-${process.pid}-${Math.random().toString(16).slice(2)}`;
    const algs = wantedAlgs(req.headers['want-digest']);
    const sums = algs.map((a) => ({ alg: a, sum: createChecksummer(a) }));
    req.on('data', (c: Buffer) => { for (const s of sums) s.sum.update(c); });
    try {
      await pipeline(req as unknown as NodeJS.ReadableStream, createWriteStream(tmp));
    } catch {
      res.destroy();
      return;
    }
    if (faults.dropPutBody) await truncate(tmp, 0);
    await rename(tmp, path);
    if (sums.length && !faults.noDigest) res.setHeader('digest', sums.map((s) => digestToken(s.alg, s.sum.digestHex())).join(','));
    res.statusCode = 201;
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    origin, port, root: opts.root, requests, clientSettings, sessions, faults,
    url: (p: string) => `${origin}${p.startsWith('/') ? '' : '/'}${p}`,
    close: () => new Promise<void>((resolve) => {
      for (const s of sessions) s.destroy();
      server.close(() => resolve());
      // HTTP/1.1 keep-alive sockets would hold close() open.
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    }),
  };
}
