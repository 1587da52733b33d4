/**
 * Atomic publish for local destinations: bytes go into a hidden temp file beside the final name
 * (`.<name>.cargoport-part-<random>`, same directory so the rename stays on one file system), are fsynced,
 * and only then appear at the final name (small files together with the others that finish close to them: commit-queue.ts). A reader never sees a partial file at the final name; an aborted
 * attempt leaves the part file for resume.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, lstat, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ensureDirectory, syncDirectory } from './directory-sync.js';
import { groupCommit } from './commit-queue.js';
import type { CommitFailure } from './commit-protocol.js';
import type { ResumeState } from '../types.js';
import { TransferError, TransferErrorCode, classifyError } from '../transfer-errors.js';

/** `.<name>.cargoport-part-<tag>` beside the final name; a random tag when none is given. */
export function partFileName(finalPath: string, tag?: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.cargoport-part-${tag ?? randomBytes(6).toString('hex')}`);
}

/**
 * How an attempt names its part file. With a tag per attempt (the worker uses `<job>-<file>-<attempt>`), the
 * next attempt knows what an earlier one may have left behind — a worker killed before its first checkpoint —
 * and removes it (`staleTags`), unless it is the part file being resumed.
 */
export interface PartFileNaming {
  tag?: string;
  staleTags?: readonly string[];
}

/** A part file is reusable only if it is ours: beside the final name and carrying our marker. */
function isOurPartFile(tempPath: string, finalPath: string): boolean {
  return dirname(tempPath) === dirname(finalPath) &&
    basename(tempPath).startsWith(`.${basename(finalPath)}.cargoport-part-`);
}

export function destExistsError(finalPath: string): TransferError {
  return new TransferError(TransferErrorCode.destExists, `destination exists and overwrite is false: ${finalPath}`, {
    httpStatus: 409, field: 'destination', retryable: false,
  });
}

export async function assertDestinationFree(finalPath: string, overwrite: boolean): Promise<void> {
  if (overwrite) return;
  try {
    await lstat(finalPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw classifyError(e, 'local', finalPath);
  }
  throw destExistsError(finalPath);
}

export class LocalPartFile {
  private closed = false;

  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    readonly handle: FileHandle,
    /** Bytes already present from a previous attempt (valid prefix length), 0 for a fresh file. */
    readonly resumedSize: number,
  ) {}

  /**
   * Opens the previous attempt's part file when `resume` names one that still exists, else creates a new one.
   * Returns the part file; `resumedSize` says how much of it the caller may trust (the contiguous prefix of
   * `resume.done` starting at 0, bounded by the file's real size).
   */
  static async open(finalPath: string, resume?: ResumeState, naming: PartFileNaming = {}): Promise<LocalPartFile> {
    try {
      await ensureDirectory(dirname(finalPath));
      for (const stale of naming.staleTags ?? []) {
        const p = partFileName(finalPath, stale);
        if (p !== resume?.tempPath) await unlink(p).catch(() => undefined);
      }
      if (resume?.tempPath && isOurPartFile(resume.tempPath, finalPath)) {
        const prefix = contiguousPrefix(resume.done);
        try {
          const st = await stat(resume.tempPath);
          const h = await open(resume.tempPath, fsc.O_RDWR);
          return new LocalPartFile(finalPath, resume.tempPath, h, Math.min(prefix, st.size));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
      let tempPath = partFileName(finalPath, naming.tag);
      let h: FileHandle;
      try {
        h = await open(tempPath, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o644);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' && naming.tag !== undefined) {
          // Our tagged name is taken (this attempt opened it before): never share a part file; take a fresh name.
          tempPath = partFileName(finalPath);
          h = await open(tempPath, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o644);
          return new LocalPartFile(finalPath, tempPath, h, 0);
        }
        if (code !== 'ENOENT') throw e;
        // The directory was removed since we last saw it.
        await ensureDirectory(dirname(finalPath), true);
        h = await open(tempPath, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o644);
      }
      return new LocalPartFile(finalPath, tempPath, h, 0);
    } catch (e) {
      throw classifyError(e, 'local', finalPath);
    }
  }

  /**
   * A failure of the local file system (a full disk, an I/O error) is ours, not the source's: classified here,
   * where it happens, so that the attempt's catch-all (which blames the source for what a body stream throws)
   * does not report ENOSPC as a network error of the remote end.
   */
  private async local<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw classifyError(e, 'local', this.finalPath);
    }
  }

  /** Writes all of `buf` at `position` (positional, so parallel ranges can share one handle). */
  writeAt(buf: Uint8Array, position: number): Promise<void> {
    return this.local(async () => {
      let off = 0;
      while (off < buf.byteLength) {
        const { bytesWritten } = await this.handle.write(buf, off, buf.byteLength - off, position + off);
        off += bytesWritten;
      }
    });
  }

  /** Writes `bufs` back to back starting at `position` with as few syscalls as the kernel allows. */
  writevAt(bufs: Buffer[], position: number): Promise<void> {
    return this.local(() => this.writevUnclassified(bufs, position));
  }

  private async writevUnclassified(bufs: Buffer[], position: number): Promise<void> {
    if (bufs.length === 1) return this.writeAt(bufs[0]!, position);
    // IOV_MAX is 1024 on Linux; stay well below.
    for (let i = 0; i < bufs.length; i += 512) {
      const batch = bufs.slice(i, i + 512);
      let total = 0;
      for (const b of batch) total += b.byteLength;
      const { bytesWritten } = await this.handle.writev(batch, position);
      if (bytesWritten < total) {
        // Short write (rare: signals, quotas): finish the rest buffer by buffer.
        let skip = bytesWritten;
        let pos = position + bytesWritten;
        for (const b of batch) {
          if (skip >= b.byteLength) { skip -= b.byteLength; continue; }
          const rest = b.subarray(skip);
          skip = 0;
          await this.writeAt(rest, pos);
          pos += rest.byteLength;
        }
      }
      position += total;
    }
  }

  /** Makes the written bytes durable and closes the handle, keeping the part file (abort → resume later). */
  async syncAndClose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.local(async () => {
      try {
        await this.handle.sync();
      } finally {
        await this.handle.close();
      }
    });
  }

  /** Truncates to `size` (drops bytes past a resume point we could not verify). */
  truncate(size: number): Promise<void> {
    return this.local(() => this.handle.truncate(size));
  }

  /**
   * fsync, then make the file appear at its final name in one step. Without overwrite we use link(2), which
   * fails with EEXIST instead of silently replacing a file that appeared meanwhile.
   */
  async publish(overwrite: boolean, opts: { grouped?: boolean } = {}): Promise<void> {
    if (opts.grouped) return this.publishGrouped(overwrite);
    try {
      await this.syncAndClose();
      if (overwrite) {
        await rename(this.tempPath, this.finalPath);
      } else {
        try {
          await link(this.tempPath, this.finalPath);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw destExistsError(this.finalPath);
          throw e;
        }
        await unlink(this.tempPath);
      }
      await syncDirectory(dirname(this.finalPath));
    } catch (e) {
      throw classifyError(e, 'local', this.finalPath);
    }
  }

  /**
   * The same publish as a group commit (commit-queue.ts): the handle is closed here, and the data sync, the name and
   * the directory sync are done with the files that finish close to this one. Settles when this file is durable at
   * its final name, or with its own error (EEXIST without overwrite: the destination appeared meanwhile).
   */
  private async publishGrouped(overwrite: boolean): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.local(() => this.handle.close());
    }
    try {
      await groupCommit({ tempPath: this.tempPath, finalPath: this.finalPath, overwrite });
    } catch (e) {
      if (!overwrite && (e as CommitFailure).code === 'EEXIST' && (e as CommitFailure).syscall === 'link') throw destExistsError(this.finalPath);
      throw classifyError(e, 'local', this.finalPath);
    }
  }

  /** Removes the part file (its bytes are known bad, e.g. checksum mismatch or a fatal error). */
  async discard(): Promise<void> {
    try {
      if (!this.closed) {
        this.closed = true;
        await this.handle.close();
      }
    } catch { /* already closed */ }
    await unlink(this.tempPath).catch(() => undefined);
  }
}

/** Length of the run of done ranges that starts at byte 0 without gaps. */
export function contiguousPrefix(done: ReadonlyArray<readonly [number, number]>): number {
  let end = 0;
  for (const [s, e] of done) {
    if (s > end) break;
    if (e > end) end = e;
  }
  return end;
}
