/** Errors of the export service, each with a stable code (errors/catalogue.ts). */
import { CargoError } from '../../errors/cargo-error.js';

export class InvalidExportError extends CargoError {
  constructor(message: string, field: string) {
    super('CARGO_ERR_INVALID_EXPORT', message, { field });
    this.name = 'InvalidExportError';
  }
}

export class ExportNotFoundError extends CargoError {
  constructor(name: string) {
    super('CARGO_ERR_EXPORT_NOT_FOUND', `no export named ${JSON.stringify(name)}`, { field: 'name' });
    this.name = 'ExportNotFoundError';
  }
}

export class ExportExistsError extends CargoError {
  constructor(name: string) {
    super('CARGO_ERR_EXPORT_EXISTS', `an export named ${JSON.stringify(name)} exists already; replace it with PUT /api/v1/exports/${name}`, { field: 'name' });
    this.name = 'ExportExistsError';
  }
}

export class ExportRunError extends CargoError {
  constructor(message: string, cause?: unknown) {
    super('CARGO_ERR_EXPORT_RUN_FAILED', message, { cause });
    this.name = 'ExportRunError';
  }
}
