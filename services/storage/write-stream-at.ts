/**
 * Copy a readable stream into a file at an offset with positional writes (so several streams can fill
 * disjoint ranges of one file concurrently). Network chunks (often 16 KiB HTTP/2 frames) are gathered into
 * ~1 MiB writev batches with at most one batch in flight: few syscalls, bounded memory (≤ 2 MiB per stream),
 * and the source is not read further while a full batch waits for the disk (back-pressure).
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { StorageError } from './storage-errors.js';

export interface WriteAtOptions {
  /** Stop with CARGO_ERR_BODY_TOO_LONG once more than this many bytes arrive. */
  maxBytes?: number;
  onChunk?(chunk: Buffer): void;
}

const BATCH_BYTES = 1 << 20;

async function writeAll(handle: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let total = 0;
  for (const c of chunks) total += c.length;
  let { bytesWritten } = await handle.writev(chunks, position);
  if (bytesWritten === total) return;
  // Short write (rare on regular files): finish with a single contiguous buffer.
  const rest = Buffer.concat(chunks).subarray(bytesWritten);
  let off = 0;
  while (off < rest.length) {
    ({ bytesWritten } = await handle.write(rest, off, rest.length - off, position + bytesWritten + off));
    off += bytesWritten;
  }
}

export async function writeStreamAt(
  handle: FileHandle,
  source: Readable,
  position: number,
  opts: WriteAtOptions = {},
): Promise<number> {
  const max = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  let received = 0;
  let flushedTo = position;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let inflight: Promise<void> | null = null;
  const flush = async () => {
    if (inflight) await inflight;
    inflight = null;
    if (batchBytes === 0) return;
    const chunks = batch;
    const at = flushedTo;
    flushedTo += batchBytes;
    batch = [];
    batchBytes = 0;
    inflight = writeAll(handle, chunks, at);
  };
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (received + chunk.length > max) {
        throw new StorageError('CARGO_ERR_BODY_TOO_LONG', 'request body longer than announced', 400, {
          field: 'Content-Length',
        });
      }
      received += chunk.length;
      opts.onChunk?.(chunk);
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH_BYTES) await flush();
    }
    await flush();
    if (inflight) await inflight;
  } catch (e) {
    if (inflight) await (inflight as Promise<void>).catch(() => undefined);
    throw e;
  }
  return received;
}
