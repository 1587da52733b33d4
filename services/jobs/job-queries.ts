/**
 * The read side of the job store: jobs, files, rates, slots and tripped endpoints, read from Redis as the state-change
 * scripts (job-store.ts, lua/) leave them. Nothing here changes state.
 */
import type { Redis } from 'ioredis';
import { decodeFileState, decodeSpec } from './file-record.js';
import { FileNotFoundInJobError, JobNotFoundError } from './job-errors.js';
import { FILE_STATES, type FileState, type FileView, type JobParams, type JobState, type JobSummary, type StateCounts } from './model.js';
import { RedisKeys } from './redis-keys.js';
import type { UnavailableEndpoint } from './endpoint-breaker.js';

/** Length of one rate window: bytes moved are counted per window, and the rate is that of the last complete one. */
export const RATE_WINDOW_SEC = 5;

/** Index of the current rate window. */
export function rateWindow(now = Date.now()): number {
  return Math.floor(now / 1000 / RATE_WINDOW_SEC);
}

function emptyCounts(): StateCounts {
  return Object.fromEntries(FILE_STATES.map((s) => [s, 0])) as StateCounts;
}

export interface SlotUsage {
  links: Record<string, number>;
  endpoints: Record<string, number>;
  queued: number;
  active: number;
}

export class JobQueries {
  readonly keys: RedisKeys;

  constructor(private readonly redis: Redis, prefix: string) {
    this.keys = new RedisKeys(prefix);
  }

  /** Bytes per second over the last complete rate window (job id or '_all'). */
  async rate(scope: string): Promise<number> {
    const v = await this.redis.get(this.keys.port('rate', scope, rateWindow() - 1));
    return v ? Number(v) / RATE_WINDOW_SEC : 0;
  }

  async getJob(jobId: string): Promise<JobSummary> {
    const jk = this.keys.job(jobId);
    const [h, prog, rate] = await Promise.all([this.redis.hgetall(jk), this.redis.hvals(this.keys.jobPart(jobId, 'progress')), this.rate(jobId)]);
    if (!h['state']) throw new JobNotFoundError(jobId);
    return summarise(jobId, h, prog, rate);
  }

  /**
   * Files of `owner` not yet finished (submitted, queued, active, waiting to retry) over its active jobs: one pipelined
   * read of each active job's counters (a few bytes per job), for the per-owner bound checked at submission.
   */
  async unfinishedFilesOf(owner: string): Promise<number> {
    const ids = await this.redis.smembers(this.keys.port('activeJobs'));
    if (ids.length === 0) return 0;
    const p = this.redis.pipeline();
    for (const id of ids) p.hmget(this.keys.job(id), 'owner', 'n', 'c:FINISHED', 'c:FAILED', 'c:CANCELED');
    let total = 0;
    for (const [err, v] of (await p.exec()) ?? []) {
      if (err) throw err;
      const [o, n, fin, fail, canc] = v as Array<string | null>;
      if (o !== owner) continue;
      total += Math.max(0, Number(n ?? 0) - Number(fin ?? 0) - Number(fail ?? 0) - Number(canc ?? 0));
    }
    return total;
  }

  /** `owner`: only that owner's jobs (a user's view); absent: everyone's (an administrator's). */
  async listJobs(limit: number, cursor?: string, state?: JobState, owner?: string): Promise<{ jobs: JobSummary[]; nextCursor?: string }> {
    // Newest first; the cursor is the creation score of the last job returned.
    const max = cursor ? `(${cursor}` : '+inf';
    const out: JobSummary[] = [];
    let from = max;
    let nextCursor: string | undefined;
    for (let guard = 0; guard < 50 && out.length < limit; guard++) {
      const raw = await this.redis.zrevrangebyscore(this.keys.port('jobs'), from, '-inf', 'WITHSCORES', 'LIMIT', 0, limit);
      if (raw.length === 0) break;
      for (let i = 0; i < raw.length && out.length < limit; i += 2) {
        const id = raw[i]!;
        nextCursor = raw[i + 1]!;
        try {
          const j = await this.getJob(id);
          if ((!state || j.state === state) && (owner === undefined || j.owner === owner)) out.push(j);
        } catch (e) {
          // Expired (jobs.retentionSec): forget its listing entry too.
          if (e instanceof JobNotFoundError) await this.redis.zrem(this.keys.port('jobs'), id);
        }
      }
      from = `(${nextCursor}`;
      if (raw.length < limit * 2) {
        if (out.length < limit) nextCursor = undefined;
        break;
      }
    }
    return out.length >= limit && nextCursor ? { jobs: out, nextCursor } : { jobs: out };
  }

  private async fileViews(jobId: string, idxs: string[]): Promise<FileView[]> {
    if (idxs.length === 0) return [];
    const [specs, states, prog] = await Promise.all([
      this.redis.hmget(this.keys.jobPart(jobId, 'spec'), ...idxs),
      this.redis.hmget(this.keys.jobPart(jobId, 'fileState'), ...idxs),
      this.redis.hmget(this.keys.jobPart(jobId, 'progress'), ...idxs),
    ]);
    const out: FileView[] = [];
    for (let i = 0; i < idxs.length; i++) {
      if (!specs[i]) continue;
      const { link: _link, ...spec } = decodeSpec(specs[i]!);
      const st = decodeFileState(states[i]);
      const v: FileView = {
        fileId: Number(idxs[i]), jobId, ...spec, state: st.s,
        bytes: st.s === 'FINISHED' ? (st.bf ?? 0) : Number(prog[i] ?? 0), attempts: st.a,
      };
      if (st.cv) v.checksumValue = st.cv;
      if (st.e) v.error = st.e;
      const warnings = st.s === 'FINISHED' ? st.a.at(-1)?.warnings : undefined;
      if (warnings?.length) v.warnings = warnings;
      out.push(v);
    }
    return out;
  }

