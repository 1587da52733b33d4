/**
 * The job store: jobs and files in Redis, every transition through one Lua script (lua-scripts.ts).
 *
 * Layout under the prefix P (a {hash tag}, so Redis Cluster keeps it in one slot):
 *   P:jobs (zset id→created)  P:jobs:active (set)  P:job:<id> (hash: owner, prio, state, n, params, c:<STATE>…)
 *   P:job:<id>:spec (hash idx→spec array)  P:job:<id>:fs (hash idx→mutable state)  P:job:<id>:st:<STATE> (zset)
 *   P:job:<id>:links (ring of links with waiting files)  P:lane:<id>:<link> (list of idx)  P:job:<id>:prog
 *   P:job:<id>:cp (idx→latest checkpoint of an active transfer)
 *   P:owners (ring)  P:own:<owner> (zset of jobs by priority)  P:act:link / P:act:ep (slots held)
 *   P:lim:link / P:lim:ep (limit overrides)  P:queued  P:outbox (zset: BullMQ adds not yet confirmed)
 *   P:admin (scope→state)  P:events / P:ctl (pub/sub)
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { formatChecksumSpec, parseChecksumSpec } from '../checksum/checksum-spec.js';
import { FileNotFoundInJobError, JobNotFoundError } from './job-errors.js';
import * as lua from './lua-scripts.js';
import {
  FILE_STATES, linkOf, type AttemptRecord, type FileSpec, type FileState, type FileView, type JobParams,
  type JobState, type JobSummary, type NewJob, type StateCounts,
} from './model.js';
import type { ResumeState } from '../transfer/types.js';

/** Keys written before a job is registered expire unless the register script persists them. */
const UNREGISTERED_TTL_SEC = 3600;
const CHUNK = 2000;
const RATE_WINDOW_SEC = 5;

type ScriptFn = (routingKey: string, ...args: (string | number)[]) => Promise<unknown>;
interface ScriptedRedis extends Redis {
  cpFeed: ScriptFn; cpStart: ScriptFn; cpEnd: ScriptFn; cpCancelBatch: ScriptFn; cpCancelFile: ScriptFn; cpRegister: ScriptFn;
}

/** Spec array stored per file: [source, destination, size, checksum, scitag, activity, metadata, link]. */
type SpecArray = [string, string, number | null, string | null, number | null, string | null, Record<string, unknown> | null, string];

function encodeSpec(f: FileSpec): string {
  const arr: SpecArray = [
    f.source, f.destination, f.size ?? null, f.checksum ? formatChecksumSpec(f.checksum) : null,
    f.scitag ?? null, f.activity ?? null, f.metadata ?? null, linkOf(f.source, f.destination),
  ];
  return JSON.stringify(arr);
}

export function decodeSpec(json: string): FileSpec & { link: string } {
  const a = JSON.parse(json) as SpecArray;
  const f: FileSpec & { link: string } = { source: a[0], destination: a[1], link: a[7] };
  if (a[2] !== null) f.size = a[2];
  if (a[3] !== null) f.checksum = parseChecksumSpec(a[3], 'checksum');
  if (a[4] !== null) f.scitag = a[4];
  if (a[5] !== null) f.activity = a[5];
  if (a[6] !== null) f.metadata = a[6];
  return f;
}

/** The mutable per-file state as stored by the Lua scripts. */
export interface FileStateRecord {
  s: FileState;
  q: number;
  r: number;
  t: number;
  a: AttemptRecord[];
  e?: { code: string; message: string };
  cv?: string;
  rs?: ResumeState;
  cx?: number;
  bf?: number;
}

export function decodeFileState(json: string | null | undefined): FileStateRecord {
  if (!json) return { s: 'SUBMITTED', q: 0, r: 0, t: 0, a: [] };
  const o = JSON.parse(json) as FileStateRecord;
  if (!Array.isArray(o.a)) o.a = [];
  if (o.rs && !Array.isArray(o.rs.done)) o.rs.done = [];
  return o;
}

export type StartResult =
  | { kind: 'run'; spec: FileSpec & { link: string }; state: FileStateRecord; params: JobParams; run: number }
  | { kind: 'skip'; reason: string }
  | { kind: 'deferred' };

export type EndOutcome = 'ok' | 'error' | 'requeue' | 'cancel';
export interface EndReport {
  bytes?: number;
  rateBytesPerSec?: number;
  remoteIp?: string;
  protocol?: string;
  streams?: number;
  resumedBytes?: number;
  errorCode?: string;
  errorMessage?: string;
  checksumValue?: string;
  resume?: ResumeState;
}
export type EndResult =
  | { kind: 'finished' | 'failed' | 'canceled' | 'stale' }
  | { kind: 'queued'; member: string; delayMs: number };

