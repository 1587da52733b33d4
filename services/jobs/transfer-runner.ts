/**
 * Runs one queued file: claims it (START), moves its bytes through the transfer engine under this process's
 * gates and abort controller, and closes the attempt (END) as finished, failed, retried, requeued, held or
 * canceled. Retries and requeues come back as new queue members for the worker shell to enqueue.
 *
 * Two conditions are not the file's fault and are told apart here: a destination that already holds the file (the
 * job's `existing` policy, or a lost run that published before its worker died) finishes it without moving a byte;
 * a full destination holds the file (no try spent) and pauses its endpoint through the breaker.
 */
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isCargoError, type CargoError } from '../../errors/cargo-error.js';
import { destinationFullCause, largerThanVolumeError, localVolumeBytes } from '../transfer/destination-full.js';
import type { ExistingDestination, ExistingDestinationQuery } from '../transfer/existing-destination.js';
import { partFileName } from '../transfer/local/local-part-file.js';
import { TransferError, TransferErrorCode, unreachableSide } from '../transfer/transfer-errors.js';
import type { ResumeState, TransferFn, TransferRequest, TransferResult, RateLimiter } from '../transfer/types.js';
import type { ActiveTransfer, ActiveTransfers, AbortReason } from './active-transfers.js';
import { parseMember } from './file-record.js';
import type { AttemptEnd, EndReport, EndResult, JobStore, StartResult } from './job-store.js';
import type { EndBatcher } from './end-batcher.js';
import { linkEndpoints, type ExistingPolicy, type FileSpec, type JobParams } from './model.js';
import type { ScopeGates } from './scope-gates.js';
import { marking } from '../marking/marking-service.js';
import { flowIdOf } from '../marking/flow-id.js';
import type { OutboundTokens } from '../auth/outbound-tokens.js';
import type { FileChain } from '../processing/chain-resolver.js';
import type { BuiltChain } from '../processing/chain-resolver.js';
import { chainOf, noProcessing, planOf, withPath, type FileProcessing } from './file-processing.js';
import { InvalidSubmissionError } from './job-errors.js';

/** The path of a source / destination URL, for the marking path defaults ('' when it does not parse). */
function urlPath(u: string): string {
  try {
    return decodeURIComponent(new URL(u).pathname);
  } catch {
    return '';
  }
}

export interface RunnerDeps {
  store: JobStore;
  /** Group commit of END (end-batcher.ts); without it each run is closed by its own END call. */
  ends?: EndBatcher;
  transfer: TransferFn;
  workerId: string;
  gates: ScopeGates;
  active: ActiveTransfers;
  /** Puts queue members into the run queue (with a delay for retries). */
  enqueue(items: Array<{ member: string; delayMs: number }>): Promise<void>;
  /**
   * Rate limiters for one transfer (scoped caps, the job's bandwidth cap) and how to give them back when it ends.
   * The array is live (caps set while the transfer runs change it in place): hand it to the transfer as it is.
   */
  limitersFor?(jobId: string, params: JobParams, link: string): { limiters: readonly RateLimiter[]; release(): void };
  /**
   * Whether an existing destination already holds the file (services/transfer/existing-destination.ts on the
   * engine's client pool). Without it, a destination that exists fails the file as the policy `fail` does.
   */
  inspectDestination?(q: ExistingDestinationQuery, signal: AbortSignal): Promise<ExistingDestination>;
  defaults: { connections: number; streams: number };
  /**
   * Tokens for remote endpoints (auth.outbound): the transfer's credential provider asks them before every request,
   * so a token that expires during a long transfer is replaced by the next range, retry or continuation.
   */
  outbound?: OutboundTokens;
  /**
   * The processing library (stages, site hooks, operator rules). A file with stages (its job's, its own or the
   * operator's) runs them through the engine (TransferControl.stages) and is published at the chain's
   * destination path; without it, a file that asks for stages fails.
   */
  processing?: FileProcessing;
}

