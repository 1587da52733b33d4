/**
 * The transfer engine: moves one file from `source` to `destination` (file://, https://, http://), streamed
 * and back-pressured, checksummed on the fly, published atomically, resumable, pausable and throttled
 * through `TransferControl`. Modes: pull (http → file), push (file → http PUT), copy (file → file) and
 * stream-through (http → http, no disk).
 *
 * Every attempt runs under its own AbortController, fed by the caller's signal and the stall watchdog, so
 * one `signal` reaches undici, the pause gate, the rate limiters and file I/O.
 */
import { setMaxListeners } from 'node:events';
import { createReadStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ClientPool, type PooledClient, type TransferClientOptions } from './connect/client-pool.js';
import { loadEndpointSettings, type EndpointSettings } from './connect/endpoint-settings.js';
import type { ConnectionEvents } from './connect/connection-events.js';
import { flowIdOf } from '../marking/flow-id.js';
import { AddressPolicy, policyLookup } from '../auth/address-policy.js';
import type { CreateSocket } from './connect/connector.js';
import { inspectExistingDestination, type ExistingDestination, type ExistingDestinationQuery } from './existing-destination.js';
import type { Config } from '../../config/schema.js';
import { ProgressMeter, pumpBytes } from './push/byte-pump.js';
import { FilePump } from './pull/file-pump.js';
import { PeriodicCheckpoint } from './local/periodic-checkpoint.js';
import { localFilePlan, pushRanges, type RangedPushPlan } from './push/ranged-push.js';
import { isSum32Alg } from '../checksum/checksummer.js';
import { parseEndpoint, type Endpoint } from './endpoint.js';
import { header, headRequest, ifRangeValidator, putRequest, rangedGet, removeUnverifiedUpload, type HttpEndpoint, type RangedGetResponse } from './http/http-requests.js';
import { LocalPartFile, assertDestinationFree } from './local/local-part-file.js';
import { GROUP_COMMIT_MAX_BYTES } from './local/commit-queue.js';
import { planFromHead, planPull, pullRanges, sourceDigestBeforeDownload, sourceHeaders, type MultiStreamPolicy, defaultMultiStreamPolicy } from './pull/multi-stream.js';
import { StallWatchdog, defaultStallPolicy, type StallPolicy } from './stall-watchdog.js';
import {
  digestFromHeaders, digestHeaderFor, newChecksum, rehashPrefix, wantDigestValue, type RunningChecksum,
} from './transfer-checksum.js';
import { TransferError, TransferErrorCode, abortedError, classifyError } from './transfer-errors.js';
import { checkPushedDestination } from './push/destination-check.js';
import { applyStreamStages, type StagedSource } from './stream-stage.js';
import { CopyModeMemory, thirdPartyCopy } from './tpc/third-party-copy.js';
import { withParentCollections } from './push/parent-collections.js';
import {
  codingReport, contentCodings, decodedChecksumOfFile, decodingStages, explainDecodingFailure, verifyCodedBody,
} from './content-coding.js';
import { asAttemptError, refuseWithoutSourceDigest, requestHeaders, verifyChecksum, type Attempt } from './attempt.js';
import type { ResumeState, TransferControl, TransferFn, TransferRequest, TransferResult } from './types.js';

export interface TransferEngineOptions extends TransferClientOptions {
  stall: StallPolicy;
  multiStream: MultiStreamPolicy;
  /** Read size for local files. */
  fileChunkBytes: number;
  /** How often a running pull reports its durable ranges through onCheckpoint (0 = only on failure). */
  checkpointIntervalMs: number;
}

/** Smallest read buffer for local sources (small files get a buffer their size, not fileChunkBytes). */
const MIN_FILE_READ_BYTES = 64 * 1024;

/** The engine's own options (the connection options live in its client pool). */
type EngineOptions = Omit<TransferEngineOptions, keyof TransferClientOptions>;

const defaultEngineOptions: EngineOptions = {
  stall: defaultStallPolicy,
  multiStream: defaultMultiStreamPolicy,
  fileChunkBytes: 1024 * 1024,
  checkpointIntervalMs: 10_000,
};

/**
 * Engine-wide options (TLS trust, default connections × streams, windows, timeouts, stall policy) and, optionally,
 * the per-endpoint settings (`transfer.endpointsFile`). Fields left out keep their defaults.
 */
