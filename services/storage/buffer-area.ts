/**
 * The buffer: the port's own fast area, separate from permanent storage. Two uses:
 * - incoming/: uploads are written here under server-generated names, then adopted into permanent storage
 *   (a rename when both are on one file system);
 * - staged/: export copies staged from permanent storage (Tape REST "stage"), pinned for a lifetime and
 *   evicted, least recently used first, once released or expired, whenever room is needed under the quota.
 * Staged copies survive a restart: their records (size, source ETag, pin, release) are kept in
 * `staged-index.json` beside them; at start-up a copy whose file is missing or of another size is forgotten, and a
 * file without a record (a copy cut short by a crash) is removed. incoming/ is wiped at start-up: half-written
 * uploads must never be published.
 */
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { JsonStateFile } from './json-state-file.js';
import { randomBytes } from 'node:crypto';
import { writeStreamAt } from './write-stream-at.js';
import type { ReadHandle, StorageBackend } from './storage-backend.js';
import { PosixBackend } from './posix-backend.js';
import { NearlineBackend } from './nearline-backend.js';
import { insufficientStorage, StorageError } from './storage-errors.js';


/** Quota an upload of unknown size takes ahead of its bytes (bounded by 1/16 of the quota). */
const GROWTH_STEP_BYTES = 64 * 1024 * 1024;

export interface GrowableReservation {
  /** Hold quota for `toBytes` in all; throws CARGO_ERR_NO_SPACE when the buffer cannot make room. */
  grow(toBytes: number): void;
  release(): void;
}

export interface StagedCopy {
  path: string;
  size: number;
  /** ETag of the permanent file the copy was made from; a changed source invalidates the copy. */
  sourceEtag: string;
  pinnedUntil: number;
  released: boolean;
  lastAccess: number;
}

export interface BufferOptions {
  dir: string;
  quotaBytes: number;
}

export class BufferArea {
  private readonly staged = new Map<string, StagedCopy>();
  private readonly staging = new Map<string, Promise<StagedCopy>>();
  private reservedBytes = 0;
  private readonly index: JsonStateFile<StagedCopy[]>;

  private constructor(
    /** The buffer's root: incoming/, staged/ and the state files of the storage layer. */
    readonly dir: string,
    readonly incomingDir: string,
    private readonly stagedStore: PosixBackend,
    readonly quotaBytes: number,
  ) {
    this.index = new JsonStateFile(join(dir, 'staged-index.json'), () => [...this.staged.values()]);
  }

  static async create(opts: BufferOptions): Promise<BufferArea> {
    const incoming = opts.dir + '/incoming';
    const stagedDir = opts.dir + '/staged';
    await rm(incoming, { recursive: true, force: true });
    await mkdir(incoming, { recursive: true });
    await mkdir(stagedDir, { recursive: true });
    const area = new BufferArea(opts.dir, incoming, await PosixBackend.create(stagedDir), opts.quotaBytes);
    await area.recoverStaged(stagedDir);
    return area;
  }

