/**
 * The state-change side of the job store: jobs and files in Redis, every transition through one Lua script (lua/,
 * loaded by lua-scripts.ts); key names in redis-keys.ts. Reads are in job-queries.ts (`store.queries`).
 */
import type { StageRecord } from '../processing/stage-recorder.js';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DEFAULT_ENDPOINT_BREAKER, type EndpointBreakerSettings } from './endpoint-breaker.js';
import { decodeFileState, decodeSpec, encodeSpec, parseMember, type FileStateRecord } from './file-record.js';
import { FileNotFoundInJobError, JobNotFoundError } from './job-errors.js';
import { JobQueries, RATE_WINDOW_SEC, rateWindow } from './job-queries.js';
import { defineJobScripts, type ScriptedRedis } from './lua-scripts.js';
import { FILE_STATES, linkOf, type FileSpec, type FileView, type JobParams, type JobSummary, type NewJob } from './model.js';
import { RedisKeys } from './redis-keys.js';
import type { ResumeState } from '../transfer/types.js';
import type { ErrorCode } from '../../errors/catalogue.js';

/** Keys written before a job is registered expire unless the register script persists them. */
const UNREGISTERED_TTL_SEC = 3600;
const CHUNK = 2000;

export type StartResult =
  | { kind: 'run'; spec: FileSpec & { link: string }; state: FileStateRecord; params: JobParams; run: number }
  /** Nothing to run. `lostRun`: a lost run of a file canceled meanwhile, closed now (its part files are the caller's to remove). */
  | { kind: 'skip'; reason: string; lostRun?: { spec: FileSpec & { link: string }; run: number } }
  | { kind: 'deferred' };

/** How long a job's records stay in Redis after it ended (jobs.fileRetentionSec, jobs.retentionSec); absent: kept. */
export interface JobRetention {
  fileSec: number;
  jobSec: number;
}

export type EndOutcome = 'ok' | 'error' | 'requeue' | 'cancel';

/** What an attempt reports about itself; stored on its attempt record (resume and checksumValue on the file). */
export interface EndReport {
  bytes?: number;
  rateBytesPerSec?: number;
  remoteIp?: string;
  protocol?: string;
  streams?: number;
  resumedBytes?: number;
  errorCode?: ErrorCode;
  errorMessage?: string;
  checksumValue?: string;
  contentEncoding?: string;
  warnings?: string[];
  resume?: ResumeState;
  /** Said of an attempt that moved nothing because the destination already held the file. */
  note?: string;
  /** What the processing stages recorded (checksums of raw and processed bytes, unpacked members). */
  processing?: StageRecord[];
  /** Where a processed file was published, when its stages renamed it (`NAME.zst`). */
  publishedAs?: string;
}

/** How one run of a file ended, as the worker closes it (END). */
export interface AttemptEnd {
  jobId: string;
  idx: number;
  run: number;
  /** The file's link, as START returned it, passed back so END need not decode the spec. */
  link: string;
  outcome: EndOutcome;
  report: EndReport;
  /** An error that may succeed on another try (spends one of the file's retries). */
  retryable?: boolean;
  retryDelayMs?: number;
  /** Bytes of this attempt that no progress report has counted yet (they go into the rate windows). */
  unreportedBytes?: number;
  /** The endpoint (`host:port`) this attempt could not reach at all, for the circuit breaker. */
  unreachableEndpoint?: string;
  /** The destination endpoint that could take no more bytes (ENOSPC, EDQUOT, EROFS, HTTP 507), and why. */
  fullDestination?: { endpoint: string; detail: string };
}

/**
 * Times one file may be held by a full destination without spending a try. A file that never fits is otherwise bounded
 * by the breaker's give-up time, unless other files keep succeeding there (each success closes the breaker, and the
 * next trip starts a new hold period): this bounds that loop.
 */
export const MAX_HOLDS_PER_FILE = 100;

export type EndResult =
  | { kind: 'finished' | 'failed' | 'canceled' | 'stale' }
  | { kind: 'queued'; member: string; delayMs: number };

/** What recordWorkerCrash did: queue members to enqueue, and the files it closed (their last run). */
export interface WorkerCrashRecord {
  requeued: string[];
  closed: Array<{ jobId: string; idx: number; run: number; spec: ReturnType<typeof decodeSpec> }>;
}

