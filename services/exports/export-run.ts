/**
 * One run of an export: take the export's lock, select the files, leave out those already exported intact to each
 * destination (the ledger), submit one job per destination through the port's submission path with the owner's
 * rights, wait for the jobs, then record what arrived in the ledger and write the report. A run that fails (a job
 * with failed files, a submission refused, a selection that cannot be read) records nothing more than what did
 * arrive and does not move the "last successful run" mark, so its files fall to the next run.
 */
import { randomUUID } from 'node:crypto';
import type { JobQueries } from '../jobs/job-queries.js';
import type { RawSubmission } from '../jobs/submission-schema.js';
import type { Principal } from '../auth/principal.js';
import { isCargoError } from '../../errors/cargo-error.js';
import { deadlineAfter, destinationUrl, timeZoneOf, type ExportDefinition } from './export-definition.js';
import type { ExportClock } from './export-clock.js';
import type { ExportRecord, ExportStore, RunReport, RunTrigger, SentRecord } from './export-store.js';
import { selectFiles, selectionRoot, type LocalAreaMap, type SelectedFile } from './file-selection.js';

export interface RunDeps {
  store: ExportStore;
  queries: JobQueries;
  submit(principal: Principal, raw: RawSubmission): Promise<{ jobId: string }>;
  localAreas: readonly LocalAreaMap[];
  fetchText(url: string): Promise<string>;
  clock: ExportClock;
  pollMs: number;
  historyRuns: number;
  maxFilesPerJob: number;
  /** True once the process is closing: a waiting run stops waiting (its lock expires; a restarted port resumes it). */
  closing(): boolean;
}

export interface RunRequest {
  name: string;
  runId: string;
  trigger: RunTrigger;
  /** Virtual ms the run was due. */
  scheduledFor: number;
  missedTicks?: number;
}

const LOCK_TTL_MS = 60_000;
const MAX_FAILURES_LISTED = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errorOf(e: unknown): { code: string; message: string } {
  return isCargoError(e) ? { code: e.code, message: e.message } : { code: 'CARGO_ERR_INTERNAL', message: (e as Error)?.message ?? String(e) };
}

function rawSubmission(def: ExportDefinition, files: Array<{ f: SelectedFile; destination: string }>): RawSubmission {
  const p = def.params ?? {};
  const params: NonNullable<RawSubmission['params']> = {};
  for (const k of ['priority', 'retries', 'retryDelaySec', 'verifyChecksum', 'existing', 'streams', 'connections', 'bandwidthBytesPerSec', 'processing', 'copyMode', 'experiment'] as const) {
    if (p[k] !== undefined) (params as Record<string, unknown>)[k] = p[k];
  }
  return {
    params,
    files: files.map(({ f, destination }) => {
      const out: RawSubmission['files'][number] = { source: f.source, destination };
      if (f.size !== undefined) out.size = f.size;
      const checksum = f.checksum ?? p.checksum;
      if (checksum !== undefined) out.checksum = checksum;
      if (p.scitag !== undefined) out.scitag = p.scitag;
      if (p.activity !== undefined) out.activity = p.activity;
      return out;
    }),
  };
}

const intact = (s: SentRecord | undefined, f: SelectedFile) =>
  s !== undefined && s.size === f.size && s.mtimeMs === f.mtimeMs && (f.checksum === undefined || s.checksum === f.checksum.split(':')[1]);

