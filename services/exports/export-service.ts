/**
 * Recurring exports on BullMQ job schedulers: one scheduler per export (`export:<name>`, cron with time zone or
 * every N minutes) puts a tick on the `exports` queue; this service's worker turns each tick into a run
 * (export-run.ts). BullMQ keeps one pending tick per scheduler and computes the next from the time the current one
 * is taken, so ticks missed while no port ran collapse into one catch-up run. Pausing removes the scheduler,
 * resuming puts it back; "run now" adds a one-off tick.
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Principal } from '../auth/principal.js';
import type { JobQueries } from '../jobs/job-queries.js';
import type { RawSubmission } from '../jobs/submission-schema.js';
import { clockedRepeatStrategy, WALL_CLOCK, type ExportClock } from './export-clock.js';
import { checkDefinition, timeZoneOf, type ExportDefinition } from './export-definition.js';
import { newRunId, runExport, type RunDeps } from './export-run.js';
import { ExportStore, type ExportRecord, type RunReport } from './export-store.js';
import { selectionRoot, type LocalAreaMap } from './file-selection.js';
import { getNextMillis } from 'bullmq';

export const EXPORTS_QUEUE = 'exports';

export interface ExportServiceDeps {
  redis: Redis;
  prefix: string;
  connection: ConnectionOptions;
  queries: JobQueries;
  /** The port's job submission (the REST API's path: normalisation, the owner's rights, the owner's queue bound). */
  submit(principal: Principal, raw: RawSubmission): Promise<{ jobId: string }>;
  localAreas: readonly LocalAreaMap[];
  fetchText(url: string): Promise<string>;
  maxFilesPerJob: number;
  /** Whether this process runs export ticks (a gateway replica may only serve the API). */
  runWorker: boolean;
  clock?: ExportClock;
  pollMs?: number;
  historyRuns?: number;
  concurrency?: number;
  /** Longest a worker idles before looking for ticks again (BullMQ drainDelay; a tick it added itself may wait this long). */
  drainDelaySec?: number;
  onError?(err: unknown): void;
}

export interface ExportView extends ExportRecord {
  nextRunAt?: string;
  lastRun?: RunReport;
}

interface TickData {
  export: string;
  manual?: boolean;
  runId?: string;
}

export class ExportService {
  readonly store: ExportStore;
  readonly clock: ExportClock;
  private readonly queue: Queue;
  private worker?: Worker;
  private closing = false;
  private readonly runDeps: RunDeps;

  constructor(private readonly deps: ExportServiceDeps) {
    this.clock = deps.clock ?? WALL_CLOCK;
    this.store = new ExportStore(deps.redis, deps.prefix);
    const settings = { repeatStrategy: clockedRepeatStrategy(this.clock) };
    this.queue = new Queue(EXPORTS_QUEUE, { connection: deps.connection, prefix: deps.prefix, settings });
    this.runDeps = {
      store: this.store, queries: deps.queries, submit: deps.submit, localAreas: deps.localAreas, fetchText: deps.fetchText,
      clock: this.clock, pollMs: deps.pollMs ?? 1000, historyRuns: deps.historyRuns ?? 100, maxFilesPerJob: deps.maxFilesPerJob,
      closing: () => this.closing,
    };
    if (deps.runWorker) {
      this.worker = new Worker(EXPORTS_QUEUE, (job) => this.process(job as Job<TickData>), {
        connection: deps.connection, prefix: deps.prefix, settings, concurrency: deps.concurrency ?? 16, drainDelay: deps.drainDelaySec ?? 1,
        // A run waiting for its jobs when the port stops is taken up again after a restart, however often that happens.
        maxStalledCount: 1000,
      });
      this.worker.on('error', (e) => deps.onError?.(e));
    }
  }

  private schedulerId(name: string): string {
    return `export:${name}`;
  }

  /** Puts the export's BullMQ job scheduler in place (or replaces it with the definition's schedule). */
  private async schedule(def: ExportDefinition): Promise<void> {
    const s = def.schedule;
    const template = { name: 'tick', data: { export: def.name } satisfies TickData, opts: { removeOnComplete: true, removeOnFail: 1000 } };
    if ('cron' in s) {
      await this.queue.upsertJobScheduler(this.schedulerId(def.name), { pattern: s.cron, tz: timeZoneOf(s) }, template);
    } else {
      const every = Math.max(1, Math.round((s.everyMinutes * 60_000) / this.clock.speed));
      // The first tick one period from now, not at once.
      await this.queue.upsertJobScheduler(this.schedulerId(def.name), { every, startDate: Date.now() + every }, template);
    }
  }

