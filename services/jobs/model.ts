/**
 * The job/file model. A job is a list of files plus parameters; each file moves through
 * SUBMITTED → QUEUED → (STAGING) → ACTIVE → VERIFYING → FINISHED | FAILED | CANCELED.
 * Every transition is one Lua script in Redis (lua-scripts.ts), so no state is ever half-applied.
 */
import type { StageRecord } from '../processing/stage-recorder.js';
import type { ChecksumAlg, ExpectedChecksum, VerifyMode } from '../transfer/types.js';

export const EXISTING_POLICIES = ['fail', 'overwrite', 'skip-identical'] as const;
export type ExistingPolicy = (typeof EXISTING_POLICIES)[number];

export const FILE_STATES = ['SUBMITTED', 'QUEUED', 'STAGING', 'ACTIVE', 'VERIFYING', 'FINISHED', 'FAILED', 'CANCELED'] as const;
export type FileState = (typeof FILE_STATES)[number];
export const TERMINAL_FILE_STATES: readonly FileState[] = ['FINISHED', 'FAILED', 'CANCELED'];

export const JOB_STATES = ['ACTIVE', 'FINISHED', 'FINISHED_DIRTY', 'FAILED', 'CANCELED'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobParams {
  priority: number; // 1 (lowest) … 5 (highest)
  retries: number;
  retryDelaySec: number;
  verifyChecksum: VerifyMode;
  /** `existing === 'overwrite'`, kept for the engine's requests and for clients reading params. */
  overwrite: boolean;
  /**
   * A destination that already exists: fail (CARGO_ERR_DEST_EXISTS), overwrite it, or skip-identical (size and
   * checksum compared: the same content finishes the file without moving a byte, else it fails). Absent in jobs
   * stored before the option existed: then `overwrite` decides (overwrite or fail).
   */
  existing?: ExistingPolicy;
  streams?: number;
  connections?: number;
  bandwidthBytesPerSec?: number;
  /**
   * The job's processing stages as submitted (validated by services/processing: emission, reception, pack);
   * absent without any. Jobs stored before processing existed carry `[]`.
   */
  processing?: ProcessingParams;
  maxTimeInQueueSec?: number;
  /** Remote → remote: HTTP third-party copy (pull, push, auto = pull → push → streamed) or streamed (default). */
  copyMode?: 'auto' | 'pull' | 'push' | 'streamed';
  /** A body sent with a Content-Encoding nobody asked for: stored as received (keep, default) or decoded. */
  contentEncoding?: 'keep' | 'decode';
  /** The job's owner, copied here by the store so workers can apply per-owner rate limits. */
  owner?: string;
}

/** `params.processing` as submitted (services/processing/README.md); the library re-validates it where it runs. */
export interface ProcessingParams {
  emission?: Array<Record<string, unknown>>;
  reception?: Array<Record<string, unknown>>;
  pack?: Record<string, unknown>;
}

/** One file as submitted, after validation and normalisation. */
export interface FileSpec {
  source: string;
  destination: string;
  size?: number;
  checksum?: ExpectedChecksum;
  scitag?: number;
  activity?: string;
  metadata?: Record<string, unknown>;
  /** This file's own stages (emission, reception), replacing the job's for it. */
  processing?: ProcessingParams;
}

export interface NewJob {
  owner: string;
  params: JobParams;
  files: FileSpec[];
}

export interface AttemptRecord {
  start: number; // ms since epoch
  end?: number;
  bytes?: number;
  rateBytesPerSec?: number;
  remoteIp?: string;
  protocol?: string;
  streams?: number;
  worker?: string;
  resumedBytes?: number;
  errorCode?: string;
  errorMessage?: string;
  /** Content codings the source applied to the body (`gzip`), when it did. */
  contentEncoding?: string;
  /** What the user should know although the attempt succeeded (encoded bytes stored as received). */
  warnings?: string[];
  /** Why an attempt moved nothing and still succeeded: the destination already held the file. */
  note?: string;
  /** What the processing stages recorded for this attempt (checksum and unpack records). */
  processing?: StageRecord[];
  /** Where a processed file was published, when its stages renamed it (`NAME.zst`). */
  publishedAs?: string;
  /**
   * How the attempt ended: ok, error, requeued (admin stop / shutdown / worker lost), held (the destination was full:
   * the file waits for it without spending a try), canceled, crashed (the worker process running it crashed:
   * CARGO_ERR_WORKER_CRASHED; no try spent, but workers.crashLimit such crashes fail the file).
   */
  outcome?: 'ok' | 'error' | 'requeued' | 'held' | 'canceled' | 'crashed';
}

export interface FileView extends FileSpec {
  fileId: number;
  jobId: string;
  state: FileState;
  bytes: number;
  attempts: AttemptRecord[];
  checksumValue?: string;
  error?: { code: string; message: string };
  /** The warnings of the attempt that finished the file (see AttemptRecord.warnings). */
  warnings?: string[];
}

export type StateCounts = Record<FileState, number>;

export interface JobSummary {
  jobId: string;
  owner: string;
  state: JobState;
  priority: number;
  createdAt: string;
  finishedAt?: string;
  files: number;
  counts: StateCounts;
  bytesTotal?: number;
  bytesDone: number;
  rateBytesPerSec: number;
  etaSec?: number;
  params: JobParams;
}

export function linkOf(source: string, destination: string): string {
  return `${hostKey(source)}>${hostKey(destination)}`;
}

/** The two endpoints of a link, [source, destination]. */
export function linkEndpoints(link: string): [string, string] {
  const i = link.indexOf('>');
  return [link.slice(0, i), link.slice(i + 1)];
}

/** The endpoint a URL belongs to, as used for per-endpoint limits and admin scopes: `host:port` or `local`. */
export function hostKey(url: string): string {
  if (url.startsWith('file:')) return 'local';
  const u = new URL(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.hostname}:${port}`;
}

export type { ChecksumAlg };
