/**
 * PROPFIND Depth 0 / 1, answering with the live properties davix and gfal2 read for stat and listing:
 * displayname, getcontentlength, getlastmodified, creationdate, resourcetype, getetag, getcontenttype,
 * in a 207 multistatus (one response per resource, one 200 propstat). The request body is not needed to
 * answer (allprop and prop requests get the same set: clients ignore extra properties).
 * Depth infinity is refused with 403 (RFC 4918 §9.1 allows it), so a listing never walks a whole tree.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EntryStat } from '../../services/storage/storage-backend.js';
import { hrefOf, requestPath, type StorageContext } from './storage-context.js';
import { replyProblem } from '../problem.js';

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function responseXml(ctx: StorageContext, e: EntryStat): string {
  const isDir = e.type === 'dir';
  const props = [
    `<D:displayname>${xmlEscape(e.name)}</D:displayname>`,
    `<D:creationdate>${new Date(e.birthtimeMs).toISOString().replace(/\.\d{3}Z$/, 'Z')}</D:creationdate>`,
    `<D:getlastmodified>${new Date(e.mtimeMs).toUTCString()}</D:getlastmodified>`,
    `<D:getetag>${xmlEscape(e.etag)}</D:getetag>`,
    isDir ? '<D:resourcetype><D:collection/></D:resourcetype>' : '<D:resourcetype/>',
    isDir ? '' : `<D:getcontentlength>${e.size}</D:getcontentlength>`,
    isDir ? '' : '<D:getcontenttype>application/octet-stream</D:getcontenttype>',
  ].join('');
  return `<D:response><D:href>${xmlEscape(hrefOf(ctx, e.path, isDir))}</D:href><D:propstat><D:prop>${props}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`;
}

export async function handlePropfind(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const lp = requestPath(ctx, request);
  // Drain whatever body came (propfind XML); its content does not change the answer.
  for await (const _ of request.raw) void _;
  const depthHeader = String(request.headers['depth'] ?? 'infinity').trim().toLowerCase();
  if (depthHeader !== '0' && depthHeader !== '1') {
    return void replyProblem(reply, {
      code: 'CARGO_ERR_DEPTH', status: 403, detail: 'PROPFIND Depth infinity is not supported; use 0 or 1', field: 'Depth',
    });
  }
  await ctx.access.check(request, 'stat', lp.path);
  const st = await ctx.storage.stat(lp.path);
  const entries = [st];
  if (depthHeader === '1' && st.type === 'dir') {
    await ctx.access.check(request, 'list', lp.path);
    entries.push(...(await ctx.storage.list(lp.path)));
  }
  const body =
    '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">' +
    entries.map((e) => responseXml(ctx, e)).join('') +
    '</D:multistatus>\n';
  return void reply.code(207).header('content-type', 'application/xml; charset=utf-8').send(body);
}
