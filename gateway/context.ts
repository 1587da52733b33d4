/** What every gateway route needs: the domain services and settings, built once per gateway. */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { AdminStateStore } from '../services/jobs/admin-state.js';
import type { JobQueries } from '../services/jobs/job-queries.js';
import type { JobStore } from '../services/jobs/job-store.js';

export interface GatewayContext {
  cfg: Config;
  redis: Redis;
  /** State changes (submit, cancel, breaker close). */
  store: JobStore;
  /** Reads (jobs, files, status). */
  queries: JobQueries;
  admin: AdminStateStore;
  runQueue: Queue;
  /** Who is asking. Until WLCG token authorisation lands this reads X-Cargoport-Owner (default anonymous). */
  ownerOf(headers: Record<string, string | string[] | undefined>): string;
}

declare module 'fastify' {
  interface FastifySchema {
    /** One line describing the route, used by the OpenAPI document at /docs. */
    summary?: string;
  }
}
