/**
 * The seam between the namespace the port serves and where bytes live. A backend only ever receives
 * canonical logical paths (see safe-path.ts); it confines them under its own root itself.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

export type EntryType = 'file' | 'dir';
/** SRM / Tape REST locality values. */
export type Locality = 'DISK' | 'TAPE' | 'DISK_AND_TAPE' | 'LOST' | 'NONE' | 'UNAVAILABLE';

export interface EntryStat {
  /** Canonical logical path. */
  path: string;
  name: string;
  type: EntryType;
  size: number;
  mtimeMs: number;
  birthtimeMs: number;
  /** Strong validator derived from inode, size and mtime (quoted, ready for the ETag header). */
  etag: string;
  locality: Locality;
  /** Bytes can be read now (false for a nearline file that is only on tape). */
  online: boolean;
}

export interface ReadHandle {
  readonly stat: EntryStat;
  readonly fd: number;
  /** A stream of bytes [start, endInclusive] read with large (1 MiB) reads. Does not close the handle. */
  stream(start: number, endInclusive: number): Readable;
  close(): Promise<void>;
}

/** A file being written under a temp name; nothing is visible at the final name until commit(). */
export interface TempFile {
  readonly tempPath: string;
  readonly handle: FileHandle;
  /** fsync, then publish atomically at the final name (rename, or link+unlink when overwrite is false). */
  commit(): Promise<EntryStat>;
  /** Close and remove the temp file; safe to call twice and after commit (then it does nothing). */
  abort(): Promise<void>;
}

export interface CreateOptions {
  /** Replace an existing file at commit time (false → CARGO_ERR_EXISTS at commit). */
  overwrite: boolean;
  /** Create missing parent collections (WLCG storage.create semantics); otherwise 409. */
  createParents?: boolean;
}

export interface StorageBackend {
  readonly kind: 'posix' | 'nearline';
  stat(path: string): Promise<EntryStat>;
  list(path: string): Promise<EntryStat[]>;
  openRead(path: string): Promise<ReadHandle>;
  createTemp(path: string, opts: CreateOptions): Promise<TempFile>;
  /** Publish an existing file (e.g. a completed upload in the buffer) at `path` atomically. */
  adopt(sourceAbsPath: string, path: string, opts: CreateOptions): Promise<EntryStat>;
  /** Delete a file or an empty collection (recursive removes a whole tree). */
  delete(path: string, opts?: { recursive?: boolean }): Promise<void>;
  mkdir(path: string, opts?: { parents?: boolean }): Promise<void>;
  move(from: string, to: string, opts: { overwrite: boolean }): Promise<void>;
  /** Absolute, confined path (for file:// transfer endpoints). */
  resolve(path: string): Promise<string>;
}
