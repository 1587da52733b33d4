/**
 * Errors of the processing stages. Every one carries a stable code from errors/catalogue.ts:
 * - CARGO_ERR_BAD_PROCESSING: a job's `params.processing` or an operator's processing config is invalid (the
 *   field is named: `params.processing.emission[0].level`);
 * - CARGO_ERR_UNKNOWN_STAGE: a stage or hook name nothing is registered under;
 * - CARGO_ERR_UNSAFE_ARCHIVE: a tar archive refused while unpacking (an entry escaping the target, a link
 *   pointing outside, a device or FIFO, an oversized header or member, a bad header checksum, a truncation);
 * - CARGO_ERR_HOOK_FAILED: a site hook exited non-zero, overran its time limit or wrote nothing usable; the
 *   message ends with the tail of its stderr;
 * - CARGO_ERR_STAGE_FAILED: any other failure of the bytes inside a stage (corrupt zstd input, a member whose
 *   checksum does not match).
 */
import { CargoError } from '../../errors/cargo-error.js';

export type ProcessingErrorCode =
  | 'CARGO_ERR_BAD_PROCESSING'
  | 'CARGO_ERR_UNKNOWN_STAGE'
  | 'CARGO_ERR_UNSAFE_ARCHIVE'
  | 'CARGO_ERR_HOOK_FAILED'
  | 'CARGO_ERR_STAGE_FAILED'
  | 'CARGO_ERR_CHECKSUM_MISMATCH';

export class ProcessingError extends CargoError {
  constructor(code: ProcessingErrorCode, message: string, opts: { field?: string; retryable?: boolean; cause?: unknown } = {}) {
    // STAGE_FAILED and CHECKSUM_MISMATCH belong to the transfer vocabulary; their status here is the
    // engine's (422: the bytes are wrong, sending them again gives the same result).
    const own = code === 'CARGO_ERR_STAGE_FAILED' || code === 'CARGO_ERR_CHECKSUM_MISMATCH' ? { httpStatus: 422, retryable: false } : {};
    super(code, message, { ...own, ...opts });
    this.name = 'ProcessingError';
  }
}

/** A bad job or config value, naming the field. */
export function badProcessing(field: string, message: string): ProcessingError {
  return new ProcessingError('CARGO_ERR_BAD_PROCESSING', `${field}: ${message}`, { field });
}

/** An archive refused while unpacking; `entry` is the member name as the archive gives it. */
export function unsafeArchive(message: string, entry?: string): ProcessingError {
  return new ProcessingError('CARGO_ERR_UNSAFE_ARCHIVE', entry === undefined ? message : `${JSON.stringify(entry)}: ${message}`, { field: 'body' });
}
