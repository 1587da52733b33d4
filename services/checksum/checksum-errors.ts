import { CargoError } from '../../errors/cargo-error.js';

/**
 * Bad checksum input: a user's `alg:value`, or a Digest / Repr-Digest / Want-* header we cannot use.
 * Always 400 (it is the caller's input) and never retryable; `field` names the offending input.
 */
export class BadChecksumError extends CargoError {
  constructor(message: string, field: string, cause?: unknown) {
    super('CARGO_ERR_BAD_CHECKSUM', message, { httpStatus: 400, field, retryable: false, cause });
    this.name = 'BadChecksumError';
  }
}

/**
 * A checksum structure used wrongly by the engine (ranges overlapping, digest asked before all
 * ranges are in, update after digest): a programming error, so 500.
 */
export class ChecksumStateError extends CargoError {
  constructor(message: string) {
    super('CARGO_ERR_CHECKSUM_STATE', message, { httpStatus: 500, retryable: false });
    this.name = 'ChecksumStateError';
  }
}