export type TransferEngineSettings = Partial<Omit<TransferEngineOptions, 'stall' | 'multiStream'>> & {
  stall?: Partial<StallPolicy>;
  multiStream?: Partial<MultiStreamPolicy>;
  /** Per-endpoint overrides keyed by origin (connect/endpoint-settings.ts). */
  endpoints?: ReadonlyMap<string, EndpointSettings>;
};

/**
 * One transfer engine: its client pool (connections, endpoint settings), its options and its copy-mode memory.
 * Built once per process by the shells (serve, worker, gateway) from the one configuration and handed to whatever
 * moves bytes (the worker pool, the storage endpoint's HTTP-TPC); nothing of it lives in module state.
 */
export interface TransferEngine {
  /** Moves one file (the contract in types.ts). */
  readonly transfer: TransferFn;
  /** The engine's connections (the storage endpoint's TPC probes and existing-destination checks share them). */
  readonly pool: ClientPool;
  /**
   * Changes engine-wide options; connection options apply to connections opened afterwards (pooled connections
   * are closed). Endpoint settings given here replace the per-origin ones they name.
   */
  reconfigure(settings: TransferEngineSettings): Promise<void>;
  /** Per-endpoint connection settings and default copy mode for `origin`; `undefined` clears them. */
  configureEndpoint(origin: string, settings: EndpointSettings | undefined): Promise<void>;
  /**
   * `socket-opened` / `socket-closed` of every connection the engine opens (with the flow's context), and of the
   * connections the gateway or storage endpoint accepts when the shell attaches them (`trackAccepted`).
   */
  readonly connections: ConnectionEvents;
  /** Socket creation hook for outbound connections opened from now on (marking sets the IPv6 flow label there). */
  setCreateSocket(hook: CreateSocket | undefined): void;
  /** Forget which origins refused third-party copy lately. */
  forgetCopyRefusals(): void;
  /** Is the file already at its destination (existing-destination.ts), over this engine's connections. */
  inspectDestination(q: ExistingDestinationQuery, signal: AbortSignal): Promise<ExistingDestination>;
  /** Closes every pooled connection (graceful: in-flight requests finish first); the engine stays usable. */
  close(): Promise<void>;
}

/** What the attempt paths below need of their engine. */
interface EngineState {
  pool: ClientPool;
  options: EngineOptions;
  copyModes: CopyModeMemory;
}

export function createTransferEngine(settings: TransferEngineSettings = {}): TransferEngine {
  const { stall, multiStream, fileChunkBytes, checkpointIntervalMs, endpoints, ...clientOpts } = settings;
  const e: EngineState = { pool: new ClientPool(clientOpts), options: defaultEngineOptions, copyModes: new CopyModeMemory() };
  applyEngineOptions(e, { stall, multiStream, fileChunkBytes, checkpointIntervalMs });
  for (const [origin, { copyMode, ...opts }] of endpoints ?? []) {
    e.pool.setOriginOptions(new URL(origin).origin, opts);
    e.copyModes.setEndpointMode(new URL(origin).origin, copyMode);
  }
  const configureEndpoint = async (origin: string, s: EndpointSettings | undefined): Promise<void> => {
    const o = new URL(origin).origin;
    const { copyMode, ...opts } = s ?? {};
    e.copyModes.setEndpointMode(o, copyMode);
    await e.pool.configureOrigin(o, s ? opts : undefined);
  };
  return {
    transfer: (req, ctl) => transferFile(e, req, ctl),
    get pool() {
      return e.pool;
    },
    get connections() {
      return e.pool.events;
    },
    setCreateSocket: (hook) => e.pool.setCreateSocket(hook),
    async reconfigure(next) {
      const { stall: st, multiStream: ms, fileChunkBytes: fc, checkpointIntervalMs: ci, endpoints: eps, ...client } = next;
      applyEngineOptions(e, { stall: st, multiStream: ms, fileChunkBytes: fc, checkpointIntervalMs: ci });
      if (Object.values(client).some((v) => v !== undefined)) await e.pool.reconfigure(client);
      for (const [origin, s] of eps ?? []) await configureEndpoint(origin, s);
    },
    configureEndpoint,
    forgetCopyRefusals: () => e.copyModes.forgetRefusals(),
    inspectDestination: (q, signal) => inspectExistingDestination(e.pool, q, signal),
    close: () => e.pool.close(),
  };
}

