/**
 * The transfer worker process shell: a BullMQ Worker over the run queue, the feeder that moves files
 * fairly from the job lanes into that queue, the outbox reconciler, the control channel (cancel + admin
 * operations) and heartbeats. All decisions live in services/jobs; this file only wires them to BullMQ
 * and timers.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { ActiveTransfers } from '../services/jobs/active-transfers.js';
import { AdminStateStore, type AdminEvent, type AdminState, scopeKey } from '../services/jobs/admin-state.js';
import { JobStore } from '../services/jobs/job-store.js';
import { TRANSFER_QUEUE, transferJobOptions } from '../services/jobs/queues.js';
import { connectRedis, redisOptionsFromUrl } from '../services/jobs/redis-connection.js';
import { ScopeGates } from '../services/jobs/scope-gates.js';
import { runFiles, type RunnerDeps } from '../services/jobs/transfer-runner.js';
import { EndBatcher } from '../services/jobs/end-batcher.js';
import { packOf, runPackedBundle, type PackedDeps } from '../services/jobs/packed-runner.js';
import { linkEndpoints, type JobParams } from '../services/jobs/model.js';
import { ScopedRateLimits } from '../services/throttle/scoped-rate-limits.js';
import { RateLimitStore } from '../services/jobs/rate-limits.js';
import type { ResumeState, TransferFn } from '../services/transfer/types.js';
import { outboundTokensFromConfig, type OutboundTokens } from '../services/auth/outbound-tokens.js';
import { GrantStore } from '../services/auth/token-exchange.js';
import { TokenSealer } from '../services/auth/token-seal.js';

export interface WorkerPoolOptions {
  redisUrl: string;
  transfer: TransferFn;
  /** Whether an existing destination already holds a file (the engine's side of the `existing` policy). */
  inspectDestination?: RunnerDeps['inspectDestination'];
  log?: (msg: string) => void;
  /** Tokens for remote endpoints; default: parsed from auth.outbound. Closed with the pool. */
  outbound?: OutboundTokens;
  /** This process's worker id (attempts record it); a supervisor names its children so it can tell what they held. */
  workerId?: string;
  /** Packed uploads (services/jobs/packed-runner.ts): without it, packed jobs' files run one by one. */
  putPacked?: PackedDeps['putPacked'];
  /** Small remote sources of packed jobs fetched into memory; without it they run one by one. */
  fetchSource?: PackedDeps['fetchSource'];
  /** Processing stages for files whose job (or operator rules) ask for them; the caller closes it. */
  processing?: RunnerDeps['processing'];
}

/**
 * BullMQ's lock, renewal and stalled-check periods that keep the promise of workers.lockDurationMs (L): a killed
 * worker's files are claimed again within L. BullMQ moves a job back to wait when its lock has expired at a stalled
 * check, so a file can wait for the lock (renewed every lockRenewTime, it expires at most lockDuration after the
 * last renewal before the death) plus up to two check periods (the dead worker may have taken the last check's
 * turn). With lockDuration L/2 and checks every L/8 that is at most 3L/4, leaving room for the pick-up.
 */
export function claimTimings(lockDurationMs: number): { lockDuration: number; lockRenewTime: number; stalledInterval: number } {
  const lockDuration = Math.max(500, Math.floor(lockDurationMs / 2));
  return { lockDuration, lockRenewTime: Math.floor(lockDuration / 2), stalledInterval: Math.max(100, Math.floor(lockDurationMs / 8)) };
}

export interface WorkerHeartbeat {
  id: string;
  pool: string;
  host: string;
  pid: number;
  startedAt: number;
  hb: number;
  active: number;
  concurrency: number;
  state: AdminState | 'drained';
  bytesPerSec: number;
}

const FEED_IDLE_MS = 100;
const FEED_COALESCE_MS = 5;
const PROGRESS_FLUSH_MS = 1000;
const OUTBOX_CHECK_MS = 5000;
const OUTBOX_GRACE_MS = 15_000;
const REQUEUE_DELAY_MS = 500;
const QUEUE_EXPIRY_CHECK_MS = 2000;

