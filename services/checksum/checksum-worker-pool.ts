/**
 * Optional worker_threads pool that hashes copies of chunks off the main thread, so checksumming at
 * transfer speed does not starve the event loop.
 *
 * - Chunks are copied into 1 MiB batch buffers (undici hands over 16–64 KiB pieces; one message
 *   per piece would cost more main-thread time than hashing it). A full batch is posted to a
 *   worker, its buffer transferred (not cloned) there and back, and recycled.
 * - adler32 / crc32c: each batch goes to the least-loaded worker and is summed alone; the main
 *   thread folds the results in batch order with adler32Combine / crc32cCombineWith — so one file
 *   hashes on all workers in parallel.
 * - md5 / sha256: in-order by nature, so a session stays on one worker (the one with the fewest
 *   sessions when opened); parallelism comes from many files at once.
 * - Back-pressure: at most `maxQueuedBytes` are posted and not yet hashed across the pool. update()
 *   copies its chunk before returning; its promise resolves once the chunk's batch (if it filled
 *   one) is queued — awaiting it slows the producer to the hashing rate.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { ChecksumAlg } from './checksum-types.js';
import { adler32Combine, ADLER32_INITIAL } from './adler32.js';
import { crc32cCombineWith, crc32cZerosOperator, CRC32C_INITIAL } from './crc32c.js';
import { hex32 } from './checksum-value.js';
import { ChecksumStateError } from './checksum-errors.js';
import { CargoError } from '../../errors/cargo-error.js';
import { isSum32Alg } from './checksummer.js';
import type { FromWorker, ToWorker } from './checksum-worker-protocol.js';

/** The async twin of Checksummer. */
export interface AsyncChecksummer {
  readonly alg: ChecksumAlg;
  /**
   * Copy `buf` for hashing (the caller may reuse it as soon as this returns). Await the promise:
   * that is the back-pressure.
   */
  update(buf: Uint8Array): Promise<void>;
  /** Canonical value once every queued byte is hashed. Ends the checksummer. */
  digestHex(): Promise<string>;
  /** End without a value (aborted transfer): frees the batch buffer and the worker-side session. */
  discard(): void;
}

export interface ChecksumWorkerPoolOptions {
  /** Worker threads (default: CPUs − 1, at least 1). */
  threads?: number;
  /** Bytes posted but not yet hashed across the pool before update() waits (default 4 MiB per thread). */
  maxQueuedBytes?: number;
  /** Batch size: bytes copied together into one message (default 1 MiB). */
  batchBytes?: number;
}

/** The pool's worker died or refused an operation; the transfer may be retried. */
export class ChecksumWorkerError extends CargoError {
  constructor(message: string, cause?: unknown) {
    super('CARGO_ERR_CHECKSUM_WORKER', message, { httpStatus: 500, retryable: true, cause });
    this.name = 'ChecksumWorkerError';
  }
}

interface WorkerSlot {
  worker: Worker;
  inFlightBytes: number;
  pendingReplies: number;
  sessions: number;
}

/** Per-checksummer callbacks the pool routes worker replies to. */
interface SessionHandler {
  onSum?(seq: number, state: number, len: number): void;
  onDigest?(hex: string): void;
  onError(err: Error): void;
}

export class ChecksumWorkerPool {
  readonly threads: number;
  readonly maxQueuedBytes: number;
  readonly batchBytes: number;
  private readonly slots: WorkerSlot[] = [];
  private readonly handlers = new Map<number, SessionHandler>();
  private readonly freeBuffers: ArrayBuffer[] = [];
  private readonly capacityWaiters: Array<() => void> = [];
  private inFlightBytes = 0;
  private nextSessionId = 1;
  private failure: Error | undefined;
  private closed = false;

