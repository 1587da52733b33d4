/**
 * The port's status as operators see it: every admin scope with its effective state (a draining scope with
 * nothing left in flight is reported `drained`), live workers and heartbeats, queue depths, active
 * transfers, throughput and slot usage. Read-only; computed from Redis on demand.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AdminStateStore, ScopeRecord } from './admin-state.js';
import type { UnavailableEndpoint } from './endpoint-breaker.js';
import type { JobQueries } from './job-queries.js';

export interface WorkerView {
  id: string;
  pool: string;
  host: string;
  pid: number;
  state: string;
  active: number;
  concurrency: number;
  bytesPerSec: number;
  lastHeartbeatMsAgo: number;
  alive: boolean;
}

export interface PortStatus {
  scopes: Array<ScopeRecord & { effectiveState: string }>;
  workers: WorkerView[];
  queues: { waitingFiles: number; queued: number; runQueueWaiting: number; runQueueDelayed: number; runQueueActive: number };
  /** `links`: bytes per second over the last rate window for each link holding transfer slots. */
  transfers: { active: number; rateBytesPerSec: number; links: Record<string, number> };
  jobs: { active: number };
  slots: { links: Record<string, number>; endpoints: Record<string, number> };
  /** Endpoints whose circuit breaker is tripped: their files wait instead of spending retries. */
  unavailableEndpoints: UnavailableEndpoint[];
}

export async function portStatus(redis: Redis, queries: JobQueries, admin: AdminStateStore, queue: Queue, heartbeatMs: number): Promise<PortStatus> {
  const now = Date.now();
  const keys = queries.keys;
  const [scopes, rawWorkers, counts, rate, slots, activeJobs, unavailableEndpoints] = await Promise.all([
    admin.all(),
    redis.hgetall(keys.port('workers')),
    queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized'),
    queries.rate('_all'),
    queries.activeSlots(),
    redis.smembers(keys.port('activeJobs')),
    queries.unavailableEndpoints(),
  ]);
  const workers: WorkerView[] = [];
  const stale: string[] = [];
  for (const [id, raw] of Object.entries(rawWorkers)) {
    const w = JSON.parse(raw) as Omit<WorkerView, 'lastHeartbeatMsAgo' | 'alive'> & { hb: number };
    const ago = now - w.hb;
    // Forget workers silent for a long time; show recently silent ones as not alive.
    if (ago > Math.max(60_000, heartbeatMs * 60)) stale.push(id);
    else workers.push({ id, pool: w.pool, host: w.host, pid: w.pid, state: w.state, active: w.active, concurrency: w.concurrency, bytesPerSec: w.bytesPerSec, lastHeartbeatMsAgo: ago, alive: ago < heartbeatMs * 5 });
  }
  if (stale.length) await redis.hdel(keys.port('workers'), ...stale);
  let waitingFiles = 0;
  if (activeJobs.length) {
    const p = redis.pipeline();
    for (const id of activeJobs) p.hget(keys.job(id), 'c:SUBMITTED');
    for (const [, v] of (await p.exec()) ?? []) waitingFiles += Number(v ?? 0);
  }
  const linkRates: Record<string, number> = {};
  const linkNames = Object.keys(slots.links);
  const rates = await Promise.all(linkNames.map((l) => queries.rate(`link:${l}`)));
  linkNames.forEach((l, i) => (linkRates[l] = Math.round(rates[i]!)));
  const alive = workers.filter((w) => w.alive);
  const effective = (s: ScopeRecord): string => {
    if (s.state !== 'draining') return s.state;
    let inFlight: number;
    // Port: the ACTIVE-file counter kept by the START/END scripts is the truth. Pool: only heartbeats sent
    // after the drain command count (an older one may predate transfers started just before it).
    if (s.scope === 'port') inFlight = slots.active;
    else if (s.scope === 'pool') {
      const pool = alive.filter((w) => w.pool === s.target);
      const fresh = pool.every((w) => now - w.lastHeartbeatMsAgo > (s.since ?? 0));
      inFlight = fresh ? pool.reduce((a, w) => a + w.active, 0) : 1;
    }
    else if (s.scope === 'link') inFlight = slots.links[s.target] ?? 0;
    else inFlight = slots.endpoints[s.target] ?? 0;
    return inFlight === 0 ? 'drained' : 'draining';
  };
  return {
    scopes: scopes.map((s) => ({ ...s, effectiveState: effective(s) })),
    workers,
    queues: {
      waitingFiles,
      queued: slots.queued,
      runQueueWaiting: (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0),
      runQueueDelayed: counts['delayed'] ?? 0,
      runQueueActive: counts['active'] ?? 0,
    },
    transfers: { active: slots.active, rateBytesPerSec: Math.round(rate), links: linkRates },
    jobs: { active: activeJobs.length },
    slots: { links: slots.links, endpoints: slots.endpoints },
    unavailableEndpoints,
  };
}
