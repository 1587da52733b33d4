/**
 * Answering `Want-Digest` (RFC 3230 → `Digest`) and `Want-Repr-Digest` (RFC 9530 → `Repr-Digest`) for a stored
 * file, and reading a client-supplied `Digest` / `Repr-Digest` on upload. Codecs live in services/checksum.
 */
import type { FastifyRequest } from 'fastify';
import {
  formatDigest,
  formatReprDigest,
  parseDigest,
  parseReprDigest,
  pickWantDigest,
  pickWantReprDigest,
  type DigestValues,
} from '../../services/checksum/digest-header.js';
import type { ChecksumAlg } from '../../services/transfer/types.js';
import type { ReadHandle } from '../../services/storage/storage-backend.js';
import type { FileChecksums } from '../../services/storage/file-checksums.js';

/** Response headers answering the request's digest wishes (computing the checksum if needed). */
export async function digestResponseHeaders(
  request: FastifyRequest,
  handle: ReadHandle,
  checksums: FileChecksums,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const want = request.headers['want-digest'];
  if (want !== undefined) {
    const alg = pickWantDigest(want);
    if (alg) out['digest'] = formatDigest({ [alg]: await checksums.compute(handle, alg) });
  }
  const wantRepr = request.headers['want-repr-digest'];
  if (wantRepr !== undefined) {
    const alg = pickWantReprDigest(wantRepr);
    if (alg) out['repr-digest'] = formatReprDigest({ [alg]: await checksums.compute(handle, alg) });
  }
  return out;
}

/** Digests the client announced for the whole representation it uploads (Repr-Digest wins on conflict). */
export function suppliedDigests(request: FastifyRequest): DigestValues {
  const fromDigest = request.headers['digest'] !== undefined ? parseDigest(request.headers['digest']) : {};
  const fromRepr = request.headers['repr-digest'] !== undefined ? parseReprDigest(request.headers['repr-digest']) : {};
  return { ...fromDigest, ...fromRepr };
}

/** Algorithms to compute while receiving: the supplied ones plus adler32 (what WLCG clients ask for next). */
export function algsToCompute(supplied: DigestValues): ChecksumAlg[] {
  const set = new Set<ChecksumAlg>(['adler32']);
  for (const k of Object.keys(supplied) as ChecksumAlg[]) set.add(k);
  return [...set];
}