/** One START reply (start.lua, or one row of start-batch.lua) as a StartResult. */
function startResult(r: string[]): StartResult {
  if (r[0] === 'run') {
    return { kind: 'run', spec: decodeSpec(r[1]!), state: decodeFileState(r[2]), params: JSON.parse(r[3]!) as JobParams, run: Number(r[4]) };
  }
  if (r[0] === 'deferred') return { kind: 'deferred' };
  if (r[2] !== undefined) return { kind: 'skip', reason: r[1]!, lostRun: { spec: decodeSpec(r[2]), run: Number(r[3]) } };
  return { kind: 'skip', reason: r[1] ?? 'unknown' };
}

/** One END reply (end.lua, or one row of end-batch.lua) as an EndResult. */
function endResult(r: [string, string?, (number | string)?]): EndResult {
  return r[0] === 'queued' ? { kind: 'queued', member: r[1]!, delayMs: Number(r[2]) } : { kind: r[0] as 'finished' | 'failed' | 'canceled' | 'stale' };
}

export class JobStore {
  readonly redis: ScriptedRedis;
  readonly keys: RedisKeys;
  readonly queries: JobQueries;

  constructor(redis: Redis, readonly prefix: string, private readonly breaker: EndpointBreakerSettings = DEFAULT_ENDPOINT_BREAKER) {
    this.redis = defineJobScripts(redis);
    this.keys = new RedisKeys(prefix);
    this.queries = new JobQueries(redis, prefix);
  }

  /** Every script takes this one key for routing (all keys share the prefix's {hash tag}). */
  private get route(): string {
    return this.keys.port('owners');
  }

  /**
   * Writes a job and all its files, then registers it atomically. Large jobs are written in pipelined
   * chunks under a safety TTL; only the final REGISTER script makes them visible and permanent.
   */
  /** `jobId`: an id chosen by the caller (a random UUID it made, so it can store what the job needs first). */
  async createJob(job: NewJob, retention?: JobRetention, jobId: string = randomUUID()): Promise<{ jobId: string }> {
    const specKey = this.keys.jobPart(jobId, 'spec');
    const submittedKey = this.keys.jobPart(jobId, 'byState', 'SUBMITTED');
    const linksKey = this.keys.jobPart(jobId, 'links');
    const lanes = new Map<string, number[]>();
    let bytesTotal = 0;
    let knownSizes = 0;
    const pipe = this.redis.pipeline();
    for (let start = 0; start < job.files.length; start += CHUNK) {
      const end = Math.min(start + CHUNK, job.files.length);
      const specArgs: (string | number)[] = [];
      const zArgs: (string | number)[] = [];
      for (let i = start; i < end; i++) {
        const f = job.files[i]!;
        specArgs.push(i, encodeSpec(f));
        zArgs.push(i, i);
        const link = linkOf(f.source, f.destination);
        let lane = lanes.get(link);
        if (!lane) lanes.set(link, (lane = []));
        lane.push(i);
        if (f.size !== undefined) {
          bytesTotal += f.size;
          knownSizes++;
        }
      }
      pipe.hset(specKey, ...specArgs);
      pipe.zadd(submittedKey, ...zArgs);
    }
    const persist = [specKey, submittedKey, linksKey];
    for (const [link, idxs] of lanes) {
      const laneKey = this.keys.lane(jobId, link);
      for (let s = 0; s < idxs.length; s += CHUNK * 5) pipe.rpush(laneKey, ...idxs.slice(s, s + CHUNK * 5));
      pipe.expire(laneKey, UNREGISTERED_TTL_SEC);
      persist.push(laneKey);
    }
    pipe.rpush(linksKey, ...lanes.keys());
    for (const k of [specKey, submittedKey, linksKey]) pipe.expire(k, UNREGISTERED_TTL_SEC);
    const results = await pipe.exec();
    for (const [err] of results ?? []) if (err) throw err;

    const created = Date.now();
    const fields: (string | number)[] = [
      'owner', job.owner, 'prio', job.params.priority, 'state', 'ACTIVE', 'created', created, 'n', job.files.length,
      'params', JSON.stringify({ ...job.params, owner: job.owner }), 'retries', job.params.retries, 'maxq', job.params.maxTimeInQueueSec ?? 0, 'bytesTotal', knownSizes === job.files.length ? bytesTotal : -1,
      'bytesFin', 0, 'canceled', 0, ...FILE_STATES.flatMap((s) => [`c:${s}`, s === 'SUBMITTED' ? job.files.length : 0]),
      // Applied when the job ends (finishJobIfDone in lua/includes/common.lua).
      ...(retention ? ['fret', retention.fileSec, 'jret', retention.jobSec] : []),
    ];
    await this.redis.cpRegister(this.route, this.prefix, jobId, job.owner, job.params.priority, created, fields.length / 2, ...fields, ...persist);
    return { jobId };
  }

