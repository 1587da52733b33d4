/**
 * Multi-stream push to a cargoport endpoint: a source (a local file, or a remote one read with ranged GETs for a
 * stream-through) cut into byte ranges, each sent as its own PUT with `Content-Range: bytes S-E/T` and a shared
 * `Cargo-Upload-Id` (gateway/storage/README.md, ranged uploads).
 * The endpoint assembles the parts and publishes the file when the last one lands (201/204; the others 202).
 *
 * undici 7 dispatches a stream-bodied PUT only on an idle connection, so every lane gets its own connection
 * (lent from the pool's upload lane) rather than an HTTP/2 stream. Only endpoints configured with
 * `rangedUpload: true` get this; any other server would store each part as the whole file.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { Sum32Checksummer, isSum32Alg } from '../../checksum/checksummer.js';
import type { CargoError } from '../../../errors/cargo-error.js';
import type { Attempt } from '../attempt.js';
import { refuseWithoutSourceDigest, verifyChecksum } from '../attempt.js';
import { checkPushedDestination } from './destination-check.js';
import { ProgressMeter, pumpBytes } from './byte-pump.js';
import type { ClientPool } from '../connect/client-pool.js';
import type { HttpEndpoint } from '../http/http-requests.js';
import { putRequest, removeUnverifiedUpload } from '../http/http-requests.js';
import { combineRangeSums, missingRanges, type MultiStreamPolicy } from '../pull/multi-stream.js';
import { digestHeaderFor, newChecksum, rehashPrefix } from '../transfer-checksum.js';
import { TransferError, TransferErrorCode, abortedError, classifyError } from '../transfer-errors.js';
import type { TransferResult } from '../types.js';

export interface RangedPushPlan {
  size: number;
  lanes: number;
  /** The bytes [start, end) of the source. */
  openPart(start: number, end: number, signal: AbortSignal): Promise<Readable>;
  /** Checksum of the whole source for algorithms that cannot be combined from ranges (md5, sha256). */
  wholeChecksum?(): Promise<string>;
  /** The source's own digest (RFC 3230), for verify = source | both. */
  sourceDigest?: string;
}

/** A plan reading ranges of a local file. */
export function localFilePlan(path: string, size: number, lanes: number, a: Attempt): RangedPushPlan {
  return {
    size,
    lanes,
    openPart: async (start, end, signal) => createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024, signal }),
    wholeChecksum: async () => {
      // md5/sha256 cannot be combined from ranges: hash the local source once more (a local read).
      const whole = newChecksum(a.alg);
      const h = await open(path, 'r');
      try { await rehashPrefix(whole, h, size); } finally { await h.close(); }
      return whole.digestHex();
    },
  };
}

/** Transport failures worth re-sending one part for (the endpoint counts a part only once all of it landed). */
function partRetryable(err: CargoError): boolean {
  return err.code === TransferErrorCode.network || err.code === TransferErrorCode.sizeMismatch;
}

