/**
 * Is the file already at its destination? For a destination that exists when a transfer would publish, this says
 * whether it holds the same content as the source: sizes compared, then checksums (the one the submission gives,
 * else the one the source announces, else, for a local source, computed; the destination's announced by a HEAD with
 * Want-Digest, or computed for a local file). Used for the job option `existing: 'skip-identical'` and to recognise,
 * after a worker died between publishing a file and recording it, that the file's own result is already there.
 *
 * Self-contained on purpose: one HEAD per remote side on the engine's client pool and local reads, no part of the
 * transfer paths.
 */
import { lstat, open, stat } from 'node:fs/promises';
import type { ClientPool } from './connect/client-pool.js';
import { parseEndpoint, type Endpoint } from './endpoint.js';
import { contentLength, header, headRequest } from './http/http-requests.js';
import { digestFromHeaders, newChecksum, rehashPrefix, wantDigestValue } from './transfer-checksum.js';
import { redactUrl } from './transfer-errors.js';
import type { ChecksumAlg, ExpectedChecksum } from './types.js';

export interface ExistingDestinationQuery {
  source: string;
  destination: string;
  /** Declared size of the source, when the submission gave one. */
  size?: number;
  /** The submission's checksum (its algorithm is the one compared; adler32 when none). */
  checksum?: ExpectedChecksum;
  sourceHeaders?: Record<string, string>;
  destinationHeaders?: Record<string, string>;
}

export type ExistingDestination =
  | { kind: 'absent' }
  | { kind: 'identical'; size: number; alg: ChecksumAlg; value: string }
  | { kind: 'different'; reason: string }
  /** It exists but whether it is the same cannot be told (no checksum on one side, a HEAD refused…). */
  | { kind: 'unknown'; reason: string; modifiedAt?: number };

interface Facts {
  size?: number;
  digest?: string;
  modifiedAt?: number;
  /** Local file: its checksum can be computed when needed. */
  path?: string;
}

/** What a side of the transfer says about itself; undefined = the destination does not exist. */
async function facts(pool: ClientPool, ep: Endpoint, side: 'source' | 'destination', alg: ChecksumAlg,
  headers: Record<string, string> | undefined, signal: AbortSignal): Promise<Facts | undefined | string> {
  if (ep.kind === 'file') {
    try {
      const st = side === 'destination' ? await lstat(ep.path) : await stat(ep.path);
      if (!st.isFile()) return `the ${side} ${ep.path} is not a regular file`;
      return { size: st.size, modifiedAt: st.mtimeMs, path: ep.path };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return `cannot read the ${side}: ${(e as Error).message}`;
    }
  }
  const res = await headRequest(pool, ep, side, { ...headers, 'want-digest': wantDigestValue(alg) }, signal);
  if (res.status === 404 || res.status === 410) return undefined;
  if (res.status < 200 || res.status >= 300) return `the ${side} answered HEAD with HTTP ${res.status}`;
  const len = header(res.headers, 'content-length');
  const size = len === undefined ? undefined : contentLength(len);
  const modified = Date.parse(header(res.headers, 'last-modified') ?? '');
  return {
    ...(size !== undefined && Number.isFinite(size) ? { size } : {}),
    ...(Number.isFinite(modified) ? { modifiedAt: modified } : {}),
    digest: digestFromHeaders(res.headers, alg),
  };
}

/** The checksum of a whole local file, read in large blocks (native for adler32 / crc32c). */
export async function localFileChecksum(path: string, alg: ChecksumAlg): Promise<string> {
  const h = await open(path, 'r');
  try {
    const sum = newChecksum(alg);
    await rehashPrefix(sum, h, (await h.stat()).size);
    return sum.digestHex();
  } finally {
    await h.close();
  }
}

export async function inspectExistingDestination(pool: ClientPool, q: ExistingDestinationQuery, signal: AbortSignal): Promise<ExistingDestination> {
  const alg = q.checksum?.alg ?? 'adler32';
  const dstEp = parseEndpoint(q.destination, 'destination');
  const dst = await facts(pool, dstEp, 'destination', alg, q.destinationHeaders, signal);
  if (dst === undefined) return { kind: 'absent' };
  if (typeof dst === 'string') return { kind: 'different', reason: dst };
  const unknown = (reason: string): ExistingDestination => ({ kind: 'unknown', reason, ...(dst.modifiedAt !== undefined ? { modifiedAt: dst.modifiedAt } : {}) });

  // The source's size and checksum: the submission's word first, then the source's own.
  let size = q.size;
  let expected = q.checksum?.value;
  let srcFacts: Facts | undefined;
  if (size === undefined || expected === undefined) {
    const s = await facts(pool, parseEndpoint(q.source, 'source'), 'source', alg, q.sourceHeaders, signal);
    if (s === undefined) return unknown('the source does not exist (any more)');
    if (typeof s === 'string') return unknown(s);
    srcFacts = s;
    size ??= s.size;
    expected ??= s.digest;
  }
  if (dst.size !== undefined && size !== undefined && dst.size !== size) {
    return { kind: 'different', reason: `the destination holds ${dst.size} bytes, the source ${size}` };
  }
  if (dst.size === undefined || size === undefined) return unknown('the size of one side is not known');
  if (expected === undefined && srcFacts?.path) expected = await localFileChecksum(srcFacts.path, alg);
  if (expected === undefined) return unknown(`neither the submission nor the source gives a ${alg} checksum to compare with`);
  const actual = dst.digest ?? (dst.path ? await localFileChecksum(dst.path, alg) : undefined);
  if (actual === undefined) return unknown(`the destination ${redactUrl(q.destination)} announces no ${alg} checksum`);
  if (actual !== expected) return { kind: 'different', reason: `the destination's ${alg} is ${actual}, the source's ${expected}` };
  return { kind: 'identical', size, alg, value: actual };
}