export async function runExport(deps: RunDeps, req: RunRequest): Promise<RunReport> {
  const { store, clock } = deps;
  const rec: ExportRecord = await store.get(req.name);
  const def = rec.definition;
  const tz = timeZoneOf(def.schedule);
  const startedReal = Date.now();
  const deadline = deadlineAfter(def.params?.deadline, req.scheduledFor, tz);
  const existing = await store.getRun(req.runId);
  if (existing && existing.state !== 'running') return existing;
  const report: RunReport = existing ?? {
    runId: req.runId, export: def.name, owner: rec.owner, trigger: req.trigger, state: 'running',
    scheduledFor: new Date(req.scheduledFor).toISOString(), startedAt: new Date(clock.now()).toISOString(),
    ...(req.missedTicks ? { missedTicks: req.missedTicks } : {}),
    files: { selected: 0, alreadyExported: 0, submitted: 0, finished: 0, failed: 0, canceled: 0 },
    bytes: 0, jobs: [], failures: [],
    ...(deadline !== undefined ? { deadline: new Date(deadline).toISOString() } : {}),
  };

  const holder = await store.lock(def.name, req.runId, LOCK_TTL_MS);
  if (holder !== undefined) {
    // Two runs of one export never overlap: this one is recorded as skipped; its files are the next run's.
    Object.assign(report, { state: 'skipped', reason: `run ${holder} of this export is still running`, finishedAt: new Date(clock.now()).toISOString() });
    await store.saveRun(report, deps.historyRuns, !existing);
    await store.count('exportruns|skipped');
    await store.publish({ type: 'export-run', export: def.name, runId: req.runId, state: 'skipped', reason: report.reason });
    return report;
  }
  let lost = false;
  const renew = setInterval(() => {
    void store.renewLock(def.name, req.runId, LOCK_TTL_MS).then((ok) => (lost ||= !ok), () => undefined);
  }, LOCK_TTL_MS / 4);
  // Files per job, by fileId (the submission order), to record what arrived.
  const submitted = new Map<string, { template: string; files: SelectedFile[] }>();
  try {
    if (!existing) {
      await store.saveRun(report, deps.historyRuns, true);
      await select(deps, rec, report, req, submitted);
      await store.saveRun(report, deps.historyRuns, false);
    } else {
      // Resumed after a restart: the jobs exist; the files of each are re-read from the jobs themselves.
      for (const j of report.jobs) submitted.set(j.jobId, { template: j.destination, files: [] });
    }
    await waitForJobs(deps, report, deadline, () => lost);
    if (deps.closing() || lost) return report;
    await collect(deps, def, report, submitted);
  } catch (e) {
    const err = errorOf(e);
    report.failures.push({ destination: '', code: err.code, message: err.message });
  } finally {
    clearInterval(renew);
  }
  if (deps.closing() || lost) return report;
  const end = clock.now();
  report.finishedAt = new Date(end).toISOString();
  report.durationSec = (Date.now() - startedReal) / 1000;
  report.rateBytesPerSec = report.durationSec > 0 ? Math.round(report.bytes / report.durationSec) : 0;
  if (deadline !== undefined && end > deadline && !report.deadlineMissed) await deadlineMissed(deps, report);
  report.state = report.failures.length === 0 && report.files.failed === 0 && report.files.canceled === 0 ? 'succeeded' : 'failed';
  if (report.failures.length > MAX_FAILURES_LISTED) {
    report.moreFailures = report.failures.length - MAX_FAILURES_LISTED;
    report.failures.length = MAX_FAILURES_LISTED;
  }
  await store.saveRun(report, deps.historyRuns, false);
  if (report.state === 'succeeded') await store.setLastSuccess(def.name, { runId: report.runId, selectionAt: report.selectionAt ?? startedReal });
  await store.count(`exportruns|${report.state}`);
  await store.publish({ type: 'export-run', export: def.name, runId: report.runId, state: report.state, trigger: report.trigger, files: report.files, deadlineMissed: report.deadlineMissed ?? false });
  await store.unlock(def.name, req.runId);
  return report;
}

