/**
 * The hot loop every transfer runs through: between source chunks it honours the pause gate, the rate
 * limiters and the abort signal, feeds the streaming checksum and counts progress. It is a pull-based
 * async generator, so back-pressure is whatever the consumer (file writes, an HTTP PUT body) imposes:
 * the next chunk is read only after the previous one was taken.
 *
 * Nothing here allocates per chunk on the fast path: `whenOpen()` and `take()` return null when no wait
 * is needed, and the abort race allocates only when we actually wait.
 */
import type { Gate } from '../../throttle/pause-gate.js';
import type { RateLimiter, TransferProgress } from '../types.js';
import { abortedError } from '../transfer-errors.js';

export interface StreamingChecksum {
  update(buf: Uint8Array): void;
}

export interface PumpControl {
  signal: AbortSignal;
  gate: Gate;
  limiters?: readonly RateLimiter[];
  checksum?: StreamingChecksum | null;
  progress: ProgressMeter;
  /** Told about every chunk that moved (stall watchdog). */
  onChunk?: (bytes: number) => void;
}

/** Waits for `p`, but rejects as soon as `signal` aborts (a paused or throttled transfer must stop promptly). */
export function waitOrAbort(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortedError(signal.reason));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      () => { signal.removeEventListener('abort', onAbort); resolve(); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}

/** Holds the caller at the gate and the rate limiters before `n` more bytes may move. */
export async function admitBytes(n: number, ctl: Pick<PumpControl, 'signal' | 'gate' | 'limiters'>): Promise<void> {
  if (ctl.signal.aborted) throw abortedError(ctl.signal.reason);
  // Loop: the gate may close again while we waited for a limiter.
  for (;;) {
    const g = ctl.gate.whenOpen();
    if (!g) break;
    await waitOrAbort(g, ctl.signal);
  }
  if (ctl.limiters) {
    for (const l of ctl.limiters) {
      const w = l.take(n);
      if (w) await waitOrAbort(w, ctl.signal);
    }
  }
}

/** Cheap check so the common "open, unthrottled" case skips the async admitBytes call entirely. */
function needsAdmission(ctl: PumpControl): boolean {
  return ctl.signal.aborted || !ctl.gate.isOpen || (ctl.limiters !== undefined && ctl.limiters.length > 0);
}

export async function* pumpBytes(source: AsyncIterable<Uint8Array>, ctl: PumpControl): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    const n = chunk.byteLength;
    if (n === 0) continue;
    if (needsAdmission(ctl)) await admitBytes(n, ctl);
    ctl.checksum?.update(chunk);
    yield chunk;
    // The consumer resumed us: the chunk is written (file) or handed to the socket (PUT).
    ctl.progress.add(n);
    ctl.onChunk?.(n);
  }
}

/**
 * Reports progress at most every `intervalMs` (the worker writes each report to Redis), and always at the end.
 */
export class ProgressMeter {
  private bytes: number;
  private lastReportAt = 0;
  private lastReportedBytes = -1;

  constructor(
    startBytes: number,
    private readonly total: number | undefined,
    private readonly sink: ((p: TransferProgress) => void) | undefined,
    private readonly intervalMs = 250,
  ) {
    this.bytes = startBytes;
  }

  get value(): number {
    return this.bytes;
  }

  add(n: number): void {
    this.bytes += n;
    if (!this.sink) return;
    const now = Date.now();
    if (now - this.lastReportAt >= this.intervalMs) this.report(now);
  }

  flush(): void {
    if (this.sink && this.bytes !== this.lastReportedBytes) this.report(Date.now());
  }

  private report(now: number): void {
    this.lastReportAt = now;
    this.lastReportedBytes = this.bytes;
    try {
      this.sink!(this.total === undefined ? { bytes: this.bytes } : { bytes: this.bytes, total: this.total });
    } catch {
      // A failing progress sink (e.g. Redis hiccup) must not kill the transfer.
    }
  }
}