export class TransferPool {
  readonly id: string;
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly store: JobStore;
  private readonly admin: AdminStateStore;
  private readonly queue: Queue;
  private worker!: Worker;
  readonly gates = new ScopeGates();
  readonly active = new ActiveTransfers();
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  private feeding = false;
  private feedTimer: NodeJS.Timeout | undefined;
  private feedAgain = false;
  private aliveConcurrency: number;
  /** Effective state of this process: port and pool states combined. */
  private portState: AdminState = 'running';
  private poolState: AdminState = 'running';
  private bytesLastBeat = 0;
  private bytesTotal = 0;
  private lastBeatAt = Date.now();
  private readonly startedAt = Date.now();
  /** Live worker processes (from heartbeats): a job's bandwidth cap is split between them. */
  /** Per-job bandwidth buckets shared by that job's transfers in this process. */
  /** Live byte-rate caps by scope (port, link, owner, job), shared with other worker processes. */
  private readonly limits = new ScopedRateLimits();
  private readonly limitStore: RateLimitStore;
  private deps: RunnerDeps | undefined;
  private readonly packedJobs = new Map<string, boolean>();
  private readonly outbound: OutboundTokens | undefined;

  constructor(private readonly cfg: Config, private readonly opts: WorkerPoolOptions) {
    this.id = opts.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.redis = connectRedis(opts.redisUrl, 'worker');
    this.sub = connectRedis(opts.redisUrl, 'worker');
    this.store = new JobStore(this.redis, cfg.redis.prefix, {
      failures: cfg.scheduler.endpointBreakerFailures,
      cooldownMs: cfg.scheduler.endpointBreakerCooldownSec * 1000,
      maxCooldownMs: cfg.scheduler.endpointBreakerMaxCooldownSec * 1000,
      giveUpMs: cfg.scheduler.endpointBreakerGiveUpSec * 1000,
    });
    this.admin = new AdminStateStore(this.redis, cfg.redis.prefix);
    this.limitStore = new RateLimitStore(this.redis, cfg.redis.prefix);
    this.queue = new Queue(TRANSFER_QUEUE, { connection: redisOptionsFromUrl(opts.redisUrl, 'worker') as ConnectionOptions, prefix: cfg.redis.prefix });
    this.aliveConcurrency = cfg.workers.concurrency;
    this.outbound = opts.outbound ?? outboundTokensFromConfig(cfg.auth);
    // Token exchange: the grants the gateway sealed at submission are opened here (services/auth/token-exchange.ts).
    if (this.outbound && this.outbound.exchangeEntries.length > 0) {
      this.outbound.attachGrants(new GrantStore(this.redis, cfg.redis.prefix, TokenSealer.fromConfig(cfg.auth, cfg.dataDir)));
    }
  }

  private log(msg: string): void {
    this.opts.log?.(`[worker ${this.id}] ${msg}`);
  }

  async start(): Promise<void> {
    const prefix = this.cfg.redis.prefix;
    await this.sub.subscribe(this.store.keys.port('control'));
    this.sub.on('message', (_ch, msg) => this.onControl(msg));
    // Re-read every admin state after a reconnection: pub/sub messages sent meanwhile are lost. So may be a cancel:
    // the running transfers are checked against their files' cancel flags.
    this.sub.on('ready', () => {
      void this.syncAdminState();
      void this.syncLimits();
      void this.recheckCancels();
    });
    this.worker = new Worker(TRANSFER_QUEUE, (job: Job, token?: string) => this.process(job, token), {
      connection: redisOptionsFromUrl(this.opts.redisUrl, 'worker') as ConnectionOptions,
      prefix,
      concurrency: this.cfg.workers.concurrency,
      ...claimTimings(this.cfg.workers.lockDurationMs),
      // A killed worker's files must be requeued however often it happens, never failed by BullMQ.
      maxStalledCount: 1_000_000,
      autorun: false,
    });
    this.worker.on('error', (e) => this.log(`queue error: ${e.message}`));
    await this.syncAdminState();
    await this.syncLimits();
    void this.worker.run();
    await this.worker.waitUntilReady();
    await this.heartbeat();
    this.timers.push(setInterval(() => void this.heartbeat(), this.cfg.workers.heartbeatMs));
    this.timers.push(setInterval(() => void this.flushProgress(), PROGRESS_FLUSH_MS));
    this.timers.push(setInterval(() => void this.reconcileOutbox(), OUTBOX_CHECK_MS));
    this.timers.push(setInterval(() => void this.store.expireQueued().catch((e: Error) => this.log(`queue expiry: ${e.message}`)), QUEUE_EXPIRY_CHECK_MS));
    this.timers.push(setInterval(() => this.kickFeeder(), FEED_IDLE_MS));
    this.kickFeeder();
  }

