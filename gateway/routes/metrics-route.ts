/** Prometheus metrics (`/metrics`): port-wide gauges read from Redis at scrape time, plus process metrics. */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { portStatus } from '../../services/jobs/port-status.js';
import { marking } from '../../services/marking/marking-service.js';
import { POLLING_LOG_LEVEL, type GatewayContext } from '../context.js';

export async function metricsRoute(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cargoport_gateway_' });
  const g = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const activeTransfers = g('cargoport_transfers_active', 'Transfers moving bytes now, all workers');
  const rate = g('cargoport_throughput_bytes_per_second', 'Bytes per second over the last 5 s window, all workers');
  const jobsActive = g('cargoport_jobs_active', 'Jobs not yet finished');
  const filesWaiting = g('cargoport_files_waiting', 'Files waiting for a link slot (SUBMITTED) in active jobs');
  const runQueue = g('cargoport_run_queue', 'Run queue depth by kind', ['kind']);
  const workers = g('cargoport_workers', 'Worker processes by pool and state', ['pool', 'state']);
  const linkSlots = g('cargoport_link_slots_used', 'Transfer slots held per link', ['link']);
  const scopeState = g('cargoport_admin_scope_state', '1 for the current state of each admin scope', ['scope', 'target', 'state']);

  // Counters kept in Redis by every worker (JobStore.progress and end): the exposition sets each to the stored total,
  // so every gateway replica reports the same monotonic values.
  const c = (name: string, help: string, labelNames: string[]) => new Counter({ name, help, labelNames, registers: [registry] });
  const bytesMoved = c('cargoport_bytes_moved_total', 'Bytes moved by transfers, per link (link="" for all)', ['link']);
  const filesFinished = c('cargoport_files_finished_total', 'Files finished, per link', ['link']);
  const filesFailed = c('cargoport_files_failed_total', 'Files failed for good, per error code and link', ['reason', 'link']);
  const attempts = c('cargoport_attempts_total', 'Transfer attempts ended, per outcome (ok, error, requeue, cancel) and link', ['outcome', 'link']);
  const exportRuns = c('cargoport_export_runs_total', 'Export runs ended, per state (succeeded, failed, skipped)', ['state']);
  const exportDeadlines = c('cargoport_export_deadline_missed_total', 'Export runs that missed their deadline, per export', ['export']);

  async function readCounters(): Promise<void> {
    const raw = await ctx.redis.hgetall(ctx.queries.keys.port('counters'));
    for (const m of [bytesMoved, filesFinished, filesFailed, attempts, exportRuns, exportDeadlines]) m.reset();
    for (const [field, v] of Object.entries(raw)) {
      const n = Number(v);
      const [kind, a, b] = field.split('|');
      if (kind === 'bytes') bytesMoved.inc({ link: a ?? '' }, n);
      else if (kind === 'finished' && a) filesFinished.inc({ link: a }, n);
      else if (kind === 'failed' && a && b) filesFailed.inc({ reason: a, link: b }, n);
      else if (kind === 'attempts' && a && b) attempts.inc({ outcome: a, link: b }, n);
      else if (kind === 'exportruns' && a) exportRuns.inc({ state: a }, n);
      else if (kind === 'exportdeadline' && a) exportDeadlines.inc({ export: a }, n);
    }
  }

  const markFlows = g('cargoport_marking_active_flows', 'Tagged connections (scitags flows) open now in this process');
  const markCounts = g('cargoport_marking_events_total', 'Scitags marking events since start in this process, by kind', ['kind']);
  const markBackend = g('cargoport_marking_backend_up', '1 when a marking backend runs, 0 when it is off (status says why)', ['backend']);

  app.get('/metrics', { logLevel: POLLING_LOG_LEVEL, schema: { summary: 'Prometheus metrics' } }, async (req, reply) => {
    if (ctx.cfg.auth.metrics === 'admin') ctx.auth.requireAdmin(req);
    else if (ctx.cfg.auth.metrics === 'authenticated') ctx.auth.requireIdentity(req);
    const s = await portStatus(ctx.redis, ctx.queries, ctx.admin, ctx.runQueue, ctx.cfg.workers.heartbeatMs);
    activeTransfers.set(s.transfers.active);
    rate.set(s.transfers.rateBytesPerSec);
    jobsActive.set(s.jobs.active);
    filesWaiting.set(s.queues.waitingFiles);
    runQueue.reset();
    runQueue.set({ kind: 'waiting' }, s.queues.runQueueWaiting);
    runQueue.set({ kind: 'delayed' }, s.queues.runQueueDelayed);
    runQueue.set({ kind: 'active' }, s.queues.runQueueActive);
    workers.reset();
    for (const w of s.workers) workers.inc({ pool: w.pool, state: w.alive ? w.state : 'silent' });
    linkSlots.reset();
    for (const [link, n] of Object.entries(s.slots.links)) linkSlots.set({ link }, n);
    scopeState.reset();
    for (const sc of s.scopes) scopeState.set({ scope: sc.scope, target: sc.target, state: sc.effectiveState }, 1);
    const m = marking().status();
    markFlows.set(m.activeFlows);
    markCounts.set({ kind: 'flows_started' }, m.flowsStarted);
    markCounts.set({ kind: 'flows_labelled' }, m.flowsLabelled);
    markCounts.set({ kind: 'fireflies_sent' }, m.firefliesSent);
    markCounts.set({ kind: 'firefly_errors' }, m.fireflyErrors);
    markCounts.set({ kind: 'label_errors' }, m.labelErrors);
    markCounts.set({ kind: 'pipe_lines_written' }, m.pipeLinesWritten);
    markCounts.set({ kind: 'pipe_lines_dropped' }, m.pipeLinesDropped);
    for (const b of m.backends) markBackend.set({ backend: b.name }, b.on ? 1 : 0);
    await readCounters();
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
