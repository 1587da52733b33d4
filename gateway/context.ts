/** What every gateway route needs: the domain services and settings, built once per gateway. */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { GatewayAuth } from './auth.js';
import type { SubmissionAuthoriser } from './job-authorisation.js';
import type { SubmissionExchanges } from './token-exchange-submission.js';
import type { AdminStateStore } from '../services/jobs/admin-state.js';
import type { JobQueries } from '../services/jobs/job-queries.js';
import type { JobStore } from '../services/jobs/job-store.js';
import type { ExportService } from '../services/exports/export-service.js';
import type { Processing } from '../services/processing/processing-service.js';

export interface GatewayContext {
  cfg: Config;
  redis: Redis;
  /** State changes (submit, cancel, breaker close). */
  store: JobStore;
  /** Reads (jobs, files, status). */
  queries: JobQueries;
  admin: AdminStateStore;
  runQueue: Queue;
  /** Authentication and the decisions every route asks for (request.principal is set before any route runs). */
  auth: GatewayAuth;
  /** Per-file rights and outbound address checks of a submission. */
  submissions: SubmissionAuthoriser;
  /** Processing stages, site hooks and the operator's rules: validates a job's params.processing. */
  processing: Processing;
  /** Token exchange of the submitter's token at submission (auth.outbound source token-exchange); undefined: none. */
  exchanges?: SubmissionExchanges;
  /** Recurring exports: definitions, BullMQ job schedulers, runs and reports. */
  exports: ExportService;
}

/**
 * Log level of the routes that dashboards, CLIs and probes poll (status, job reads, health, metrics): their
 * request/response lines at info would drown what an operator needs; errors (warn and above) still show.
 */
export const POLLING_LOG_LEVEL = 'warn';

declare module 'fastify' {
  interface FastifySchema {
    /** One line describing the route, used by the OpenAPI document at /docs. */
    summary?: string;
  }
}
