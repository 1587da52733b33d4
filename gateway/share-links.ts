/**
 * The gateway's shell around share links (services/auth/share-links.ts): the storage endpoint's
 * `shareRequest` (a `POST <path>` macaroon request: who may make a link, for what), and the REST routes to list
 * and revoke links, `GET /api/v1/shares` and `DELETE /api/v1/shares/:id` (the link's maker or an administrator).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../services/auth/auth-errors.js';
import { describe, mayAccess } from '../services/auth/principal.js';
import { ShareLinks, parseShareRequest } from '../services/auth/share-links.js';
import type { ShareRecord } from '../services/auth/share-store.js';
import { CargoError } from '../errors/cargo-error.js';
import type { GatewayAuth } from './auth.js';
import type { GatewayContext } from './context.js';

function sharesOf(auth: GatewayAuth): ShareLinks {
  if (!auth.shares) throw new CargoError('CARGO_ERR_NO_ROUTE', 'share links are off here (auth.shareMaxValiditySec is 0)', { httpStatus: 404 });
  return auth.shares;
}

/** The storage endpoint's share-link decision: an identified caller with read on `path` gets a link for it. */
export function shareRequestHandler(auth: GatewayAuth) {
  return async (request: FastifyRequest, path: string, body: unknown, exists: () => Promise<void>) => {
    const shares = sharesOf(auth);
    const p = request.principal;
    const owner = ShareLinks.requireMaker(p);
    const r = parseShareRequest(body, shares.maxValiditySec);
    // Authorisation before existence: a caller who may not read the path learns nothing about it.
    if (!mayAccess(p, 'read', path, auth.publicPrefixes)) throw new ForbiddenError(`${describe(p)} may not read ${path}, so cannot share it`);
    await exists();
    const m = await shares.mint(owner, path, r);
    request.log.info({ share: m.id, path, owner }, 'share link made');
    return { token: m.token, id: m.id, expiresAt: m.record.expiresAt };
  };
}

const shareSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, owner: { type: 'string' }, path: { type: 'string' }, download: { type: 'boolean' },
    createdAt: { type: 'string' }, expiresAt: { type: 'string' }, downloads: { type: 'integer' }, used: { type: 'integer' },
    rateBytesPerSec: { type: 'integer' }, revoked: { type: 'boolean' },
  },
};

export async function shareRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get('/shares', {
    schema: { summary: 'Share links not yet expired: the caller\'s (an administrator: everyone\'s)', response: { 200: { type: 'array', items: shareSchema } } },
  }, async (req): Promise<ShareRecord[]> => {
    const p = ctx.auth.requireIdentity(req);
    return sharesOf(ctx.auth).list(p);
  });
  app.delete<{ Params: { id: string } }>('/shares/:id', {
    schema: {
      summary: 'Revoke a share link (its maker or an administrator); its token is refused from now on',
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } } },
      response: { 200: shareSchema },
    },
  }, async (req) => {
    const p = ctx.auth.requireIdentity(req);
    const r = await sharesOf(ctx.auth).revoke(p, req.params.id);
    req.log.info({ share: r.id, by: p.owner }, 'share link revoked');
    return r;
  });
}