  private async process(job: Job, token?: string): Promise<void> {
    const members = (job.data as { m?: string[] }).m ?? [job.id!];
    // A bundle of a packed job's files goes as archives (one claim and one close per file all the same).
    if (this.opts.putPacked && this.takingWork() && !this.closed && await this.isPackedJob(members[0]!)) {
      await runPackedBundle(members, this.runnerDeps, {
        putPacked: this.opts.putPacked,
        ...(this.opts.fetchSource ? { fetchSource: this.opts.fetchSource } : {}),
        unpackLimits: { maxMemberBytes: this.cfg.processing.tarMaxMemberBytes, maxNameBytes: this.cfg.processing.tarMaxNameBytes, maxMembers: this.cfg.processing.tarMaxMembers },
      });
      this.kickFeeder();
      return;
    }
    if (!this.takingWork() || this.closed) {
      // Paused, drained or stopped: start nothing. A single file goes back to the queue (delayed); a bundle is
      // re-queued file by file. Nothing waits here, so nothing holds up a shutdown.
      if (members.length === 1) {
        await job.moveToDelayed(Date.now() + REQUEUE_DELAY_MS, token);
        throw new DelayedError();
      }
      await this.enqueue(members.map((member) => ({ member, delayMs: REQUEUE_DELAY_MS })));
    } else {
      // A bundle is claimed with one START and its files run at once (each holds its link slot since the feed); a file whose turn comes after the worker stopped
      // taking work goes back to the queue (runFiles).
      await runFiles(members, this.runnerDeps, { canStart: () => this.takingWork() && !this.closed, parallel: this.cfg.scheduler.bundleFiles });
    }
    this.kickFeeder();
  }

  /** Whether a member's job asked for packing (its params read once per job and kept). */
  private async isPackedJob(member: string): Promise<boolean> {
    const jobId = member.slice(0, member.lastIndexOf('_', member.lastIndexOf('_') - 1));
    let known = this.packedJobs.get(jobId);
    if (known === undefined) {
      const raw = await this.redis.hget(this.store.keys.job(jobId), 'params');
      known = raw ? packOf(JSON.parse(raw) as JobParams) !== undefined : false;
      if (this.packedJobs.size >= 1000) this.packedJobs.clear();
      this.packedJobs.set(jobId, known);
    }
    return known;
  }

  private get runnerDeps(): RunnerDeps {
    return this.deps ??= {
      store: this.store,
      ends: new EndBatcher(this.store, () => this.kickFeeder()),
      transfer: this.opts.transfer,
      ...(this.opts.inspectDestination ? { inspectDestination: this.opts.inspectDestination } : {}),
      ...(this.opts.processing ? { processing: this.opts.processing } : {}),
      workerId: this.id,
      gates: this.gates,
      active: this.active,
      enqueue: (items: Array<{ member: string; delayMs: number }>) => this.enqueue(items),
      limitersFor: (jobId: string, params: JobParams, link: string) =>
        this.limits.acquire({ jobId, link, owner: params.owner, jobCap: params.bandwidthBytesPerSec }),
      defaults: { connections: this.cfg.transfer.connections, streams: this.cfg.transfer.streams },
      ...(this.outbound ? { outbound: this.outbound } : {}),
    };
  }

  /** Re-reads every live rate cap (on start, on a `limits` control message, after a reconnection). */
  private async syncLimits(): Promise<void> {
    try {
      this.limits.setCaps(await this.limitStore.caps());
    } catch (e) {
      if (!this.closed) this.log(`rate limits sync: ${(e as Error).message}`);
    }
  }

  /** Adds run-queue entries (single members or ','-joined bundles) and confirms their outbox records. */
  private async enqueue(items: Array<{ member: string; delayMs: number }>): Promise<void> {
    if (items.length === 0) return;
    await this.queue.addBulk(items.map(({ member, delayMs }) => ({
      name: 'file',
      data: member.includes(',') ? { m: member.split(',') } : {},
      opts: transferJobOptions(member, delayMs),
    })));
    await this.store.ackOutbox(items.flatMap((i) => i.member.split(',')));
  }

  /**
   * Asks for a feeding round soon. Kicks within FEED_COALESCE_MS are merged, so a burst of completions
   * costs one FEED script and one BullMQ addBulk for many files instead of a round trip each.
   */
  private kickFeeder(): void {
    if (this.closed || this.feedTimer) return;
    this.feedTimer = setTimeout(() => {
      this.feedTimer = undefined;
      void this.feedRound();
    }, FEED_COALESCE_MS);
  }

