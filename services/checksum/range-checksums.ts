/**
 * Checksums for multi-range transfers, where N streams each move a byte range and ranges complete
 * in any order.
 *
 * - adler32 / crc32c combine: each range is summed on its own from the initial state, and
 *   RangeSumCollector joins the pieces (adler32Combine / crc32cCombine) as neighbours arrive, so
 *   the whole-file value is ready the moment the last range is in. Nothing is re-read.
 * - md5 / sha256 cannot be combined: their state depends on every earlier byte. The engine must
 *   then hash strictly in order. ContiguousPrefixHasher accepts chunks in any order but hashes only
 *   those that extend the contiguous prefix, buffering nothing; what it had to skip, the engine
 *   re-reads from its local temp file (hashFromFile) once those bytes are durable — a local read,
 *   never the remote source again. Prefer giving the first range to the first stream so the prefix
 *   moves on the fly.
 */
import type { FileHandle } from 'node:fs/promises';
import { adler32Combine, adler32Update, ADLER32_INITIAL } from './adler32.js';
import { crc32cCombine, crc32cUpdate, CRC32C_INITIAL } from './crc32c.js';
import { hex32 } from './checksum-value.js';
import { ChecksumStateError } from './checksum-errors.js';
import type { Checksummer, Sum32Alg } from './checksummer.js';

interface RangeSumPiece {
  start: number;
  end: number;
  /** Checksum of bytes [start, end) alone, computed from the algorithm's initial state. */
  state: number;
}

/** Serialisable form of a collector (resume checkpoints): [start, end, 8-hex state] per piece. */
export type RangeSumSnapshot = Array<[number, number, string]>;

/**
 * Collects per-range adler32 / crc32c values in any order and merges adjacent ones immediately,
 * so memory is proportional to the number of gaps, not of ranges.
 */
export class RangeSumCollector {
  readonly alg: Sum32Alg;
  /** Sorted by start, non-overlapping, and never adjacent (adjacent pieces are merged). */
  private readonly pieces: RangeSumPiece[] = [];
  private readonly combine: (a: number, b: number, lenB: number) => number;
  private covered = 0;

  constructor(alg: Sum32Alg) {
    this.alg = alg;
    this.combine = alg === 'adler32' ? adler32Combine : crc32cCombine;
  }

  /** Bytes covered by the ranges added so far. */
  get coveredBytes(): number {
    return this.covered;
  }

  /** Record that bytes [start, end) have checksum `state` (computed from the initial state). */
  add(start: number, end: number, state: number): void {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new ChecksumStateError(`range checksum: bad range [${start}, ${end})`);
    }
    if (end === start) return;
    // Binary search for the first piece whose start is >= `start`.
    let lo = 0;
    let hi = this.pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.pieces[mid]!.start < start) lo = mid + 1;
      else hi = mid;
    }
    const left = lo > 0 ? this.pieces[lo - 1] : undefined;
    const right = this.pieces[lo];
    if ((left && left.end > start) || (right && right.start < end)) {
      throw new ChecksumStateError(`range checksum: [${start}, ${end}) overlaps a range already added`);
    }
    this.covered += end - start;
    let piece: RangeSumPiece = { start, end, state: state >>> 0 };
    let insertAt = lo;
    if (left && left.end === start) {
      left.state = this.combine(left.state, piece.state, end - start);
      left.end = end;
      piece = left;
      insertAt = -1;
    }
    if (right && right.start === piece.end) {
      piece.state = this.combine(piece.state, right.state, right.end - right.start);
      piece.end = right.end;
      if (insertAt === -1) this.pieces.splice(lo, 1); // left absorbed right
      else this.pieces[lo] = piece; // new piece replaces right
      return;
    }
    if (insertAt !== -1) this.pieces.splice(insertAt, 0, piece);
  }

  /** Start summing a range that one stream is about to move; call finish() when it ends or aborts. */
  beginRange(start: number): RangeSum {
    return new RangeSum(this, start);
  }

  /** True when [0, totalSize) is fully covered. */
  isComplete(totalSize: number): boolean {
    if (totalSize === 0) return this.pieces.length === 0;
    const only = this.pieces[0];
    return this.pieces.length === 1 && only!.start === 0 && only!.end === totalSize;
  }

  /** Whole-file 32-bit value; throws ChecksumStateError if [0, totalSize) is not exactly covered. */
  value(totalSize: number): number {
    if (!this.isComplete(totalSize)) {
      throw new ChecksumStateError(
        `range checksum: not complete for ${totalSize} bytes (have ${this.describeCoverage()})`,
      );
    }
    if (totalSize === 0) return this.alg === 'adler32' ? ADLER32_INITIAL : CRC32C_INITIAL;
    return this.pieces[0]!.state;
  }

  /** Whole-file canonical value (8 lowercase hex digits). */
  digestHex(totalSize: number): string {
    return hex32(this.value(totalSize));
  }

  snapshot(): RangeSumSnapshot {
    return this.pieces.map((p) => [p.start, p.end, hex32(p.state)]);
  }

  static restore(alg: Sum32Alg, snapshot: RangeSumSnapshot): RangeSumCollector {
    const c = new RangeSumCollector(alg);
    for (const [start, end, stateHex] of snapshot) {
      if (!/^[0-9a-f]{8}$/.test(stateHex)) throw new ChecksumStateError(`range checksum: bad snapshot state ${stateHex}`);
      c.add(start, end, parseInt(stateHex, 16));
    }
    return c;
  }

  private describeCoverage(): string {
    return this.pieces.length === 0 ? 'nothing' : this.pieces.map((p) => `[${p.start}, ${p.end})`).join(' ');
  }
}