  /** Checks a definition against the port (local areas) as well as itself. */
  check(def: ExportDefinition, principal: Principal): void {
    checkDefinition(def);
    selectionRoot(def.selection, this.deps.localAreas, principal.kind === 'open');
  }

  async create(def: ExportDefinition, principal: Principal, replace = false): Promise<ExportRecord> {
    this.check(def, principal);
    const now = new Date().toISOString();
    let rec: ExportRecord = { definition: def, owner: principal.owner, principal, createdAt: now, updatedAt: now, paused: false };
    if (replace) {
      const old = await this.store.get(def.name).catch(() => undefined);
      if (old) rec = { ...rec, createdAt: old.createdAt, paused: old.paused };
      await this.store.put(rec);
    } else {
      await this.store.create(rec);
    }
    if (!rec.paused) await this.schedule(def);
    return rec;
  }

  async remove(name: string): Promise<void> {
    await this.store.get(name);
    await this.queue.removeJobScheduler(this.schedulerId(name));
    await this.store.delete(name);
  }

  async setPaused(name: string, paused: boolean): Promise<ExportRecord> {
    const rec = await this.store.get(name);
    rec.paused = paused;
    rec.updatedAt = new Date().toISOString();
    await this.store.put(rec);
    if (paused) await this.queue.removeJobScheduler(this.schedulerId(name));
    else await this.schedule(rec.definition);
    return rec;
  }

  /** Queues a run now (besides the schedule); the run still waits for a running one of the same export to end. */
  async runNow(name: string): Promise<{ runId: string }> {
    await this.store.get(name);
    const runId = newRunId();
    await this.queue.add('run-now', { export: name, manual: true, runId } satisfies TickData, { jobId: `manual-${runId}`, removeOnComplete: true, removeOnFail: 1000 });
    return { runId };
  }

  async view(rec: ExportRecord): Promise<ExportView> {
    const [sched, last] = await Promise.all([
      rec.paused ? undefined : this.queue.getJobScheduler(this.schedulerId(rec.definition.name)),
      this.store.history(rec.definition.name, 1),
    ]);
    const v: ExportView = { ...rec };
    if (sched?.next !== undefined) v.nextRunAt = new Date(this.clock.toVirtual(sched.next)).toISOString();
    if (last[0]) v.lastRun = last[0];
    return v;
  }

  /** The next `count` ticks of a definition after `from` (virtual ms), with the parser BullMQ's scheduler uses. */
  static nextTicks(def: ExportDefinition, from: number, count: number): number[] {
    const out: number[] = [];
    let t = from;
    for (let i = 0; i < count; i++) {
      const s = def.schedule;
      const n = 'cron' in s ? getNextMillis(t, { pattern: s.cron, tz: timeZoneOf(s) }) : t + s.everyMinutes * 60_000;
      if (n === undefined) break;
      out.push(n);
      t = n;
    }
    return out;
  }

  /** Ticks after `from` up to `to` (virtual ms), at most `max`. */
  static ticksBetween(def: ExportDefinition, from: number, to: number, max: number): number[] {
    const out: number[] = [];
    let t = from;
    while (out.length < max) {
      const [n] = ExportService.nextTicks(def, t, 1);
      if (n === undefined || n > to) break;
      out.push(n);
      t = n;
    }
    return out;
  }

  private async process(job: Job<TickData>): Promise<RunReport | undefined> {
    const name = job.data.export;
    if (job.data.manual) {
      return runExport(this.runDeps, { name, runId: job.data.runId ?? job.id!, trigger: 'manual', scheduledFor: this.clock.now() });
    }
    // A scheduler's tick: its id is repeat:<scheduler>:<due ms>.
    const due = Number(job.id!.slice(job.id!.lastIndexOf(':') + 1));
    const scheduledFor = this.clock.toVirtual(Number.isFinite(due) ? due : job.timestamp);
    const rec = await this.store.get(name).catch(() => undefined);
    if (!rec) return undefined;
    // Ticks that came due while no port ran: the one pending tick runs once, as the catch-up of all of them.
    const now = this.clock.now();
    const after = ExportService.ticksBetween(rec.definition, scheduledFor, now, 1000);
    return runExport(this.runDeps, {
      name, runId: job.id!.replace(/[^A-Za-z0-9_.:-]/g, '_'), trigger: after.length > 0 ? 'catch-up' : 'schedule', scheduledFor,
      ...(after.length > 0 ? { missedTicks: after.length } : {}),
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    // Forced: a run waiting for its jobs must not hold the shutdown; it is resumed by the next port (stalled job).
    await this.worker?.close(true);
    await this.queue.close();
  }
}
