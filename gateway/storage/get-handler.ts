/**
 * GET and HEAD: files (ranges, validators, digests) and collections (HTML or JSON listing; HEAD → 200).
 * Bytes are streamed from the file descriptor with 1 MiB reads; the handle is closed when the response
 * stream closes, whether the client read everything or went away.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ReadHandle } from '../../services/storage/storage-backend.js';
import type { RateLimiter } from '../../services/throttle/rate-limiter.js';
import { parseRangeHeader, type ByteRange } from './range-header.js';
import { evaluatePreconditions, ifRangeAllows } from './conditional-headers.js';
import { digestResponseHeaders } from './digest-negotiation.js';
import { renderListing } from './directory-listing.js';
import { sendFileRange } from './file-response.js';
import { requestPath, type StorageContext } from './storage-context.js';
import { replyProblem } from '../problem.js';

export async function handleGet(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const lp = requestPath(ctx, request);
  const head = request.method === 'HEAD';
  const st0 = await (async () => {
    await ctx.access.check(request, 'stat', lp.path);
    return ctx.storage.stat(lp.path);
  })();
  if (st0.type === 'dir') {
    // HEAD of a collection reveals no entries: stat is enough (WLCG suite setup HEADs its directories).
    if (!head) await ctx.access.check(request, 'list', lp.path);
    const { contentType, body } = renderListing(ctx, request, st0, head ? [] : await ctx.storage.list(lp.path));
    reply.code(200).header('content-type', contentType).header('last-modified', new Date(st0.mtimeMs).toUTCString());
    if (head) {
      reply.header('content-length', String(Buffer.byteLength(body)));
      return reply.send();
    }
    return reply.send(body);
  }
  if (head && !st0.online) {
    // A nearline file that is only on tape: HEAD still answers from metadata (size, validators), no digest.
    return reply
      .code(200)
      .header('accept-ranges', 'bytes')
      .header('etag', st0.etag)
      .header('last-modified', new Date(st0.mtimeMs).toUTCString())
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(st0.size))
      .send();
  }
  // HEAD answers metadata and checksums only: "stat", which read, create, modify and stage all allow (profile §2.2.1).
  await ctx.access.check(request, head ? 'stat' : 'read', lp.path);
  const handle = await ctx.storage.openRead(lp.path);
  let handed = false;
  try {
    const st = handle.stat;
    reply
      .header('accept-ranges', 'bytes')
      .header('etag', st.etag)
      .header('last-modified', new Date(st.mtimeMs).toUTCString());
    const pre = evaluatePreconditions(request.headers, st);
    if (pre === 'failed') return replyProblem(reply, { code: 'CARGO_ERR_PRECONDITION', detail: `a conditional header does not hold for ${lp.path}` });
    if (pre === 'not-modified') return reply.code(304).send();
    reply.headers(await digestResponseHeaders(request, handle, ctx.checksums));

    const rangeHeader = request.headers['range'];
    const decision = ifRangeAllows(request.headers['if-range'] as string | undefined, st)
      ? parseRangeHeader(rangeHeader, st.size)
      : ({ kind: 'full' } as const);
    if (decision.kind === 'unsatisfiable') {
      reply.header('content-range', `bytes */${st.size}`);
      return replyProblem(reply, { code: 'CARGO_ERR_BAD_RANGE', detail: `range not satisfiable for ${lp.path}`, field: 'Range' });
    }
    if (decision.kind === 'full') {
      reply.code(200).header('content-type', 'application/octet-stream').header('content-length', String(st.size));
      if (head || st.size === 0) return reply.send();
      handed = true;
      return sendFileRange(reply, handle, 0, st.size - 1, ctx.opts.downloadLimiter?.(request));
    }
    if (decision.ranges.length === 1) {
      const r = decision.ranges[0];
      reply
        .code(206)
        .header('content-type', 'application/octet-stream')
        .header('content-range', `bytes ${r.start}-${r.end}/${st.size}`)
        .header('content-length', String(r.end - r.start + 1));
      if (head) return reply.send();
      handed = true;
      return sendFileRange(reply, handle, r.start, r.end, ctx.opts.downloadLimiter?.(request));
    }
    const boundary = 'cargoport-' + randomBytes(12).toString('hex');
    const parts = decision.ranges.map((r) => ({
      r,
      head: Buffer.from(
        `--${boundary}\r\ncontent-type: application/octet-stream\r\ncontent-range: bytes ${r.start}-${r.end}/${st.size}\r\n\r\n`,
      ),
    }));
    const tail = Buffer.from(`--${boundary}--\r\n`);
    let length = tail.length;
    for (const p of parts) length += p.head.length + (p.r.end - p.r.start + 1) + 2;
    reply
      .code(206)
      .header('content-type', `multipart/byteranges; boundary=${boundary}`)
      .header('content-length', String(length));
    if (head) return reply.send();
    handed = true;
    return sendBody(reply, handle, Readable.from(multipartBody(handle, parts, tail, ctx.opts.downloadLimiter?.(request)), { objectMode: false }));
  } finally {
    if (!handed) await handle.close();
  }
}

async function* multipartBody(handle: ReadHandle, parts: Array<{ r: ByteRange; head: Buffer }>, tail: Buffer, limiter?: RateLimiter) {
  const crlf = Buffer.from('\r\n');
  for (const p of parts) {
    yield p.head;
    for await (const chunk of handle.stream(p.r.start, p.r.end)) {
      const wait = limiter?.take((chunk as Buffer).length);
      if (wait) await wait;
      yield chunk as Buffer;
    }
    yield crlf;
  }
  yield tail;
}

function sendBody(reply: FastifyReply, handle: ReadHandle, body: Readable): FastifyReply {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    void handle.close().catch(() => undefined);
  };
  body.once('close', close);
  reply.raw.once('close', () => {
    // The handle is closed on the body's own 'close', after any read in flight has settled.
    if (!body.destroyed) body.destroy();
  });
  return reply.send(body);
}
