/**
 * The namespace the port serves: permanent storage (any StorageBackend) plus the buffer. Reads prefer a
 * staged buffer copy, else read permanent storage when it is online; uploads land in the buffer and are
 * adopted into permanent storage atomically on commit; namespace changes invalidate buffer copies.
 * This is the only object the gateway's storage endpoint talks to.
 */
import { rm, type FileHandle } from 'node:fs/promises';
import type { EntryStat, Locality, ReadHandle, StorageBackend } from './storage-backend.js';
import { BufferArea, type StagedCopy } from './buffer-area.js';
import { NearlineBackend } from './nearline-backend.js';
import { alreadyExists, insufficientStorage, isACollection, StorageError } from './storage-errors.js';
import { runReceptionStages, type ReceptionStage } from './reception-stage.js';

export interface PortStorageOptions {
  permanent: StorageBackend;
  buffer: BufferArea;
  /** Pin lifetime of staged copies when the client gives none (Tape REST diskLifetime). */
  defaultPinMs?: number;
  /** Run on every imported file in the buffer before it is published (reception-stage.ts). */
  receptionStages?: ReceptionStage[];
}

export interface Upload {
  readonly path: string;
  /** Absolute path of the temp file in the buffer (for positional writes by ranged uploads). */
  readonly tempPath: string;
  readonly handle: FileHandle;
  /**
   * Account `totalBytes` received so far against the buffer quota; throws CARGO_ERR_NO_SPACE when the buffer is
   * full. Every upload accounts its bytes as they arrive, whether or not it declared a size.
   */
  account(totalBytes: number): void;
  /** fsync + adopt into permanent storage at the final name. */
  commit(): Promise<EntryStat>;
  /** Remove the temp file; nothing is published. Idempotent. */
  abort(): Promise<void>;
}

export interface ExternalUpload {
  /** Absolute path the external writer must create (atomically, e.g. temp + rename, as the engine does). */
  readonly file: string;
  commit(): Promise<EntryStat>;
  abort(): Promise<void>;
}

export class PortStorage {
  readonly permanent: StorageBackend;
  readonly buffer: BufferArea;
  readonly defaultPinMs: number;
  readonly receptionStages: ReceptionStage[];

  constructor(opts: PortStorageOptions) {
    this.permanent = opts.permanent;
    this.buffer = opts.buffer;
    this.defaultPinMs = opts.defaultPinMs ?? 3600_000;
    this.receptionStages = opts.receptionStages ?? [];
  }

  /** Stat with the buffer folded in: a staged copy makes a tape file DISK_AND_TAPE and online. */
  async stat(path: string): Promise<EntryStat> {
    return this.withBuffer(await this.permanent.stat(path));
  }

  async list(path: string): Promise<EntryStat[]> {
    return (await this.permanent.list(path)).map((e) => this.withBuffer(e));
  }

  private withBuffer(st: EntryStat): EntryStat {
    if (st.type !== 'file') return st;
    const copy = this.buffer.get(st.path);
    if (!copy || copy.sourceEtag !== st.etag) return st;
    const locality: Locality = st.locality === 'TAPE' || st.locality === 'DISK_AND_TAPE' ? 'DISK_AND_TAPE' : st.locality;
    return { ...st, locality, online: true };
  }

  async openRead(path: string): Promise<ReadHandle> {
    const copy = this.buffer.get(path);
    if (copy) {
      const st = await this.permanent.stat(path);
      if (st.etag === copy.sourceEtag) {
        const h = await this.buffer.openStaged(path);
        if (h) return h;
      } else {
        await this.buffer.drop(path);
      }
    }
    return this.permanent.openRead(path);
  }

  /** Absolute path to read `path` from (staged copy or online permanent file), for file:// transfers. */
  async resolveForRead(path: string): Promise<string> {
    const h = await this.openRead(path); // checks existence, onlineness and confinement
    await h.close();
    const staged = await this.buffer.stagedAbsPath(path);
    return staged ?? this.permanent.resolve(path);
  }