  /** Reloads the staged copies recorded before a restart; drops unrecorded or damaged files. */
  private async recoverStaged(stagedDir: string): Promise<void> {
    const records = await this.index.load();
    const byFile = new Map<string, StagedCopy>();
    if (Array.isArray(records)) {
      for (const r of records as StagedCopy[]) {
        if (typeof r?.path !== 'string' || typeof r.size !== 'number' || typeof r.sourceEtag !== 'string') continue;
        byFile.set(join(stagedDir, r.path), r);
      }
    }
    const files = (await readdir(stagedDir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile());
    for (const d of files) {
      const abs = join(d.parentPath ?? (d as unknown as { path: string }).path, d.name);
      const record = byFile.get(abs);
      const size = record ? await stat(abs).then((st) => st.size, () => -1) : -1;
      if (record && size === record.size) {
        this.staged.set(record.path, { ...record, path: '/' + relative(stagedDir, abs).split(sep).join('/') });
      } else {
        await unlink(abs).catch(() => undefined);
      }
    }
    await this.index.save();
  }

  /** Writes the staged-copy records now and no more afterwards (shutdown; json-state-file.ts says why). */
  close(): Promise<void> {
    return this.index.close();
  }

  get usedBytes(): number {
    let n = this.reservedBytes;
    for (const c of this.staged.values()) n += c.size;
    return n;
  }

  /** Staged copies that may go: released, or pinned no longer; least recently used first. */
  private evictable(): StagedCopy[] {
    const now = Date.now();
    return [...this.staged.values()]
      .filter((c) => c.released || c.pinnedUntil <= now)
      .sort((a, b) => a.lastAccess - b.lastAccess);
  }

  /** Evict released or expired staged copies (LRU) until `bytes` more fit under the quota. */
  async makeRoom(bytes: number): Promise<void> {
    if (bytes > this.quotaBytes) throw insufficientStorage(`${bytes} bytes exceed the buffer quota`);
    for (const c of this.evictable()) {
      if (this.usedBytes + bytes <= this.quotaBytes) return;
      await this.drop(c.path);
    }
    if (this.usedBytes + bytes > this.quotaBytes) {
      throw insufficientStorage('buffer full: every staged copy is still pinned');
    }
  }

  /** Hold `bytes` of quota for an upload in progress; call the returned function when it ends. */
  async reserve(bytes: number): Promise<() => void> {
    await this.makeRoom(bytes);
    this.reservedBytes += bytes;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.reservedBytes -= bytes;
    };
  }

  /** Bytes of quota that could be had now: free room plus staged copies that may be evicted. */
  get obtainableBytes(): number {
    let evictable = 0;
    for (const c of this.evictable()) evictable += c.size;
    return this.quotaBytes - this.usedBytes + evictable;
  }

  /**
   * Quota for an upload, taken as its bytes arrive rather than for the size it announces: a client that declares
   * 100 GB and sends 3 bytes holds 3 bytes (plus one step ahead), not the buffer. It grows synchronously, so the
   * write path can account for every chunk without waiting. Room is made by evicting released or expired staged
   * copies (their files are removed in the background); when none is left the growth throws CARGO_ERR_NO_SPACE
   * (507) and the upload stops. `limitBytes` (a declared size) caps what is taken ahead of the bytes.
   */
  growableReservation(limitBytes = Number.POSITIVE_INFINITY): GrowableReservation {
    let held = 0;
    let done = false;
    const step = Math.max(1, Math.min(GROWTH_STEP_BYTES, Math.floor(this.quotaBytes / 16)));
    return {
      grow: (toBytes: number) => {
        if (done || toBytes <= held) return;
        const need = toBytes - held;
        if (this.usedBytes + need > this.quotaBytes) this.evictNow(need);
        if (this.usedBytes + need > this.quotaBytes) {
          throw insufficientStorage(`buffer full after ${toBytes - 1} bytes of an upload${limitBytes === Number.POSITIVE_INFINITY ? ' of unknown size' : ''} (quota ${this.quotaBytes} bytes)`);
        }
        // Take a step ahead when there is room, so most chunks cost one comparison; never beyond the declared size.
        const extra = Math.max(0, Math.min(step, this.quotaBytes - this.usedBytes - need, limitBytes - toBytes));
        held += need + extra;
        this.reservedBytes += need + extra;
      },
      release: () => {
        if (done) return;
        done = true;
        this.reservedBytes -= held;
      },
    };
  }

  /** Evicts evictable staged copies (LRU) from the accounting at once until `bytes` fit; files go in the background. */
  private evictNow(bytes: number): void {
    for (const c of this.evictable()) {
      if (this.usedBytes + bytes <= this.quotaBytes) return;
      this.staged.delete(c.path);
      this.index.saveSoon();
      void this.stagedStore.delete(c.path).catch(() => undefined);
    }
  }

