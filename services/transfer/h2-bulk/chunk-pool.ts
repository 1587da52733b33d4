/**
 * Body chunk buffers shared by every bulk session of the process.
 *
 * DATA payloads are copied into 256 KiB chunks, the body stream gets views of them, and the consumer hands them
 * back once written. A fresh chunk is external memory to V8, and every ~40 MiB of it asks for a mark-compact:
 * reusing chunks is worth 0.6–1.0 cpu-s per GiB (session 5). The pool was per session and held 32 chunks, but one
 * file split over 4 streams keeps ~60 in circulation (four 8 MiB write batches in flight): the excess came back
 * to a full pool, was dropped, and was allocated again — ~700 fresh chunks and 10 mark-compacts per GiB. One pool
 * for the process, sized for that, brought it to ~60 chunks once and 3 mark-compacts (measured in session 6).
 *
 * Bounded: at most MAX_POOLED chunks (16 MiB) wait here, and none once no session is open, so an idle worker
 * does not sit on memory that a 64-transfer burst once needed.
 */
export const CHUNK_BYTES = 256 * 1024;
const MAX_POOLED = 64;

const pooled: Buffer[] = [];
let openSessions = 0;

/** A chunk to copy DATA payload into: a pooled one, or a new one. */
export function takeChunk(): Buffer {
  return pooled.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
}

/** No view of `buf` is in use any more: keep it for the next takeChunk(), or let it go. */
export function returnChunk(buf: Buffer): void {
  if (openSessions > 0 && pooled.length < MAX_POOLED) pooled.push(buf);
}

/** Called by a session as it opens; the returned function (idempotent) when it closes. */
export function holdChunkPool(): () => void {
  openSessions++;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--openSessions === 0) pooled.length = 0;
  };
}

/** For tests and diagnostics. */
export function pooledChunkCount(): number {
  return pooled.length;
}
