import { errorCatalogue, type ErrorCode } from './catalogue.js';

export type { ErrorCode } from './catalogue.js';

/**
 * The one error base of every layer (below config/ and services/, which both use it). Every domain error carries a stable
 * `CARGO_ERR_*` code (clients and tests match on it, never on the message) and, where the gateway
 * should map it to HTTP, a status. Each service module declares its own subclasses next to the
 * behaviour, but always through this base, so the gateway's problem+json mapper needs no table.
 */
export class CargoError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  /** Name of the offending field or header, when there is one (goes into the problem body). */
  readonly field?: string;
  /** Whether retrying the same operation may succeed (network, 5xx) or not (4xx, auth, bad input). */
  readonly retryable: boolean;
  /** The configured bound the request ran into (a 413 / 429 names its setting and value in the problem). */
  readonly limit?: { key: string; max: number };

  constructor(
    code: ErrorCode,
    message: string,
    opts: { httpStatus?: number; field?: string; retryable?: boolean; cause?: unknown; limit?: { key: string; max: number } } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CargoError';
    this.code = code;
    const spec = errorCatalogue[code];
    this.httpStatus = opts.httpStatus ?? spec.status;
    this.field = opts.field;
    this.retryable = opts.retryable ?? spec.retryable;
    if (opts.limit) this.limit = opts.limit;
  }
}

export function isCargoError(e: unknown): e is CargoError {
  return e instanceof CargoError;
}
