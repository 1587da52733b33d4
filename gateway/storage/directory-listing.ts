/**
 * GET on a collection: JSON for the API (`Accept: application/json`), a plain HTML table for browsers.
 */
import type { FastifyRequest } from 'fastify';
import type { EntryStat } from '../../services/storage/storage-backend.js';
import { hrefOf, type StorageContext } from './storage-context.js';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers['accept'] ?? '';
  return /application\/(json|problem\+json)/i.test(accept) && !/text\/html/i.test(accept);
}

/**
 * The token query parameter a listing was opened with (`authz=…` or `access_token=…`, a share link opened in a
 * browser), carried on to the listing's links so they open with the same link; '' when none.
 */
function tokenSuffix(request: FastifyRequest): string {
  const url = request.raw.url ?? '';
  const q = url.indexOf('?');
  if (q === -1) return '';
  const part = url.slice(q + 1).split('&').find((p) => p.startsWith('authz=') || p.startsWith('access_token='));
  return part ? `?${part}` : '';
}

export function renderListing(
  ctx: StorageContext,
  request: FastifyRequest,
  dir: EntryStat,
  entries: EntryStat[],
): { contentType: string; body: string } {
  const suffix = tokenSuffix(request);
  if (wantsJson(request)) {
    return {
      contentType: 'application/json; charset=utf-8',
      body: JSON.stringify({
        path: dir.path,
        entries: entries.map((e) => ({
          name: e.name,
          type: e.type,
          size: e.size,
          mtime: new Date(e.mtimeMs).toISOString(),
          etag: e.etag,
          ...(e.type === 'file' ? { locality: e.locality } : {}),
          href: hrefOf(ctx, e.path, e.type === 'dir') + suffix,
        })),
      }),
    };
  }
  const rows = entries
    .map((e) => {
      const href = escapeHtml(hrefOf(ctx, e.path, e.type === 'dir') + suffix);
      const name = escapeHtml(e.name) + (e.type === 'dir' ? '/' : '');
      const size = e.type === 'dir' ? '-' : String(e.size);
      return `<tr><td><a href="${href}">${name}</a></td><td>${size}</td><td>${new Date(e.mtimeMs).toISOString()}</td></tr>`;
    })
    .join('\n');
  const title = escapeHtml(dir.path);
  const parent = dir.path === '/' ? '' : `<p><a href="${escapeHtml(hrefOf(ctx, dir.path.slice(0, dir.path.lastIndexOf('/')) || '/', true) + suffix)}">../</a></p>`;
  return {
    contentType: 'text/html; charset=utf-8',
    body: `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${parent}<table><thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead><tbody>\n${rows}\n</tbody></table></body></html>\n`,
  };
}