async function select(deps: RunDeps, rec: ExportRecord, report: RunReport, req: RunRequest, submitted: Map<string, { template: string; files: SelectedFile[] }>): Promise<void> {
  const def = rec.definition;
  const tz = timeZoneOf(def.schedule);
  const last = await deps.store.lastSuccess(def.name);
  // Files are compared with their mtimes, which are wall-clock times whatever the schedule's clock.
  report.selectionAt = Date.now();
  const root = selectionRoot(def.selection, deps.localAreas, rec.principal.kind === 'open');
  const sel = await selectFiles(def.selection, root, {
    name: def.name, at: req.scheduledFor, timeZone: tz, localAreas: deps.localAreas, fetchText: deps.fetchText,
    ...(last ? { since: last.selectionAt } : {}),
  });
  if (sel.note) report.note = sel.note;
  report.files.selected = sel.files.length;
  for (const template of def.destinations) {
    const ledger = await deps.store.sent(def.name, template, sel.files.map((f) => f.path));
    const todo = sel.files.filter((f, i) => !intact(ledger[i], f));
    report.files.alreadyExported += sel.files.length - todo.length;
    for (let i = 0; i < todo.length; i += deps.maxFilesPerJob) {
      const chunk = todo.slice(i, i + deps.maxFilesPerJob);
      const files = chunk.map((f) => ({ f, destination: destinationUrl(template, { name: def.name, at: req.scheduledFor, timeZone: tz, path: f.path }) }));
      try {
        const { jobId } = await deps.submit(rec.principal, rawSubmission(def, files));
        report.jobs.push({ destination: template, jobId, files: chunk.length });
        report.files.submitted += chunk.length;
        submitted.set(jobId, { template, files: chunk });
      } catch (e) {
        // Refused (rights, address policy, queue bound): these files stay for the next run.
        const err = errorOf(e);
        report.failures.push({ destination: template, code: err.code, message: `${chunk.length} files not submitted: ${err.message}` });
      }
    }
  }
}

async function deadlineMissed(deps: RunDeps, report: RunReport): Promise<void> {
  report.deadlineMissed = true;
  await deps.store.count(`exportdeadline|${report.export}`);
  await deps.store.publish({ type: 'export-deadline-missed', export: report.export, runId: report.runId, deadline: report.deadline });
}

async function waitForJobs(deps: RunDeps, report: RunReport, deadline: number | undefined, lost: () => boolean): Promise<void> {
  const pending = new Set(report.jobs.map((j) => j.jobId));
  while (pending.size > 0) {
    if (deps.closing() || lost()) return;
    for (const id of [...pending]) {
      const job = await deps.queries.getJob(id).catch(() => undefined);
      const entry = report.jobs.find((j) => j.jobId === id)!;
      if (!job) {
        entry.state = 'EXPIRED';
        pending.delete(id);
      } else if (job.state !== 'ACTIVE') {
        entry.state = job.state;
        pending.delete(id);
      }
    }
    if (deadline !== undefined && !report.deadlineMissed && deps.clock.now() > deadline) {
      // Announced when the deadline passes, not only when the run ends.
      await deadlineMissed(deps, report);
      await deps.store.saveRun(report, deps.historyRuns, false);
    }
    if (pending.size > 0) await sleep(deps.pollMs);
  }
}

async function collect(deps: RunDeps, def: ExportDefinition, report: RunReport, submitted: Map<string, { template: string; files: SelectedFile[] }>): Promise<void> {
  for (const j of report.jobs) {
    const sub = submitted.get(j.jobId);
    const sent: Array<[string, SentRecord]> = [];
    let cursor: number | undefined;
    for (;;) {
      const page = await deps.queries.listFiles(j.jobId, { limit: 1000, ...(cursor !== undefined ? { cursor } : {}) }).catch(() => ({ files: [], nextCursor: undefined }));
      for (const fv of page.files) {
        const f = sub?.files[fv.fileId];
        const path = f?.path ?? decodeURIComponent(new URL(fv.destination).pathname);
        if (fv.state === 'FINISHED') {
          report.files.finished++;
          report.bytes += fv.size ?? fv.bytes ?? 0;
          const r: SentRecord = {};
          if (fv.size !== undefined) r.size = fv.size;
          if (f?.mtimeMs !== undefined) r.mtimeMs = f.mtimeMs;
          if (fv.checksumValue) r.checksum = fv.checksumValue;
          if (f) sent.push([f.path, r]);
        } else if (fv.state === 'FAILED' || fv.state === 'CANCELED') {
          if (fv.state === 'FAILED') report.files.failed++;
          else report.files.canceled++;
          report.failures.push({ destination: j.destination, path, code: fv.error?.code ?? fv.state, message: fv.error?.message ?? `file ${fv.state.toLowerCase()}` });
        }
      }
      if (page.nextCursor === undefined || page.files.length === 0) break;
      cursor = page.nextCursor;
    }
    if (sent.length) await deps.store.recordSent(def.name, j.destination, sent);
  }
}

export const newRunId = (): string => randomUUID();
