/**
 * The download hot path: a Readable (undici response body or local file stream) into positional writes of a
 * part file. Event-driven rather than `for await`, because at ~8–16 KiB per HTTP/2 DATA frame a promise and a
 * thread-pool write per chunk cost more CPU than TLS itself. Instead chunks are collected without copying and
 * written with one `writev` per `flushBytes`, while the network keeps receiving into the next batch.
 *
 * Back-pressure: the source is paused while the pause gate is closed, while a rate limiter makes us wait, or
 * while more than `maxBufferedBytes` are waiting for the disk; a paused body stops HTTP/2 WINDOW_UPDATEs, so
 * the sender is held by flow control and nothing is lost.
 */
import type { Readable } from 'node:stream';
import type { Gate } from '../../throttle/pause-gate.js';
import type { ProgressMeter, StreamingChecksum } from '../push/byte-pump.js';
import { abortedError } from '../transfer-errors.js';
import { CHUNK_BYTES, holdChunkPool, returnChunk, takeChunk } from '../h2-bulk/chunk-pool.js';

/**
 * Chunks up to this size from a source that does not recycle its buffers (Node's HTTP/1.1 client: one fresh Buffer
 * per parsed body piece, ≤ 64 KiB) are copied into pooled chunks on arrival. Held in the write batch for several
 * scavenges, the fresh Buffers would be promoted and their external memory freed only by mark-compacts — which in a
 * gateway-sized heap cost more than TLS itself (bench/RESULTS.md, HTTP-TPC from XRootD). Copied at once, they die
 * young. Larger chunks (local file reads) are kept as they are.
 */
const COPY_MAX_BYTES = 64 * 1024;
import type { RateLimiter } from '../types.js';

export interface FilePumpOptions {
  source: Readable;
  /** Writes `bufs` (in order) at `position`; resolves when all bytes are written. */
  writev: (bufs: Buffer[], position: number) => Promise<void>;
  position: number;
  signal: AbortSignal;
  gate: Gate;
  limiters?: readonly RateLimiter[];
  checksum?: StreamingChecksum | null;
  progress: ProgressMeter;
  onChunk?: (bytes: number) => void;
  flushBytes?: number;
  /** Write what has arrived at least this often on slow streams (smooth progress and checkpoints). */
  flushAfterMs?: number;
  maxBufferedBytes?: number;
}

const HOLD_ADMIT = 1;
const HOLD_BUFFER = 2;

export class FilePump {
  /** Bytes durably handed to the file system: the next write position. Valid after run() settles. */
  position: number;
  /** Bytes received from the source (≥ position - start; equal once everything received is written). */
  received = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private writing = false;
  private ended = false;
  private failed: unknown;
  private holds = 0;
  private settle!: { resolve: () => void; reject: (e: unknown) => void };
  private readonly flushBytes: number;
  private readonly flushAfterMs: number;
  /** A source that takes written chunks back for reuse (the bulk receive path's body). */
  private readonly recycle: ((bufs: readonly Buffer[]) => void) | undefined;
  private readonly maxBuffered: number;
  /** When the oldest unwritten chunk arrived. */
  private pendingSince = 0;
  /** Pooled chunk the current batch copies small source chunks into (see COPY_MAX_BYTES), and its fill. */
  private chunk: Buffer | undefined;
  private chunkUsed = 0;
  /** Pooled chunks holding the current batch's bytes; given back once the batch is written. */
  private batchChunks: Buffer[] = [];
  private releasePool: (() => void) | undefined;

  constructor(private readonly o: FilePumpOptions) {
    this.position = o.position;
    this.flushBytes = o.flushBytes ?? 1024 * 1024;
    this.flushAfterMs = o.flushAfterMs ?? 200;
    this.maxBuffered = o.maxBufferedBytes ?? 8 * 1024 * 1024;
    const r = (o.source as Partial<{ recycle(bufs: readonly Buffer[]): void }>).recycle;
    this.recycle = typeof r === 'function' ? r.bind(o.source) : undefined;
  }

  /** `chunk` itself, or (small chunk, source without recycling) a view of a pooled chunk holding a copy of it. */
  private keep(chunk: Buffer): Buffer {
    const n = chunk.byteLength;
    if (this.recycle !== undefined || n > COPY_MAX_BYTES) return chunk;
    if (this.chunk === undefined || this.chunkUsed + n > CHUNK_BYTES) {
      this.releasePool ??= holdChunkPool();
      this.chunk = takeChunk();
      this.chunkUsed = 0;
      this.batchChunks.push(this.chunk);
    }
    const at = this.chunkUsed;
    chunk.copy(this.chunk, at);
    this.chunkUsed = at + n;
    return this.chunk.subarray(at, at + n);
  }

  /** The current batch's pooled chunks, which the next batch no longer appends to. */
  private takeBatchChunks(): Buffer[] {
    const chunks = this.batchChunks;
    if (chunks.length > 0) this.batchChunks = [];
    this.chunk = undefined;
    return chunks;
  }

  private giveBack(chunks: readonly Buffer[]): void {
    for (const c of chunks) returnChunk(c);
  }

