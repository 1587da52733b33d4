/**
 * Permanent (or buffer) storage on a POSIX file system. Writes go to a reserved temp name in the target
 * directory, are fsynced, then published with rename (overwrite) or link+unlink (no overwrite: link fails
 * atomically when the name exists), followed by an fsync of the directory so the new name is durable.
 */
import { constants as fsc, type Stats } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';
import type { Readable } from 'node:stream';
import type { CreateOptions, EntryStat, ReadHandle, StorageBackend, TempFile } from './storage-backend.js';
import { ConfinedRoot, RESERVED_PREFIX } from './safe-path.js';
import { FileRangeStream } from './file-range-stream.js';
import { alreadyExists, conflict, forbidden, fromFsError, isACollection, notACollection, notFound, StorageError } from './storage-errors.js';

/** 1 MiB reads: few syscalls and few chunks for HTTP/2 to frame. */
export const READ_CHUNK = 1 << 20;

export function etagOf(st: Stats): string {
  return `"${st.ino.toString(16)}-${st.size.toString(16)}-${Math.floor(st.mtimeMs * 1000).toString(16)}"`;
}

export function entryFromStats(path: string, st: Stats): EntryStat {
  const isDir = st.isDirectory();
  return {
    path,
    name: path === '/' ? '' : path.slice(path.lastIndexOf('/') + 1),
    type: isDir ? 'dir' : 'file',
    size: isDir ? 0 : st.size,
    mtimeMs: st.mtimeMs,
    birthtimeMs: st.birthtimeMs || st.ctimeMs,
    etag: etagOf(st),
    locality: isDir ? 'NONE' : st.size === 0 ? 'NONE' : 'DISK',
    online: true,
  };
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? '/' + name : parent + '/' + name;
}

export function tempNameFor(target: string): string {
  const base = basename(target);
  // Keep the temp name within NAME_MAX even for a 255-byte target name.
  return `${RESERVED_PREFIX}${randomBytes(6).toString('hex')}-${base.slice(0, 200)}`;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY).catch(() => null);
  if (!fh) return;
  try {
    await fh.sync().catch(() => undefined);
  } finally {
    await fh.close();
  }
}

