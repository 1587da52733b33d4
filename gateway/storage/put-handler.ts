/**
 * PUT: streamed into a temp file in the buffer, checksummed on the fly, verified against a client-supplied
 * `Digest` / `Repr-Digest` (412 on mismatch), then published atomically into permanent storage. A client that
 * goes away mid-body leaves nothing behind: the temp file is removed and nothing is published.
 * With `Content-Range` the request is one part of a multi-stream upload (see ranged-upload.ts).
 */
import { open } from 'node:fs/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createChecksummer, type Checksummer } from '../../services/checksum/checksummer.js';
import type { ChecksumAlg } from '../../services/transfer/types.js';
import type { DigestValues } from '../../services/checksum/digest-header.js';
import { writeStreamAt } from '../../services/storage/write-stream-at.js';
import { StorageError, badPath } from '../../services/storage/storage-errors.js';
import { READ_CHUNK } from '../../services/storage/posix-backend.js';
import { FileRangeStream } from '../../services/storage/file-range-stream.js';
import { algsToCompute, suppliedDigests } from './digest-negotiation.js';
import { parseContentRange } from './range-header.js';
import { hrefOf, requestPath, type StorageContext } from './storage-context.js';

export function checksumMismatch(alg: ChecksumAlg, expected: string, actual: string): StorageError {
  return new StorageError(
    'CARGO_ERR_CHECKSUM_MISMATCH',
    `${alg} mismatch: client announced ${expected}, received bytes have ${actual}`,
    412,
    { field: 'Digest' },
  );
}

/** Parse the WebDAV `Overwrite` header (T default, F); anything else is a 400. */
export function overwriteHeader(request: FastifyRequest): boolean {
  const h = request.headers['overwrite'];
  if (h === undefined) return true;
  const v = String(h).trim().toUpperCase();
  if (v === 'T') return true;
  if (v === 'F') return false;
  throw new StorageError('CARGO_ERR_BAD_HEADER', 'Overwrite must be T or F', 400, { field: 'Overwrite' });
}

function contentLength(request: FastifyRequest): number | undefined {
  const h = request.headers['content-length'];
  if (h === undefined) return undefined;
  const n = Number(h);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new StorageError('CARGO_ERR_BAD_HEADER', 'invalid Content-Length', 400, { field: 'Content-Length' });
  }
  return n;
}

/** Checksums of a whole file (used to verify a multi-stream upload once assembled). */
async function fileDigests(path: string, algs: ChecksumAlg[]): Promise<Map<ChecksumAlg, string>> {
  const sums = algs.map((a) => createChecksummer(a));
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size > 0) {
      for await (const chunk of new FileRangeStream(fh, 0, size - 1, READ_CHUNK) as AsyncIterable<Buffer>) {
        for (const s of sums) s.update(chunk);
      }
    }
  } finally {
    await fh.close();
  }
  return new Map(sums.map((s) => [s.alg, s.digestHex()]));
}

function verify(supplied: DigestValues, computed: Map<ChecksumAlg, string>): void {
  for (const [alg, expected] of Object.entries(supplied) as Array<[ChecksumAlg, string]>) {
    const actual = computed.get(alg);
    if (actual !== undefined && actual !== expected) throw checksumMismatch(alg, expected, actual);
  }
}

export async function handlePut(ctx: StorageContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const lp = requestPath(ctx, request);
  if (lp.path === '/' || lp.trailingSlash) throw badPath('PUT needs a file path, not a collection');
  const overwrite = overwriteHeader(request);
  await ctx.access.check(request, 'create', lp.path);
  const existing = await ctx.storage.stat(lp.path).catch(() => null);
  if (existing) await ctx.access.check(request, 'modify', lp.path);
  const supplied = suppliedDigests(request);
  const length = contentLength(request);

  let aborted = false;
  request.raw.once('aborted', () => (aborted = true));

  const contentRange = request.headers['content-range'];
  if (contentRange !== undefined) {
    const cr = parseContentRange(String(contentRange));
    if (!cr) throw new StorageError('CARGO_ERR_BAD_RANGE', 'Content-Range must be "bytes S-E/T"', 400, { field: 'Content-Range' });
    if (length !== undefined && length !== cr.end - cr.start + 1) {
      throw new StorageError('CARGO_ERR_BAD_RANGE', 'Content-Length does not match Content-Range', 400, { field: 'Content-Range' });
    }
    const uploadId = request.headers['cargo-upload-id'];
    const result = await ctx.ranged.writePart(
      {
        path: lp.path,
        uploadId: typeof uploadId === 'string' ? uploadId : undefined,
        start: cr.start,
        endInclusive: cr.end,
        total: cr.total,
        overwrite,
      },
      request.raw,
      ctx.opts.uploadIdleTimeoutMs,
      Object.keys(supplied).length === 0
        ? undefined
        : async (tempPath) => verify(supplied, await fileDigests(tempPath, Object.keys(supplied) as ChecksumAlg[])),
    );
    reply.header('cargo-upload-received', String(result.received));
    if (!result.complete) return void reply.code(202).send();
    reply.header('etag', result.entry!.etag).header('location', hrefOf(ctx, lp.path));
    return void reply.code(existing ? 204 : 201).send();
  }

  const upload = await ctx.storage.beginUpload(lp.path, { overwrite, expectedSize: length });
  try {
    const algs = algsToCompute(supplied);
    const sums: Checksummer[] = algs.map((a) => createChecksummer(a));
    let total = 0;
    const received = await writeStreamAt(upload.handle, request.raw, 0, {
      maxBytes: length ?? ctx.opts.maxPutBytes,
      idleMs: ctx.opts.uploadIdleTimeoutMs,
      onChunk: (chunk) => {
        // The quota grows with the body, declared size or not (throws 507 when the buffer is full).
        total += chunk.length;
        upload.account(total);
        for (const s of sums) s.update(chunk);
      },
    });
    if (aborted || (length !== undefined && received !== length)) {
      throw new StorageError('CARGO_ERR_SHORT_BODY', `body ended after ${received} bytes`, 400, { field: 'Content-Length' });
    }
    const computed = new Map(sums.map((s) => [s.alg, s.digestHex()] as [ChecksumAlg, string]));
    verify(supplied, computed);
    const entry = await upload.commit();
    for (const [alg, hex] of computed) ctx.checksums.remember(lp.path, entry.etag, alg, hex);
    reply.header('etag', entry.etag).header('location', hrefOf(ctx, lp.path));
    return void reply.code(existing ? 204 : 201).send();
  } finally {
    await upload.abort(); // no-op after a successful commit
  }
}
