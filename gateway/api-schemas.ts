/**
 * JSON schemas of the REST API's answers, for the OpenAPI document (docs-route.ts) and Fastify's serialiser.
 * Every object keeps `additionalProperties: true`: the schema documents the fields clients rely on, and a field
 * the services add later still reaches clients instead of being silently dropped by the serialiser. `required` lists
 * only what every answer has (the serialiser refuses an answer without it).
 */
import { FILE_STATES, JOB_STATES } from '../services/jobs/model.js';

const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: true, required, properties });
const str = { type: 'string' } as const;
const num = { type: 'number' } as const;
const int = { type: 'integer' } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;

export const jobSummarySchema = obj({
  jobId: str, owner: str, state: { type: 'string', enum: [...JOB_STATES] }, priority: int, createdAt: { type: 'string', format: 'date-time' },
  finishedAt: { type: 'string', format: 'date-time' }, files: int,
  counts: { type: 'object', description: 'files per state', additionalProperties: int, properties: Object.fromEntries(FILE_STATES.map((s) => [s, int])) },
  bytesTotal: { type: 'number', description: 'absent when a file was submitted without its size' },
  bytesDone: num, rateBytesPerSec: num, etaSec: { type: 'number', description: 'absent without a total size or a rate' },
  params: { ...anyObject, description: 'the job parameters as normalised at submission' },
}, ['jobId', 'state']);

export const jobPageSchema = obj({ jobs: { type: 'array', items: jobSummarySchema }, nextCursor: { type: 'string', description: 'pass as cursor for the next page' } }, ['jobs']);

const attemptSchema = obj({
  start: { type: 'number', description: 'ms since the epoch' }, end: num, bytes: num, rateBytesPerSec: num, remoteIp: str, protocol: str, streams: int,
  worker: str, resumedBytes: num, errorCode: str, errorMessage: str, contentEncoding: str, warnings: { type: 'array', items: str }, note: str,
  processing: { type: 'array', description: 'what processing stages recorded: {kind: checksum, stage, side, label, bytes, checksums} or {kind: unpack, …}', items: anyObject },
  publishedAs: { type: 'string', description: 'where a processed file was published when its stages renamed it' },
  outcome: { type: 'string', enum: ['ok', 'error', 'requeued', 'held', 'canceled'] },
});

export const fileViewSchema = obj({
  fileId: int, jobId: str, state: { type: 'string', enum: [...FILE_STATES] }, source: str, destination: str, size: num, bytes: num,
  checksum: obj({ alg: str, value: str }), checksumValue: str, scitag: int, activity: str, metadata: anyObject,
  processing: { ...anyObject, description: 'the file\'s own processing stages, when it was submitted with them' },
  attempts: { type: 'array', items: attemptSchema },
  error: obj({ code: str, message: str }, ['code', 'message']),
  warnings: { type: 'array', items: str },
}, ['fileId', 'state']);

export const filePageSchema = obj({ files: { type: 'array', items: fileViewSchema }, nextCursor: { type: 'integer', description: 'last fileId of this page' } }, ['files']);

export const scopeRecordSchema = obj({ scope: str, target: str, state: str, since: num, lastOp: str });

export const portStatusSchema = obj({
  scopes: { type: 'array', items: obj({ ...scopeRecordSchema.properties, effectiveState: { type: 'string', description: 'drained when a draining scope has nothing in flight' } }) },
  workers: { type: 'array', items: obj({ id: str, pool: str, host: str, pid: int, state: str, active: int, concurrency: int, bytesPerSec: num, lastHeartbeatMsAgo: num, alive: { type: 'boolean' } }) },
  queues: obj({ waitingFiles: int, queued: int, runQueueWaiting: int, runQueueDelayed: int, runQueueActive: int }),
  transfers: obj({ active: int, rateBytesPerSec: num, links: { type: 'object', description: 'bytes per second per link', additionalProperties: num } }),
  jobs: obj({ active: int }),
  slots: obj({ links: { type: 'object', additionalProperties: int }, endpoints: { type: 'object', additionalProperties: int } }),
  unavailableEndpoints: {
    type: 'array',
    items: obj({ endpoint: str, state: { type: 'string', enum: ['open', 'half-open', 'given-up'] }, cause: { type: 'string', enum: ['unreachable', 'full'] }, detail: str, retryAt: str, holdsFilesUntil: str, cooldownMs: num, failuresInARow: int }),
  },
});

export const healthSchema = obj({ status: str });

/** RFC 7807 problem details, as every error answer carries them (problem.ts). */
export const problemSchema = obj({ type: str, title: str, status: int, detail: str, code: str, field: str });
export { anyObject };

/** An export run's report (services/exports/export-store.ts RunReport). */
export const exportRunSchema = obj({
  runId: str, export: str, owner: str,
  trigger: { type: 'string', enum: ['schedule', 'catch-up', 'manual'] },
  state: { type: 'string', enum: ['running', 'succeeded', 'failed', 'skipped'] },
  scheduledFor: { type: 'string', format: 'date-time' }, missedTicks: { type: 'integer', description: 'ticks that came due while no port ran, caught up by this one run' },
  startedAt: { type: 'string', format: 'date-time' }, finishedAt: { type: 'string', format: 'date-time' }, reason: str, note: str,
  files: obj({ selected: int, alreadyExported: int, submitted: int, finished: int, failed: int, canceled: int }),
  bytes: num,
  jobs: { type: 'array', items: obj({ destination: str, jobId: str, files: int, state: str }) },
  failures: { type: 'array', items: obj({ destination: str, path: str, code: str, message: str }) },
  moreFailures: int, durationSec: num, rateBytesPerSec: num,
  deadline: { type: 'string', format: 'date-time' }, deadlineMissed: { type: 'boolean' },
}, ['runId', 'export', 'state']);

/** An export as stored, with its next tick and last run. */
export const exportViewSchema = obj({
  definition: { ...anyObject, description: 'the definition as submitted (see the request schema of POST /api/v1/exports)' },
  owner: str, createdAt: { type: 'string', format: 'date-time' }, updatedAt: { type: 'string', format: 'date-time' }, paused: { type: 'boolean' },
  nextRunAt: { type: 'string', format: 'date-time' }, lastRun: exportRunSchema,
}, ['definition', 'owner', 'paused']);
