import { CargoError } from '../errors/cargo-error.js';

/** A command line the CLI cannot act on; the CLI prints it with a hint and exits with status 2. */
export class UsageError extends CargoError {
  constructor(message: string, field?: string) {
    super('CARGO_ERR_USAGE', message, { httpStatus: 400, field });
    this.name = 'UsageError';
  }
}
