/** Errors of the job service, each with a stable code and the HTTP status the gateway answers with. */
import { CargoError, type ErrorCode } from '../../errors/cargo-error.js';

export class InvalidSubmissionError extends CargoError {
  constructor(code: ErrorCode, message: string, field: string) {
    super(code, message, { httpStatus: 400, field });
    this.name = 'InvalidSubmissionError';
  }
}

export class JobNotFoundError extends CargoError {
  constructor(jobId: string) {
    super('CARGO_ERR_JOB_NOT_FOUND', `no job with id ${jobId}`, { httpStatus: 404, field: 'id' });
    this.name = 'JobNotFoundError';
  }
}

export class FileNotFoundInJobError extends CargoError {
  constructor(jobId: string, fileId: string) {
    super('CARGO_ERR_FILE_NOT_FOUND', `job ${jobId} has no file ${fileId}`, { httpStatus: 404, field: 'fileId' });
    this.name = 'FileNotFoundInJobError';
  }
}

export class InvalidAdminRequestError extends CargoError {
  constructor(message: string, field: string) {
    super('CARGO_ERR_BAD_ADMIN_REQUEST', message, { httpStatus: 400, field });
    this.name = 'InvalidAdminRequestError';
  }
}
