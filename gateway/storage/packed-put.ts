/**
 * The packed upload: `PUT <collection>/` with `Content-Type: application/x-tar` and `X-Cargoport-Unpack: 1` unpacks
 * the archive into the collection (services/storage/packed-upload.ts), every member checked against the caller's
 * rights (create on the collection to start; create, or modify when it replaces a file, per member) and published
 * atomically on its own. The answer is JSON with one line per member, so the sender can mark each file:
 *
 *   200 {"members": [{"name": "a/b.dat", "path": "/dir/a/b.dat", "state": "published", "size": 65536,
 *                     "checksums": {"adler32": "…"}}, {"name": …, "state": "failed", "code": "…", "reason": "…"}]}
 *
 * A refused archive (unsafe member, truncation, not a tar) answers 422 problem+json CARGO_ERR_UNSAFE_ARCHIVE with the
 * same `members` list of what was published before the refusing header (nothing from it on).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { receivePackedUpload } from './packed-upload.js';
import { StorageError, badPath } from '../../services/storage/storage-errors.js';
import { problemFor, writeProblem } from '../problem.js';
import { overwriteHeader } from './put-handler.js';
import { requestPath, type StorageContext } from './storage-context.js';

export const PACKED_CONTENT_TYPE = 'application/x-tar';
export const UNPACK_HEADER = 'x-cargoport-unpack';

/** Whether a PUT asks for a packed upload (the unpack header; the content type is then checked). */
export function isPackedUpload(request: FastifyRequest): boolean {
  return request.headers[UNPACK_HEADER] !== undefined;
}

export async function handlePackedPut(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (String(request.headers[UNPACK_HEADER]).trim() !== '1') {
    throw new StorageError('CARGO_ERR_BAD_HEADER', `${UNPACK_HEADER} must be 1`, 400, { field: 'X-Cargoport-Unpack' });
  }
  const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== PACKED_CONTENT_TYPE) {
    throw new StorageError('CARGO_ERR_UNSUPPORTED_MEDIA', `a packed upload is ${PACKED_CONTENT_TYPE} (got ${type || 'none'})`, 415, { field: 'Content-Type' });
  }
  const lp = requestPath(ctx, request);
  if (!lp.trailingSlash && lp.path !== '/') throw badPath('a packed upload goes to a collection: end the path with /');
  const overwrite = overwriteHeader(request);
  await ctx.access.check(request, 'create', lp.path);
  const limits = ctx.opts.packed ?? {};
  const result = await receivePackedUpload(ctx.storage, request.raw, {
    dir: lp.path,
    overwrite,
    maxMembers: limits.maxMembers ?? 1_000_000,
    maxMemberBytes: limits.maxMemberBytes ?? 1024 ** 4,
    maxNameBytes: limits.maxNameBytes ?? 4096,
    ...(ctx.opts.uploadIdleTimeoutMs ? { idleMs: ctx.opts.uploadIdleTimeoutMs } : {}),
    authorize: (action, path) => ctx.access.check(request, action, path).then(() => true, () => false),
  });
  if (result.refused) {
    const p = problemFor(new StorageError(result.refused.code, result.refused.message, 422, { field: 'body' }));
    return writeProblem(reply, { ...p, members: result.members } as typeof p, undefined);
  }
  return void reply.code(200).header('content-type', 'application/json').send(JSON.stringify({ members: result.members }));
}