/** `<jobId>_<idx>_<q>`: the BullMQ job id of one queueing of one file. */
export function parseMember(member: string): { jobId: string; idx: number; q: number } {
  const m = /^(.+)_(\d+)_(\d+)$/.exec(member);
  if (!m) throw new Error(`bad queue member ${member}`);
  return { jobId: m[1]!, idx: Number(m[2]), q: Number(m[3]) };
}

function emptyCounts(): StateCounts {
  return Object.fromEntries(FILE_STATES.map((s) => [s, 0])) as StateCounts;
}

/** Index of the current rate window (RATE_WINDOW_SEC long). */
function rateWindow(): number {
  return Math.floor(Date.now() / 1000 / RATE_WINDOW_SEC);
}

/**
 * The per-endpoint circuit breaker (scheduler.endpointBreaker*): after `failures` attempts in a row that could not
 * reach an endpoint at all, no new transfer touching it starts for `cooldownMs` (doubling on every re-trip, up to
 * `maxCooldownMs`); its files wait in their lanes without spending retries. Then one transfer at a time probes it,
 * and the first success closes the breaker. State in Redis, so every worker process and the status see it.
 */
export interface EndpointBreakerSettings {
  failures: number;
  cooldownMs: number;
  maxCooldownMs: number;
  /** From its first trip, how long a breaker holds files back; after that they run and fail by their retries. */
  giveUpMs: number;
}

export const DEFAULT_ENDPOINT_BREAKER: EndpointBreakerSettings = { failures: 5, cooldownMs: 30_000, maxCooldownMs: 900_000, giveUpMs: 3_600_000 };

/**
 * An endpoint whose breaker is tripped: `open` until retryAt, then `half-open` (one probing transfer at a time);
 * `given-up` once it has held files back for the give-up time (they run again and fail by their retries).
 */
export interface UnavailableEndpoint {
  endpoint: string;
  state: 'open' | 'half-open' | 'given-up';
  retryAt: string;
  holdsFilesUntil: string;
  cooldownMs: number;
  failuresInARow: number;
}

export class JobStore {
  readonly redis: ScriptedRedis;
  readonly prefix: string;

  constructor(redis: Redis, prefix: string, private readonly breaker: EndpointBreakerSettings = DEFAULT_ENDPOINT_BREAKER) {
    this.prefix = prefix;
    const r = redis as ScriptedRedis;
    const define = (name: string, src: string) => {
      if (!(name in r)) r.defineCommand(name, { numberOfKeys: 1, lua: src });
    };
    define('cpFeed', lua.FEED);
    define('cpStart', lua.START);
    define('cpEnd', lua.END);
    define('cpCancelBatch', lua.CANCEL_BATCH);
    define('cpCancelFile', lua.CANCEL_FILE);
    define('cpRegister', lua.REGISTER);
    this.redis = r;
  }

  private get route(): string {
    return `${this.prefix}:owners`;
  }
  jobKey(jobId: string): string {
    return `${this.prefix}:job:${jobId}`;
  }

  /**
   * Writes a job and all its files, then registers it atomically. Large jobs are written in pipelined
   * chunks under a safety TTL; only the final REGISTER script makes them visible and permanent.
   */
  async createJob(job: NewJob): Promise<{ jobId: string }> {
    const jobId = randomUUID();
    const jk = this.jobKey(jobId);
    const specKey = `${jk}:spec`;
    const submittedKey = `${jk}:st:SUBMITTED`;
    const linksKey = `${jk}:links`;
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
      const laneKey = `${this.prefix}:lane:${jobId}:${link}`;
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
    if (members.length) await this.redis.zrem(`${this.prefix}:outbox`, ...members);
  }

  /** Members whose BullMQ add was due more than `graceMs` ago and never confirmed, with their due time. */
  async staleOutbox(graceMs: number, limit = 1000): Promise<Array<{ member: string; due: number }>> {
    const raw = await this.redis.zrangebyscore(`${this.prefix}:outbox`, '-inf', Date.now() - graceMs, 'WITHSCORES', 'LIMIT', 0, limit);
    const out: Array<{ member: string; due: number }> = [];
    for (let i = 0; i < raw.length; i += 2) out.push({ member: raw[i]!, due: Number(raw[i + 1]) });
    return out;
  }

  async start(member: string, worker: string): Promise<StartResult> {
    const { jobId, idx, q } = parseMember(member);
    const r = (await this.redis.cpStart(this.route, this.prefix, jobId, idx, q, worker, Date.now())) as string[];
    if (r[0] === 'run') {
      return { kind: 'run', spec: decodeSpec(r[1]!), state: decodeFileState(r[2]), params: JSON.parse(r[3]!) as JobParams, run: Number(r[4]) };
    }
    if (r[0] === 'deferred') return { kind: 'deferred' };
    return { kind: 'skip', reason: r[1] ?? 'unknown' };
  }