  /**
   * Moves up to `max` files into QUEUED (fair, within slot limits). Returns run-queue entries: one member,
   * or a bundle of small files' members joined by ',' (files of declared size ≤ bundle.maxBytes, up to
   * bundle.files per entry).
   */
  async feed(max: number, ahead: number, linkMax: number, endpointMax: number, bundle = { maxBytes: 0, files: 1 }): Promise<string[]> {
    return (await this.redis.cpFeed(this.route, this.prefix, max, ahead, linkMax, endpointMax, Date.now(), bundle.maxBytes, bundle.files)) as string[];
  }

  /** Confirms that queue members reached BullMQ. */
  async ackOutbox(members: string[]): Promise<void> {
    if (members.length) await this.redis.zrem(this.keys.port('outbox'), ...members);
  }

  /** Members whose BullMQ add was due more than `graceMs` ago and never confirmed, with their due time. */
  async staleOutbox(graceMs: number, limit = 1000): Promise<Array<{ member: string; due: number }>> {
    const raw = await this.redis.zrangebyscore(this.keys.port('outbox'), '-inf', Date.now() - graceMs, 'WITHSCORES', 'LIMIT', 0, limit);
    const out: Array<{ member: string; due: number }> = [];
    for (let i = 0; i < raw.length; i += 2) out.push({ member: raw[i]!, due: Number(raw[i + 1]) });
    return out;
  }

  async start(member: string, worker: string): Promise<StartResult> {
    const { jobId, idx, q } = parseMember(member);
    return startResult((await this.redis.cpStart(this.route, this.prefix, jobId, idx, q, worker, Date.now())) as string[]);
  }

  /**
   * Claims a bundle's members in one script call (start-batch.lua: each member as START claims one), in order.
   * One round trip and one script for the bundle instead of one per file.
   */
  async startMany(members: readonly string[], worker: string): Promise<StartResult[]> {
    if (members.length === 1) return [await this.start(members[0]!, worker)];
    const args: (string | number)[] = [];
    for (const m of members) {
      const { jobId, idx, q } = parseMember(m);
      args.push(jobId, idx, q);
    }
    const rows = (await this.redis.cpStartBatch(this.route, this.prefix, worker, Date.now(), ...args)) as string[][];
    return rows.map(startResult);
  }

  /**
   * A worker process that held files crashed: closes their open attempts as crashed (CARGO_ERR_WORKER_CRASHED),
   * fails those that were running in `crashLimit` crashes, requeues the rest from their last checkpoint (see
   * crash.lua). Returns the members to enqueue and the closed (failed or canceled) files whose part files go.
   */
  async recordWorkerCrash(workerId: string, crashLimit: number, what: string): Promise<WorkerCrashRecord> {
    const [queued, closed] = (await this.redis.cpCrash(this.route, this.prefix, workerId, Date.now(), crashLimit, what.slice(0, 500))) as [string[], string[]];
    const out: WorkerCrashRecord = { requeued: queued, closed: [] };
    for (let i = 0; i + 3 < closed.length; i += 4) {
      out.closed.push({ jobId: closed[i]!, idx: Number(closed[i + 1]), run: Number(closed[i + 2]), spec: decodeSpec(closed[i + 3]!) });
    }
    return out;
  }

  /** Closes one run of a file (finished, failed, retried, requeued or canceled). */
  async end(e: AttemptEnd): Promise<EndResult> {
    const b = this.breaker;
    const r = (await this.redis.cpEnd(
      this.route, this.prefix, e.jobId, e.idx, e.run, e.outcome, Date.now(), JSON.stringify(e.report), e.retryable ? '1' : '0',
      e.retryDelayMs ?? 0, e.link, Math.max(0, e.unreportedBytes ?? 0), rateWindow(), e.unreachableEndpoint ?? '',
      b.failures, b.cooldownMs, b.maxCooldownMs, b.giveUpMs, e.fullDestination?.endpoint ?? '', e.fullDestination?.detail.slice(0, 500) ?? '',
      MAX_HOLDS_PER_FILE,
    )) as [string, string?, number?];
    const result = endResult(r);
    if (result.kind !== 'stale') await this.countEnds([e], [result]);
    return result;
  }