  constructor(opts: ChecksumWorkerPoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism() - 1));
    this.maxQueuedBytes = Math.max(1, opts.maxQueuedBytes ?? 4 * 1024 * 1024 * this.threads);
    this.batchBytes = Math.max(4096, Math.floor(opts.batchBytes ?? 1024 * 1024));
    const script = new URL('./checksum-worker.js', import.meta.url);
    for (let i = 0; i < this.threads; i++) {
      const slot: WorkerSlot = { worker: new Worker(script), inFlightBytes: 0, pendingReplies: 0, sessions: 0 };
      slot.worker.on('message', (msg: FromWorker) => this.onMessage(slot, msg));
      slot.worker.on('error', (err) => this.fail(new ChecksumWorkerError(`checksum worker failed: ${err.message}`, err)));
      slot.worker.on('exit', (code) => {
        if (!this.closed) this.fail(new ChecksumWorkerError(`checksum worker exited with code ${code}`));
      });
      slot.worker.unref(); // an idle pool must not keep the process alive
      this.slots.push(slot);
    }
  }

  /** Bytes posted and not yet hashed (≤ maxQueuedBytes, except a single oversized batch). */
  get queuedBytes(): number {
    return this.inFlightBytes;
  }

  createChecksummer(alg: ChecksumAlg): AsyncChecksummer {
    this.assertUsable();
    const id = this.nextSessionId++;
    return isSum32Alg(alg) ? new PooledSum32(this, id, alg) : new PooledOrderedHash(this, id, alg);
  }

  /** Terminates the workers; pending operations reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new ChecksumWorkerError('checksum worker pool closed'));
    // ref() first: terminate()'s promise settles on the 'exit' event, which an unref'd (idle)
    // worker would let the process skip, leaving the caller's await dangling.
    await Promise.all(
      this.slots.map((s) => {
        s.worker.ref();
        return s.worker.terminate();
      }),
    );
  }

  // ---- internals used by the pooled checksummers -------------------------------------------------

  /** @internal */
  register(id: number, handler: SessionHandler): void {
    this.handlers.set(id, handler);
  }
  /** @internal */
  unregister(id: number): void {
    this.handlers.delete(id);
  }

  /** @internal A batch buffer (recycled when possible). */
  takeBuffer(): ArrayBuffer {
    return this.freeBuffers.pop() ?? new ArrayBuffer(this.batchBytes);
  }
  /** @internal Give back a buffer that was never posted. */
  returnBuffer(buf: ArrayBuffer): void {
    if (this.freeBuffers.length < 2 * this.threads + 8) this.freeBuffers.push(buf);
  }

  /** @internal Resolves when `len` more bytes may be posted (an oversized batch waits for an empty queue). */
  async reserve(len: number): Promise<void> {
    this.assertUsable();
    while (this.inFlightBytes > 0 && this.inFlightBytes + len > this.maxQueuedBytes) {
      await new Promise<void>((resolve) => this.capacityWaiters.push(resolve));
      this.assertUsable();
    }
    this.inFlightBytes += len;
  }

  /** @internal Least-loaded worker (by queued bytes). */
  leastLoaded(): WorkerSlot {
    let best = this.slots[0]!;
    for (const s of this.slots) if (s.inFlightBytes < best.inFlightBytes) best = s;
    return best;
  }

  /** @internal Worker with the fewest in-order sessions. */
  leastSessions(): WorkerSlot {
    let best = this.slots[0]!;
    for (const s of this.slots) if (s.sessions < best.sessions) best = s;
    return best;
  }

  /** @internal Every message gets exactly one reply; the worker is ref'd while replies are due. */
  post(slot: WorkerSlot, msg: ToWorker, batchLen = 0): void {
    this.assertUsable();
    if (slot.pendingReplies++ === 0) slot.worker.ref();
    slot.inFlightBytes += batchLen;
    const transfer = msg.op === 'sum' || msg.op === 'update' ? [msg.buf] : [];
    slot.worker.postMessage(msg, transfer);
  }

  private onMessage(slot: WorkerSlot, msg: FromWorker): void {
    // Once closing, workers stay ref'd until they exit (see close()).
    if (--slot.pendingReplies === 0 && !this.closed) slot.worker.unref();
    if ((msg.op === 'sum' || msg.op === 'updated' || msg.op === 'error') && msg.buf) {
      this.release(slot, msg.len ?? 0, msg.buf);
    }
    const handler = this.handlers.get(msg.id);
    if (!handler) return;
    switch (msg.op) {
      case 'sum':
        handler.onSum?.(msg.seq, msg.state, msg.len);
        break;
      case 'digest':
        handler.onDigest?.(msg.hex);
        break;
      case 'error':
        handler.onError(new ChecksumWorkerError(`checksum worker: ${msg.message}`));
        break;
      case 'updated':
      case 'opened':
      case 'discarded':
        break;
    }
  }

  private release(slot: WorkerSlot, len: number, buf: ArrayBuffer): void {
    slot.inFlightBytes -= len;
    this.inFlightBytes -= len;
    this.returnBuffer(buf);
    // Wake every waiter; each re-checks capacity itself, in FIFO order.
    for (const wake of this.capacityWaiters.splice(0)) wake();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const h of [...this.handlers.values()]) h.onError(this.failure);
    this.handlers.clear();
    for (const wake of this.capacityWaiters.splice(0)) wake();
  }

  private assertUsable(): void {
    if (this.failure) throw this.failure;
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Shared batching: copies chunks into the current batch buffer and posts full batches in call
 * order (a promise chain), each after reserving its bytes in the pool.
 */
abstract class BatchingChecksummer implements AsyncChecksummer {
  abstract readonly alg: ChecksumAlg;
  protected error: Error | undefined;
  protected ended = false;
  protected issued = 0;
  /** Posting happens strictly in batch order, even when update() calls overlap. */
  protected tail: Promise<void> = Promise.resolve();
  private batch: ArrayBuffer | undefined;
  /** View over `batch`, made once per batch (per MiB), not per chunk. */
  private batchView: Uint8Array | undefined;
  private batchLen = 0;

  constructor(protected readonly pool: ChecksumWorkerPool, protected readonly id: number) {}

  abstract digestHex(): Promise<string>;

  discard(): void {
    if (this.ended) return; // after digestHex() or a first discard(): nothing left to free
    this.ended = true;
    if (this.batch) this.pool.returnBuffer(this.batch);
    this.batch = undefined;
    this.batchView = undefined;
    this.batchLen = 0;
    this.pool.unregister(this.id);
    this.onDiscard();
  }

  /** digestHex() may run once, and not after discard(). */
  protected markEnded(): void {
    if (this.ended) throw new ChecksumStateError(`${this.alg}: digestHex() after digestHex() or discard()`);
    this.ended = true;
  }

  /** Release whatever the subclass holds beyond the batch. */
  protected onDiscard(): void {}

  /** Post one batch (its bytes are already reserved). */
  protected abstract send(buf: ArrayBuffer, len: number, seq: number): void;

  update(buf: Uint8Array): Promise<void> {
    if (this.ended) return Promise.reject(new ChecksumStateError(`${this.alg}: update() after digestHex()`));
    if (this.error) return Promise.reject(this.error);
    let flushed: Promise<void> | undefined;
    let offset = 0;
    while (offset < buf.byteLength) {
      if (!this.batchView) {
        this.batch = this.pool.takeBuffer();
        this.batchView = new Uint8Array(this.batch);
      }
      const view = this.batchView;
      const n = Math.min(buf.byteLength - offset, view.byteLength - this.batchLen);
      // A chunk is split (one view allocated) only where it straddles a batch boundary.
      view.set(offset === 0 && n === buf.byteLength ? buf : buf.subarray(offset, offset + n), this.batchLen);
      this.batchLen += n;
      offset += n;
      if (this.batchLen === view.byteLength) flushed = this.flush();
    }
    return flushed ?? RESOLVED;
  }

  /** Queue the current batch for posting; resolves once it is posted. */
  protected flush(): Promise<void> {
    const buf = this.batch;
    const len = this.batchLen;
    this.batch = undefined;
    this.batchView = undefined;
    this.batchLen = 0;
    if (!buf) return this.tail;
    if (len === 0) {
      this.pool.returnBuffer(buf);
      return this.tail;
    }
    const seq = this.issued++;
    this.tail = this.tail.then(async () => {
      await this.pool.reserve(len);
      this.send(buf, len, seq);
    });
    return this.tail;
  }
}

/** adler32 / crc32c: batches fan out to all workers; results fold back in order here. */
class PooledSum32 extends BatchingChecksummer {
  readonly alg: 'adler32' | 'crc32c';
  private state: number;
  private folded = 0;
  /** Results that arrived ahead of an earlier batch's. */
  private readonly early = new Map<number, { state: number; len: number }>();
  /** CRC zeros operator for the batch length, so folding costs 32 XORs. */
  private zerosLen = -1;
  private zerosOp: Int32Array | undefined;
  private drained: (() => void) | undefined;

  constructor(pool: ChecksumWorkerPool, id: number, alg: 'adler32' | 'crc32c') {
    super(pool, id);
    this.alg = alg;
    this.state = alg === 'adler32' ? ADLER32_INITIAL : CRC32C_INITIAL;
    pool.register(id, {
      onSum: (seq, state, len) => this.onSum(seq, state, len),
      onError: (err) => {
        this.error ??= err;
        this.drained?.();
      },
    });
  }

  protected send(buf: ArrayBuffer, len: number, seq: number): void {
    this.pool.post(this.pool.leastLoaded(), { op: 'sum', id: this.id, seq, alg: this.alg, buf, len }, len);
  }

  async digestHex(): Promise<string> {
    this.markEnded();
    try {
      await this.flush();
      if (this.folded < this.issued && !this.error) {
        await new Promise<void>((resolve) => (this.drained = resolve));
      }
      if (this.error) throw this.error;
      return hex32(this.state);
    } finally {
      this.pool.unregister(this.id);
    }
  }

  private onSum(seq: number, state: number, len: number): void {
    if (seq !== this.folded) {
      this.early.set(seq, { state, len });
      return;
    }
    this.fold(state, len);
    for (let next = this.early.get(this.folded); next; next = this.early.get(this.folded)) {
      this.early.delete(this.folded);
      this.fold(next.state, next.len);
    }
    if (this.folded === this.issued) this.drained?.();
  }

  private fold(state: number, len: number): void {
    if (this.alg === 'adler32') {
      this.state = adler32Combine(this.state, state, len);
    } else {
      if (len !== this.zerosLen) {
        this.zerosOp = crc32cZerosOperator(len);
        this.zerosLen = len;
      }
      this.state = crc32cCombineWith(this.zerosOp!, this.state, state);
    }
    this.folded++;
  }
}

/** md5 / sha256 (or any alg, in order): one session on one worker, fed in batch order. */
class PooledOrderedHash extends BatchingChecksummer {
  readonly alg: ChecksumAlg;
  private readonly slot: WorkerSlot;
  private digestWaiter: { resolve(hex: string): void; reject(err: Error): void } | undefined;

  constructor(pool: ChecksumWorkerPool, id: number, alg: ChecksumAlg) {
    super(pool, id);
    this.alg = alg;
    this.slot = pool.leastSessions();
    this.slot.sessions++;
    pool.register(id, {
      onDigest: (hex) => this.digestWaiter?.resolve(hex),
      onError: (err) => {
        this.error ??= err;
        this.digestWaiter?.reject(err);
      },
    });
    pool.post(this.slot, { op: 'open', id, alg });
  }

  protected send(buf: ArrayBuffer, len: number): void {
    this.pool.post(this.slot, { op: 'update', id: this.id, buf, len }, len);
  }

  protected override onDiscard(): void {
    this.slot.sessions--;
    // After the batches already queued, so the worker drops the session only once they are done.
    this.tail = this.tail
      .then(() => this.pool.post(this.slot, { op: 'discard', id: this.id }))
      .catch(() => undefined); // a failed or closed pool has no session to drop
  }

  async digestHex(): Promise<string> {
    this.markEnded();
    try {
      await this.flush();
      if (this.error) throw this.error;
      const hex = new Promise<string>((resolve, reject) => (this.digestWaiter = { resolve, reject }));
      this.pool.post(this.slot, { op: 'digest', id: this.id });
      return await hex;
    } finally {
      this.slot.sessions--;
      this.pool.unregister(this.id);
    }
  }
}
