/**
 * Multi-stream pulls: a large file is split into byte ranges carried over N TCP connections × M HTTP/2
 * streams (or N×M HTTP/1.1 connections when the origin does not speak h2) and written with positional writes
 * into one part file. Each range is checksummed on its own and the range sums are combined (adler32 and
 * crc32c combine exactly); md5/sha256, which cannot be combined, are computed over the assembled part file
 * — a local read, never the remote source again.
 *
 * Resume works per range: the checkpoint lists every byte range that is durable in the part file, and the
 * next attempt fetches only the gaps (If-Range on the source's ETag, so a changed source restarts cleanly).
 */
import { adler32Combine } from '../../checksum/adler32.js';
import { Sum32Checksummer, isSum32Alg } from '../../checksum/checksummer.js';
import { ChecksumStateError } from '../../checksum/checksum-errors.js';
import { crc32cCombine } from '../../checksum/crc32c.js';
import type { ClientPool, PooledClient } from '../connect/client-pool.js';
import { asAttemptError, requestHeaders, sourceDigestRequired, verifyChecksum, type Attempt } from '../attempt.js';
import { ProgressMeter } from '../push/byte-pump.js';
import { FilePump } from './file-pump.js';
import { PeriodicCheckpoint } from '../local/periodic-checkpoint.js';
import { contentCodings } from '../content-coding.js';
import { contentLength, header, headRequest, rangedGet, splitValidator, type HttpEndpoint, type RangedGetResponse } from '../http/http-requests.js';
import { LocalPartFile } from '../local/local-part-file.js';
import { digestFromHeaders, newChecksum, rehashPrefix, wantDigestValue } from '../transfer-checksum.js';
import type { CargoError } from '../../../errors/cargo-error.js';
import { TransferError, TransferErrorCode, classifyError, errorForHttpStatus, isConnectFailure } from '../transfer-errors.js';
import type { ResumeState, TransferResult } from '../types.js';
import { setMaxListeners } from 'node:events';
import type { FileHandle } from 'node:fs/promises';

export interface MultiStreamPolicy {
  enabled: boolean;
  /** Retries of one range's remainder within an attempt (reset / refused / truncated streams). */
  rangeRetries: number;
  rangeRetryDelayMs: number;
  /** Files smaller than this move over one stream (the HEAD round trip would cost more than it saves). */
  minFileBytes: number;
  /** Size of one range request. */
  rangeBytes: number;
}

export const defaultMultiStreamPolicy: MultiStreamPolicy = {
  enabled: true,
  rangeRetries: 3,
  rangeRetryDelayMs: 50,
  minFileBytes: 32 * 1024 * 1024,
  rangeBytes: 16 * 1024 * 1024,
};

export interface SplitPlan {
  size: number;
  /** Validator for If-Range: a strong ETag, else Last-Modified. */
  validator?: string;
  etag?: string;
  lastModified?: string;
  sourceDigest?: string;
  /** Connections and parallel requests per connection actually used. */
  connections: number;
  streams: number;
  protocol: 'h2' | 'http/1.1';
}

type Range = [number, number];

/**
 * Transport failures a fresh request for the rest of the range cures at once: a reset or refused stream, a
 * truncated body. HTTP answers (5xx, 429) and timeouts are the server asking for a pause: they end the
 * attempt so the worker's backoff applies.
 */
function rangeRetryable(err: CargoError): boolean {
  return err.code === TransferErrorCode.network || err.code === TransferErrorCode.sizeMismatch;
}

/**
 * A request refused before any byte (REFUSED_STREAM, ENHANCE_YOUR_CALM, reset) is simply asked again; a server
 * that cannot be connected to at all is not (the connector already retried it: transfer-errors `isConnectFailure`).
 */