/** Publish `from` (absolute) at `to` (absolute, same file system). */
export async function publishFile(from: string, to: string, overwrite: boolean, logical: string): Promise<void> {
  const existing = await lstat(to).catch(() => null);
  if (existing?.isDirectory()) throw isACollection(logical);
  if (overwrite) {
    await rename(from, to);
  } else {
    try {
      await link(from, to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyExists(logical);
      throw e;
    }
    await unlink(from);
  }
  await fsyncDir(dirname(to));
}

class PosixReadHandle implements ReadHandle {
  constructor(
    readonly stat: EntryStat,
    private readonly fh: import('node:fs/promises').FileHandle,
  ) {}
  get fd(): number {
    return this.fh.fd;
  }
  stream(start: number, endInclusive: number): Readable {
    return new FileRangeStream(this.fh, start, endInclusive, READ_CHUNK);
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

export class PosixBackend implements StorageBackend {
  readonly kind: 'posix' | 'nearline' = 'posix';
  protected constructor(readonly root: ConfinedRoot) {}

  static async create(rootDir: string): Promise<PosixBackend> {
    await mkdir(rootDir, { recursive: true });
    return new PosixBackend(await ConfinedRoot.open(rootDir));
  }

  resolve(path: string): Promise<string> {
    return this.root.confine(path);
  }

  async stat(path: string): Promise<EntryStat> {
    const abs = await this.root.confine(path);
    try {
      return entryFromStats(path, await stat(abs));
    } catch (e) {
      throw fromFsError(e, path);
    }
  }

  async list(path: string): Promise<EntryStat[]> {
    const abs = await this.root.confine(path);
    let names: string[];
    try {
      names = await readdir(abs);
    } catch (e) {
      throw fromFsError(e, path);
    }
    const out: EntryStat[] = [];
    for (const name of names) {
      if (name.startsWith(RESERVED_PREFIX)) continue;
      const child = childPath(path, name);
      try {
        // stat through confine: a symlink leading out of the root is simply not listed.
        out.push(entryFromStats(child, await stat(await this.root.confine(child))));
      } catch {
        /* vanished, dangling or escaping: skip */
      }
    }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  async openRead(path: string): Promise<ReadHandle> {
    const abs = await this.root.confine(path);
    let fh;
    try {
      fh = await open(abs, fsc.O_RDONLY);
    } catch (e) {
      throw fromFsError(e, path);
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw isACollection(path);
      if (!st.isFile()) throw forbidden('not a regular file');
      return new PosixReadHandle(entryFromStats(path, st), fh);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  protected async ensureParent(path: string, createParents: boolean): Promise<string> {
    if (path === '/') throw isACollection(path);
    const parent = path.slice(0, path.lastIndexOf('/')) || '/';
    const absParent = await this.root.confine(parent);
    const st = await stat(absParent).catch(() => null);
    if (st && !st.isDirectory()) throw notACollection(parent);
    if (!st) {
      if (!createParents) throw conflict(`parent collection does not exist: ${parent}`);
      try {
        await mkdir(absParent, { recursive: true });
      } catch (e) {
        throw fromFsError(e, parent);
      }
      // mkdir -p may have walked through a symlink created meanwhile: check again.
      await this.root.confine(parent);
    }
    return absParent;
  }

  async createTemp(path: string, opts: CreateOptions): Promise<TempFile> {
    const absParent = await this.ensureParent(path, opts.createParents ?? true);
    const abs = await this.root.confine(path);
    const existing = await lstat(abs).catch(() => null);
    if (existing?.isDirectory()) throw isACollection(path);
    if (existing && !opts.overwrite) throw alreadyExists(path);
    const tempPath = absParent + '/' + tempNameFor(abs);
    const handle = await open(tempPath, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644).catch((e) => {
      throw fromFsError(e, path);
    });
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const self = this;
    return {
      tempPath,
      handle,
      async commit() {
        if (state !== 'open') throw new StorageError('CARGO_ERR_INTERNAL', `temp file already ${state}`, 500);
        state = 'committed';
        try {
          await handle.sync();
          await handle.close();
          await self.root.confine(path);
          await publishFile(tempPath, abs, opts.overwrite, path);
        } catch (e) {
          await handle.close().catch(() => undefined);
          await unlink(tempPath).catch(() => undefined);
          throw fromFsError(e, path);
        }
        return self.stat(path);
      },
      async abort() {
        if (state !== 'open') return;
        state = 'aborted';
        await handle.close().catch(() => undefined);
        await unlink(tempPath).catch(() => undefined);
      },
    };
  }

  async adopt(sourceAbsPath: string, path: string, opts: CreateOptions): Promise<EntryStat> {
    const absParent = await this.ensureParent(path, opts.createParents ?? true);
    const abs = await this.root.confine(path);
    try {
      await publishFile(sourceAbsPath, abs, opts.overwrite, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw fromFsError(e, path);
      // Different file system: copy next to the target under a temp name, fsync, then publish.
      const tmp = absParent + '/' + tempNameFor(abs);
      try {
        await copyFile(sourceAbsPath, tmp);
        const fh = await open(tmp, fsc.O_RDONLY);
        await fh.sync().finally(() => fh.close());
        await publishFile(tmp, abs, opts.overwrite, path);
        await unlink(sourceAbsPath).catch(() => undefined);
      } catch (e2) {
        await unlink(tmp).catch(() => undefined);
        throw fromFsError(e2, path);
      }
    }
    return this.stat(path);
  }

  async delete(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    if (path === '/') throw forbidden('cannot delete the root collection');
    const abs = await this.root.confine(path);
    try {
      const st = await lstat(abs);
      if (st.isDirectory()) {
        if (opts.recursive) await rm(abs, { recursive: true });
        else await rmdir(abs);
      } else {
        await unlink(abs);
      }
    } catch (e) {
      throw fromFsError(e, path);
    }
  }

  async mkdir(path: string, opts: { parents?: boolean } = {}): Promise<void> {
    if (path === '/') throw alreadyExists(path);
    if (!opts.parents) await this.ensureParent(path, false);
    const abs = await this.root.confine(path);
    try {
      await mkdir(abs, { recursive: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && opts.parents) {
        await mkdir(abs, { recursive: true }).catch((e2) => {
          throw fromFsError(e2, path);
        });
      } else {
        throw fromFsError(e, path);
      }
    }
    await this.root.confine(path);
  }

  async move(from: string, to: string, opts: { overwrite: boolean }): Promise<void> {
    if (from === '/' || to === '/') throw forbidden('cannot move the root collection');
    if (to === from || to.startsWith(from + '/')) throw forbidden('cannot move a collection into itself');
    const absFrom = await this.root.confine(from);
    const src = await lstat(absFrom).catch(() => null);
    if (!src) throw notFound(from);
    await this.ensureParent(to, false);
    const absTo = await this.root.confine(to);
    const dst = await lstat(absTo).catch(() => null);
    if (dst && !opts.overwrite) throw alreadyExists(to);
    try {
      if (dst?.isDirectory() && !src.isDirectory()) throw isACollection(to);
      if (dst?.isDirectory()) await rm(absTo, { recursive: true });
      if (src.isDirectory() || opts.overwrite) await rename(absFrom, absTo);
      else await publishFile(absFrom, absTo, false, to);
      await fsyncDir(dirname(absTo));
    } catch (e) {
      throw fromFsError(e, to);
    }
  }
}