  /**
   * Closes several runs in one script call (end-batch.lua: each as END closes one, in order) and counts them in one
   * pipeline: the group commit of END (services/jobs/end-batcher.ts gathers the runs that end close together).
   */
  async endMany(ends: readonly AttemptEnd[]): Promise<EndResult[]> {
    if (ends.length === 1) return [await this.end(ends[0]!)];
    const b = this.breaker;
    const args: (string | number)[] = [];
    for (const e of ends) {
      args.push(e.jobId, e.idx, e.run, e.outcome, JSON.stringify(e.report), e.retryable ? '1' : '0', e.retryDelayMs ?? 0, e.link,
        Math.max(0, e.unreportedBytes ?? 0), e.unreachableEndpoint ?? '', e.fullDestination?.endpoint ?? '', e.fullDestination?.detail.slice(0, 500) ?? '');
    }
    const rows = (await this.redis.cpEndBatch(
      this.route, this.prefix, Date.now(), rateWindow(), b.failures, b.cooldownMs, b.maxCooldownMs, b.giveUpMs, MAX_HOLDS_PER_FILE, ...args,
    )) as Array<[string, string?, number?]>;
    const results = rows.map(endResult);
    await this.countEnds(ends, results);
    return results;
  }

  /**
   * The /metrics counters of ended runs. Apart from END's script: a count lost to a crash between the two is a
   * smaller harm than a Lua change in the hot path every other state transition shares.
   */
  private async countEnds(ends: readonly AttemptEnd[], results: readonly EndResult[]): Promise<void> {
    const k = this.keys.port('counters');
    const p = this.redis.pipeline();
    for (let i = 0; i < ends.length; i++) {
      const kind = results[i]?.kind;
      if (kind !== undefined && kind !== 'stale') this.countEnd(p, k, ends[i]!, kind);
    }
    if (p.length > 0) await p.exec();
  }

  private countEnd(p: ReturnType<Redis['pipeline']>, k: string, e: AttemptEnd, kind: EndResult['kind']): void {
    p.hincrby(k, `attempts|${e.outcome}|${e.link}`, 1);
    const unreported = Math.max(0, e.unreportedBytes ?? 0);
    if (unreported > 0) {
      p.hincrby(k, 'bytes', unreported);
      p.hincrby(k, `bytes|${e.link}`, unreported);
    }
    if (kind === 'finished') p.hincrby(k, `finished|${e.link}`, 1);
    else if (kind === 'failed') p.hincrby(k, `failed|${e.report.errorCode ?? 'CARGO_ERR_UNKNOWN'}|${e.link}`, 1);
  }

  /**
   * Live progress of an active file: bytes so far (for the job's bytesDone), the rate windows (job, link, port) and
   * the monotonic byte counters behind /metrics (port and per link; never reset, so Prometheus' rate() works).
   */
  async progress(jobId: string, idx: number, bytes: number, delta: number, link?: string): Promise<void> {
    const w = rateWindow();
    const p = this.redis.pipeline();
    p.hset(this.keys.jobPart(jobId, 'progress'), idx, bytes);
    if (delta > 0) {
      for (const scope of link ? [jobId, '_all', `link:${link}`] : [jobId, '_all']) {
        const k = this.keys.port('rate', scope, w);
        p.incrby(k, delta);
        p.expire(k, RATE_WINDOW_SEC * 4);
      }
      p.hincrby(this.keys.port('counters'), 'bytes', delta);
      if (link) p.hincrby(this.keys.port('counters'), `bytes|${link}`, delta);
    }
    await p.exec();
  }

