/**
 * Turns a schema-valid submission into a NewJob: URL and scheme checks, checksum syntax, defaults, and
 * per-job sanity (no two files writing the same destination). Throws InvalidSubmissionError naming the
 * field (`files[12].destination`) so clients can fix exactly what is wrong.
 */
import { parseChecksumSpec } from '../checksum/checksum-spec.js';
import { CargoError } from '../../errors/cargo-error.js';
import { InvalidSubmissionError } from './job-errors.js';
import type { FileSpec, JobParams, NewJob } from './model.js';
import { SUPPORTED_SCHEMES, type RawSubmission } from './submission-schema.js';
import { marking } from '../marking/marking-service.js';
import { tagFromNames } from '../marking/flow-resolution.js';
import { flowIdOf } from '../marking/flow-id.js';
import { chainOf, noProcessing, type FileProcessing } from './file-processing.js';

export interface SubmissionDefaults {
  priority: number;
  retries: number;
  retryDelaySec: number;
  maxFilesPerJob: number;
  /** The port's processing library (stages, hooks, operator rules); without it any processing is refused. */
  processing?: FileProcessing;
}

const DOT_SEGMENT = /(^|\/)(\.|%2e){2}(\/|$)/i;

/** Checks one endpoint URL; returns its normalised href. */
export function checkEndpointUrl(raw: string, field: string): string {
  if (raw.includes('\0')) throw new InvalidSubmissionError('CARGO_ERR_BAD_URL', `${field} contains a NUL byte`, field);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new InvalidSubmissionError('CARGO_ERR_BAD_URL', `${field} is not a valid absolute URL: ${JSON.stringify(raw.slice(0, 200))}`, field);
  }
  if (!(SUPPORTED_SCHEMES as readonly string[]).includes(u.protocol)) {
    throw new InvalidSubmissionError(
      'CARGO_ERR_UNSUPPORTED_SCHEME',
      `${field} uses the unsupported scheme "${u.protocol.replace(/:$/, '')}" (supported: https, http, file)`,
      field,
    );
  }
  // Dot segments would be resolved away by URL parsing; refusing them keeps what runs equal to what was asked.
  const rawPath = raw.replace(/^[a-z]+:\/\/[^/]*/i, '');
  if (DOT_SEGMENT.test(rawPath)) throw new InvalidSubmissionError('CARGO_ERR_BAD_URL', `${field} contains a ".." path segment`, field);
  if (u.protocol === 'file:') {
    if (u.hostname !== '' && u.hostname !== 'localhost') {
      throw new InvalidSubmissionError('CARGO_ERR_BAD_URL', `${field}: file:// URLs must be local (file:///path)`, field);
    }
    if (u.pathname === '/' || u.pathname.endsWith('/')) {
      throw new InvalidSubmissionError('CARGO_ERR_BAD_URL', `${field}: a file:// URL must name a file, not a directory`, field);
    }
    if (u.search || u.hash) throw new InvalidSubmissionError('CARGO_ERR_BAD_URL', `${field}: file:// URLs take no query or fragment`, field);
  } else {
    if (!u.hostname) throw new InvalidSubmissionError('CARGO_ERR_BAD_URL', `${field} has no host`, field);
    if (u.username || u.password) {
      throw new InvalidSubmissionError('CARGO_ERR_BAD_URL', `${field} carries credentials in the URL; use tokens instead`, field);
    }
  }
  return u.href;
}

