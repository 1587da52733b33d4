/**
 * The engine's view of checksums: start a streaming checksummer, re-feed a resumed prefix from the local
 * part file, read a remote endpoint's announced digest (RFC 3230 Digest / RFC 9530 Repr-Digest) and build the
 * mismatch error. The algorithms and header codecs themselves live in services/checksum.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { createChecksummer, type Checksummer } from '../checksum/checksummer.js';
import * as digestHeader from '../checksum/digest-header.js';
import type { ChecksumAlg } from './types.js';
import { TransferError, TransferErrorCode } from './transfer-errors.js';

export type RunningChecksum = Checksummer;

export function newChecksum(alg: ChecksumAlg): RunningChecksum {
  return createChecksummer(alg);
}

/** Re-feeds bytes [0, length) of a local part file (resume): a local read, never the remote source again. */
export async function rehashPrefix(sum: RunningChecksum, handle: FileHandle, length: number): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(4 * 1024 * 1024, Math.max(1, length)));
  let pos = 0;
  while (pos < length) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, length - pos), pos);
    if (bytesRead === 0) throw new TransferError(TransferErrorCode.localIo, `part file shorter than its resume offset ${length}`);
    sum.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

/** `Want-Digest` value asking for `alg` (RFC 3230 names). */
export function wantDigestValue(alg: ChecksumAlg): string {
  return digestHeader.wantDigestToken(alg);
}

/** The canonical hex value of `alg` announced in `Digest` or `Repr-Digest` response headers, if any. */
export function digestFromHeaders(headers: Dispatcher.ResponseData['headers'], alg: ChecksumAlg): string | undefined {
  const get = (n: string): string | undefined => {
    const v = headers[n];
    return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v;
  };
  return digestHeader.checksumFromResponseHeaders(alg, get('digest'), get('repr-digest'));
}

/** `Digest` request header announcing a value we expect (RFC 3230 encoding). */
export function digestHeaderFor(alg: ChecksumAlg, hex: string): string {
  return digestHeader.formatDigest({ [alg]: hex });
}

export function checksumMismatch(alg: ChecksumAlg, computed: string, expected: string, against: string): TransferError {
  return new TransferError(TransferErrorCode.checksumMismatch,
    `${alg} mismatch: transferred bytes have ${computed}, ${against} says ${expected}`,
    { httpStatus: 502, field: against === 'checksum' ? 'checksum' : against, retryable: true });
}
