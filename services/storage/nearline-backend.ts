/**
 * A tape emulator: a POSIX tree whose files are "on tape" and become readable only after a recall that takes
 * `recallLatencyMs`. Written files start as DISK_AND_TAPE (freshly written, still in the disk cache) and fall
 * back to TAPE when evicted. Disk-cache residency is kept in memory: after a restart every file is on tape
 * only, which is what a real tape system looks like after a cache flush.
 */
import { mkdir } from 'node:fs/promises';
import type { CreateOptions, EntryStat, ReadHandle, TempFile } from './storage-backend.js';
import { PosixBackend } from './posix-backend.js';
import { ConfinedRoot } from './safe-path.js';
import { nearline, StorageError } from './storage-errors.js';

export interface NearlineOptions {
  /** Time a recall takes (emulated tape mount + seek + read). */
  recallLatencyMs: number;
  /** Paths whose recall fails (emulated bad tape), for tests of the FAILED state. */
  failRecall?: (path: string) => boolean;
}

export class NearlineBackend extends PosixBackend {
  override readonly kind = 'nearline' as const;
  /** Paths whose bytes are in the disk cache. */
  private readonly onDisk = new Set<string>();
  private readonly recalls = new Map<string, Promise<void>>();

  private constructor(
    root: ConfinedRoot,
    private readonly opts: NearlineOptions,
  ) {
    super(root);
  }

  static async createNearline(rootDir: string, opts: NearlineOptions): Promise<NearlineBackend> {
    await mkdir(rootDir, { recursive: true });
    return new NearlineBackend(await ConfinedRoot.open(rootDir), opts);
  }

  private withLocality(st: EntryStat): EntryStat {
    if (st.type === 'dir') return st;
    if (st.size === 0) return { ...st, locality: 'NONE', online: true };
    const disk = this.onDisk.has(st.path);
    return { ...st, locality: disk ? 'DISK_AND_TAPE' : 'TAPE', online: disk };
  }

  override async stat(path: string): Promise<EntryStat> {
    return this.withLocality(await super.stat(path));
  }

  override async list(path: string): Promise<EntryStat[]> {
    return (await super.list(path)).map((e) => this.withLocality(e));
  }

  override async openRead(path: string): Promise<ReadHandle> {
    const st = await this.stat(path);
    if (!st.online) throw nearline(path);
    return super.openRead(path);
  }

  isOnDisk(path: string): boolean {
    return this.onDisk.has(path);
  }

  /** Bring a file into the disk cache; concurrent recalls of one path share one emulated mount. */
  recall(path: string): Promise<void> {
    if (this.onDisk.has(path)) return Promise.resolve();
    let p = this.recalls.get(path);
    if (p) return p;
    p = (async () => {
      const st = await super.stat(path);
      if (st.type === 'dir') throw new StorageError('CARGO_ERR_NOT_A_FILE', `not a file: ${path}`, 400);
      await new Promise((r) => setTimeout(r, this.opts.recallLatencyMs));
      if (this.opts.failRecall?.(path)) {
        throw new StorageError('CARGO_ERR_RECALL_FAILED', `tape recall failed: ${path}`, 502, { retryable: true });
      }
      this.onDisk.add(path);
    })().finally(() => this.recalls.delete(path));
    this.recalls.set(path, p);
    return p;
  }

  /** Drop the disk copy; the file stays on tape. */
  evict(path: string): void {
    this.onDisk.delete(path);
  }

  override async createTemp(path: string, opts: CreateOptions): Promise<TempFile> {
    const t = await super.createTemp(path, opts);
    return {
      ...t,
      tempPath: t.tempPath,
      handle: t.handle,
      commit: async () => {
        await t.commit();
        this.onDisk.add(path);
        return this.stat(path);
      },
      abort: t.abort,
    };
  }

  override async adopt(sourceAbsPath: string, path: string, opts: CreateOptions): Promise<EntryStat> {
    await super.adopt(sourceAbsPath, path, opts);
    this.onDisk.add(path);
    return this.stat(path);
  }

  override async delete(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await super.delete(path, opts);
    for (const p of [...this.onDisk]) if (p === path || p.startsWith(path + '/')) this.onDisk.delete(p);
  }

  override async move(from: string, to: string, opts: { overwrite: boolean }): Promise<void> {
    await super.move(from, to, opts);
    for (const p of [...this.onDisk]) {
      if (p === from || p.startsWith(from + '/')) {
        this.onDisk.delete(p);
        this.onDisk.add(to + p.slice(from.length));
      }
    }
  }
}
