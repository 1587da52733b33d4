/**
 * Runs one queued file: claims it (START), moves its bytes through the transfer engine under this process's
 * gates and abort controller, and closes the attempt (END) as finished, failed, retried, requeued or
 * canceled. Retries and requeues come back as new queue members for the worker shell to enqueue.
 */
import { rm } from 'node:fs/promises';
import { isCargoError } from '../../errors/cargo-error.js';
import { unreachableSide } from '../transfer/transfer-errors.js';
import type { ResumeState, TransferFn, TransferRequest, RateLimiter } from '../transfer/types.js';
import type { ActiveTransfer, ActiveTransfers, AbortReason } from './active-transfers.js';
import { parseMember } from './file-record.js';
import type { EndReport, JobStore } from './job-store.js';
import { linkEndpoints, type JobParams } from './model.js';
import type { ScopeGates } from './scope-gates.js';

export interface RunnerDeps {
  store: JobStore;
  transfer: TransferFn;
  workerId: string;
  gates: ScopeGates;
  active: ActiveTransfers;
  /** Puts queue members into the run queue (with a delay for retries). */
  enqueue(items: Array<{ member: string; delayMs: number }>): Promise<void>;
  /** Rate limiters for one transfer (job bandwidth cap, …) and how to give them back when it ends. */
  limitersFor?(jobId: string, params: JobParams, link: string): { limiters: RateLimiter[]; release(): void };
  defaults: { connections: number; streams: number };
}

const MAX_RETRY_DELAY_MS = 3600_000;

/** Exponential backoff with jitter: base · 2^(tries-1) · [0.5, 1.5), capped at an hour. */
export function retryDelayMs(baseSec: number, tries: number): number {
  if (baseSec <= 0) return 0;
  const exp = baseSec * 1000 * 2 ** Math.max(0, tries - 1);
  return Math.min(MAX_RETRY_DELAY_MS, Math.round(exp * (0.5 + Math.random())));
}

/** How many earlier attempts' part files an attempt looks for (a file rarely runs more often). */
const STALE_PART_ATTEMPTS = 8;

export function partFileTags(jobId: string, idx: number, run: number): { partTag: string; stalePartTags: string[] } {
  const base = `${jobId.replace(/-/g, '').slice(0, 12)}-${idx}`;
  const stalePartTags: string[] = [];
  for (let k = Math.max(1, run - STALE_PART_ATTEMPTS); k < run; k++) stalePartTags.push(`${base}-${k}`);
  return { partTag: `${base}-${run}`, stalePartTags };
}

export async function runFile(member: string, deps: RunnerDeps): Promise<void> {
  const { store } = deps;
  const claim = await store.start(member, deps.workerId);
  if (claim.kind !== 'run') return;
  const { spec, params, run, state } = claim;
  const { jobId, idx } = parseMember(member);

  const controller = new AbortController();
  const t: ActiveTransfer = { jobId, idx, link: spec.link, controller, bytes: 0, reportedBytes: 0, startedAt: Date.now() };
  deps.active.add(t);
  let lastResume: ResumeState | undefined = state.rs;
  const req: TransferRequest = {
    source: spec.source,
    destination: spec.destination,
    size: spec.size,
    checksum: spec.checksum ?? (params.verifyChecksum === 'none' ? undefined : { alg: 'adler32' }),
    verify: params.verifyChecksum,
    overwrite: params.overwrite,
    connections: params.connections ?? deps.defaults.connections,
    streams: params.streams ?? deps.defaults.streams,
    resume: state.rs,
    ...(params.copyMode !== undefined ? { copyMode: params.copyMode } : {}),
    // Part files named per attempt, so this attempt removes what earlier ones of this file left behind.
    ...partFileTags(jobId, idx, run),
  };
  if (spec.scitag !== undefined) {
    req.sourceHeaders = { SciTag: String(spec.scitag) };
    req.destinationHeaders = { SciTag: String(spec.scitag) };
  }
  const lim = deps.limitersFor?.(jobId, params, spec.link);
  const limiters = lim?.limiters ?? [];
  let report: EndReport;
  let outcome: 'ok' | 'error' | 'requeue' | 'cancel';
  let retryable = false;
  /** The endpoint this attempt could not reach at all, for the scheduler's circuit breaker. */
  let unreachable = '';
  try {
    const res = await deps.transfer(req, {
      signal: controller.signal,
      gate: deps.gates.forTransfer(spec.link),
      limiters,
      onProgress: (p) => {
        t.bytes = p.bytes;
      },
      onCheckpoint: (rs) => {
        lastResume = rs;
        t.pendingCheckpoint = rs;
      },
    });
    const secs = Math.max(0.001, res.durationMs / 1000);
    report = {
      bytes: res.bytes, rateBytesPerSec: Math.round((res.bytes - res.resumedBytes) / secs), remoteIp: res.remoteIp,
      protocol: res.protocol, streams: res.streams * res.connections, resumedBytes: res.resumedBytes,
      checksumValue: res.checksum?.value,
    };
    outcome = 'ok';
  } catch (err) {
    const reason = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
    report = {
      bytes: t.bytes,
      errorCode: isCargoError(err) ? err.code : 'CARGO_ERR_INTERNAL',
      errorMessage: err instanceof Error ? err.message : String(err),
      resume: lastResume,
    };
    if (reason === 'cancel') {
      outcome = 'cancel';
    } else if (reason === 'stop' || reason === 'shutdown') {
      outcome = 'requeue';
      report.errorCode = 'CARGO_ERR_ABORTED';
      report.errorMessage = reason === 'stop' ? 'stopped by an admin operation; requeued with its resume offsets' : 'worker shutting down; requeued';
    } else {
      outcome = 'error';
      retryable = isCargoError(err) ? err.retryable : true;
      const side = unreachableSide(err);
      if (side) unreachable = linkEndpoints(spec.link)[side === 'source' ? 0 : 1];
    }
  } finally {
    deps.active.remove(t);
    lim?.release();
  }
  const moved = outcome === 'ok' ? (report.bytes ?? 0) - (report.resumedBytes ?? 0) : t.bytes;
  const end = await store.end({
    jobId, idx, run, link: spec.link, outcome, report, retryable, retryDelayMs: retryDelayMs(params.retryDelaySec, state.t + 1),
    unreportedBytes: moved - t.reportedBytes, unreachableEndpoint: unreachable,
  });
  // The progress flusher must not count these bytes again.
  t.reportedBytes = Math.max(t.reportedBytes, moved);
  // A canceled file keeps nothing: its partial data (kept by the engine for resume) is removed.
  if ((end.kind === 'canceled' || end.kind === 'failed') && lastResume?.tempPath) await rm(lastResume.tempPath, { force: true }).catch(() => undefined);
  if (end.kind === 'queued') await deps.enqueue([{ member: end.member, delayMs: end.delayMs }]);
}