async function withRetries<T>(policy: MultiStreamPolicy, signal: AbortSignal, url: string, fn: () => Promise<T>): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await fn();
    } catch (e) {
      const err = classifyError(e, 'source', url);
      if (signal.aborted || !rangeRetryable(err) || isConnectFailure(e) || tries >= policy.rangeRetries) throw e;
      await sleep(policy.rangeRetryDelayMs * 2 ** tries * (0.5 + Math.random()), signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How a pull from an HTTP source proceeds, decided with at most one request that is never wasted. */
export type PullPlan =
  /** Plain single-stream GET (resumable from the part file's prefix). */
  | { kind: 'single' }
  /** The probe's response already carries the whole file: consume it as a single stream. */
  | { kind: 'single-opened'; response: RangedGetResponse }
  /** Split into ranges; `first` is the probe's response for range [0, rangeBytes), when there was a probe. */
  | { kind: 'split'; plan: SplitPlan; first?: RangedGetResponse };

/**
 * Decides single vs multi-stream. Without a resume state the probe is a GET of the first range (with
 * Want-Digest): a 200 or a 206 that covers the whole file is simply consumed, and a larger file's first
 * range is already moving when the other ranges start — no HEAD round trip per file. With a resume state
 * a HEAD tells whether the part file's ranges still match the source.
 */
export async function planPull(
  pool: ClientPool, src: HttpEndpoint, a: Attempt, policy: MultiStreamPolicy,
): Promise<PullPlan> {
  const defaults = pool.optionsFor(src.origin);
  const n = Math.max(1, a.req.connections ?? defaults.connections);
  const m = Math.max(1, a.req.streams ?? defaults.streams);
  if (n * m <= 1 || pool.rangesUnusable(src.origin)) return { kind: 'single' };
  if (a.req.size !== undefined && a.req.size < policy.minFileBytes) return { kind: 'single' };
  if (a.req.resume && a.req.resume.done.length > 0) {
    const plan = await planFromHead(pool, src, a, await sourceHeaders(a, 'HEAD'), n, m, policy);
    return plan ? { kind: 'split', plan } : { kind: 'single' };
  }
  const res = await withRetries(policy, a.signal, src.url,
    async () => rangedGet(pool, src, { offset: 0, end: policy.rangeBytes, headers: await sourceHeaders(a, 'GET'), signal: a.signal, probe: true }));
  if (res.status === 416) return { kind: 'single' };
  if (res.status === 200) return { kind: 'single-opened', response: res };
  const size = res.size;
  if (size === undefined) {
    // `Content-Range: bytes 0-x/*`: no total, nothing to split; start over with a plain GET.
    res.body.destroy();
    return { kind: 'single' };
  }
  if (size <= policy.rangeBytes) return { kind: 'single-opened', response: res };
  if (contentCodings(res.headers).length > 0) {
    // Ranges of an encoded representation are not pieces of a file to decode one by one: one plain GET.
    res.body.destroy();
    return { kind: 'single' };
  }
  const validator = splitValidator(res.headers);
  if (validator === 'changing') {
    // Modified within the last second: one plain GET, whose body cannot mix two versions.
    res.body.destroy();
    return { kind: 'single' };
  }
  const protocol = res.via.info.protocol ?? 'h2';
  const etag = header(res.headers, 'etag');
  const lastModified = header(res.headers, 'last-modified');
  return {
    kind: 'split',
    first: res,
    plan: {
      size, etag, lastModified, validator,
      sourceDigest: digestFromHeaders(res.headers, a.alg),
      connections: protocol === 'h2' ? n : n * m,
      streams: protocol === 'h2' ? m : 1,
      protocol,
    },
  };
}

/** Headers of one request to the source (credentials asked for it), with Want-Digest when its checksum is needed. */
export async function sourceHeaders(a: Attempt, method: string): Promise<Record<string, string>> {
  const headers = await requestHeaders(a, 'source', a.req.source, method);
  if (wantsSourceDigest(a)) headers['want-digest'] = wantDigestValue(a.alg);
  return headers;
}

/**
 * The source's checksum for verify = source | both, known before any body byte is stored: the one in `announced`
 * (the headers already received), else — a ranged answer (206) need not carry the digest of the whole file, and
 * some servers send it only on full responses — one HEAD. Undefined when it is not needed or the source has none;
 * the caller then refuses at once (refuseWithoutSourceDigest) instead of downloading a file it could not publish.
 */
export async function sourceDigestBeforeDownload(
  pool: ClientPool, src: HttpEndpoint, a: Attempt, announced: string | undefined, ranged: boolean,
): Promise<string | undefined> {
  if (announced !== undefined || !ranged || !sourceDigestRequired(a)) return announced;
  const head = await headRequest(pool, src, 'source', await sourceHeaders(a, 'HEAD'), a.signal);
  return head.status >= 200 && head.status < 300 ? digestFromHeaders(head.headers, a.alg) : undefined;
}

function wantsSourceDigest(a: Attempt): boolean {
  return a.computeChecksum && (a.req.verify === 'source' || a.req.verify === 'both');
}

export async function planFromHead(
  pool: ClientPool, src: HttpEndpoint, a: Attempt, headers: Record<string, string>, n: number, m: number,
  policy: MultiStreamPolicy,
): Promise<SplitPlan | null> {
  const head = await headRequest(pool, src, 'source', headers, a.signal);
  // A server without HEAD gets the single-stream GET; any other refusal is the source's final word.
  if (head.status === 405 || head.status === 501) return null;
  if (head.status < 200 || head.status >= 300) throw errorForHttpStatus(head.status, 'source', src.url);
  const len = header(head.headers, 'content-length');
  const size = len !== undefined ? contentLength(len) : NaN;
  if (Number.isNaN(size) || size <= policy.rangeBytes) return null;
  if (!/\bbytes\b/i.test(header(head.headers, 'accept-ranges') ?? '')) return null;
  if (contentCodings(head.headers).length > 0) return null; // an encoded representation is not split (content-coding.ts)
  const validator = splitValidator(head.headers);
  if (validator === 'changing') return null; // modified within the last second: not split (see planPull)
  const etag = header(head.headers, 'etag');
  const lastModified = header(head.headers, 'last-modified');
  const protocol = head.via.info.protocol ?? 'h2';
  return {
    size, etag, lastModified, validator,
    sourceDigest: digestFromHeaders(head.headers, a.alg),
    // Over HTTP/1.1 a connection carries one request at a time: N×M connections instead.
    connections: protocol === 'h2' ? n : n * m,
    streams: protocol === 'h2' ? m : 1,
    protocol,
  };
}

/**
 * Whether a response (200 or 206) is of the representation a split plan was made for: same size, and the same
 * ETag (opaque tag) and Last-Modified where both sides have them. RFC 9110 §15.3.7 makes a 206 carry the
 * validators a 200 would have.
 */
export function sameRepresentation(res: Pick<RangedGetResponse, 'headers' | 'size'>, plan: Pick<SplitPlan, 'size' | 'etag' | 'lastModified'>): boolean {
  if (res.size !== undefined && res.size !== plan.size) return false;
  // Plans are made for plain bytes only: a range that comes encoded is not a piece of them.
  if (contentCodings(res.headers).length > 0) return false;
  const etag = header(res.headers, 'etag');
  if (etag !== undefined && plan.etag !== undefined && etag.replace(/^W\//, '') !== plan.etag.replace(/^W\//, '')) return false;
  const lastModified = header(res.headers, 'last-modified');
  if (lastModified !== undefined && plan.lastModified !== undefined && lastModified !== plan.lastModified) return false;
  return true;
}

/** Sorted, merged copy of `ranges`, clipped to [0, size). */
export function normaliseRanges(ranges: ReadonlyArray<readonly [number, number]>, size: number): Range[] {
  const sorted = ranges
    .map(([s, e]) => [Math.max(0, s), Math.min(size, e)] as Range)
    .filter(([s, e]) => e > s)
    .sort((x, y) => x[0] - y[0]);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** The gaps of `done` within [0, size), cut into pieces of at most `pieceBytes`. */
export function missingRanges(done: readonly Range[], size: number, pieceBytes: number): Range[] {
  const out: Range[] = [];
  let pos = 0;
  const cut = (s: number, e: number): void => {
    for (let p = s; p < e; p += pieceBytes) out.push([p, Math.min(e, p + pieceBytes)]);
  };
  for (const [s, e] of done) {
    if (s > pos) cut(pos, s);
    pos = Math.max(pos, e);
  }
  if (pos < size) cut(pos, size);
  return out;
}

/** A checksummed piece of the file: the sum of bytes [start, end) on its own. */
interface RangeSum {
  start: number;
  end: number;
  state: number;
}

export function combineRangeSums(alg: 'adler32' | 'crc32c', sums: readonly RangeSum[], size: number): number {
  const sorted = [...sums].sort((x, y) => x.start - y.start);
  let pos = 0;
  let state = alg === 'adler32' ? 1 : 0;
  const combine = alg === 'adler32' ? adler32Combine : crc32cCombine;
  for (const r of sorted) {
    if (r.start !== pos) throw new ChecksumStateError(`range checksums do not tile the file: gap at ${pos}`);
    state = combine(state, r.state, r.end - r.start);
    pos = r.end;
  }
  if (pos !== size) throw new ChecksumStateError(`range checksums cover ${pos} of ${size} bytes`);
  return state;
}

async function sumLocalRange(alg: 'adler32' | 'crc32c', handle: FileHandle, start: number, end: number): Promise<RangeSum> {
  const sum = new Sum32Checksummer(alg);
  const buf = Buffer.allocUnsafe(Math.min(4 * 1024 * 1024, Math.max(1, end - start)));
  let pos = start;
  while (pos < end) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) throw new TransferError(TransferErrorCode.localIo, `part file shorter than resumed range end ${end}`);
    sum.update(buf, 0, bytesRead);
    pos += bytesRead;
  }
  return { start, end, state: sum.state };
}

export async function pullRanges(
  pool: ClientPool, src: HttpEndpoint, finalPath: string, a: Attempt, plan: SplitPlan, policy: MultiStreamPolicy,
  first?: RangedGetResponse,
  checkpointIntervalMs = 0,
): Promise<TransferResult> {
  const { req, ctl } = a;
  const size = plan.size;
  const part = await LocalPartFile.open(finalPath, req.resume, { tag: req.partTag, staleTags: req.stalePartTags });
  const reused = req.resume?.tempPath === part.tempPath;
  const resumeValid = reused && req.resume!.size === size &&
    ((plan.etag !== undefined && req.resume!.etag === plan.etag) ||
     (plan.etag === undefined && plan.lastModified !== undefined && req.resume!.lastModified === plan.lastModified));
  const resumed: Range[] = resumeValid ? normaliseRanges(req.resume!.done, size) : [];
  const resumedBytes = resumed.reduce((t, [s, e]) => t + e - s, 0);
  // Sparse pre-size: positional writes land anywhere; a reader of the part file sees the final length.
  if (!resumeValid) await part.truncate(0); // bytes of another version of the source, or none
  await part.truncate(size);

  const todo = missingRanges(resumed, size, policy.rangeBytes);
  const sum32 = a.computeChecksum && isSum32Alg(a.alg) ? a.alg : undefined;
  const rangeSums: RangeSum[] = [];
  /** Bytes durable per range in flight or done this attempt, for the checkpoint. */
  const moved: Range[] = [];
  const progress = new ProgressMeter(resumedBytes, size, ctl.onProgress);

  // Stop every range at the first failure; the attempt's own signal still reaches all of them.
  const rangesAbort = new AbortController();
  // Every range in flight listens (undici + pump): more than Node's default warning threshold of 10.
  setMaxListeners(0, rangesAbort.signal);
  const onAttemptAbort = (): void => rangesAbort.abort(a.signal.reason);
  a.signal.addEventListener('abort', onAttemptAbort, { once: true });
  let firstError: unknown;

  const clients = [...pool.clientsFor(src.origin, plan.connections)];
  if (first) {
    // The probe's connection carries lane 0, which starts with the probe's own response.
    const i = clients.indexOf(first.via);
    if (i > 0) [clients[0], clients[i]] = [clients[i]!, clients[0]!];
    else if (i === -1) clients[0] = first.via;
  }
  // Every range request asks the credential provider again (a token may be refreshed during a long file).
  const headers = (): Promise<Record<string, string>> => requestHeaders(a, 'source', src.url, 'GET');
  let next = 0;
  // A probe answers [0, rangeBytes): it is valid only if the plan's first range is exactly that.
  let pending: RangedGetResponse | undefined =
    first && todo[0] && todo[0][0] === 0 && todo[0][1] === Math.min(size, policy.rangeBytes) ? first : undefined;
  if (first && !pending) first.body.destroy();
  const onFirstAbort = (): void => { pending?.body.destroy(); };
  rangesAbort.signal.addEventListener('abort', onFirstAbort, { once: true });

  /**
   * Fetches [start, end) once. Returns the position reached; bytes [start, position) are written and, for
   * adler32/crc32c, their sum recorded, even when the stream failed midway (so a retry continues there).
   */
  const fetchRange = async (via: PooledClient, start: number, end: number): Promise<void> => {
    const slot: Range = [start, start];
    moved.push(slot);
    const signal = rangesAbort.signal;
    let res: RangedGetResponse;
    if (pending && start === 0) {
      res = pending;
      pending = undefined;
      if (signal.aborted) res.body.destroy();
    } else {
      res = await rangedGet(pool, src, {
        offset: start, end, validator: plan.validator, headers: await headers(), signal, via,
      });
      if (res.status === 200 && plan.validator !== undefined && sameRepresentation(res, plan)) {
        // The whole body, yet the same validators and size: the file did not change, the server just did not
        // honour If-Range (servers differ on which validators they accept there). Ask again without it; the 206
        // must then carry the plan's validators.
        res.body.destroy();
        res = await rangedGet(pool, src, { offset: start, end, headers: await headers(), signal, via });
      }
    }
    if (res.status !== 206 || !sameRepresentation(res, plan)) {
      res.body.destroy();
      throw new TransferError(TransferErrorCode.sourceChanged,
        res.status === 206
          ? 'source changed during the transfer (a range came with other validators)'
          : 'source changed during the transfer (If-Range answered with the full body)',
        { httpStatus: 502, field: 'source', retryable: true });
    }
    const sum = sum32 ? new Sum32Checksummer(sum32) : null;
    const pump = new FilePump({
      source: res.body,
      writev: async (bufs, at) => {
        await part.writevAt(bufs, at);
        let n = 0;
        for (const b of bufs) n += b.byteLength;
        slot[1] = at + n; // durable once the next checkpoint's datasync returns
      },
      position: start,
      signal, gate: ctl.gate, limiters: ctl.limiters, checksum: sum, progress,
      onChunk: (n) => a.watchdog.bytesMoved(n),
    });
    try {
      await pump.run();
    } finally {
      slot[1] = pump.position;
      // The sum covers every byte received; it is the sum of [start, position) only if all were written.
      if (sum && pump.position > start && pump.position - start === pump.received) {
        rangeSums.push({ start, end: pump.position, state: sum.state });
      }
    }
    if (pump.position !== end) {
      throw new TransferError(TransferErrorCode.sizeMismatch, `range ${start}-${end} ended at ${pump.position}`, {
        httpStatus: 502, field: 'source', retryable: true,
      });
    }
  };

  /**
   * One range with in-attempt retries of its remainder: a reset, refused (REFUSED_STREAM, ENHANCE_YOUR_CALM)
   * or truncated stream costs only the bytes not yet written, not the whole attempt.
   */
  const fetchRangeWithRetries = async (via: PooledClient, range: Range): Promise<void> => {
    let start = range[0];
    for (let tries = 0; ; tries++) {
      const before = moved.length;
      try {
        await fetchRange(via, start, range[1]);
        return;
      } catch (e) {
        const err = classifyError(e, 'source', src.url);
        const reached = moved[before]?.[1] ?? start;
        // Every byte arrived and was written (the error came after, e.g. the connection dropped at the end).
        if (reached >= range[1] && (!sum32 || rangeSums.some((r) => r.start === start && r.end === reached))) return;
        const partialSumKept = !sum32 || reached === start || rangeSums.some((r) => r.start === start && r.end === reached);
        if (rangesAbort.signal.aborted || !rangeRetryable(err) || tries >= policy.rangeRetries || !partialSumKept) throw e;
        start = reached;
        await sleep(policy.rangeRetryDelayMs * 2 ** tries * (0.5 + Math.random()), rangesAbort.signal);
      }
    }
  };

  const worker = async (via: PooledClient): Promise<void> => {
    while (firstError === undefined && next < todo.length) {
      const range = todo[next++]!;
      try {
        await fetchRangeWithRetries(via, range);
      } catch (e) {
        if (firstError === undefined) {
          firstError = e;
          rangesAbort.abort(e);
        }
      }
    }
  };

  const ticker = new PeriodicCheckpoint(checkpointIntervalMs, part.handle, () => ({
    tempPath: part.tempPath, etag: plan.etag, lastModified: plan.lastModified, size,
    done: normaliseRanges([...resumed, ...moved], size),
  }), ctl.onCheckpoint);
  ticker.start();
  const workers: Promise<void>[] = [];
  const lanes = Math.min(plan.connections * plan.streams, Math.max(1, todo.length));
  for (let i = 0; i < lanes; i++) workers.push(worker(clients[i % clients.length]!));
  await Promise.all(workers);
  ticker.stop();
  a.signal.removeEventListener('abort', onAttemptAbort);
  rangesAbort.signal.removeEventListener('abort', onFirstAbort);
  pending?.body.destroy();
  progress.flush();

  try {
    if (firstError !== undefined) throw firstError;
    let value: string | undefined;
    if (sum32) {
      for (const [s, e] of resumed) rangeSums.push(await sumLocalRange(sum32, part.handle, s, e));
      value = new Sum32Checksummer(sum32, combineRangeSums(sum32, rangeSums, size)).digestHex();
    } else if (a.computeChecksum) {
      const whole = newChecksum(a.alg);
      await rehashPrefix(whole, part.handle, size);
      value = whole.digestHex();
    }
    verifyChecksum(a, value, plan.sourceDigest);
    await part.publish(req.overwrite);
    const via = clients[0]!;
    return {
      bytes: size,
      resumedBytes,
      ...(value !== undefined ? { checksum: { alg: a.alg, value } } : {}),
      ...(via.info.remoteIp ? { remoteIp: via.info.remoteIp } : {}),
      protocol: plan.protocol,
      connections: Math.min(plan.connections, lanes),
      streams: plan.streams,
      durationMs: Date.now() - a.startedAt,
    };
  } catch (e) {
    const err = asAttemptError(e, a, src);
    const resumable = err.retryable || err.code === TransferErrorCode.aborted;
    const durable = normaliseRanges([...resumed, ...moved], size);
    if (!resumable || err.code === TransferErrorCode.checksumMismatch ||
        err.code === TransferErrorCode.sourceChanged || durable.length === 0) {
      await part.discard();
      if (resumable) ctl.onCheckpoint?.({ done: [] });
    } else {
      await part.syncAndClose().catch(() => undefined);
      const state: ResumeState = {
        tempPath: part.tempPath, etag: plan.etag, lastModified: plan.lastModified, size, done: durable,
      };
      ctl.onCheckpoint?.(state);
    }
    throw err;
  }
}