  /** A fresh temp file in incoming/ (server-generated name, O_EXCL). */
  async incomingTemp(): Promise<{ path: string; handle: FileHandle }> {
    const path = `${this.incomingDir}/${randomBytes(12).toString('hex')}.part`;
    const handle = await open(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o644);
    return { path, handle };
  }

  /** A fresh private directory in incoming/ (for writers that create their own temp files). */
  async makeIncomingDir(): Promise<string> {
    const dir = `${this.incomingDir}/${randomBytes(12).toString('hex')}.d`;
    await mkdir(dir, { recursive: false });
    return dir;
  }

  async removeIncoming(path: string): Promise<void> {
    await unlink(path).catch(() => undefined);
  }

  get(path: string): StagedCopy | undefined {
    return this.staged.get(path);
  }

  /** Copy `path` from permanent storage into the buffer (recalling it from tape first), pinned for `pinMs`. */
  stage(permanent: StorageBackend, path: string, pinMs: number): Promise<StagedCopy> {
    const now = Date.now();
    const existing = this.staged.get(path);
    if (existing) {
      existing.pinnedUntil = Math.max(existing.pinnedUntil, now + pinMs);
      existing.released = false;
      existing.lastAccess = now;
      this.index.saveSoon();
      return Promise.resolve(existing);
    }
    let p = this.staging.get(path);
    if (p) return p;
    p = (async () => {
      const st = await permanent.stat(path);
      if (st.type !== 'file') throw new StorageError('CARGO_ERR_NOT_A_FILE', `not a file: ${path}`, 400);
      if (permanent instanceof NearlineBackend) await permanent.recall(path);
      const release = await this.reserve(st.size);
      try {
        const src = await permanent.openRead(path);
        try {
          const tmp = await this.stagedStore.createTemp(path, { overwrite: true, createParents: true });
          try {
            if (st.size > 0) await writeStreamAt(tmp.handle, src.stream(0, st.size - 1), 0);
            await tmp.commit();
          } catch (e) {
            await tmp.abort();
            throw e;
          }
        } finally {
          await src.close();
        }
      } finally {
        release();
      }
      // The buffer now holds the disk copy; the tape system's own cache can let go of it.
      if (permanent instanceof NearlineBackend) permanent.evict(path);
      const copy: StagedCopy = {
        path,
        size: st.size,
        sourceEtag: st.etag,
        pinnedUntil: Date.now() + pinMs,
        released: false,
        lastAccess: Date.now(),
      };
      this.staged.set(path, copy);
      await this.index.save();
      return copy;
    })().finally(() => this.staging.delete(path));
    this.staging.set(path, p);
    return p;
  }

  isStaging(path: string): boolean {
    return this.staging.has(path);
  }

  /** Client no longer needs the copy: it becomes evictable (not deleted at once: it may still be read). */
  release(path: string): void {
    const c = this.staged.get(path);
    if (c) {
      c.released = true;
      this.index.saveSoon();
    }
  }

  async openStaged(path: string): Promise<ReadHandle | null> {
    const c = this.staged.get(path);
    if (!c) return null;
    c.lastAccess = Date.now();
    try {
      return await this.stagedStore.openRead(path);
    } catch {
      this.staged.delete(path);
      this.index.saveSoon();
      return null;
    }
  }

  async stagedAbsPath(path: string): Promise<string | null> {
    return this.staged.has(path) ? this.stagedStore.resolve(path) : null;
  }

  /** Remove staged copies at or under `path` (after delete/move/overwrite in permanent storage). */
  async drop(path: string): Promise<void> {
    for (const p of [...this.staged.keys()]) {
      if (p === path || p.startsWith(path + '/')) {
        this.staged.delete(p);
        this.index.saveSoon();
        await this.stagedStore.delete(p).catch(() => undefined);
      }
    }
  }
}
