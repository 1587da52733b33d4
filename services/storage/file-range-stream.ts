/**
 * A Readable over bytes [start, end] of an open FileHandle that it does NOT own: several streams (multipart
 * ranges, checksum passes) can read one handle, and the owner closes it when they are done. Node's own
 * FileHandle streams close the handle on destroy, and raw-fd streams close the descriptor, so neither fits.
 * One read in flight at a time; each read fills a fresh 1 MiB buffer that is handed downstream as is
 * (no copy), and destroy waits for the read in flight so close() never races a read.
 */
import { read } from 'node:fs';
import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { StorageError } from './storage-errors.js';

export class FileRangeStream extends Readable {
  private pos: number;
  private readonly endExclusive: number;
  private inflight: Promise<unknown> | null = null;

  constructor(
    private readonly fh: FileHandle,
    start: number,
    endInclusive: number,
    private readonly chunkBytes: number,
  ) {
    super({ highWaterMark: chunkBytes });
    this.pos = start;
    this.endExclusive = endInclusive + 1;
  }

  override _read(): void {
    const remaining = this.endExclusive - this.pos;
    if (remaining <= 0) {
      this.push(null);
      return;
    }
    const len = Math.min(this.chunkBytes, remaining);
    const buf = Buffer.allocUnsafeSlow(len);
    // Callback fs.read on the descriptor: measurably cheaper per MiB than FileHandle.read's promise path.
    // The handle stays open because its owner closes it only after this stream's 'close' (see _destroy).
    this.inflight = new Promise<void>((settle) => {
      read(this.fh.fd, buf, 0, len, this.pos, (err, bytesRead) => {
        this.inflight = null;
        settle();
        if (err) return void this.destroy(err);
        if (this.destroyed) return;
        if (bytesRead === 0) return void this.destroy(new StorageError('CARGO_ERR_LOCAL_IO', 'file shorter than expected (truncated while being read)', 500, { retryable: true }));
        this.pos += bytesRead;
        this.push(bytesRead === len ? buf : buf.subarray(0, bytesRead));
      });
    });
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.inflight) return cb(err);
    this.inflight.then(
      () => cb(err),
      () => cb(err),
    );
  }
}
