/**
 * Every Redis key and channel of the jobs layer, named once, for the TypeScript and the Lua scripts alike: the
 * script loader (lua-scripts.ts) renders these tables into each script's preamble as `K` (port-wide keys, already
 * prefixed) and `J` (suffixes of a job's keys), so a rename here reaches both sides.
 *
 * Layout under the prefix P (a {hash tag}, so Redis Cluster keeps every key in one slot):
 *   P:jobs (zset id→created)  P:jobs:active (set)  P:job:<id> (hash: owner, prio, state, n, params, c:<STATE>…)
 *   P:job:<id>:spec (hash idx→spec array)  P:job:<id>:fs (hash idx→mutable state)  P:job:<id>:st:<STATE> (zset)
 *   P:job:<id>:links (ring of links with waiting files)  P:lane:<id>:<link> (list of idx)  P:job:<id>:prog
 *   P:job:<id>:cp (idx→latest checkpoint of an active transfer, with the run it belongs to)
 *   P:owners (ring)  P:own:<owner> (zset of jobs by priority)  P:act:link / P:act:ep (slots held)
 *   P:lim:link / P:lim:ep (limit overrides)  P:queued  P:active  P:outbox (zset: BullMQ adds not yet confirmed)
 *   P:trip / P:tripcd / P:triphold / P:epfail / P:tripwhy (circuit breaker per endpoint)
 *   P:admin / P:admin:meta (scope→state)  P:limits (rate caps)  P:workers (heartbeats)  P:rate:<scope>:<window>
 *   P:events / P:ctl (pub/sub channels)
 */

import { FILE_STATES } from './model.js';

/** Port-wide keys, as suffixes of the prefix (`P:<suffix>`; parametrised ones take `:<part>…` after them). */
export const PORT_KEYS = {
  jobs: 'jobs',
  activeJobs: 'jobs:active',
  /** `job:<id>` and its parts (JOB_KEYS). */
  job: 'job',
  owners: 'owners',
  /** `own:<owner>`: an owner's jobs with waiting files, by priority. */
  ownerJobs: 'own',
  /** `lane:<jobId>:<link>`: a job's waiting files on one link. */
  lane: 'lane',
  linkSlots: 'act:link',
  endpointSlots: 'act:ep',
  linkLimits: 'lim:link',
  endpointLimits: 'lim:ep',
  queued: 'queued',
  active: 'active',
  outbox: 'outbox',
  roundRobin: 'rr',
  /** Circuit breaker: open-until time, last cool-down, hold-files-until time, failures in a row. */
  breakerOpenUntil: 'trip',
  breakerCooldown: 'tripcd',
  breakerHoldUntil: 'triphold',
  breakerFailures: 'epfail',
  /** Why it tripped: {cause: 'unreachable' | 'full', detail}. */
  breakerCause: 'tripwhy',
  admin: 'admin',
  adminMeta: 'admin:meta',
  rateLimits: 'limits',
  workers: 'workers',
  /** `rate:<job id | _all>:<window>`: bytes moved in one rate window. */
  rate: 'rate',
  /**
   * Monotonic counters for /metrics (hash): `bytes`, `bytes|<link>`, `attempts|<outcome>|<link>`,
   * `finished|<link>`, `failed|<error code>|<link>`. Never reset: Prometheus takes rates and survives restarts.
   */
  counters: 'counters',
  /** Pub/sub: job, file and endpoint state changes (SSE). */
  events: 'events',
  /** Pub/sub: cancel, admin operations and rate-limit changes for the workers. */
  control: 'ctl',
} as const;

/** Parts of one job's keys, as suffixes of `P:job:<id>`. */
export const JOB_KEYS = {
  spec: 'spec',
  fileState: 'fs',
  /** `st:<STATE>`: the job's files in one state (zset idx→idx). */
  byState: 'st',
  links: 'links',
  progress: 'prog',
  checkpoints: 'cp',
} as const;

export type PortKey = keyof typeof PORT_KEYS;
export type JobKey = keyof typeof JOB_KEYS;

/** The keys of one prefix, for the TypeScript side. */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  port(name: PortKey, ...parts: Array<string | number>): string {
    return [this.prefix, PORT_KEYS[name], ...parts].join(':');
  }

  job(jobId: string): string {
    return `${this.prefix}:${PORT_KEYS.job}:${jobId}`;
  }

  jobPart(jobId: string, part: JobKey, ...sub: string[]): string {
    return [this.job(jobId), JOB_KEYS[part], ...sub].join(':');
  }

  lane(jobId: string, link: string): string {
    return this.port('lane', jobId, link);
  }
}

function luaString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The preamble every script starts with: `P` (the prefix, ARGV[1]), `K` (port-wide keys, prefixed), `J` (job key
 * suffixes, with their leading ':') and FILE_STATE_NAMES (model.ts FILE_STATES), so the scripts write `K.owners` and
 * `jkey(id)..J.spec`.
 */
export function luaKeyPreamble(): string {
  const k = Object.entries(PORT_KEYS).map(([name, suffix]) => `${name} = P..${luaString(`:${suffix}`)}`);
  const j = Object.entries(JOB_KEYS).map(([name, suffix]) => `${name} = ${luaString(`:${suffix}`)}`);
  const states = FILE_STATES.map(luaString).join(', ');
  return `local P = ARGV[1]\nlocal K = { ${k.join(', ')} }\nlocal J = { ${j.join(', ')} }\nlocal FILE_STATE_NAMES = { ${states} }\n`;
}
