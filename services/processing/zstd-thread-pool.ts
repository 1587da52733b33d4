/**
 * zstd off the event loop. zstd-napi's streaming calls are synchronous native calls on the calling thread (its
 * CompressStream runs ZSTD_compressStream2 inside _transform), so a level-3 compression of a large file on the main
 * thread would stall byte movement, lock renewal and the gateway for as long as each chunk takes. Here sessions
 * run on a small pool of worker threads (zstd-worker.ts):
 *
 * - input chunks are copied into batch buffers (`batchBytes`, recycled) that are transferred to the worker and
 *   back; at most `maxInflightBatches` per session are posted and unconsumed, so a fast source waits for zstd;
 * - output comes back in transferred 128 KiB buffers, at most 8 messages ahead of the reader (a slow destination
 *   pauses the session on its worker; a decompression bomb cannot run ahead);
 * - a session is bound to one thread (a stream is sequential by nature); sessions go to the thread with the fewest;
 * - destroying the stream (abort, failure elsewhere in the chain) closes its session at once.
 *
 * zstd's own multithreading (`nbWorkers`) is available per stage on top of this, for one large file.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { Duplex } from 'node:stream';
import type { FromZstdWorker, ToZstdWorker, ZstdSessionParams } from './zstd-worker-protocol.js';
import { ProcessingError } from './processing-errors.js';

export interface ZstdPoolOptions {
  /** Worker threads (default: CPUs − 1, at least 1). */
  threads?: number;
  /** Input batch size (default 512 KiB). */
  batchBytes?: number;
  /** Output message size (default 128 KiB: larger fresh buffers cost more in page faults than they save in messages). */
  outputBytes?: number;
  /**
   * Credits returned to a session's worker in groups of this many (default 4 of its 8): one message per group
   * instead of one per output (bench/RESULTS.md, Processing: the per-output credit was most of the thread hops).
   */
  creditBatch?: number;
}

interface Slot {
  worker: Worker;
  sessions: number;
}

const MAX_INFLIGHT_BATCHES = 2;
const CREDITS = 8;

export class ZstdThreadPool {
  readonly threads: number;
  readonly batchBytes: number;
  readonly outputBytes: number;
  readonly creditBatch: number;
  private slots: Slot[] = [];
  private readonly streams = new Map<number, ZstdStream>();
  private nextId = 1;
  private closed = false;

  constructor(opts: ZstdPoolOptions = {}) {
    this.threads = Math.max(1, opts.threads || Math.max(1, availableParallelism() - 1));
    this.batchBytes = opts.batchBytes ?? 512 * 1024;
    this.outputBytes = opts.outputBytes ?? 128 * 1024;
    this.creditBatch = Math.min(CREDITS, Math.max(1, opts.creditBatch ?? 4));
  }

  /** Open sessions (for tests and status: after an abort this returns to 0). */
  get activeSessions(): number {
    return this.streams.size;
  }

  /** Live worker threads. */
  get liveThreads(): number {
    return this.slots.length;
  }

  /** A Duplex that compresses or decompresses on a pool thread. */
  createStream(params: ZstdSessionParams): Duplex {
    if (this.closed) throw new ProcessingError('CARGO_ERR_STAGE_FAILED', 'the zstd pool is closed', { retryable: true });
    const slot = this.pickSlot();
    const id = this.nextId++;
    const stream = new ZstdStream(this, slot, id);
    this.streams.set(id, stream);
    if (slot.sessions++ === 0) slot.worker.ref();
    this.post(slot, { op: 'open', id, params, outputBytes: this.outputBytes });
    this.post(slot, { op: 'credit', id, n: CREDITS });
    return stream;
  }

  /** Terminates the threads; open streams fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.streams.values()]) s.destroy(new ProcessingError('CARGO_ERR_STAGE_FAILED', 'the zstd pool was closed', { retryable: true }));
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** @internal */
  post(slot: Slot, msg: ToZstdWorker, transfer?: ArrayBuffer[]): void {
    slot.worker.postMessage(msg, transfer ?? []);
  }

  /** @internal the stream is finished or destroyed: forget it, tell the thread, let an idle thread go unref'd. */
  release(slot: Slot, id: number, tellWorker: boolean): void {
    if (!this.streams.delete(id)) return;
    if (tellWorker && this.slots.includes(slot)) this.post(slot, { op: 'close', id });
    if (--slot.sessions === 0) slot.worker.unref();
  }

