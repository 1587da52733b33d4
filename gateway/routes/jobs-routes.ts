/** REST: submit, list, inspect and cancel jobs and files (`/api/v1/jobs…`). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../../services/auth/auth-errors.js';
import { CargoError } from '../../errors/cargo-error.js';
import { FILE_STATES, JOB_STATES, type FileState, type JobState } from '../../services/jobs/model.js';
import { submissionSchema, type RawSubmission } from '../../services/jobs/submission-schema.js';
import { fileViewSchema, filePageSchema, jobPageSchema, jobSummarySchema } from '../api-schemas.js';
import { POLLING_LOG_LEVEL, type GatewayContext } from '../context.js';
import { submitJob } from '../job-submission.js';

const idParam = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f-]{36}$' } } } as const;
const fileParams = {
  type: 'object', additionalProperties: false, required: ['id', 'fileId'],
  properties: { id: idParam.properties.id, fileId: { type: 'string', pattern: '^[0-9]{1,9}$' } },
} as const;
const limitQ = { type: 'string', pattern: '^[0-9]{1,5}$' } as const;

export async function jobsRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const { store, queries } = ctx;
  // The API speaks JSON only: any other body type is 415, not a string that fails validation later.
  app.removeContentTypeParser(['text/plain']);

  /** The job, if the caller owns it or is an administrator: 404 if it does not exist, 403 if it is someone else's. */
  const ownJob = async (req: FastifyRequest, id: string) => {
    const p = ctx.auth.requireIdentity(req);
    const job = await queries.getJob(id);
    if (!p.admin && job.owner !== p.owner) throw new ForbiddenError(`job ${id} belongs to another user`);
    return job;
  };

  app.post<{ Body: RawSubmission }>('/jobs', {
    schema: {
      summary: 'Submit a job (a list of files and parameters)',
      body: submissionSchema,
      response: { 201: { type: 'object', properties: { jobId: { type: 'string' }, files: { type: 'integer' }, state: { type: 'string' } } } },
    },
  }, async (req, reply) => {
    const principal = ctx.auth.requireIdentity(req);
    let jobId: string;
    let files: number;
    try {
      ({ jobId, files } = await submitJob(ctx, principal, req.body, req));
    } catch (e) {
      if ((e as CargoError).code === 'CARGO_ERR_OWNER_QUEUE_FULL') reply.header('retry-after', '60');
      throw e;
    }
    return reply.code(201).header('location', `/api/v1/jobs/${jobId}`).send({ jobId, files, state: 'ACTIVE' });
  });

  app.get<{ Querystring: { limit?: string; cursor?: string; state?: JobState } }>('/jobs', {
    logLevel: POLLING_LOG_LEVEL,
    schema: {
      summary: 'List jobs, newest first',
      querystring: { type: 'object', additionalProperties: false, properties: { limit: limitQ, cursor: { type: 'string', pattern: '^[0-9]{1,16}$' }, state: { type: 'string', enum: [...JOB_STATES] } } },
      response: { 200: jobPageSchema },
    },
  }, async (req) => {
    const p = ctx.auth.requireIdentity(req);
    return queries.listJobs(Math.min(1000, Number(req.query.limit ?? 100)) || 100, req.query.cursor, req.query.state, p.admin ? undefined : p.owner);
  });

  app.get<{ Params: { id: string } }>('/jobs/:id', { logLevel: POLLING_LOG_LEVEL, schema: { summary: 'A job: counts per state, bytes, rate, ETA', params: idParam, response: { 200: jobSummarySchema } } }, async (req) => ownJob(req, req.params.id));

  app.get<{ Params: { id: string }; Querystring: { state?: FileState; cursor?: string; limit?: string } }>('/jobs/:id/files', {
    logLevel: POLLING_LOG_LEVEL,
    schema: {
      summary: 'Files of a job, paged (cursor = last fileId seen)',
      params: idParam,
      querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: [...FILE_STATES] }, cursor: { type: 'string', pattern: '^[0-9]{1,9}$' }, limit: limitQ } },
      response: { 200: filePageSchema },
    },
  }, async (req) => (await ownJob(req, req.params.id), queries.listFiles(req.params.id, {
    state: req.query.state,
    cursor: req.query.cursor === undefined ? undefined : Number(req.query.cursor),
    limit: Math.min(10000, Number(req.query.limit ?? 1000)) || 1000,
  })));

  app.get<{ Params: { id: string; fileId: string } }>('/jobs/:id/files/:fileId', { logLevel: POLLING_LOG_LEVEL, schema: { summary: 'One file with its attempts', params: fileParams, response: { 200: fileViewSchema } } }, async (req) => (await ownJob(req, req.params.id), queries.getFile(req.params.id, Number(req.params.fileId))));

  app.delete<{ Params: { id: string } }>('/jobs/:id', { schema: { summary: 'Cancel a job (active transfers stop within 2 s)', params: idParam, response: { 200: jobSummarySchema } } }, async (req) => (await ownJob(req, req.params.id), store.cancelJob(req.params.id)));

  app.delete<{ Params: { id: string; fileId: string } }>('/jobs/:id/files/:fileId', { schema: { summary: 'Cancel one file', params: fileParams, response: { 200: fileViewSchema } } }, async (req) => (await ownJob(req, req.params.id), store.cancelFile(req.params.id, Number(req.params.fileId))));
}