  /**
   * Persists an active transfer's latest durable checkpoint, with the run it belongs to, so that if its worker dies
   * the next run (START's lost-worker path) resumes from it instead of from zero. START trusts a checkpoint of the
   * lost run only: a write that lands after its run ended (the flush races END) is never taken for a later run's.
   */
  async saveCheckpoints(items: Array<{ jobId: string; idx: number; run: number; resume: ResumeState }>): Promise<void> {
    if (items.length === 0) return;
    const p = this.redis.pipeline();
    for (const { jobId, idx, run, resume } of items) p.hset(this.keys.jobPart(jobId, 'checkpoints'), idx, JSON.stringify({ run, rs: resume }));
    await p.exec();
  }

  /**
   * Cancels a job: waiting files are canceled in batches here; active ones are aborted by their workers,
   * told through the control channel, and closed as CANCELED by END.
   */
  async cancelJob(jobId: string): Promise<JobSummary> {
    for (;;) {
      const left = Number(await this.redis.cpCancelBatch(this.route, this.prefix, jobId, 5000, Date.now()));
      if (left < 0) throw new JobNotFoundError(jobId);
      if (left === 0) break;
    }
    await this.redis.publish(this.keys.port('control'), JSON.stringify({ op: 'cancel', job: jobId }));
    return this.queries.getJob(jobId);
  }

  /**
   * Fails the still-waiting files (SUBMITTED, QUEUED) of every active job whose maxTimeInQueueSec has
   * passed since submission, as FTS cancels expired queued jobs. Returns how many jobs were expired.
   */
  async expireQueued(now = Date.now()): Promise<number> {
    const ids = await this.redis.smembers(this.keys.port('activeJobs'));
    if (ids.length === 0) return 0;
    // One round trip for every active job's deadline fields (this runs every few seconds in every worker).
    const p = this.redis.pipeline();
    for (const jobId of ids) p.hmget(this.keys.job(jobId), 'created', 'maxq', 'c:SUBMITTED', 'c:QUEUED');
    const rows = (await p.exec()) ?? [];
    let expired = 0;
    for (let i = 0; i < ids.length; i++) {
      const jobId = ids[i]!;
      const [err, row] = rows[i] ?? [];
      if (err || !row) continue;
      const [created, maxq, waiting, queued] = row as Array<string | null>;
      const limitSec = Number(maxq ?? 0);
      if (!limitSec || now < Number(created) + limitSec * 1000 || Number(waiting) + Number(queued) === 0) continue;
      for (;;) {
        const left = Number(await this.redis.cpCancelBatch(this.route, this.prefix, jobId, 5000, now, 'FAILED', 'CARGO_ERR_QUEUE_TIMEOUT',
          `still waiting ${limitSec} s after submission (maxTimeInQueueSec)`));
        if (left <= 0) break;
      }
      expired++;
    }
    return expired;
  }

  async cancelFile(jobId: string, fileId: number): Promise<FileView> {
    const r = (await this.redis.cpCancelFile(this.route, this.prefix, jobId, fileId, Date.now())) as string;
    if (r === 'NOJOB') throw new JobNotFoundError(jobId);
    if (r === 'NOFILE') throw new FileNotFoundInJobError(jobId, String(fileId));
    return this.queries.getFile(jobId, fileId);
  }

  /** Sets a per-link or per-endpoint active-transfer limit (null removes the override). */
  async setLimit(kind: 'link' | 'ep', name: string, limit: number | null): Promise<void> {
    const key = this.keys.port(kind === 'link' ? 'linkLimits' : 'endpointLimits');
    if (limit === null) await this.redis.hdel(key, name);
    else await this.redis.hset(key, name, limit);
  }

  /**
   * An operator says the endpoint is back (admin start/resume on it): its breaker closes now, announced on the
   * events channel as END announces a close by success.
   */
  async closeEndpointBreaker(endpoint: string): Promise<boolean> {
    const k = (name: 'breakerOpenUntil' | 'breakerCooldown' | 'breakerFailures' | 'breakerHoldUntil' | 'breakerCause') => this.keys.port(name);
    const [[, removed]] = (await this.redis.multi()
      .hdel(k('breakerOpenUntil'), endpoint).hdel(k('breakerCooldown'), endpoint).hdel(k('breakerFailures'), endpoint)
      .hdel(k('breakerHoldUntil'), endpoint).hdel(k('breakerCause'), endpoint)
      .exec()) as Array<[Error | null, number]>;
    if (removed === 1) await this.redis.publish(this.keys.port('events'), JSON.stringify({ t: 'endpoint', endpoint, state: 'available' }));
    return removed === 1;
  }
}