  /** Feeds until the run queue holds its look-ahead budget or there is nothing left to feed. */
  private async feedRound(): Promise<void> {
    if (this.feeding) {
      this.feedAgain = true;
      return;
    }
    this.feeding = true;
    try {
      do {
        this.feedAgain = false;
        if (!this.takingWork()) break;
        const { scheduler } = this.cfg;
        // Bundled small files run one after another in a slot, so keep enough files queued to fill every slot.
        const ahead = Math.ceil(scheduler.feedAheadFactor * this.aliveConcurrency * Math.max(1, scheduler.bundleFiles));
        const members = await this.store.feed(scheduler.feedBatch, ahead, scheduler.linkMaxActive, scheduler.endpointMaxActive, {
          maxBytes: scheduler.bundleMaxBytes, files: scheduler.bundleFiles,
        });
        if (members.length) await this.enqueue(members.map((member) => ({ member, delayMs: 0 })));
        if (members.length > 0) this.feedAgain = true;
      } while (this.feedAgain && !this.closed);
    } catch (e) {
      if (!this.closed) this.log(`feeder: ${(e as Error).message}`);
    } finally {
      this.feeding = false;
    }
  }

  private takingWork(): boolean {
    return this.portState === 'running' && this.poolState === 'running';
  }

  private async reconcileOutbox(): Promise<void> {
    try {
      const stale = await this.store.staleOutbox(OUTBOX_GRACE_MS);
      if (stale.length === 0) return;
      const now = Date.now();
      this.log(`re-adding ${stale.length} queue entries whose enqueue was never confirmed`);
      await this.enqueue(stale.map(({ member, due }) => ({ member, delayMs: Math.max(0, due - now) })));
    } catch (e) {
      if (!this.closed) this.log(`outbox: ${(e as Error).message}`);
    }
  }

  private async flushProgress(): Promise<void> {
    const writes: Promise<void>[] = [];
    const checkpoints: Array<{ jobId: string; idx: number; run: number; resume: ResumeState }> = [];
    for (const t of this.active.values()) {
      if (t.pendingCheckpoint) {
        checkpoints.push({ jobId: t.jobId, idx: t.idx, run: t.run, resume: t.pendingCheckpoint });
        t.pendingCheckpoint = undefined;
      }
      if (t.bytes === t.reportedBytes) continue;
      const delta = t.bytes - t.reportedBytes;
      t.reportedBytes = t.bytes;
      this.bytesTotal += Math.max(0, delta);
      writes.push(this.store.progress(t.jobId, t.idx, t.bytes, delta, t.link));
    }
    writes.push(this.store.saveCheckpoints(checkpoints));
    await Promise.allSettled(writes);
  }

  private effectiveState(): WorkerHeartbeat['state'] {
    const s = this.portState !== 'running' ? this.portState : this.poolState;
    if (s === 'draining' && this.active.size === 0) return 'drained';
    return s;
  }

  private async heartbeat(): Promise<void> {
    const now = Date.now();
    const rate = ((this.bytesTotal - this.bytesLastBeat) * 1000) / Math.max(1, now - this.lastBeatAt);
    this.bytesLastBeat = this.bytesTotal;
    this.lastBeatAt = now;
    const hb: WorkerHeartbeat = {
      id: this.id, pool: this.cfg.workers.pool, host: hostname(), pid: process.pid, startedAt: this.startedAt, hb: now,
      active: this.active.size, concurrency: this.cfg.workers.concurrency, state: this.effectiveState(), bytesPerSec: Math.round(rate),
    };
    try {
      const key = this.store.keys.port('workers');
      await this.redis.hset(key, this.id, JSON.stringify(hb));
      // Size the feed-ahead budget on every live worker's concurrency, not just ours.
      const all = await this.redis.hvals(key);
      let sum = 0;
      let alive = 0;
      for (const raw of all) {
        const w = JSON.parse(raw) as WorkerHeartbeat;
        if (now - w.hb < this.cfg.workers.heartbeatMs * 5 && w.state === 'running') {
          sum += w.concurrency;
          alive++;
        }
      }
      this.limits.setWorkers(alive);
      this.aliveConcurrency = Math.max(sum, this.takingWork() ? this.cfg.workers.concurrency : 0);
    } catch (e) {
      if (!this.closed) this.log(`heartbeat: ${(e as Error).message}`);
    }
  }