/** The file's chain of stages, or undefined for a plain transfer; throws what makes the chain unusable. */
function fileChain(deps: RunnerDeps, params: JobParams, spec: FileSpec): FileChain | undefined {
  if (!deps.processing) {
    if (noProcessing(params.processing) && spec.processing === undefined) return undefined;
    throw new InvalidSubmissionError('CARGO_ERR_UNSUPPORTED_PROCESSING', 'this worker runs no processing stages', 'params.processing');
  }
  const chain = chainOf(deps.processing, planOf(deps.processing, params, spec), spec.source, spec.destination);
  return chain.empty ? undefined : chain;
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

/** The job's policy for a destination that exists (jobs stored before the option had only `overwrite`). */
export function existingPolicy(params: JobParams): ExistingPolicy {
  return params.existing ?? (params.overwrite ? 'overwrite' : 'fail');
}

/** A destination's HTTP Last-Modified has one-second resolution. */
const MODIFIED_SLACK_MS = 1000;

/** What the attempt came to, before it is closed in Redis. */
interface Closing {
  outcome: AttemptEnd['outcome'];
  report: EndReport;
  retryable: boolean;
  /** Bytes this attempt moved (for the rate windows). */
  moved: number;
  unreachableEndpoint?: string;
  fullDestination?: AttemptEnd['fullDestination'];
}

export async function runFile(member: string, deps: RunnerDeps): Promise<void> {
  await runFiles([member], deps);
}

/**
 * Runs a bundle of queued files: one START for all of them (group claim), then their transfers, `parallel` at a time
 * so the small-file pulls of one slot overlap their round trips; each run is closed through `deps.ends` (group
 * commit of END) when given. A file claimed but not yet begun when the worker stops taking work (`canStart` false:
 * paused, drained, stopped, shutting down) is closed as requeued without moving a byte.
 */
export async function runFiles(members: readonly string[], deps: RunnerDeps, opts: { canStart?(): boolean; parallel?: number } = {}): Promise<void> {
  const claims = await deps.store.startMany(members, deps.workerId);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < members.length) {
      const i = next++;
      await runStarted(members[i]!, claims[i]!, deps, opts.canStart);
    }
  };
  const lanes: Promise<void>[] = [];
  for (let k = 0; k < Math.min(members.length, Math.max(1, opts.parallel ?? 1)); k++) lanes.push(lane());
  const settled = await Promise.allSettled(lanes);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
}

async function runStarted(member: string, claim: StartResult, deps: RunnerDeps, canStart?: () => boolean): Promise<void> {
  const { jobId, idx } = parseMember(member);
  // A file canceled while the worker running it was dead: closed by START; what that run left on disk goes too.
  if (claim.kind === 'skip' && claim.lostRun) await removePartFiles(jobId, idx, claim.lostRun.spec, claim.lostRun.run + 1);
  if (claim.kind !== 'run') return;
  await runClaimed(member, claim, deps, canStart);
}

