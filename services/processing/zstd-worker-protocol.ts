/** Messages between the zstd thread pool (zstd-thread-pool.ts) and its worker threads (zstd-worker.ts). */

export interface ZstdSessionParams {
  readonly mode: 'compress' | 'decompress';
  /** compress: level (1–22), window log (0 = the level's), zstd's own threads (0 = none), frame checksum. */
  readonly level?: number;
  readonly windowLog?: number;
  readonly nbWorkers?: number;
  readonly checksumFlag?: boolean;
  /** decompress: the largest window accepted (bounds memory a peer can make us spend). */
  readonly windowLogMax?: number;
}

export type ToZstdWorker =
  | { op: 'open'; id: number; params: ZstdSessionParams; outputBytes: number }
  /** `buf` is transferred; `end` marks the last input of the session. */
  | { op: 'input'; id: number; buf: ArrayBuffer; length: number; end: boolean }
  /** The main thread may take `n` more output messages. */
  | { op: 'credit'; id: number; n: number }
  | { op: 'close'; id: number };

export type FromZstdWorker =
  | { op: 'output'; id: number; buf: ArrayBuffer; length: number }
  /** An input batch fully used; its buffer comes back for reuse. */
  | { op: 'consumed'; id: number; buf: ArrayBuffer }
  | { op: 'done'; id: number }
  | { op: 'error'; id: number; message: string };