  /**
   * `link` is the file's link (as returned by start), passed back so END need not decode the spec.
   * `unreachableEndpoint`: the endpoint (`host:port`) this attempt could not reach at all, for the breaker.
   */
  async end(
    jobId: string, idx: number, run: number, link: string, outcome: EndOutcome, report: EndReport,
    retryable = false, retryDelayMs = 0, unreportedBytes = 0, unreachableEndpoint = '',
  ): Promise<EndResult> {
    const b = this.breaker;
    const r = (await this.redis.cpEnd(
      this.route, this.prefix, jobId, idx, run, outcome, Date.now(), JSON.stringify(report), retryable ? '1' : '0', retryDelayMs, link,
      Math.max(0, unreportedBytes), rateWindow(), unreachableEndpoint, b.failures, b.cooldownMs, b.maxCooldownMs, b.giveUpMs,
    )) as [string, string?, number?];
    if (r[0] === 'queued') return { kind: 'queued', member: r[1]!, delayMs: Number(r[2]) };
    return { kind: r[0] as 'finished' | 'failed' | 'canceled' | 'stale' };
  }

  /** Live progress of an active file: bytes so far (for the job's bytesDone) and the rate windows. */
  async progress(jobId: string, idx: number, bytes: number, delta: number): Promise<void> {
    const w = rateWindow();
    const p = this.redis.pipeline();
    p.hset(`${this.jobKey(jobId)}:prog`, idx, bytes);
    if (delta > 0) {
      for (const scope of [jobId, '_all']) {
        const k = `${this.prefix}:rate:${scope}:${w}`;
        p.incrby(k, delta);
        p.expire(k, RATE_WINDOW_SEC * 4);
      }
    }
    await p.exec();
  }

  /**
   * Persists an active transfer's latest durable checkpoint, so that if its worker dies the next run
   * (START's lost-worker path) resumes from it instead of from zero.
   */
  async saveCheckpoints(items: Array<{ jobId: string; idx: number; resume: ResumeState }>): Promise<void> {
    if (items.length === 0) return;
    const p = this.redis.pipeline();
    for (const { jobId, idx, resume } of items) p.hset(`${this.jobKey(jobId)}:cp`, idx, JSON.stringify(resume));
    await p.exec();
  }

  /** Bytes per second over the last complete rate window (job id or '_all'). */
  async rate(scope: string): Promise<number> {
    const w = Math.floor(Date.now() / 1000 / RATE_WINDOW_SEC) - 1;
    const v = await this.redis.get(`${this.prefix}:rate:${scope}:${w}`);
    return v ? Number(v) / RATE_WINDOW_SEC : 0;
  }

  async getJob(jobId: string): Promise<JobSummary> {
    const jk = this.jobKey(jobId);
    const [h, prog, rate] = await Promise.all([this.redis.hgetall(jk), this.redis.hvals(`${jk}:prog`), this.rate(jobId)]);
    if (!h['state']) throw new JobNotFoundError(jobId);
    return this.summarise(jobId, h, prog, rate);
  }

