/**
 * A destination that cannot take more bytes — its file system full (ENOSPC), the owner's quota spent (EDQUOT),
 * mounted read-only (EROFS), or a remote storage answering 507 Insufficient Storage — is a condition of the
 * destination, not of the file: the scheduler pauses new transfers to it (services/jobs, the endpoint breaker)
 * instead of spending every file's retries against it. A file larger than the whole local file system is the
 * exception: no amount of waiting makes it fit, so that one is the file's own failure.
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CargoError } from '../../errors/cargo-error.js';
import { hasCauseCode, TransferError, TransferErrorCode } from './transfer-errors.js';

export type DestinationFullCause = 'ENOSPC' | 'EDQUOT' | 'EROFS' | 'HTTP 507';

const LOCAL_FULL_CODES: readonly DestinationFullCause[] = ['ENOSPC', 'EDQUOT', 'EROFS'];

/** Why `err` says the destination cannot take more bytes, or undefined when it says nothing of the kind. */
export function destinationFullCause(err: unknown): DestinationFullCause | undefined {
  if (!(err instanceof CargoError)) return undefined;
  if (err.code === TransferErrorCode.localIo) {
    for (const code of LOCAL_FULL_CODES) if (hasCauseCode(err, (c) => c === code)) return code;
    return undefined;
  }
  if (err instanceof TransferError && err.field === 'destination' && err.remoteStatus === 507) return 'HTTP 507';
  return undefined;
}

/**
 * Total size in bytes of the local file system that holds `path` (found from its nearest existing ancestor), or
 * undefined when it cannot be told.
 */
export async function localVolumeBytes(path: string): Promise<number | undefined> {
  for (let p = path, i = 0; i < 64; p = dirname(p), i++) {
    try {
      const s = await statfs(p);
      return s.blocks * s.bsize;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') return undefined;
      if (p === dirname(p)) return undefined;
    }
  }
  return undefined;
}

/** The error of a file that can never fit: larger than the whole file system it is written to. */
export function largerThanVolumeError(path: string, size: number, volumeBytes: number, cause: unknown): TransferError {
  return new TransferError(TransferErrorCode.localIo,
    `local file ${path}: ${size} bytes can never fit: the whole file system holding it is ${volumeBytes} bytes (ENOSPC)`, {
      httpStatus: 500, retryable: false, cause,
    });
}