  /**
   * Start an upload: fails early (before any byte is read) when the target is a collection or exists and
   * overwrite is false; the same check is repeated atomically at commit.
   */
  async beginUpload(path: string, opts: { overwrite: boolean; expectedSize?: number }): Promise<Upload> {
    const existing = await this.permanent.stat(path).catch(() => null);
    if (existing?.type === 'dir') throw isACollection(path);
    if (existing && !opts.overwrite) throw alreadyExists(path);
    // A declared size that cannot fit now is refused before any byte is read; one that fits is not reserved up
    // front (a client could declare the whole buffer and send nothing): quota is taken as the bytes arrive.
    if (opts.expectedSize !== undefined && opts.expectedSize > this.buffer.obtainableBytes) {
      throw insufficientStorage(`${opts.expectedSize} bytes do not fit in the buffer now (quota ${this.buffer.quotaBytes} bytes, ${Math.max(0, this.buffer.obtainableBytes)} obtainable)`);
    }
    const growable = this.buffer.growableReservation(opts.expectedSize);
    const account = (n: number) => growable.grow(n);
    const unreserve = () => growable.release();
    let temp;
    try {
      temp = await this.buffer.incomingTemp();
    } catch (e) {
      unreserve();
      throw e;
    }
    const { path: tempPath, handle } = temp;
    let state: 'open' | 'committed' | 'aborted' = 'open';
    return {
      path,
      tempPath,
      handle,
      account,
      commit: async () => {
        if (state !== 'open') throw new StorageError('CARGO_ERR_INTERNAL', `upload already ${state}`, 500);
        state = 'committed';
        try {
          await handle.sync();
          await handle.close();
          await runReceptionStages(this.receptionStages, { path, file: tempPath });
          const st = await this.permanent.adopt(tempPath, path, { overwrite: opts.overwrite, createParents: true });
          await this.buffer.drop(path);
          return this.withBuffer(st);
        } catch (e) {
          await handle.close().catch(() => undefined);
          await this.buffer.removeIncoming(tempPath);
          throw e;
        } finally {
          unreserve();
        }
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        unreserve();
        await handle.close().catch(() => undefined);
        await this.buffer.removeIncoming(tempPath);
      },
    };
  }

  /**
   * A private directory in the buffer where an external writer (the transfer engine pulling a TPC source)
   * creates `file`, which commit() then adopts into permanent storage at `path`.
   */
  async beginExternalUpload(path: string, opts: { overwrite: boolean }): Promise<ExternalUpload> {
    const existing = await this.permanent.stat(path).catch(() => null);
    if (existing?.type === 'dir') throw isACollection(path);
    if (existing && !opts.overwrite) throw alreadyExists(path);
    const dir = await this.buffer.makeIncomingDir();
    const file = dir + '/file';
    let done = false;
    return {
      file,
      commit: async () => {
        done = true;
        try {
          await runReceptionStages(this.receptionStages, { path, file });
          const st = await this.permanent.adopt(file, path, { overwrite: opts.overwrite, createParents: true });
          await this.buffer.drop(path);
          return this.withBuffer(st);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      abort: async () => {
        if (done) return;
        done = true;
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  async delete(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.permanent.delete(path, opts);
    await this.buffer.drop(path);
  }

  mkdir(path: string, opts: { parents?: boolean } = {}): Promise<void> {
    return this.permanent.mkdir(path, opts);
  }

  async move(from: string, to: string, opts: { overwrite: boolean }): Promise<void> {
    await this.permanent.move(from, to, opts);
    await this.buffer.drop(from);
    await this.buffer.drop(to);
  }

  // ---- staging (Tape REST) ----

  get isNearline(): boolean {
    return this.permanent instanceof NearlineBackend;
  }

  stage(path: string, pinMs = this.defaultPinMs): Promise<StagedCopy> {
    return this.buffer.stage(this.permanent, path, pinMs);
  }

  /** Whether the bytes can be read now (staged copy, or online permanent file). */
  async isOnDisk(path: string): Promise<boolean> {
    const st = await this.stat(path);
    return st.type === 'file' && st.online;
  }

  release(path: string): void {
    this.buffer.release(path);
  }

  async locality(path: string): Promise<Locality> {
    const st = await this.stat(path);
    if (st.type !== 'file') return 'NONE';
    return st.locality;
  }
}

/** Convenience for tests and the lead: build a PortStorage from directories. */
export async function createPortStorage(opts: {
  permanentDir: string;
  bufferDir: string;
  bufferQuotaBytes: number;
  nearline?: { recallLatencyMs: number; failRecall?: (path: string) => boolean };
  defaultPinMs?: number;
  receptionStages?: ReceptionStage[];
}): Promise<PortStorage> {
  const { PosixBackend } = await import('./posix-backend.js');
  const permanent = opts.nearline
    ? await NearlineBackend.createNearline(opts.permanentDir, opts.nearline)
    : await PosixBackend.create(opts.permanentDir);
  const buffer = await BufferArea.create({ dir: opts.bufferDir, quotaBytes: opts.bufferQuotaBytes });
  return new PortStorage({ permanent, buffer, defaultPinMs: opts.defaultPinMs, receptionStages: opts.receptionStages });
}