  async listFiles(jobId: string, opts: { state?: FileState; cursor?: number; limit: number }): Promise<{ files: FileView[]; nextCursor?: number }> {
    const n = Number(await this.redis.hget(this.keys.job(jobId), 'n'));
    if (!n) throw new JobNotFoundError(jobId);
    const after = opts.cursor ?? -1;
    let idxs: string[];
    if (opts.state) {
      idxs = await this.redis.zrangebyscore(this.keys.jobPart(jobId, 'byState', opts.state), `(${after}`, '+inf', 'LIMIT', 0, opts.limit);
    } else {
      idxs = [];
      for (let i = after + 1; i < n && idxs.length < opts.limit; i++) idxs.push(String(i));
    }
    const files = await this.fileViews(jobId, idxs);
    const last = idxs.length === opts.limit ? Number(idxs[idxs.length - 1]) : undefined;
    return last !== undefined && last < n - 1 ? { files, nextCursor: last } : { files };
  }

  async getFile(jobId: string, fileId: number): Promise<FileView> {
    const [v] = await this.fileViews(jobId, [String(fileId)]);
    if (!v) {
      if (!(await this.redis.exists(this.keys.job(jobId)))) throw new JobNotFoundError(jobId);
      throw new FileNotFoundInJobError(jobId, String(fileId));
    }
    return v;
  }

  /** For each file, whether it is to be canceled (its job canceled, or the file itself while it ran). */
  async cancelRequested(files: ReadonlyArray<{ jobId: string; idx: number }>): Promise<boolean[]> {
    if (files.length === 0) return [];
    const p = this.redis.pipeline();
    for (const { jobId, idx } of files) {
      p.hget(this.keys.job(jobId), 'canceled');
      p.hget(this.keys.jobPart(jobId, 'fileState'), String(idx));
    }
    const rows = (await p.exec()) ?? [];
    return files.map((_, i) => {
      const [, job] = rows[2 * i] ?? [];
      const [, fs] = rows[2 * i + 1] ?? [];
      return job === '1' || decodeFileState(fs as string | null).cx === 1;
    });
  }

  /** Endpoints whose circuit breaker is tripped (open, half-open or given up), for the status. */
  async unavailableEndpoints(): Promise<UnavailableEndpoint[]> {
    const [trip, cd, fails, hold, why] = await Promise.all([
      this.redis.hgetall(this.keys.port('breakerOpenUntil')), this.redis.hgetall(this.keys.port('breakerCooldown')),
      this.redis.hgetall(this.keys.port('breakerFailures')), this.redis.hgetall(this.keys.port('breakerHoldUntil')),
      this.redis.hgetall(this.keys.port('breakerCause')),
    ]);
    const now = Date.now();
    return Object.entries(trip).map(([endpoint, until]) => {
      const holdUntil = Number(hold[endpoint] ?? 0);
      const state = holdUntil <= now ? 'given-up' as const : Number(until) > now ? 'open' as const : 'half-open' as const;
      const cause = why[endpoint] ? (JSON.parse(why[endpoint]!) as { cause?: string; detail?: string }) : {};
      return {
        endpoint, state, cause: cause.cause === 'full' ? 'full' as const : 'unreachable' as const,
        ...(cause.detail ? { detail: cause.detail } : {}),
        retryAt: new Date(Number(until)).toISOString(), holdsFilesUntil: new Date(holdUntil).toISOString(),
        cooldownMs: Number(cd[endpoint] ?? 0), failuresInARow: Number(fails[endpoint] ?? 0),
      };
    });
  }

  /** Slots held per link and endpoint (files QUEUED or ACTIVE), files QUEUED, and files ACTIVE port-wide. */
  async activeSlots(): Promise<SlotUsage> {
    const [links, endpoints, queued, active] = await Promise.all([
      this.redis.hgetall(this.keys.port('linkSlots')),
      this.redis.hgetall(this.keys.port('endpointSlots')),
      this.redis.get(this.keys.port('queued')),
      this.redis.get(this.keys.port('active')),
    ]);
    const num = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v)]));
    return { links: num(links), endpoints: num(endpoints), queued: Number(queued ?? 0), active: Number(active ?? 0) };
  }
}

function summarise(jobId: string, h: Record<string, string>, prog: string[], rate: number): JobSummary {
  const counts = emptyCounts();
  for (const s of FILE_STATES) counts[s] = Number(h[`c:${s}`] ?? 0);
  let bytesDone = Number(h['bytesFin'] ?? 0);
  for (const b of prog) bytesDone += Number(b);
  const bytesTotal = Number(h['bytesTotal'] ?? -1);
  const state = h['state'] as JobState;
  const summary: JobSummary = {
    jobId,
    owner: h['owner']!,
    state,
    priority: Number(h['prio']),
    createdAt: new Date(Number(h['created'])).toISOString(),
    files: Number(h['n']),
    counts,
    bytesDone,
    rateBytesPerSec: Math.round(rate),
    params: JSON.parse(h['params']!) as JobParams,
  };
  if (h['finished']) summary.finishedAt = new Date(Number(h['finished'])).toISOString();
  if (bytesTotal >= 0) {
    summary.bytesTotal = bytesTotal;
    if (state === 'ACTIVE' && rate > 0) summary.etaSec = Math.max(0, Math.round((bytesTotal - bytesDone) / rate));
  }
  return summary;
}
