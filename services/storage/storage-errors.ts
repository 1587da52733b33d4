/**
 * Storage-layer errors. Every failure a client can cause maps to a stable CARGO_ERR_* code and an HTTP
 * status, so the gateway never turns a bad path or a missing file into a 500.
 */
import { CargoError, type ErrorCode } from '../../errors/cargo-error.js';

type Opts = { field?: string; cause?: unknown };

export class StorageError extends CargoError {
  constructor(code: ErrorCode, message: string, httpStatus: number, opts: Opts & { retryable?: boolean } = {}) {
    super(code, message, { httpStatus, field: opts.field, cause: opts.cause, retryable: opts.retryable ?? false });
    this.name = 'StorageError';
  }
}

export const badPath = (why: string, opts: Opts = {}) =>
  new StorageError('CARGO_ERR_BAD_PATH', `invalid path: ${why}`, 400, { field: 'path', ...opts });
export const notFound = (path: string) =>
  new StorageError('CARGO_ERR_NOT_FOUND', `no such file or collection: ${path}`, 404, { field: 'path' });
export const forbidden = (why: string) =>
  new StorageError('CARGO_ERR_FORBIDDEN', why, 403, { field: 'path' });
export const alreadyExists = (path: string) =>
  new StorageError('CARGO_ERR_EXISTS', `already exists: ${path}`, 412, { field: 'path' });
/** WebDAV: MKCOL/PUT whose parent collection is missing, or a file where a collection is needed. */
export const conflict = (why: string) => new StorageError('CARGO_ERR_CONFLICT', why, 409, { field: 'path' });
export const notACollection = (path: string) =>
  new StorageError('CARGO_ERR_NOT_A_COLLECTION', `not a collection: ${path}`, 409, { field: 'path' });
export const isACollection = (path: string) =>
  new StorageError('CARGO_ERR_IS_A_COLLECTION', `is a collection: ${path}`, 409, { field: 'path' });
export const notEmpty = (path: string) =>
  new StorageError('CARGO_ERR_NOT_EMPTY', `collection not empty: ${path}`, 409, { field: 'path' });
/** A nearline file whose bytes are only on (emulated) tape: the client must stage it first. */
export const nearline = (path: string) =>
  new StorageError('CARGO_ERR_NEARLINE', `file is nearline (on tape only), stage it first: ${path}`, 409, {
    field: 'path',
  });
export const insufficientStorage = (why: string) =>
  new StorageError('CARGO_ERR_NO_SPACE', why, 507, { retryable: true });
export const badRange = (why: string) => new StorageError('CARGO_ERR_BAD_RANGE', why, 416, { field: 'Range' });

/** Map a Node fs error (ENOENT, EEXIST…) met while acting on `path` to a StorageError; unknown ones stay 500. */
export function fromFsError(e: unknown, path: string): Error {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return notFound(path);
    case 'EEXIST':
      return alreadyExists(path);
    case 'ENOTDIR':
      return notACollection(path);
    case 'EISDIR':
      return isACollection(path);
    case 'ENOTEMPTY':
      return notEmpty(path);
    case 'EACCES':
    case 'EPERM':
      return forbidden(`permission denied by the file system: ${path}`);
    case 'ENAMETOOLONG':
      return badPath('name too long');
    case 'ELOOP':
      return badPath('too many symbolic links');
    case 'ENOSPC':
    case 'EDQUOT':
      return insufficientStorage('no space left on the storage area');
    default:
      // An fs error of another kind keeps its errno code for the caller (the engine's classifyError, the gateway's 500).
      return e instanceof Error ? e : new StorageError('CARGO_ERR_INTERNAL', String(e), 500);
  }
}
