/**
 * Errors of the authorisation service. A token that cannot be trusted is 401 (the gateway adds
 * `WWW-Authenticate: Bearer error="invalid_token"`); a caller without the rights asked for is 403; an issuer whose
 * keys cannot be fetched is 503 (the token may be fine, we cannot tell yet).
 */
import { CargoError } from '../../errors/cargo-error.js';

export class InvalidTokenError extends CargoError {
  constructor(message: string) {
    super('CARGO_ERR_INVALID_TOKEN', message, { httpStatus: 401 });
    this.name = 'InvalidTokenError';
  }
}

export class UnauthenticatedError extends CargoError {
  constructor(message: string) {
    super('CARGO_ERR_UNAUTHENTICATED', message, { httpStatus: 401 });
    this.name = 'UnauthenticatedError';
  }
}

export class ForbiddenError extends CargoError {
  constructor(message: string, field?: string) {
    super('CARGO_ERR_FORBIDDEN', message, { httpStatus: 403, field });
    this.name = 'ForbiddenError';
  }
}

export class IssuerUnavailableError extends CargoError {
  constructor(message: string, cause?: unknown) {
    super('CARGO_ERR_ISSUER_UNAVAILABLE', message, { httpStatus: 503, retryable: true, cause });
    this.name = 'IssuerUnavailableError';
  }
}

export class AddressRefusedError extends CargoError {
  constructor(message: string, field?: string) {
    super('CARGO_ERR_ADDRESS_REFUSED', message, { httpStatus: 403, field });
    this.name = 'AddressRefusedError';
  }
}

export class BadShareRequestError extends CargoError {
  constructor(message: string, field?: string) {
    super('CARGO_ERR_BAD_SHARE_REQUEST', message, { httpStatus: 400, field });
    this.name = 'BadShareRequestError';
  }
}

export class ShareExhaustedError extends CargoError {
  constructor(message: string) {
    super('CARGO_ERR_SHARE_EXHAUSTED', message, { httpStatus: 403 });
    this.name = 'ShareExhaustedError';
  }
}

export class ShareNotFoundError extends CargoError {
  constructor(message: string) {
    super('CARGO_ERR_SHARE_NOT_FOUND', message, { httpStatus: 404 });
    this.name = 'ShareNotFoundError';
  }
}