  private summarise(jobId: string, h: Record<string, string>, prog: string[], rate: number): JobSummary {
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

  async listJobs(limit: number, cursor?: string, state?: JobState): Promise<{ jobs: JobSummary[]; nextCursor?: string }> {
    // Newest first; the cursor is the creation score of the last job returned.
    const max = cursor ? `(${cursor}` : '+inf';
    const out: JobSummary[] = [];
    let from = max;
    let nextCursor: string | undefined;
    for (let guard = 0; guard < 50 && out.length < limit; guard++) {
      const raw = await this.redis.zrevrangebyscore(`${this.prefix}:jobs`, from, '-inf', 'WITHSCORES', 'LIMIT', 0, limit);
      if (raw.length === 0) break;
      for (let i = 0; i < raw.length && out.length < limit; i += 2) {
        const id = raw[i]!;
        nextCursor = raw[i + 1]!;
        try {
          const j = await this.getJob(id);
          if (!state || j.state === state) out.push(j);
        } catch {
          /* expired between listing and reading */
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
    const jk = this.jobKey(jobId);
    const [specs, states, prog] = await Promise.all([
      this.redis.hmget(`${jk}:spec`, ...idxs),
      this.redis.hmget(`${jk}:fs`, ...idxs),
      this.redis.hmget(`${jk}:prog`, ...idxs),
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
      out.push(v);
    }
    return out;
  }

  async listFiles(jobId: string, opts: { state?: FileState; cursor?: number; limit: number }): Promise<{ files: FileView[]; nextCursor?: number }> {
    const jk = this.jobKey(jobId);
    const n = Number(await this.redis.hget(jk, 'n'));
    if (!n) throw new JobNotFoundError(jobId);
    const after = opts.cursor ?? -1;
    let idxs: string[];
    if (opts.state) {
      idxs = await this.redis.zrangebyscore(`${jk}:st:${opts.state}`, `(${after}`, '+inf', 'LIMIT', 0, opts.limit);
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
      if (!(await this.redis.exists(this.jobKey(jobId)))) throw new JobNotFoundError(jobId);
      throw new FileNotFoundInJobError(jobId, String(fileId));
    }
    return v;
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
    await this.redis.publish(`${this.prefix}:ctl`, JSON.stringify({ op: 'cancel', job: jobId }));
    return this.getJob(jobId);
  }

  /**
   * Fails the still-waiting files (SUBMITTED, QUEUED) of every active job whose maxTimeInQueueSec has
   * passed since submission, as FTS cancels expired queued jobs. Returns how many jobs were expired.
   */
  async expireQueued(now = Date.now()): Promise<number> {
    const ids = await this.redis.smembers(`${this.prefix}:jobs:active`);
    if (ids.length === 0) return 0;
    // One round trip for every active job's deadline fields (this runs every few seconds in every worker).
    const p = this.redis.pipeline();
    for (const jobId of ids) p.hmget(this.jobKey(jobId), 'created', 'maxq', 'c:SUBMITTED', 'c:QUEUED');
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
    return this.getFile(jobId, fileId);
  }

  /** Sets a per-link or per-endpoint active-transfer limit (null removes the override). */
  async setLimit(kind: 'link' | 'ep', name: string, limit: number | null): Promise<void> {
    if (limit === null) await this.redis.hdel(`${this.prefix}:lim:${kind}`, name);
    else await this.redis.hset(`${this.prefix}:lim:${kind}`, name, limit);
  }

  /** Endpoints whose circuit breaker is tripped (open, half-open or given up), for the status. */
  async unavailableEndpoints(): Promise<UnavailableEndpoint[]> {
    const [trip, cd, fails, hold] = await Promise.all([
      this.redis.hgetall(`${this.prefix}:trip`), this.redis.hgetall(`${this.prefix}:tripcd`), this.redis.hgetall(`${this.prefix}:epfail`),
      this.redis.hgetall(`${this.prefix}:triphold`),
    ]);
    const now = Date.now();
    return Object.entries(trip).map(([endpoint, until]) => {
      const holdUntil = Number(hold[endpoint] ?? 0);
      const state = holdUntil <= now ? 'given-up' as const : Number(until) > now ? 'open' as const : 'half-open' as const;
      return {
        endpoint, state, retryAt: new Date(Number(until)).toISOString(), holdsFilesUntil: new Date(holdUntil).toISOString(),
        cooldownMs: Number(cd[endpoint] ?? 0), failuresInARow: Number(fails[endpoint] ?? 0),
      };
    });
  }

  /**
   * An operator says the endpoint is back (admin start/resume on it): its breaker closes now, announced on the
   * events channel as END announces a close by success.
   */
  async closeEndpointBreaker(endpoint: string): Promise<boolean> {
    const [[, removed]] = (await this.redis.multi()
      .hdel(`${this.prefix}:trip`, endpoint).hdel(`${this.prefix}:tripcd`, endpoint).hdel(`${this.prefix}:epfail`, endpoint)
      .hdel(`${this.prefix}:triphold`, endpoint)
      .exec()) as Array<[Error | null, number]>;
    if (removed === 1) await this.redis.publish(`${this.prefix}:events`, JSON.stringify({ t: 'endpoint', endpoint, state: 'available' }));
    return removed === 1;
  }

  /** Slots held per link and endpoint (files QUEUED or ACTIVE), files QUEUED, and files ACTIVE port-wide. */
  async activeSlots(): Promise<{ links: Record<string, number>; endpoints: Record<string, number>; queued: number; active: number }> {
    const [links, endpoints, queued, active] = await Promise.all([
      this.redis.hgetall(`${this.prefix}:act:link`),
      this.redis.hgetall(`${this.prefix}:act:ep`),
      this.redis.get(`${this.prefix}:queued`),
      this.redis.get(`${this.prefix}:active`),
    ]);
    const num = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v)]));
    return { links: num(links), endpoints: num(endpoints), queued: Number(queued ?? 0), active: Number(active ?? 0) };
  }
}
