/**
 * What every storage handler needs, built once per plugin registration.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortStorage } from '../../services/storage/port-storage.js';
import type { FileChecksums } from '../../services/storage/file-checksums.js';
import type { RangedUploads } from '../../services/storage/ranged-upload.js';
import { parseLogicalPath, type LogicalPath } from '../../services/storage/safe-path.js';
import { isCargoError } from '../../errors/cargo-error.js';
import type { AccessDecision } from './access-decision.js';
import type { StorageEndpointOptions } from './storage-options.js';

export interface StorageContext {
  storage: PortStorage;
  access: AccessDecision;
  checksums: FileChecksums;
  ranged: RangedUploads;
  /** URL prefix the plugin is mounted under ('' or e.g. '/data'), without trailing slash. */
  prefix: string;
  opts: StorageEndpointOptions;
}

/** Logical path of a request: raw URL minus query and mount prefix, through the safe-path choke point. */
export function requestPath(ctx: StorageContext, request: FastifyRequest): LogicalPath {
  const url = request.raw.url ?? request.url;
  const q = url.indexOf('?');
  let raw = q === -1 ? url : url.slice(0, q);
  if (ctx.prefix && raw.startsWith(ctx.prefix)) raw = raw.slice(ctx.prefix.length);
  return parseLogicalPath(raw === '' ? '/' : raw);
}

/** Percent-encode a logical path for hrefs and Location headers, with the mount prefix. */
export function hrefOf(ctx: StorageContext, path: string, collection = false): string {
  const enc = path === '/' ? '/' : path.split('/').map(encodeURIComponent).join('/');
  const withSlash = collection && !enc.endsWith('/') ? enc + '/' : enc;
  return ctx.prefix + withSlash;
}

/** RFC 7807 problem body; used for every error leaving the storage endpoint. */
export function sendProblem(reply: FastifyReply, status: number, title: string, extra: Record<string, unknown> = {}) {
  if (reply.sent || reply.raw.headersSent) return reply;
  const r = reply.code(status).header('content-type', 'application/problem+json');
  // A HEAD answer has no body (RFC 9110 §9.3.2): over HTTP/2 Node ends the stream with the headers, and a body
  // written after that is a stream error on the server.
  if (reply.request.method === 'HEAD') return r.send();
  return r.send(JSON.stringify({ type: 'about:blank', title, status, ...extra }));
}

export function errorToProblem(err: unknown): { status: number; title: string; extra: Record<string, unknown> } {
  if (isCargoError(err)) {
    return { status: err.httpStatus, title: err.message, extra: { code: err.code, ...(err.field ? { field: err.field } : {}) } };
  }
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, title: e.message ?? 'bad request', extra: e.code ? { code: e.code } : {} };
  }
  return { status: 500, title: 'internal error', extra: { code: 'CARGO_ERR_INTERNAL' } };
}
