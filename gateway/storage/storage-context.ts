/**
 * What every storage handler needs, built once per plugin registration.
 */
import type { FastifyRequest } from 'fastify';
import type { PortStorage } from '../../services/storage/port-storage.js';
import type { FileChecksums } from '../../services/storage/file-checksums.js';
import type { RangedUploads } from '../../services/storage/ranged-upload.js';
import { parseLogicalPath, type LogicalPath } from '../../services/storage/safe-path.js';
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