export async function pushRanges(
  pool: ClientPool, dst: HttpEndpoint, a: Attempt, plan: RangedPushPlan, policy: MultiStreamPolicy,
  dstHeaders: (method: string) => Promise<Record<string, string>>,
): Promise<TransferResult> {
  const { req, ctl } = a;
  // Refuse before writing anything when the source's checksum is required and it announced none.
  refuseWithoutSourceDigest(a, plan.sourceDigest);
  const { size } = plan;
  const uploadId = randomBytes(12).toString('hex');
  const todo = missingRanges([], size, policy.rangeBytes);
  const sum32 = a.computeChecksum && isSum32Alg(a.alg) ? a.alg : undefined;
  const rangeSums: Array<{ start: number; end: number; state: number }> = [];
  const progress = new ProgressMeter(0, size, ctl.onProgress);
  const partsAbort = new AbortController();
  setMaxListeners(0, partsAbort.signal);
  const onAttemptAbort = (): void => partsAbort.abort(a.signal.reason);
  a.signal.addEventListener('abort', onAttemptAbort, { once: true });
  let firstError: unknown;
  let completed: Awaited<ReturnType<typeof putRequest>> | undefined;
  let next = 0;
  /** Each part's headers, credentials asked for that very PUT. */
  const partHeaders = async (): Promise<Record<string, string>> => {
    const h: Record<string, string> = { ...await dstHeaders('PUT'), 'cargo-upload-id': uploadId };
    delete h['if-none-match'];
    if (!req.overwrite) h['overwrite'] = 'F';
    // The endpoint verifies the assembled file against this before publishing (412 on mismatch).
    if (req.checksum?.value) h['digest'] = digestHeaderFor(req.checksum.alg, req.checksum.value);
    return h;
  };

  const sendPart = async (start: number, end: number): Promise<void> => {
    const sum = sum32 ? new Sum32Checksummer(sum32) : null;
    const file = await plan.openPart(start, end, partsAbort.signal);
    const body = pumpBytes(file, {
      signal: partsAbort.signal, gate: ctl.gate, limiters: ctl.limiters, checksum: sum, progress,
      onChunk: (n) => a.watchdog.bytesMoved(n),
    });
    let sent = 0;
    const counted = (async function* () {
      for await (const c of body) {
        sent += c.byteLength;
        yield c;
      }
    })();
    try {
      const res = await putRequest(pool, dst, {
        body: counted, size: end - start, signal: partsAbort.signal,
        headers: { ...await partHeaders(), 'content-range': `bytes ${start}-${end - 1}/${size}` },
      });
      if (res.status === 201 || res.status === 204 || res.status === 200) completed = res;
    } catch (e) {
      file.destroy();
      // Bytes already counted as progress for this part will be sent again.
      progress.add(-sent);
      throw e;
    }
    if (sum) rangeSums.push({ start, end, state: sum.state });
  };

  const lane = async (): Promise<void> => {
    while (firstError === undefined && next < todo.length) {
      const [start, end] = todo[next++]!;
      for (let tries = 0; ; tries++) {
        try {
          await sendPart(start, end);
          break;
        } catch (e) {
          const err = classifyError(e, 'destination', dst.url);
          if (partsAbort.signal.aborted || !partRetryable(err) || tries >= policy.rangeRetries) {
            if (firstError === undefined) {
              firstError = e;
              partsAbort.abort(e);
            }
            return;
          }
          await new Promise((r) => setTimeout(r, policy.rangeRetryDelayMs * 2 ** tries * (0.5 + Math.random())));
        }
      }
    }
  };

  const lanes = Math.min(plan.lanes, todo.length);
  await Promise.all(Array.from({ length: lanes }, () => lane()));
  a.signal.removeEventListener('abort', onAttemptAbort);
  progress.flush();
  try {
    if (firstError !== undefined) throw firstError;
    if (!completed) {
      throw new TransferError(TransferErrorCode.network, 'ranged upload: no part completed the assembly (no 201/204)', {
        httpStatus: 502, field: 'destination', retryable: true,
      });
    }
    let value: string | undefined;
    if (sum32) {
      value = new Sum32Checksummer(sum32, combineRangeSums(sum32, rangeSums, size)).digestHex();
    } else if (a.computeChecksum && plan.wholeChecksum) {
      value = await plan.wholeChecksum();
    }
    verifyChecksum(a, value, plan.sourceDigest);
    await checkPushedDestination(pool, a, dst, completed.headers, value, size);
    return {
      bytes: size,
      resumedBytes: 0,
      ...(value !== undefined ? { checksum: { alg: a.alg, value } } : {}),
      ...(completed.info.remoteIp ? { remoteIp: completed.info.remoteIp } : {}),
      protocol: completed.info.protocol ?? 'h2',
      connections: lanes,
      streams: 1,
      durationMs: Date.now() - a.startedAt,
    };
  } catch (e) {
    const err = a.signal.aborted ? abortedError(a.signal.reason) : classifyError(e, 'destination', dst.url);
    // The assembled file was published but is not verified (checksum, size): not a file to leave there.
    if (completed) await removeUnverifiedUpload(pool, dst, await dstHeaders('DELETE').catch(() => ({})));
    if (err.retryable || err.code === TransferErrorCode.aborted) ctl.onCheckpoint?.({ done: [] });
    throw err;
  }
}