/** Running sum of one range; hands its bytes so far to the collector on finish(). */
export class RangeSum {
  private state: number;
  private length = 0;
  private done = false;
  private readonly step: (s: number, b: Uint8Array, start?: number, end?: number) => number;

  constructor(private readonly collector: RangeSumCollector, readonly start: number) {
    const adler = collector.alg === 'adler32';
    this.step = adler ? adler32Update : crc32cUpdate;
    this.state = adler ? ADLER32_INITIAL : CRC32C_INITIAL;
  }

  /** Offset just past the last byte fed. */
  get end(): number {
    return this.start + this.length;
  }

  update(buf: Uint8Array, start = 0, end = buf.length): void {
    if (this.done) throw new ChecksumStateError('range checksum: update() after finish()');
    this.state = this.step(this.state, buf, start, end);
    this.length += end - start;
  }

  /**
   * Add [start, end) to the collector. On abort, call it only for bytes that are durable, so the
   * checkpoint never claims more than the temp file holds.
   */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.collector.add(this.start, this.end, this.state);
  }
}

/**
 * Hashes the contiguous prefix of a file whose chunks arrive in any order, for algorithms that must
 * see bytes in order (md5, sha256 — works for any Checksummer). A chunk that starts at or before
 * the hashed offset and reaches past it extends the prefix (only its new bytes are hashed); a chunk
 * beyond it is ignored, not buffered. The caller later fills the gap from its local temp file.
 */
export class ContiguousPrefixHasher {
  private hashed: number;
  private catchingUp: Promise<void> | undefined;

  /** `startOffset` > 0 when the checksummer already covers a prefix (e.g. resumed bytes re-hashed). */
  constructor(readonly sum: Checksummer, startOffset = 0) {
    this.hashed = startOffset;
  }

  /** Bytes [0, hashedUpTo) have been hashed; everything after must still be offered or re-read. */
  get hashedUpTo(): number {
    return this.hashed;
  }

  /**
   * Offer the chunk that sits at file offset `offset`. Returns true if the prefix advanced. The
   * chunk is consumed synchronously, so the caller may reuse its buffer right away.
   */
  offer(offset: number, buf: Uint8Array): boolean {
    const chunkEnd = offset + buf.length;
    if (offset > this.hashed || chunkEnd <= this.hashed) return false;
    this.sum.update(offset === this.hashed ? buf : buf.subarray(this.hashed - offset));
    this.hashed = chunkEnd;
    return true;
  }

  /**
   * Hash [hashedUpTo, endOffset) from a local file (the transfer's temp file) with one reusable
   * buffer. Those bytes must already be written. Safe to run while streams keep calling offer():
   * both go through offer(), which only ever extends the prefix. Concurrent calls are serialised.
   */
  async hashFromFile(handle: FileHandle, endOffset: number, scratch?: Uint8Array): Promise<void> {
    // A failed earlier run is its own caller's error; this call simply starts from where it stopped.
    while (this.catchingUp) await this.catchingUp.catch(() => undefined);
    if (this.hashed >= endOffset) return;
    const run = this.readLoop(handle, endOffset, scratch ?? new Uint8Array(1024 * 1024));
    this.catchingUp = run;
    try {
      await run;
    } finally {
      this.catchingUp = undefined;
    }
  }

  private async readLoop(handle: FileHandle, endOffset: number, scratch: Uint8Array): Promise<void> {
    while (this.hashed < endOffset) {
      const pos = this.hashed;
      const want = Math.min(scratch.length, endOffset - pos);
      const { bytesRead } = await handle.read(scratch, 0, want, pos);
      if (bytesRead === 0) {
        throw new ChecksumStateError(`prefix hash: file ends at ${pos}, before ${endOffset}`);
      }
      this.offer(pos, scratch.subarray(0, bytesRead));
    }
  }

  digestHex(): string {
    return this.sum.digestHex();
  }
}
