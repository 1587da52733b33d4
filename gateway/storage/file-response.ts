/**
 * The GET hot path: one contiguous byte range of an open file written straight into the HTTP response
 * (HTTP/2 stream or HTTP/1.1 socket) with 1 MiB positional reads into recycled buffers. The next read is issued
 * while the previous chunk is being sent; the loop waits for 'drain' when the response is full, so a slow client
 * holds at most two buffers. The reply is hijacked (Fastify's onSend hooks do not run; headers set on the reply
 * are sent). The file handle is closed once the loop has stopped, whatever the client did.
 */
import { read } from 'node:fs';
import type { FastifyReply } from 'fastify';
import { BufferPool } from '../../services/storage/buffer-pool.js';
import { READ_CHUNK } from '../../services/storage/posix-backend.js';
import type { ReadHandle } from '../../services/storage/storage-backend.js';
import { StorageError } from '../../services/storage/storage-errors.js';
import type { RateLimiter } from '../../services/throttle/rate-limiter.js';



const pool = new BufferPool(READ_CHUNK, 64);

interface Writable {
  write(chunk: Buffer, cb: (err?: Error | null) => void): boolean;
  end(): void;
  once(ev: string, fn: () => void): void;
  removeListener(ev: string, fn: () => void): void;
  destroy(err?: Error): void;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
}

function readChunk(fd: number, position: number, length: number): Promise<{ buf: Buffer; n: number }> {
  const buf = pool.acquire();
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, length, position, (err, n) => {
      if (err) {
        pool.release(buf);
        reject(err);
      } else {
        resolve({ buf, n });
      }
    });
  });
}

/** Resolves true on 'drain', false when the response closes first. */
function drainOrClose(res: Writable): Promise<boolean> {
  return new Promise((resolve) => {
    const onDrain = () => {
      res.removeListener('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      res.removeListener('drain', onDrain);
      resolve(false);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** `limiter`: paces the body (a share link's byte-rate cap); undefined on the ordinary path. */
export function sendFileRange(reply: FastifyReply, handle: ReadHandle, start: number, endInclusive: number, limiter?: RateLimiter): FastifyReply {
  const raw = reply.raw as unknown as Writable & { writeHead(status: number, headers: Record<string, unknown>): void };
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v;
  reply.hijack();
  raw.writeHead(reply.statusCode, headers);
  void pump(raw, handle, start, endInclusive + 1, limiter).finally(() => handle.close().catch(() => undefined));
  return reply;
}

async function pump(res: Writable, handle: ReadHandle, start: number, end: number, limiter: RateLimiter | undefined): Promise<void> {
  const fd = handle.fd;
  let pos = start;
  let next: Promise<{ buf: Buffer; n: number }> | null = readChunk(fd, pos, Math.min(READ_CHUNK, end - pos));
  try {
    while (next) {
      const { buf, n } = await next;
      next = null;
      if (n === 0) throw new StorageError('CARGO_ERR_LOCAL_IO', 'file shorter than announced (truncated while being served)', 500, { retryable: true });
      pos += n;
      if (res.destroyed) {
        pool.release(buf);
        return;
      }
      if (pos < end) next = readChunk(fd, pos, Math.min(READ_CHUNK, end - pos)); // overlap disk and network
      if (limiter) {
        const wait = limiter.take(n);
        if (wait) await wait;
        if (res.destroyed) {
          pool.release(buf);
          return;
        }
      }
      const ok = res.write(n === buf.length ? buf : buf.subarray(0, n), (err) => {
        // Reuse only what the transport confirmed as sent; on error the bytes may still be referenced.
        if (!err) pool.release(buf);
      });
      if (!ok && !(await drainOrClose(res))) return;
    }
    res.end();
  } catch (e) {
    res.destroy(e as Error);
  } finally {
    if (next) await next.then(({ buf }) => pool.release(buf), () => undefined);
  }
}