  private onControl(raw: string): void {
    let msg: { op: string; job?: string; file?: number } | AdminEvent;
    try {
      msg = JSON.parse(raw) as typeof msg;
    } catch {
      return;
    }
    if (msg.op === 'cancel') {
      const m = msg as { job?: string; file?: number };
      this.active.abortWhere((t) => t.jobId === m.job && (m.file === undefined || t.idx === m.file), 'cancel');
    } else if (msg.op === 'admin') {
      void this.applyAdmin(msg as AdminEvent);
    } else if (msg.op === 'limits') {
      void this.syncLimits();
    }
  }

  /** Aborts the running transfers whose file was canceled (a cancel message this process may have missed). */
  private async recheckCancels(): Promise<void> {
    try {
      const running = [...this.active.values()];
      const flags = await this.store.queries.cancelRequested(running);
      const canceled = new Set(running.filter((_, i) => flags[i]));
      if (canceled.size) this.log(`aborting ${this.active.abortWhere((t) => canceled.has(t), 'cancel')} transfers canceled while the control channel was down`);
    } catch (e) {
      if (!this.closed) this.log(`cancel recheck: ${(e as Error).message}`);
    }
  }

  private async syncAdminState(): Promise<void> {
    try {
      for (const rec of await this.admin.all()) {
        await this.applyAdmin({ op: 'admin', action: 'start', scope: rec.scope, target: rec.target, state: rec.state, at: rec.since ?? 0 }, true);
      }
    } catch (e) {
      if (!this.closed) this.log(`admin sync: ${(e as Error).message}`);
    }
  }

  /** Applies one admin state to this process: gates, BullMQ intake and in-flight transfers. */
  private async applyAdmin(ev: AdminEvent, fromSync = false): Promise<void> {
    const { scope, target, state, action } = ev;
    if (scope === 'pool' && target !== this.cfg.workers.pool) return;
    if (scope === 'port' || scope === 'pool') {
      const gate = scope === 'port' ? this.gates.port : this.gates.pool;
      if (scope === 'port') this.portState = state;
      else this.poolState = state;
      if (state === 'paused') gate.close();
      else gate.openGate();
      if (state === 'stopped' || (action === 'restart' && !fromSync)) this.active.abortWhere(() => true, 'stop');
      if (this.takingWork()) {
        if (this.worker.isPaused()) this.worker.resume();
        this.kickFeeder();
      } else if (!this.worker.isPaused()) {
        // Stop fetching; jobs already running continue (held by the gate when paused).
        await this.worker.pause(true);
      }
    } else {
      const gate = scope === 'link' ? this.gates.link(target) : this.gates.endpoint(target);
      if (state === 'paused') gate.close();
      else gate.openGate();
      if (state === 'stopped' || (action === 'restart' && !fromSync)) {
        this.active.abortWhere((t) => {
          if (scope === 'link') return t.link === target;
          return linkEndpoints(t.link).includes(target);
        }, 'stop');
      }
      if (state === 'running') this.kickFeeder();
    }
    this.log(`admin ${scopeKey(scope, target)} → ${state}${fromSync ? ' (sync)' : ''}`);
  }

  /** The BullMQ worker's id: the prefix of the lock tokens of the run-queue entries this process holds. */
  get queueWorkerId(): string {
    return this.worker.id;
  }

  /** Number of transfers running in this process. */
  get activeCount(): number {
    return this.active.size;
  }

  /**
   * Graceful stop: take nothing new, let in-flight transfers finish for up to `timeoutMs`, then abort and
   * requeue the rest (with their resume offsets), and close.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    await this.worker.pause(true);
    this.portState = this.portState === 'running' ? 'draining' : this.portState;
    const deadline = Date.now() + timeoutMs;
    while (this.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (this.active.size > 0) {
      this.log(`drain timeout: requeueing ${this.active.size} in-flight transfers`);
      this.active.abortWhere(() => true, 'shutdown');
    }
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.feedTimer) clearTimeout(this.feedTimer);
    this.active.abortWhere(() => true, 'shutdown');
    // worker.close() waits for the processors, which end promptly once aborted and record the requeue.
    await this.worker.close();
    await this.flushProgress();
    await this.redis.hdel(this.store.keys.port('workers'), this.id).catch(() => undefined);
    await this.queue.close();
    this.sub.disconnect();
    this.redis.disconnect();
    await this.outbound?.close();
  }
}
