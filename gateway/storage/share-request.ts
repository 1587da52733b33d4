/**
 * `POST <path>` with `Content-Type: application/macaroon-request`: the share-link request dCache and XRootD answer
 * (`{"caveats":["activity:DOWNLOAD,LIST"],"validity":"PT1H"}` → `{"macaroon": …, "uri": {…}}`), so existing
 * clients can ask for a link. The decision and the token come from the gateway's `shareRequest` option
 * (gateway/share-links.ts); this handler reads the small JSON body and answers with the URLs. Any other POST is 405.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CargoError } from '../../errors/cargo-error.js';
import { hrefOf, requestPath, type StorageContext } from './storage-context.js';

const MAX_BODY = 16 * 1024;

async function readJson(request: FastifyRequest): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of request.raw) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new CargoError('CARGO_ERR_BAD_SHARE_REQUEST', `the request body is larger than ${MAX_BODY} bytes`, { httpStatus: 400 });
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new CargoError('CARGO_ERR_BAD_JSON', 'the share-link request is not valid JSON', { httpStatus: 400 });
  }
}

export async function handlePost(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const mint = ctx.opts.shareRequest;
  if (type !== 'application/macaroon-request' || !mint) {
    throw new CargoError('CARGO_ERR_METHOD_NOT_ALLOWED', mint ? 'POST on the storage endpoint is only a share-link request (Content-Type: application/macaroon-request)' : 'share links are off here (auth.shareMaxValiditySec is 0)', { httpStatus: 405 });
  }
  const lp = requestPath(ctx, request);
  const body = await readJson(request);
  let isDir = false;
  const minted = await mint(request, lp.path, body, async () => {
    isDir = (await ctx.storage.stat(lp.path)).type === 'dir';
  });
  const authority = request.headers[':authority'] ?? request.headers.host;
  const origin = (ctx.opts.publicUrl ?? `https://${String(authority)}`).replace(/\/+$/, '');
  const target = origin + hrefOf(ctx, lp.path, isDir);
  reply.code(200).header('content-type', 'application/json').header('cache-control', 'no-store').send(JSON.stringify({
    macaroon: minted.token,
    uri: { targetWithMacaroon: `${target}?authz=${minted.token}`, baseUri: `${origin}${ctx.prefix}/`, target },
    id: minted.id,
    expiresAt: minted.expiresAt,
  }));
}