/**
 * The engine settings of a configuration: TLS trust, defaults, stall and checkpoint policy and the endpoint
 * settings file — read and validated here, so a bad file stops the start with the origin and field named.
 */
export function engineSettingsFromConfig(cfg: Config): TransferEngineSettings {
  const t = cfg.transfer;
  return {
    rejectUnauthorized: !t.insecureTls,
    ...(t.caFile ? { ca: readFileSync(t.caFile) } : {}),
    connections: t.connections,
    streams: t.streams,
    stall: { idleMs: t.stallTimeoutSec * 1000 },
    checkpointIntervalMs: t.checkpointIntervalMs,
    ...(t.endpointsFile ? { endpoints: loadEndpointSettings(t.endpointsFile) } : {}),
    // Every name a transfer (or an HTTP-TPC copy) connects to is resolved through the outbound address policy: DNS
    // rebinding after submission cannot reach a refused address; IP literals were checked at submission.
    lookup: policyLookup(new AddressPolicy(cfg.auth.allowAddresses)),
  };
}

/** An attempt with the engine it runs on. */
type EngineAttempt = Attempt & { e: EngineState; pool: ClientPool };

function applyEngineOptions(e: EngineState, o: Pick<TransferEngineSettings, 'stall' | 'multiStream' | 'fileChunkBytes' | 'checkpointIntervalMs'>): void {
  const prev = e.options;
  e.options = {
    stall: o.stall ? { ...prev.stall, ...definedOnly(o.stall) } : prev.stall,
    multiStream: o.multiStream ? { ...prev.multiStream, ...definedOnly(o.multiStream) } : prev.multiStream,
    fileChunkBytes: o.fileChunkBytes ?? prev.fileChunkBytes,
    checkpointIntervalMs: o.checkpointIntervalMs ?? prev.checkpointIntervalMs,
  };
}

/** A ranged (multi-connection) push, when the destination assembles ranged PUTs and the file is large enough. */
async function rangedPushPlan(a: EngineAttempt, path: string, dst: HttpEndpoint): Promise<RangedPushPlan | null> {
  const o = a.pool.optionsFor(dst.origin);
  if (!o.rangedUpload) return null;
  const lanes = Math.max(1, a.req.connections ?? o.connections) * Math.max(1, a.req.streams ?? o.streams);
  if (lanes <= 1) return null;
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return null; // the single-stream path reports the missing source
  }
  if (size < a.e.options.multiStream.minFileBytes || size <= a.e.options.multiStream.rangeBytes) return null;
  return localFilePlan(path, size, lanes, a);
}

/**
 * A ranged stream-through (remote → cargoport peer, no disk): the source is read with ranged GETs guarded by its
 * validator (If-Range), each range PUT as one part. Only when the source says its size, takes byte ranges and has a
 * validator, the file is large enough, and the checksum (if any) can be combined from ranges; else single stream.
 */