export function normaliseSubmission(raw: RawSubmission, owner: string, defaults: SubmissionDefaults): NewJob {
  if (raw.files.length > defaults.maxFilesPerJob) {
    throw new CargoError(
      'CARGO_ERR_TOO_MANY_FILES',
      `a job may hold at most ${defaults.maxFilesPerJob} files (jobs.maxFilesPerJob; got ${raw.files.length}); split the submission`,
      { field: 'files', limit: { key: 'jobs.maxFilesPerJob', max: defaults.maxFilesPerJob } },
    );
  }
  const p = raw.params ?? {};
  const wantsProcessing = !noProcessing(p.processing) || raw.files.some((f) => !noProcessing(f.processing));
  if (wantsProcessing && !defaults.processing) {
    throw new InvalidSubmissionError(
      'CARGO_ERR_UNSUPPORTED_PROCESSING',
      'processing stages are not available here; submit without params.processing',
      noProcessing(p.processing) ? 'files[].processing' : 'params.processing',
    );
  }
  // The library checks every stage's options and names the field (CARGO_ERR_BAD_PROCESSING / UNKNOWN_STAGE).
  const jobPlan = defaults.processing && !noProcessing(p.processing) ? defaults.processing.parseJobSpec(p.processing, 'params.processing') : undefined;
  // A destination that exists: `existing` says what to do; `overwrite: true` is the older spelling of 'overwrite'.
  // Default skip-identical: a resubmitted job finds its files already there and ends clean, nothing is replaced.
  if (p.overwrite === true && p.existing !== undefined && p.existing !== 'overwrite') {
    throw new InvalidSubmissionError('CARGO_ERR_VALIDATION', `params.overwrite true contradicts params.existing "${p.existing}"; give one of them`, 'params.existing');
  }
  const existing = p.existing ?? (p.overwrite ? 'overwrite' : 'skip-identical');
  const params: JobParams = {
    priority: p.priority ?? defaults.priority,
    retries: p.retries ?? defaults.retries,
    retryDelaySec: p.retryDelaySec ?? defaults.retryDelaySec,
    // As FTS: no verification against the endpoints unless asked (plain web servers publish no Digest);
    // a checksum given with a file is verified whatever the mode.
    verifyChecksum: p.verifyChecksum ?? 'none',
    overwrite: existing === 'overwrite',
    existing,
    streams: p.streams,
    connections: p.connections,
    bandwidthBytesPerSec: p.bandwidthBytesPerSec,
    ...(!noProcessing(p.processing) ? { processing: p.processing } : {}),
    maxTimeInQueueSec: p.maxTimeInQueueSec,
    ...(p.copyMode !== undefined ? { copyMode: p.copyMode } : {}),
    ...(p.contentEncoding !== undefined ? { contentEncoding: p.contentEncoding } : {}),
  };
  const seenDestinations = new Set<string>();
  const files: FileSpec[] = new Array(raw.files.length);
  for (let i = 0; i < raw.files.length; i++) {
    const f = raw.files[i]!;
    const source = checkEndpointUrl(f.source, `files[${i}].source`);
    const destination = checkEndpointUrl(f.destination, `files[${i}].destination`);
    if (source === destination) {
      throw new InvalidSubmissionError('CARGO_ERR_SAME_ENDPOINTS', `files[${i}]: source and destination are the same URL`, `files[${i}].destination`);
    }
    if (seenDestinations.has(destination)) {
      throw new InvalidSubmissionError('CARGO_ERR_DUPLICATE_DESTINATION', `files[${i}].destination is also the destination of an earlier file in this job`, `files[${i}].destination`);
    }
    seenDestinations.add(destination);
    const spec: FileSpec = { source, destination };
    if (f.size !== undefined) spec.size = f.size;
    if (f.checksum !== undefined) {
      try {
        spec.checksum = parseChecksumSpec(f.checksum, `files[${i}].checksum`);
      } catch (e) {
        if (e instanceof CargoError) throw new InvalidSubmissionError(e.code, e.message, `files[${i}].checksum`);
        throw e;
      }
    }
    if (f.scitag !== undefined) spec.scitag = f.scitag;
    else if (p.experiment !== undefined) {
      // Names become the flow id here, once: a name the registry does not know is the submitter's error.
      try {
        spec.scitag = flowIdOf(tagFromNames(marking().registry, p.experiment, f.activity, 'params.experiment'));
      } catch (e) {
        if (e instanceof CargoError) throw new InvalidSubmissionError(e.code, e.message, f.activity !== undefined && e.message.startsWith('activity') ? `files[${i}].activity` : 'params.experiment');
        throw e;
      }
    }
    if (f.activity !== undefined) spec.activity = f.activity;
    if (f.metadata !== undefined) spec.metadata = f.metadata;
    if (defaults.processing && (jobPlan || !noProcessing(f.processing))) {
      const own = !noProcessing(f.processing);
      const field = own ? `files[${i}].processing` : 'params.processing';
      const plan = own ? defaults.processing.parseJobSpec(f.processing, field) : jobPlan!;
      if (own) spec.processing = f.processing;
      // Resolving refuses what cannot run for this file (untar towards a remote destination), with the operator's
      // rules for its endpoints added as the worker will add them.
      if (plan.emission.length > 0 || plan.reception.length > 0) {
        try {
          chainOf(defaults.processing, plan, source, destination);
        } catch (e) {
          if (e instanceof CargoError) throw new InvalidSubmissionError(e.code, `files[${i}]: ${e.message}`, e.field ?? field);
          throw e;
        }
      }
    }
    files[i] = spec;
  }
  return { owner, params, files };
}
