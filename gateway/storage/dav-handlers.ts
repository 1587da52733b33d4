/**
 * The small WebDAV verbs: DELETE, MKCOL, MOVE, OPTIONS.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseLogicalPath } from '../../services/storage/safe-path.js';
import { StorageError, badPath, forbidden } from '../../services/storage/storage-errors.js';
import { overwriteHeader } from './put-handler.js';
import { hrefOf, requestPath, type StorageContext } from './storage-context.js';
import { replyProblem } from '../problem.js';

export const DAV_METHODS = ['OPTIONS', 'GET', 'HEAD', 'PUT', 'DELETE', 'MKCOL', 'MOVE', 'COPY', 'PROPFIND'] as const;

async function drain(request: FastifyRequest): Promise<number> {
  let n = 0;
  for await (const chunk of request.raw as AsyncIterable<Buffer>) n += chunk.length;
  return n;
}

export async function handleDelete(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const lp = requestPath(ctx, request);
  await ctx.access.check(request, 'delete', lp.path);
  if (lp.path === '/') throw forbidden('cannot delete the root collection');
  // RFC 4918 §9.6.1: DELETE on a collection acts on the whole tree.
  await ctx.storage.delete(lp.path, { recursive: true });
  return void reply.code(204).send();
}

export async function handleMkcol(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const lp = requestPath(ctx, request);
  if ((await drain(request)) > 0) {
    throw new StorageError('CARGO_ERR_UNSUPPORTED_MEDIA', 'MKCOL with a body is not supported', 415, { field: 'body' });
  }
  await ctx.access.check(request, 'create', lp.path);
  const existing = await ctx.storage.stat(lp.path).catch(() => null);
  if (existing) {
    // RFC 4918 §9.3.1: MKCOL on an existing resource is 405.
    reply.header('allow', DAV_METHODS.filter((m) => m !== 'MKCOL').join(', '));
    return void replyProblem(reply, { code: 'CARGO_ERR_EXISTS', status: 405, detail: `${lp.path} already exists` });
  }
  await ctx.storage.mkdir(lp.path, { parents: false });
  return void reply.code(201).header('location', hrefOf(ctx, lp.path, true)).send();
}

/** Destination header → logical path on this endpoint (absolute URL or absolute path; same prefix only). */
export function destinationPath(ctx: StorageContext, request: FastifyRequest): string {
  const h = request.headers['destination'];
  if (typeof h !== 'string' || h === '') {
    throw new StorageError('CARGO_ERR_BAD_HEADER', 'MOVE needs a Destination header', 400, { field: 'Destination' });
  }
  let rawPath: string;
  if (h.startsWith('/')) {
    rawPath = h;
  } else {
    let u: URL;
    try {
      u = new URL(h);
    } catch {
      throw new StorageError('CARGO_ERR_BAD_HEADER', 'Destination is not a URL', 400, { field: 'Destination' });
    }
    const host = request.headers[':authority'] ?? request.headers['host'];
    if (typeof host === 'string' && u.host !== host) {
      throw new StorageError('CARGO_ERR_CROSS_SERVER', 'MOVE to another server is not supported', 502, { field: 'Destination' });
    }
    rawPath = u.pathname;
  }
  if (ctx.prefix) {
    if (rawPath !== ctx.prefix && !rawPath.startsWith(ctx.prefix + '/')) throw badPath('Destination outside this endpoint');
    rawPath = rawPath.slice(ctx.prefix.length) || '/';
  }
  return parseLogicalPath(rawPath).path;
}

export async function handleMove(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const lp = requestPath(ctx, request);
  const to = destinationPath(ctx, request);
  const overwrite = overwriteHeader(request);
  await ctx.access.check(request, 'modify', lp.path);
  await ctx.access.check(request, 'create', to);
  const existed = await ctx.storage.stat(to).catch(() => null);
  if (existed) await ctx.access.check(request, 'modify', to);
  await ctx.storage.stat(lp.path); // 404 before anything else
  await ctx.storage.move(lp.path, to, { overwrite });
  return void reply.code(existed ? 204 : 201).header('location', hrefOf(ctx, to)).send();
}

export async function handleOptions(_ctx: StorageContext, _request: FastifyRequest, reply: FastifyReply): Promise<void> {
  return void reply
    .code(200)
    .header('dav', '1')
    .header('allow', DAV_METHODS.join(', '))
    .header('accept-ranges', 'bytes')
    .header('content-length', '0')
    .send();
}
