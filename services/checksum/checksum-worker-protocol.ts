/**
 * Messages between ChecksumWorkerPool (main thread) and checksum-worker.ts. Chunk bytes travel in
 * ArrayBuffers that are transferred (not cloned) both ways, so the pool can recycle them.
 */
import type { ChecksumAlg } from './checksum-types.js';

export type ToWorker =
  /** Sum `len` bytes of `buf` from the initial state (adler32 / crc32c; combined on the main thread). */
  | { op: 'sum'; id: number; seq: number; alg: 'adler32' | 'crc32c'; buf: ArrayBuffer; len: number }
  /** Start an in-order hash session (md5 / sha256 live in one worker for their whole life). */
  | { op: 'open'; id: number; alg: ChecksumAlg }
  | { op: 'update'; id: number; buf: ArrayBuffer; len: number }
  | { op: 'digest'; id: number }
  /** Drop a session without a result (aborted transfer). */
  | { op: 'discard'; id: number };

/** Every ToWorker message gets exactly one reply (the pool counts pending replies per worker). */
export type FromWorker =
  | { op: 'opened'; id: number }
  | { op: 'discarded'; id: number }
  | { op: 'sum'; id: number; seq: number; state: number; buf: ArrayBuffer; len: number }
  | { op: 'updated'; id: number; buf: ArrayBuffer; len: number }
  | { op: 'digest'; id: number; hex: string }
  /** A failed op; chunk ops give their buffer back so the pool's byte accounting stays right. */
  | { op: 'error'; id: number; message: string; buf?: ArrayBuffer; len?: number };