async function rangedStreamThroughPlan(a: EngineAttempt, src: HttpEndpoint, dst: HttpEndpoint): Promise<RangedPushPlan | null> {
  const o = a.pool.optionsFor(dst.origin);
  if (!o.rangedUpload || a.pool.rangesUnusable(src.origin)) return null;
  const lanes = Math.max(1, a.req.connections ?? o.connections) * Math.max(1, a.req.streams ?? o.streams);
  const policy = a.e.options.multiStream;
  if (lanes <= 1 || (a.req.size !== undefined && a.req.size < policy.minFileBytes)) return null;
  if (a.computeChecksum && !isSum32Alg(a.alg)) return null;
  // Any refusal of the HEAD leaves the answer to the single-stream path.
  const head = await planFromHead(a.pool, src, a, await sourceHeaders(a, 'HEAD'), 1, 1, policy).catch(() => null);
  if (!head || head.size < policy.minFileBytes) return null;
  const { size, validator } = head;
  if (!validator) return null; // ranges of a source that may change under us could not be trusted
  return {
    size,
    lanes,
    sourceDigest: head.sourceDigest,
    openPart: async (start, end, signal) => {
      const res = await rangedGet(a.pool, src, { offset: start, end, validator, headers: await requestHeaders(a, 'source', src.url, 'GET'), signal });
      if (res.status !== 206 || res.start !== start) {
        res.body.destroy();
        throw new TransferError(TransferErrorCode.sourceChanged, 'source changed during a ranged stream-through (If-Range answered with the whole file)', {
          httpStatus: 502, field: 'source', retryable: true,
        });
      }
      return res.body;
    },
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

async function transferFile(e: EngineState, req: TransferRequest, ctl: TransferControl): Promise<TransferResult> {
  const source = parseEndpoint(req.source, 'source');
  const destination = parseEndpoint(req.destination, 'destination');
  if (ctl.signal.aborted) throw abortedError(ctl.signal.reason);

  const attemptAbort = new AbortController();
  setMaxListeners(0, attemptAbort.signal);
  const forwardAbort = (): void => attemptAbort.abort(ctl.signal.reason);
  ctl.signal.addEventListener('abort', forwardAbort, { once: true });
  const watchdog = new StallWatchdog(e.options.stall, ctl.gate, (err) => attemptAbort.abort(err));
  // The attempt's view of the pool: connections shared only within its flow (credentials identity, SciTag), and
  // every socket it opens announced with the flow's context.
  const pool = e.pool.forFlow({
    ...ctl.flow,
    // The scitags flow marking resolved for this transfer wins (its connections carry its label).
    ...(req.flow ? { tag: req.flow, scitag: flowIdOf(req.flow) } : {}),
    ...(source.kind === 'http' ? { sourceOrigin: source.origin } : {}),
    ...(destination.kind === 'http' ? { destinationOrigin: destination.origin } : {}),
  }, ctl.onConnection ? (info) => ctl.onConnection!({ ip: info.remoteIp!, port: info.remotePort, localPort: info.localPort }) : undefined);
  const attempt: EngineAttempt = {
    e, pool, req, ctl, signal: attemptAbort.signal, watchdog,
    alg: req.checksum?.alg ?? 'adler32',
    computeChecksum: req.verify !== 'none' || req.checksum?.value !== undefined,
    startedAt: Date.now(),
  };
  watchdog.start();
  try {
    if (destination.kind === 'file') return await toLocalFile(attempt, source, destination.path);
    if (source.kind === 'http' && !ctl.stages?.length) {
      const copied = await thirdPartyCopy(attempt, source, destination, pool, e.options.stall, e.copyModes);
      if (copied) return copied;
    }
    // A plain WebDAV destination (409 for a missing parent collection) gets its parents made with MKCOL.
    const destinationHeaders = (method: string): Promise<Record<string, string>> => requestHeaders(attempt, 'destination', destination.url, method);
    return await withParentCollections(pool, destination, destinationHeaders, attempt.signal, () => toRemote(attempt, source, destination));
  } catch (err) {
    throw asAttemptError(err, attempt, source);
  } finally {
    watchdog.stop();
    pool.release();
    ctl.signal.removeEventListener('abort', forwardAbort);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Sources

interface OpenedSource {
  body: Readable;
  /** Offset the body starts at (may be 0 although a resume was asked: the source changed). */
  start: number;
  size?: number;
  etag?: string;
  lastModified?: string;
  /** Checksum the source announced (canonical hex), for verify = source | both. */
  sourceDigest?: string;
  via?: PooledClient;
  /** Content codings the source applied to the body (content-coding.ts); empty for its plain bytes. */
  codings: string[];
}

async function openSource(a: EngineAttempt, src: Endpoint, offset: number, resume?: ResumeState): Promise<OpenedSource> {
  if (src.kind === 'file') {
    let st;
    try {
      st = await stat(src.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new TransferError(TransferErrorCode.sourceNotFound, `source not found: ${src.url}`, {
          httpStatus: 404, field: 'source', retryable: false,
        });
      }
      throw classifyError(e, 'local', src.path);
    }
    const lastModified = st.mtime.toISOString();
    // A local source can be resumed only if it is unchanged since the partial copy was made.
    const start = offset > 0 && resume?.size === st.size && resume.lastModified === lastModified ? offset : 0;
    // Size the read buffer to the file: a fixed 1 MiB buffer per small file is pure garbage-collector work.
    const highWaterMark = Math.min(a.e.options.fileChunkBytes, Math.max(MIN_FILE_READ_BYTES, st.size - start));
    const body = createReadStream(src.path, { start, highWaterMark, signal: a.signal });
    return { body, start, size: st.size, lastModified, codings: [] };
  }
  const validator = ifRangeValidator(resume?.etag, resume?.lastModified);
  const headers = await requestHeaders(a, 'source', src.url, 'GET');
  if (a.computeChecksum && (a.req.verify === 'source' || a.req.verify === 'both')) {
    headers['want-digest'] = wantDigestValue(a.alg);
  }
  // A resumed range is closed when the size is known: XRootD 5.5 answers an open one (`bytes=N-`) with no bytes.
  const resumeEnd = validator && offset > 0 && resume?.size !== undefined ? resume.size : undefined;
  // A part file that already holds every byte (the connection died after the last DATA frame, before the end of
  // the stream) would ask for an empty range, which servers answer 416: re-read its last byte instead, so the
  // source still confirms with If-Range that these are its bytes.
  const from = resumeEnd !== undefined && resumeEnd > 0 ? Math.min(offset, resumeEnd - 1) : offset;
  const res = await rangedGet(a.pool, src, {
    offset: validator ? from : 0, validator, headers, signal: a.signal, ...(resumeEnd !== undefined ? { end: resumeEnd } : {}),
  });
  return openedFromResponse(a, res);
}

function openedFromResponse(a: EngineAttempt, res: RangedGetResponse): OpenedSource {
  return {
    body: res.body,
    start: res.start,
    size: res.size,
    etag: header(res.headers, 'etag'),
    lastModified: header(res.headers, 'last-modified'),
    sourceDigest: digestFromHeaders(res.headers, a.alg),
    via: res.via,
    codings: contentCodings(res.headers),
  };
}

// ---------------------------------------------------------------------------------------------------------
// file:// destination (pull and copy)

/** Raw transport errors of an HTTP/2 or HTTP/1.1 source, as opposed to local I/O errors (ENOSPC, EIO …). */
const SOURCE_TRANSPORT_CODES = /^(ERR_HTTP2_|UND_ERR_|ECONNRESET$|EPIPE$|ECONNABORTED$|ERR_STREAM_PREMATURE_CLOSE$)/;

function isSourceTransportFailure(err: unknown): boolean {
  if (err instanceof TransferError) return err.code === TransferErrorCode.network;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && SOURCE_TRANSPORT_CODES.test(code);
}

/** Declared sizes up to this skip the destination pre-check (see toLocalFile). */
const SMALL_FILE_EARLY_CHECK_BYTES = 1024 * 1024;

/** Times one attempt may continue a body whose connection dropped, before the attempt itself fails. */
const MAX_BODY_CONTINUATIONS = 3;

/**
 * A body cut by a dropped connection (a server's graceful GOAWAY: nginx sends one every http2_max_requests,
 * and undici 7 fails the bodies still in flight on that session; or a reset) continues in the same attempt:
 * the remainder is asked for with Range + If-Range, and used only if the source answers with that very
 * representation from exactly `position`. Anything else leaves the error to the attempt (retry, resume).
 */
async function continueBody(a: EngineAttempt, src: HttpEndpoint, opened: OpenedSource, position: number, err: unknown): Promise<Readable | undefined> {
  // Only a failure of the source's transport qualifies (not a local write error, an abort or a stall).
  if (!isSourceTransportFailure(err)) return undefined;
  const validator = ifRangeValidator(opened.etag, opened.lastModified);
  if (!validator || (opened.size !== undefined && position >= opened.size)) return undefined;
  try {
    const res = await rangedGet(a.pool, src, {
      offset: position, validator, headers: await requestHeaders(a, 'source', src.url, 'GET'), signal: a.signal,
      ...(opened.size !== undefined ? { end: opened.size } : {}),
    });
    if (res.start === position) return res.body;
    res.body.destroy();
  } catch {
    /* the attempt fails with the original error */
  }
  return undefined;
}

async function toLocalFile(a: EngineAttempt, src: Endpoint, finalPath: string): Promise<TransferResult> {
  const { req, ctl } = a;
  // The early check spares a large download that could not be published; for a small file it costs more (a
  // thread-a.pool round trip) than the bytes it saves, and link(2) at publish refuses an existing file atomically.
  if (req.size === undefined || req.size > SMALL_FILE_EARLY_CHECK_BYTES) await assertDestinationFree(finalPath, req.overwrite);
  // Staged bytes are not the source's bytes: one stream from byte 0, nothing to resume (stream-stage.ts).
  const stages = ctl.stages?.length ? ctl.stages : undefined;
  const resume = stages ? undefined : req.resume;

  let probe: RangedGetResponse | undefined;
  if (src.kind === 'http' && a.e.options.multiStream.enabled && !stages) {
    const plan = await planPull(a.pool, src, a, a.e.options.multiStream);
    if (plan.kind === 'split') {
      try {
        plan.plan.sourceDigest = await sourceDigestBeforeDownload(a.pool, src, a, plan.plan.sourceDigest, true);
        refuseWithoutSourceDigest(a, plan.plan.sourceDigest);
      } catch (e) {
        plan.first?.body.destroy();
        throw e;
      }
      return pullRanges(a.pool, src, finalPath, a, plan.plan, a.e.options.multiStream, plan.first, a.e.options.checkpointIntervalMs);
    }
    if (plan.kind === 'single-opened') probe = plan.response;
  }

  const part = await LocalPartFile.open(finalPath, probe ? undefined : resume, { tag: req.partTag, staleTags: req.stalePartTags }).catch((e: unknown) => {
    probe?.body.destroy();
    throw e;
  });
  // Valid bytes in the part file; until the source answers, the previous attempt's prefix and validators stand.
  let position = part.resumedSize;
  let validators: Pick<ResumeState, 'etag' | 'lastModified' | 'size'> = {
    etag: resume?.etag, lastModified: resume?.lastModified, size: resume?.size,
  };
  let opened: OpenedSource | undefined;
  let checksum: RunningChecksum | null = null;
  let staged: StagedSource | undefined;
  let codings: string[] = [];
  try {
    opened = probe ? openedFromResponse(a, probe) : await openSource(a, src, part.resumedSize, resume);
    codings = opened.codings;
    const decode = codings.length > 0 && req.contentEncoding === 'decode' ? decodingStages(codings) : undefined;
    if (decode && opened.start > 0) {
      // A resume offset counts encoded bytes: a decoded body starts over.
      opened.body.destroy();
      opened = await openSource(a, src, 0);
      codings = opened.codings;
    }
    if (src.kind === 'http') {
      opened.sourceDigest = await sourceDigestBeforeDownload(a.pool, src, a, opened.sourceDigest, opened.start > 0);
      refuseWithoutSourceDigest(a, opened.sourceDigest);
    }
    validators = { etag: opened.etag, lastModified: opened.lastModified, size: opened.size };
    if (opened.start !== part.resumedSize) {
      // The source could not continue where the part file ends: start over.
      await part.truncate(opened.start);
    }
    position = opened.start;
    checksum = a.computeChecksum ? newChecksum(a.alg) : null;
    if (checksum && position > 0) await rehashPrefix(checksum, part.handle, position);
    // Decoding: `checksum` covers the decoded bytes stored, `sentChecksum` the encoded ones (the source's Digest).
    const sentChecksum = decode && !stages && a.computeChecksum ? newChecksum(a.alg) : null;

    const chain = [...(decode ?? []), ...(stages ?? [])];
    const progress = new ProgressMeter(position, chain.length ? undefined : opened.size ?? req.size, ctl.onProgress);
    let body = opened.body;
    if (chain.length) {
      // With processing stages the checksum verified against the source is that of the bytes read, before them.
      staged = applyStreamStages(opened.body, chain, stages ? checksum : sentChecksum);
      body = staged.body;
    }
    for (let continuation = 0; ; continuation++) {
      const pump = new FilePump({
        source: body, writev: (bufs, pos) => part.writevAt(bufs, pos), position,
        signal: a.signal, gate: ctl.gate, limiters: ctl.limiters, checksum: stages ? null : checksum, progress,
        onChunk: (n) => a.watchdog.bytesMoved(n),
      });
      const ticker = new PeriodicCheckpoint(a.e.options.checkpointIntervalMs, part.handle,
        () => ({ tempPath: part.tempPath, ...validators, done: [[0, pump.position]] }), staged ? undefined : ctl.onCheckpoint);
      ticker.start();
      try {
        await pump.run();
        break;
      } catch (e) {
        position = pump.position;
        if (staged) throw explainDecodingFailure(staged.explain(e), codings);
        // Every announced byte is written and only the end of the stream was lost with its connection (nginx's
        // GOAWAY every http2_max_requests can fall between a response's last DATA frame and its END_STREAM):
        // the body is complete; size and checksum are still verified below.
        if (src.kind === 'http' && opened.size !== undefined && position === opened.size && !a.signal.aborted && isSourceTransportFailure(e)) break;
        const next = continuation < MAX_BODY_CONTINUATIONS && src.kind === 'http' && !a.signal.aborted
          ? await continueBody(a, src, opened, position, e)
          : undefined;
        if (!next) throw e;
        body.destroy();
        body = next;
      } finally {
        ticker.stop();
        position = pump.position;
      }
    }
    progress.flush();

    const size = opened.size ?? req.size;
    const received = staged ? staged.inputBytes : position;
    if (size !== undefined && received !== size) {
      throw new TransferError(TransferErrorCode.sizeMismatch, `received ${received} bytes, expected ${size}`, {
        httpStatus: 502, field: 'source', retryable: true,
      });
    }
    const value = checksum?.digestHex();
    if (codings.length > 0 && !stages) {
      const stored = position;
      await verifyCodedBody(a, {
        mode: decode ? 'decode' : 'keep', codings, stored: value, sent: decode ? sentChecksum?.digestHex() : value,
        sourceDigest: opened.sourceDigest, decodeStored: () => decodedChecksumOfFile(a, part.tempPath, stored, codings),
      });
    } else {
      verifyChecksum(a, value, opened.sourceDigest);
    }
    // Small files are group-committed: made durable and named with the others that finish close to them.
    await part.publish(req.overwrite, { grouped: position <= GROUP_COMMIT_MAX_BYTES });
    return {
      bytes: position,
      resumedBytes: opened.start,
      ...(value !== undefined ? { checksum: { alg: a.alg, value } } : {}),
      ...(opened.via?.info.remoteIp ? { remoteIp: opened.via.info.remoteIp } : {}),
      protocol: src.kind === 'file' ? 'file' : opened.via?.info.protocol ?? 'h2',
      connections: 1,
      streams: 1,
      durationMs: Date.now() - a.startedAt,
      ...codingReport(codings, decode !== undefined),
    };
  } catch (e) {
    opened?.body.destroy();
    staged?.body.destroy();
    const err = asAttemptError(explainDecodingFailure(e, codings), a, src);
    const resumable = err.retryable || err.code === TransferErrorCode.aborted;
    const badBytes = err.code === TransferErrorCode.checksumMismatch || err.code === TransferErrorCode.sourceChanged;
    if (!resumable || badBytes || position === 0 || staged) {
      // Bad bytes (or bytes of a representation the source no longer serves), a fatal error, or nothing
      // written: no part file worth keeping; the next attempt starts from byte 0.
      await part.discard();
      if (resumable) ctl.onCheckpoint?.({ done: [] });
    } else {
      await part.syncAndClose().catch(() => undefined);
      ctl.onCheckpoint?.({ tempPath: part.tempPath, ...validators, done: [[0, position]] });
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// http(s) destination (push and stream-through)

async function toRemote(a: EngineAttempt, src: Endpoint, dst: HttpEndpoint): Promise<TransferResult> {
  const { req, ctl } = a;
  /** Conditions of the upload; credentials are asked per request (dstHeaders). */
  const conditions: Record<string, string> = {};
  const dstHeaders = async (method: string): Promise<Record<string, string>> =>
    ({ ...await requestHeaders(a, 'destination', dst.url, method), ...conditions });
  if (!req.overwrite) {
    const head = await headRequest(a.pool, dst, 'destination', await dstHeaders('HEAD'), a.signal);
    if (head.status >= 200 && head.status < 300) {
      throw new TransferError(TransferErrorCode.destExists, `destination exists and overwrite is false: ${dst.url}`, {
        httpStatus: 409, field: 'destination', retryable: false,
      });
    }
    conditions['if-none-match'] = '*';
  }
  const stages = ctl.stages?.length ? ctl.stages : undefined;
  if (a.e.options.multiStream.enabled && !stages) {
    const ranged = src.kind === 'file' ? await rangedPushPlan(a, src.path, dst) : await rangedStreamThroughPlan(a, src, dst);
    if (ranged) return pushRanges(a.pool, dst, a, ranged, a.e.options.multiStream, dstHeaders);
  }
  let opened: OpenedSource | undefined;
  let staged: StagedSource | undefined;
  let codings: string[] = [];
  /** The destination holds our upload: a failure from here on removes it (removeUnverifiedUpload). */
  let stored = false;
  try {
    opened = await openSource(a, src, 0);
    codings = opened.codings;
    const decode = codings.length > 0 && req.contentEncoding === 'decode' && !stages ? decodingStages(codings) : undefined;
    const chain = [...(decode ?? []), ...(stages ?? [])];
    // Refuse before writing anything when the source's checksum is required and it announced none.
    refuseWithoutSourceDigest(a, opened.sourceDigest);
    const checksum = a.computeChecksum ? newChecksum(a.alg) : null;
    // With stages: `checksum` covers the source bytes; the destination is compared with the output's own sum.
    // Decoding: the output's sum is that of the bytes stored, which the user's value is compared with.
    const outputChecksum = checksum && (decode || (stages && (req.verify === 'destination' || req.verify === 'both'))) ? newChecksum(a.alg) : null;
    if (chain.length) staged = applyStreamStages(opened.body, chain, checksum);
    const size = chain.length ? undefined : opened.size ?? req.size;
    const progress = new ProgressMeter(0, size, ctl.onProgress);
    const chunks = pumpBytes(staged ? staged.body : opened.body, {
      signal: a.signal, gate: ctl.gate, limiters: ctl.limiters, checksum: staged ? outputChecksum : checksum, progress,
      onChunk: (n) => a.watchdog.bytesMoved(n),
    });
    if (req.checksum?.value && !chain.length && codings.length === 0) {
      // Lets checksum-aware destinations (cargoport, XRootD, dCache) verify on their side too.
      conditions['digest'] = digestHeaderFor(req.checksum.alg, req.checksum.value);
    }
    const put = await putRequest(a.pool, dst, { body: chunks, size, headers: await dstHeaders('PUT'), signal: a.signal });
    stored = true;
    progress.flush();
    if (size !== undefined && progress.value !== size) {
      throw new TransferError(TransferErrorCode.sizeMismatch, `sent ${progress.value} bytes, expected ${size}`, {
        httpStatus: 502, field: 'source', retryable: true,
      });
    }
    const sourceSize = opened.size ?? req.size;
    if (staged && sourceSize !== undefined && staged.inputBytes !== sourceSize) {
      throw new TransferError(TransferErrorCode.sizeMismatch, `read ${staged.inputBytes} bytes, expected ${sourceSize}`, {
        httpStatus: 502, field: 'source', retryable: true,
      });
    }
    const value = checksum?.digestHex();
    const storedValue = decode ? outputChecksum?.digestHex() : value;
    if (codings.length > 0 && !stages) {
      await verifyCodedBody(a, { mode: decode ? 'decode' : 'keep', codings, stored: storedValue, sent: value, sourceDigest: opened.sourceDigest });
    } else {
      verifyChecksum(a, value, opened.sourceDigest);
    }
    await checkPushedDestination(a.pool, a, dst, put.headers, staged ? outputChecksum?.digestHex() : value, progress.value);
    return {
      bytes: progress.value,
      resumedBytes: 0,
      ...(storedValue !== undefined ? { checksum: { alg: a.alg, value: storedValue } } : {}),
      ...(put.info.remoteIp ? { remoteIp: put.info.remoteIp } : {}),
      protocol: put.info.protocol ?? 'h2',
      connections: 1,
      streams: 1,
      durationMs: Date.now() - a.startedAt,
      ...codingReport(codings, decode !== undefined),
    };
  } catch (e) {
    opened?.body.destroy();
    staged?.body.destroy();
    const err = asAttemptError(explainDecodingFailure(staged ? staged.explain(e) : e, codings), a, src);
    // Stored but not verified (checksum, size, destination check): not a file to leave published.
    if (stored) await removeUnverifiedUpload(a.pool, dst, await dstHeaders('DELETE').catch(() => conditions));
    // A remote destination keeps no partial data we could resume into (single-stream PUT).
    if (err.retryable || err.code === TransferErrorCode.aborted) ctl.onCheckpoint?.({ done: [] });
    throw err;
  }
}