  private pickSlot(): Slot {
    if (this.slots.length < this.threads) {
      const slot = this.spawn();
      this.slots.push(slot);
      return slot;
    }
    let best = this.slots[0]!;
    for (const s of this.slots) if (s.sessions < best.sessions) best = s;
    return best;
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./zstd-worker.js', import.meta.url));
    const slot: Slot = { worker, sessions: 0 };
    worker.unref();
    worker.on('message', (msg: FromZstdWorker) => this.streams.get(msg.id)?.onMessage(msg));
    const lost = (why: string) => {
      this.slots = this.slots.filter((s) => s !== slot);
      for (const s of [...this.streams.values()]) {
        if (s.slot === slot) s.destroy(new ProcessingError('CARGO_ERR_STAGE_FAILED', `zstd worker thread ${why}`, { retryable: true }));
      }
    };
    worker.on('error', (e) => lost(`failed: ${e.message}`));
    worker.on('exit', (code) => { if (!this.closed) lost(`exited (code ${code})`); });
    return slot;
  }
}

class ZstdStream extends Duplex {
  private batch: Uint8Array | null = null;
  private batchLength = 0;
  private readonly spare: ArrayBuffer[] = [];
  private inflight = 0;
  private pending: { chunk: Buffer; offset: number; cb: (err?: Error | null) => void } | null = null;
  private finalCallback: ((err?: Error | null) => void) | null = null;
  /** Credits owed to the worker because the reader was full when an output arrived. */
  private owed = 0;
  private finished = false;

  constructor(private readonly pool: ZstdThreadPool, readonly slot: Slot, private readonly id: number) {
    // The readable side's own buffer is kept small: the real queue is the worker's credits.
    super({ readableHighWaterMark: pool.outputBytes, writableHighWaterMark: 64 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { chunk, offset: 0, cb };
    this.fill();
  }

  /** Copies the pending chunk into batches, posting each full one, while fewer than the limit are in flight. */
  private fill(): void {
    const p = this.pending;
    if (!p || this.destroyed) return;
    while (p.offset < p.chunk.length) {
      if (this.inflight >= MAX_INFLIGHT_BATCHES) return; // resumed by the next 'consumed'
      if (!this.batch) {
        this.batch = new Uint8Array(this.spare.pop() ?? new ArrayBuffer(this.pool.batchBytes));
        this.batchLength = 0;
      }
      const n = Math.min(p.chunk.length - p.offset, this.batch.length - this.batchLength);
      this.batch.set(p.chunk.subarray(p.offset, p.offset + n), this.batchLength);
      this.batchLength += n;
      p.offset += n;
      if (this.batchLength === this.batch.length) this.postBatch(false);
    }
    this.pending = null;
    p.cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finalCallback = cb;
    this.postBatch(true);
  }

  override _read(): void {
    // Fewer than creditBatch owed: the worker still holds the rest of its credits and goes on producing.
    if (this.owed >= this.pool.creditBatch && !this.destroyed) {
      this.pool.post(this.slot, { op: 'credit', id: this.id, n: this.owed });
      this.owed = 0;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.pool.release(this.slot, this.id, !this.finished);
    this.batch = null;
    this.spare.length = 0;
    cb(err);
  }

  /** @internal */
  onMessage(msg: FromZstdWorker): void {
    if (this.destroyed) return;
    switch (msg.op) {
      case 'output':
        // Every output is owed back as a credit; they go back in groups (creditBatch) once the reader has room
        // (here when push says so, else from _read). The worker stops only when all CREDITS are owed, which is a group.
        this.owed++;
        if (this.push(Buffer.from(msg.buf, 0, msg.length)) && this.owed >= this.pool.creditBatch) {
          this.pool.post(this.slot, { op: 'credit', id: this.id, n: this.owed });
          this.owed = 0;
        }
        return;
      case 'consumed': {
        this.inflight--;
        if (this.spare.length < MAX_INFLIGHT_BATCHES) this.spare.push(msg.buf);
        this.fill();
        return;
      }
      case 'done':
        this.finished = true;
        this.pool.release(this.slot, this.id, false);
        this.push(null);
        this.finalCallback?.();
        return;
      case 'error':
        this.finished = true;
        this.pool.release(this.slot, this.id, false);
        this.destroy(new ProcessingError('CARGO_ERR_STAGE_FAILED', msg.message));
        return;
    }
  }

  private postBatch(end: boolean): void {
    const batch = this.batch ?? new Uint8Array(this.spare.pop() ?? new ArrayBuffer(0));
    const ab = batch.buffer as ArrayBuffer;
    this.pool.post(this.slot, { op: 'input', id: this.id, buf: ab, length: this.batchLength, end }, [ab]);
    this.inflight++;
    this.batch = null;
    this.batchLength = 0;
  }
}
