/**
 * The one way a job enters the port, for POST /api/v1/jobs and for export runs alike: the owner's queue bound,
 * normalisation (services/jobs/submission.ts), the per-file rights and address checks of the principal
 * (job-authorisation.ts), then the store.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { CargoError } from '../errors/cargo-error.js';
import type { Principal } from '../services/auth/principal.js';
import { normaliseSubmission } from '../services/jobs/submission.js';
import type { RawSubmission } from '../services/jobs/submission-schema.js';
import type { GatewayContext } from './context.js';

/**
 * `request`: the submitter's own HTTP request, when there is one (POST /jobs; an export run has none): a token
 * exchange configured in auth.outbound swaps its bearer token for sealed grants stored before the job exists.
 */
export async function submitJob(
  ctx: Pick<GatewayContext, 'cfg' | 'queries' | 'store' | 'submissions'> & Partial<Pick<GatewayContext, 'exchanges' | 'processing'>>,
  principal: Principal,
  body: RawSubmission,
  request?: FastifyRequest,
): Promise<{ jobId: string; files: number }> {
  const { cfg, queries, store } = ctx;
  // The owner is the principal's (one lookup, gateway/auth.ts); the bound counts its unfinished files.
  const owner = principal.owner;
  const maxQueued = cfg.jobs.maxQueuedFilesPerOwner;
  if (maxQueued > 0) {
    // Checked, not reserved: two submissions racing may together pass the bound by one submission's files.
    const queued = await queries.unfinishedFilesOf(owner);
    if (queued + body.files.length > maxQueued) {
      throw new CargoError(
        'CARGO_ERR_OWNER_QUEUE_FULL',
        `owner ${owner} has ${queued} files not yet finished; ${body.files.length} more would exceed jobs.maxQueuedFilesPerOwner (${maxQueued})`,
        { field: 'files', limit: { key: 'jobs.maxQueuedFilesPerOwner', max: maxQueued } },
      );
    }
  }
  const job = normaliseSubmission(body, owner, {
    priority: cfg.jobs.defaultPriority, retries: cfg.jobs.defaultRetries, retryDelaySec: cfg.jobs.defaultRetryDelaySec, maxFilesPerJob: cfg.jobs.maxFilesPerJob,
    ...(ctx.processing ? { processing: ctx.processing } : {}),
  });
  await ctx.submissions.check(principal, job);
  const storeGrants = request ? await ctx.exchanges?.prepare(request, job) : undefined;
  const newId = randomUUID();
  await storeGrants?.(newId, cfg.jobs.retentionSec);
  const { jobId } = await store.createJob(job, { fileSec: cfg.jobs.fileRetentionSec, jobSec: cfg.jobs.retentionSec }, newId);
  return { jobId, files: job.files.length };
}