/** Runs a file START has already claimed (runFiles, or a packed bundle handing back a file it does not pack). */
export async function runClaimed(member: string, claim: Extract<StartResult, { kind: 'run' }>, deps: RunnerDeps, canStart?: () => boolean): Promise<void> {
  const { store } = deps;
  const { jobId, idx } = parseMember(member);
  const { spec, params, run, state } = claim;
  const close = (e: AttemptEnd): Promise<EndResult> => (deps.ends ? deps.ends.end(e) : store.end(e));
  if (canStart && !canStart()) {
    // Claimed with its bundle, but the worker stopped taking work before its turn: back to the queue, no try spent.
    const end = await close({
      jobId, idx, run, link: spec.link, outcome: 'requeue', retryable: false, unreportedBytes: 0,
      report: { bytes: 0, errorCode: 'CARGO_ERR_ABORTED', errorMessage: 'the worker stopped taking work before this file began; requeued', resume: state.rs },
    });
    if (end.kind === 'queued') await deps.enqueue([{ member: end.member, delayMs: end.delayMs }]);
    return;
  }

  const controller = new AbortController();
  const t: ActiveTransfer = { jobId, idx, run, link: spec.link, controller, bytes: 0, reportedBytes: 0, startedAt: Date.now() };
  deps.active.add(t);
  const policy = existingPolicy(params);
  const req: TransferRequest = {
    source: spec.source,
    destination: spec.destination,
    size: spec.size,
    checksum: spec.checksum ?? (params.verifyChecksum === 'none' ? undefined : { alg: 'adler32' }),
    verify: params.verifyChecksum,
    overwrite: policy === 'overwrite',
    connections: params.connections ?? deps.defaults.connections,
    streams: params.streams ?? deps.defaults.streams,
    resume: state.rs,
    ...(params.copyMode !== undefined ? { copyMode: params.copyMode } : {}),
    ...(params.contentEncoding !== undefined ? { contentEncoding: params.contentEncoding } : {}),
    // Part files named per attempt, so this attempt removes what earlier ones of this file left behind.
    ...partFileTags(jobId, idx, run),
  };
  // The file's flow: its scitag (a job's experiment/activity names became one at submission), else the
  // operator's path defaults. Requests of a tagged transfer carry `SciTag: <flowId>` (a TPC COPY also
  // TransferHeaderSciTag, tpc-client.ts); its connections are labelled and announced (services/marking).
  const flow = marking().resolve({ jobScitag: spec.scitag, paths: [urlPath(spec.destination), urlPath(spec.source)] });
  if (flow) {
    const flowId = String(flowIdOf(flow));
    req.flow = { experiment: flow.experiment, activity: flow.activity };
    req.sourceHeaders = { SciTag: flowId };
    req.destinationHeaders = { SciTag: flowId };
  } else if (spec.scitag !== undefined) {
    // Marking off: the tag is still passed on, as before marking existed.
    req.sourceHeaders = { SciTag: String(spec.scitag) };
    req.destinationHeaders = { SciTag: String(spec.scitag) };
  }
  // Stages: the job's (or the file's own) and the operator's rules. A chain that no longer resolves (a hook removed
  // from the config since submission) fails the file in attempt().
  let chain: FileChain | undefined;
  let chainError: unknown;
  try {
    chain = fileChain(deps, params, spec);
    if (chain) req.destination = withPath(spec.destination, chain.destinationPath);
  } catch (e) {
    chainError = e;
  }
  let built: BuiltChain | undefined;
  const lim = deps.limitersFor?.(jobId, params, spec.link);
  // Narrowest scopes per request (read on the source, create or modify on the destination, per the overwrite policy).
  const creds = deps.outbound?.forTransfer({ source: req.source, destination: req.destination, overwrite: req.overwrite, jobId });
  let lastResume: ResumeState | undefined = state.rs;
  let total: number | undefined;
  let closing: Closing;
  try {
    closing = await attempt();
  } finally {
    deps.active.remove(t);
    lim?.release();
  }

  async function attempt(): Promise<Closing> {
    // An earlier attempt of this file may have published it before its worker died (or before END could say so):
    // the destination then holds the file's own result, which is not a reason to fail it.
    const earlier = state.a.length > 1 ? state.a[0]!.start : undefined;
    const inspect = async (): Promise<ExistingDestination | undefined> => {
      if (!deps.inspectDestination) return undefined;
      try {
        // The HEAD of the destination carries its token (stat is allowed by create and modify).
        const auth = creds ? await creds.provider({ url: req.destination, role: 'destination', method: 'HEAD' }) : {};
        return await deps.inspectDestination(
          { source: req.source, destination: req.destination, size: spec.size, checksum: spec.checksum, sourceHeaders: req.sourceHeaders, destinationHeaders: { ...req.destinationHeaders, ...auth } },
          controller.signal,
        );
      } catch {
        return undefined;
      }
    };
    try {
      if (chainError !== undefined) throw chainError;
      if (earlier !== undefined && policy !== 'overwrite') {
        const found = await inspect();
        if (found?.kind === 'identical') return alreadyThere(found, 'an earlier attempt of this file had published it');
        // Same size, no checksum to compare, written since this file's first attempt began: that attempt's own
        // result, unverifiable, so it is written again rather than failed as somebody else's file.
        if (found?.kind === 'unknown' && found.modifiedAt !== undefined && found.modifiedAt >= earlier - MODIFIED_SLACK_MS) req.overwrite = true;
      }
      const gate = deps.gates.forTransfer(spec.link);
      // The chain's first stage holds the bytes while the gate is closed (admin pause), and its stages are torn
      // down (hooks killed, zstd sessions closed) when the attempt is aborted.
      built = chain?.build({ signal: controller.signal, gate });
      const res = await deps.transfer(req, {
        signal: controller.signal,
        // Connections are shared only within one flow (tag, credentials identity); socket events name the file.
        // (The SciTag itself comes with req.flow, as marking resolved it.)
        flow: { jobId, fileId: String(idx), ...(creds ? { credentialsId: creds.id } : {}) },
        ...(creds ? { credentials: creds.provider } : {}),
        gate,
        limiters: lim?.limiters ?? [],
        ...(built ? { stages: built.stages } : {}),
        onProgress: (p) => {
          t.bytes = p.bytes;
          if (p.total !== undefined) total = p.total;
        },
        onCheckpoint: (rs) => {
          lastResume = rs;
          t.pendingCheckpoint = rs;
        },
      });
      return finished(res);
    } catch (err) {
      if (isCargoError(err) && err.code === TransferErrorCode.destExists && !controller.signal.aborted && (policy === 'skip-identical' || earlier !== undefined)) {
        const found = await inspect();
        if (found?.kind === 'identical') return alreadyThere(found, 'the destination already held it');
        return failed(found && found.kind !== 'absent' ? withReason(err, found.reason) : err);
      }
      return failed(err);
    }
  }

  function finished(res: TransferResult): Closing {
    const secs = Math.max(0.001, res.durationMs / 1000);
    return {
      outcome: 'ok', retryable: false, moved: res.bytes - res.resumedBytes,
      report: {
        bytes: res.bytes, rateBytesPerSec: Math.round((res.bytes - res.resumedBytes) / secs), remoteIp: res.remoteIp,
        protocol: res.protocol, streams: res.streams * res.connections, resumedBytes: res.resumedBytes,
        checksumValue: res.checksum?.value,
        ...(res.contentEncoding !== undefined ? { contentEncoding: res.contentEncoding } : {}),
        ...(res.warnings?.length ? { warnings: res.warnings } : {}),
        ...processingReport(true),
      },
    };
  }

  /** What the stages recorded (checksums of raw and processed bytes, unpack counts) and where the file went. */
  // (Never an empty list: Redis's cjson would store it as an object.)
  function processingReport(ok = false): Pick<EndReport, 'processing' | 'publishedAs'> {
    if (!chain) return {};
    const records = built?.recorder.records() ?? [];
    return {
      ...(records.length > 0 ? { processing: records } : {}),
      ...(ok && req.destination !== spec.destination ? { publishedAs: req.destination } : {}),
    };
  }

  function alreadyThere(found: Extract<ExistingDestination, { kind: 'identical' }>, why: string): Closing {
    return {
      outcome: 'ok', retryable: false, moved: 0,
      report: {
        bytes: found.size, rateBytesPerSec: 0, resumedBytes: found.size, checksumValue: found.value,
        note: `already at the destination (${why}): same size and ${found.alg} ${found.value}; nothing moved`,
      },
    };
  }

  async function failed(err: unknown): Promise<Closing> {
    const reason = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
    const report: EndReport = {
      bytes: t.bytes,
      errorCode: isCargoError(err) ? err.code : 'CARGO_ERR_INTERNAL',
      errorMessage: err instanceof Error ? err.message : String(err),
      resume: lastResume,
      ...processingReport(),
    };
    if (reason === 'cancel') return { outcome: 'cancel', report, retryable: false, moved: t.bytes };
    if (reason === 'stop' || reason === 'shutdown') {
      report.errorCode = 'CARGO_ERR_ABORTED';
      report.errorMessage = reason === 'stop' ? 'stopped by an admin operation; requeued with its resume offsets' : 'worker shutting down; requeued';
      return { outcome: 'requeue', report, retryable: false, moved: t.bytes };
    }
    const closing: Closing = { outcome: 'error', report, retryable: isCargoError(err) ? err.retryable : true, moved: t.bytes };
    const side = unreachableSide(err);
    if (side) closing.unreachableEndpoint = linkEndpoints(spec.link)[side === 'source' ? 0 : 1];
    const full = destinationFullCause(err);
    if (full) {
      const tooBig = await neverFits(err);
      if (tooBig) {
        report.errorMessage = tooBig.message;
        closing.retryable = false;
      } else {
        closing.fullDestination = { endpoint: linkEndpoints(spec.link)[1], detail: `${full}: ${report.errorMessage}` };
      }
    }
    return closing;
  }

  /** A local destination smaller, as a whole, than the file: waiting for space would wait for ever. */
  async function neverFits(err: unknown): Promise<TransferError | undefined> {
    const size = spec.size ?? total;
    if (size === undefined || !spec.destination.startsWith('file:')) return undefined;
    const path = fileURLToPath(spec.destination);
    const volume = await localVolumeBytes(path);
    return volume !== undefined && size > volume ? largerThanVolumeError(path, size, volume, err) : undefined;
  }

  const end = await close({
    jobId, idx, run, link: spec.link, outcome: closing.outcome, report: closing.report, retryable: closing.retryable,
    retryDelayMs: retryDelayMs(params.retryDelaySec, state.t + 1), unreportedBytes: closing.moved - t.reportedBytes,
    ...(closing.unreachableEndpoint ? { unreachableEndpoint: closing.unreachableEndpoint } : {}),
    ...(closing.fullDestination ? { fullDestination: closing.fullDestination } : {}),
  });
  // The progress flusher must not count these bytes again.
  t.reportedBytes = Math.max(t.reportedBytes, closing.moved);
  // A canceled file keeps nothing: its partial data (kept by the engine for resume) is removed.
  if ((end.kind === 'canceled' || end.kind === 'failed') && lastResume?.tempPath) await rm(lastResume.tempPath, { force: true }).catch(() => undefined);
  // A file found already published by an earlier run moved nothing, so no engine cleaned up after that run: a worker
  // killed between its publish (link) and the removal of its part file leaves that part file behind.
  if (end.kind === 'finished' && state.a.length > 1) await removePartFiles(jobId, idx, spec, run);
  if (end.kind === 'queued') await deps.enqueue([{ member: end.member, delayMs: end.delayMs }]);
}

/** The error, saying why the destination that exists is not taken for the file. */
function withReason(err: CargoError, reason: string): TransferError {
  return new TransferError(err.code, `${err.message} (${reason})`, { httpStatus: err.httpStatus, field: 'destination', retryable: false, cause: err });
}

/** Removes the part files a closed file's runs up to `lastRun` left (a crashed worker's supervisor calls this). */
export function removeClosedRunPartFiles(jobId: string, idx: number, spec: FileSpec, lastRun: number): Promise<void> {
  return removePartFiles(jobId, idx, spec, lastRun + 1);
}

/** Removes the part files runs before `run` of a local destination may have left (a canceled file keeps nothing). */

async function removePartFiles(jobId: string, idx: number, spec: FileSpec, run: number): Promise<void> {
  if (!spec.destination.startsWith('file:')) return;
  const path = fileURLToPath(spec.destination);
  const { stalePartTags } = partFileTags(jobId, idx, run);
  await Promise.all(stalePartTags.map((tag) => rm(partFileName(path, tag), { force: true }).catch(() => undefined)));
}