  run(): Promise<number> {
    const { source, signal } = this.o;
    return new Promise<number>((resolve, reject) => {
      this.settle = { resolve: () => resolve(this.position), reject };
      if (signal.aborted) {
        this.fail(abortedError(signal.reason));
        return;
      }
      const onAbort = (): void => this.fail(abortedError(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => signal.removeEventListener('abort', onAbort);
      this.settle = {
        resolve: () => { cleanup(); this.releasePool?.(); resolve(this.position); },
        reject: (e) => { cleanup(); this.releasePool?.(); reject(e); },
      };
      if (source.destroyed) {
        // Died while nobody listened (e.g. a probe response kept across awaits and its connection reset).
        this.fail(source.errored ?? new Error('source closed before its end'));
        return;
      }
      source.on('data', (chunk: Buffer) => this.onData(chunk));
      source.once('end', () => {
        this.ended = true;
        this.maybeFlush();
      });
      source.once('error', (e) => this.fail(e));
      // A source destroyed without 'end' or 'error' (e.g. by an abort elsewhere) must not hang us.
      source.once('close', () => {
        if (!this.ended && this.failed === undefined) this.fail(signal.aborted ? abortedError(signal.reason) : new Error('source closed before its end'));
      });
    });
  }

  private onData(chunk: Buffer): void {
    if (this.failed !== undefined) return;
    const n = chunk.byteLength;
    if (n === 0) return;
    this.o.checksum?.update(chunk);
    this.received += n;
    const now = Date.now();
    if (this.pendingBytes === 0) this.pendingSince = now;
    this.pending.push(this.keep(chunk));
    this.pendingBytes += n;
    this.o.onChunk?.(n);
    this.admit(n);
    if (this.pendingBytes >= this.maxBuffered) this.hold(HOLD_BUFFER);
    if (this.pendingBytes >= this.flushBytes || now - this.pendingSince >= this.flushAfterMs) this.maybeFlush(true);
  }

  /** Gate and rate limiters: the chunk already arrived, so a wait holds the *next* one back. */
  private admit(n: number): void {
    const { gate, limiters } = this.o;
    if (gate.isOpen && (limiters === undefined || limiters.length === 0)) return;
    let waits: Promise<void>[] | undefined;
    const g = gate.whenOpen();
    if (g) (waits ??= []).push(g);
    if (limiters) {
      for (const l of limiters) {
        const w = l.take(n);
        if (w) (waits ??= []).push(w);
      }
    }
    if (!waits) return;
    this.hold(HOLD_ADMIT);
    void Promise.all(waits).then(async () => {
      // The gate may have closed again meanwhile.
      for (let p = gate.whenOpen(); p; p = gate.whenOpen()) await p;
      this.release(HOLD_ADMIT);
    });
  }

  private hold(bit: number): void {
    if ((this.holds & bit) !== 0) return;
    this.holds |= bit;
    this.o.source.pause();
  }

  private release(bit: number): void {
    if ((this.holds & bit) === 0) return;
    this.holds &= ~bit;
    if (this.holds === 0 && this.failed === undefined) this.o.source.resume();
  }

  /** `due`: the size or age threshold was reached (checked by the caller on the hot path). */
  private maybeFlush(due = false): void {
    if (this.writing || this.failed !== undefined) return;
    if (this.pendingBytes === 0) {
      if (this.ended) this.settle.resolve();
      return;
    }
    if (!due && !this.ended && this.pendingBytes < this.flushBytes && Date.now() - this.pendingSince < this.flushAfterMs) return;
    const bufs = this.pending;
    const bytes = this.pendingBytes;
    const chunks = this.takeBatchChunks();
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = true;
    this.release(HOLD_BUFFER);
    this.o.writev(bufs, this.position).then(() => {
      this.writing = false;
      this.position += bytes;
      // On disk now, and already checksummed on arrival: the source may reuse these buffers.
      this.recycle?.(bufs);
      this.giveBack(chunks);
      this.o.progress.add(bytes);
      if (this.failed !== undefined) this.drainAfterFailure();
      else this.maybeFlush();
    }, (e: unknown) => {
      this.writing = false;
      if (this.failed === undefined) this.failed = e;
      // The disk refused: what is still pending cannot be written either.
      this.pending = [];
      this.pendingBytes = 0;
      this.giveBack(chunks);
      this.giveBack(this.takeBatchChunks());
      this.o.source.destroy();
      this.settle.reject(this.failed);
    });
  }

  private fail(e: unknown): void {
    if (this.failed !== undefined) return;
    this.failed = e;
    this.o.source.destroy();
    // Let an in-flight write finish so `position` says exactly what is on disk.
    if (!this.writing) this.drainAfterFailure();
  }

  /**
   * After a reset or an abort the bytes already received are still good: write them so the checkpoint
   * covers them and the next attempt need not fetch them again. Then report the failure.
   */
  private drainAfterFailure(): void {
    if (this.pendingBytes === 0) {
      this.settle.reject(this.failed);
      return;
    }
    this.ended = true;
    this.maybeFlushAfterFailure();
  }

  private maybeFlushAfterFailure(): void {
    const bufs = this.pending;
    const bytes = this.pendingBytes;
    const chunks = this.takeBatchChunks();
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = true;
    this.o.writev(bufs, this.position).then(() => {
      this.writing = false;
      this.position += bytes;
      this.recycle?.(bufs);
      this.giveBack(chunks);
      this.o.progress.add(bytes);
      this.settle.reject(this.failed);
    }, () => {
      this.writing = false;
      this.giveBack(chunks);
      this.settle.reject(this.failed);
    });
  }
}
